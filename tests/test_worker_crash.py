"""Regenerate All Captions survives a worker killed with SIGKILL: another worker resumes after the
last committed batch, no image is captioned twice, and manual captions stay as they are."""

from starlette.testclient import TestClient

from tailorset.app import create_app
from tailorset.config import Settings
from tests.servers import kill_worker_when, work_until
from tests.support import Api, create_token

PHOTOS = ["chelsea.png", "coffee.png", "astronaut.png", "motorcycle_left.png", "rocket.jpg", "camera.png"]


def progress(api: Api, dataset_id: int) -> dict:
    return api.get(f"/tailored-gen/datasets/{dataset_id}").json()["captions_update"]


def test_a_killed_worker_loses_nothing_and_repeats_nothing(env, monkeypatch):
    monkeypatch.setenv("TAILORSET_EMBEDDED_WORKER", "false")
    monkeypatch.setenv("TAILORSET_JOB_LEASE_SECONDS", "2")
    with TestClient(create_app(Settings())) as client:
        api = Api(client, create_token("acme", "--rate-limit", "enterprise"))
        dataset = api.dataset()
        url = f"/tailored-gen/datasets/{dataset['id']}"
        images = [api.upload(dataset["id"], PHOTOS[n % len(PHOTOS)]) for n in range(40)]
        manual = images[10]
        api.put(f"{url}/images/{manual['id']}", json={"caption": "written by a person"})
        api.put(url, json={"caption_prefix": "sks style"})
        assert api.put(f"{url}/images").json()["captions_update"]["total"] == 39

        kill_worker_when(lambda: progress(api, dataset["id"])["done"] >= 4)
        interrupted = progress(api, dataset["id"])
        assert interrupted["status"] == "running" and 4 <= interrupted["done"] < 39, interrupted

        work_until(
            lambda: api.get(url).json()["captions_update_status"] == "completed", lambda: progress(api, dataset["id"])
        )

        assert progress(api, dataset["id"]) | {"job_id": 0} == {
            "job_id": 0, "status": "completed", "done": 39, "failed": 0, "total": 39, "include_manual": False,
        "error": None,
        }  # fmt: skip
        for image in api.get(f"{url}/images").json():
            history = api.get(f"{url}/images/{image['id']}/captions").json()
            from_jobs = [r for r in history if r["job_id"] is not None]
            if image["id"] == manual["id"]:
                assert image["caption"] == "written by a person" and from_jobs == []
            else:
                assert image["caption"].startswith("sks style, ") and image["caption_source"] == "automatic"
                assert len(from_jobs) == 1, (image["id"], history)  # captioned exactly once
