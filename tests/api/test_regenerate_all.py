"""PUT /tailored-gen/datasets/{dataset_id}/images: Regenerate All Captions, in the background."""

import anyio
import pytest
from starlette.testclient import TestClient

from tailorset.app import create_app
from tailorset.config import Settings
from tailorset.db.engine import Database
from tailorset.services import Services
from tailorset.worker import Worker
from tests.servers import free_port
from tests.support import Api, create_token, every_storage, wait_until, wait_until_done


def job_revisions(api: Api, image: dict) -> list[dict]:
    url = f"/tailored-gen/datasets/{image['dataset_id']}/images/{image['id']}/captions"
    return [r for r in api.get(url).json() if r["job_id"] is not None]


@pytest.fixture
def dataset(api) -> dict:
    dataset = api.dataset()
    for name in ("chelsea.png", "coffee.png", "astronaut.png"):
        api.upload(dataset["id"], name)
    return dataset


@every_storage
def test_regenerates_automatic_captions_and_keeps_manual_ones(api, dataset):
    url = f"/tailored-gen/datasets/{dataset['id']}"
    cat, cup, person = api.get(f"{url}/images").json()
    api.put(f"{url}/images/{cup['id']}", json={"caption": "a cup, described by hand"})
    api.put(url, json={"caption_prefix": "sks style"})

    response = api.put(f"{url}/images")
    assert response.status_code == 202
    body = response.json()
    assert body["captions_update_status"] == "in_progress"
    assert body["captions_update"]["total"] == 2 and body["captions_update"]["include_manual"] is False

    done = wait_until_done(api, dataset["id"])
    assert done["captions_update"] | {"job_id": 0} == {
        "job_id": 0, "status": "completed", "done": 2, "failed": 0, "total": 2, "include_manual": False,
        "error": None,
    }  # fmt: skip
    images = {i["id"]: i for i in api.get(f"{url}/images").json()}
    assert images[cat["id"]]["caption"] == cat["caption"].replace("A photo of", "sks style, a photo of")
    assert images[person["id"]]["caption"].startswith("sks style, ")
    assert images[cup["id"]]["caption"] == "a cup, described by hand"
    assert images[cup["id"]]["caption_source"] == "manual"
    assert [len(job_revisions(api, images[i])) for i in (cat["id"], cup["id"], person["id"])] == [1, 0, 1]


def test_include_manual_replaces_manual_captions(api, dataset):
    url = f"/tailored-gen/datasets/{dataset['id']}"
    first = api.get(f"{url}/images").json()[0]
    api.put(f"{url}/images/{first['id']}", json={"caption": "by hand"})
    response = api.put(f"{url}/images", json={"include_manual": True})
    assert response.status_code == 202 and response.json()["captions_update"]["total"] == 3
    wait_until_done(api, dataset["id"])
    again = api.get(f"{url}/images/{first['id']}").json()
    assert again["caption_source"] == "automatic" and again["caption"] == first["caption"]


def test_refused_on_completed_or_missing_datasets(api, dataset, other_api):
    url = f"/tailored-gen/datasets/{dataset['id']}"
    assert other_api.put(f"{url}/images").status_code == 404
    assert api.put("/tailored-gen/datasets/9999/images").status_code == 404
    api.put(url, json={"status": "completed"})
    response = api.put(f"{url}/images")
    assert response.status_code == 409 and "completed" in response.json()["error"]
    assert api.put(f"{url}/images", json={"include_manual": "yes"}).status_code == 400


def test_a_queued_job_blocks_completion_and_a_second_request(env, monkeypatch):
    """With the embedded worker off (workers on other hosts), the job waits in the queue."""
    monkeypatch.setenv("TAILORSET_EMBEDDED_WORKER", "false")
    settings = Settings()
    with TestClient(create_app(settings)) as client:
        api = Api(client, create_token("acme"))
        dataset = api.dataset()
        image = api.upload(dataset["id"])
        url = f"/tailored-gen/datasets/{dataset['id']}"
        assert api.put(f"{url}/images").status_code == 202
        response = api.put(f"{url}/images")
        assert response.status_code == 409 and "already being regenerated" in response.json()["error"]
        response = api.put(url, json={"status": "completed"})
        assert response.status_code == 409 and "being regenerated" in response.json()["error"]
        # A person edits while the job waits: the job must not overwrite that newer caption.
        api.put(f"{url}/images/{image['id']}", json={"caption": "edited while queued"})

        async def drain():
            async with Services.open(settings) as services:
                await Worker(services).run(until_idle=True)

        anyio.run(drain)
        done = api.get(url).json()
        assert done["captions_update_status"] == "completed" and done["captions_update"]["status"] == "completed"
        assert api.get(f"{url}/images/{image['id']}").json()["caption"] == "edited while queued"
        assert api.put(url, json={"status": "completed"}).status_code == 200


def test_caption_history_and_restore(api, dataset):
    url = f"/tailored-gen/datasets/{dataset['id']}/images"
    image = api.get(url).json()[0]
    api.put(f"{url}/{image['id']}", json={"caption": "first edit"})
    api.put(f"{url}/{image['id']}", json={"caption": "second edit"})
    history = api.get(f"{url}/{image['id']}/captions").json()
    assert [(r["caption"], r["caption_source"]) for r in history] == [
        (image["caption"], "automatic"), ("first edit", "manual"), ("second edit", "manual")
    ]  # fmt: skip
    assert history[0]["actor"] == "captioner:local for token:ts_" + history[1]["actor"].removeprefix("token:ts_")
    assert history[1]["actor"].startswith("token:ts_")

    restored = api.post(f"{url}/{image['id']}/captions/{history[0]['id']}/restore")
    assert restored.status_code == 200
    assert (restored.json()["caption"], restored.json()["caption_source"]) == (image["caption"], "automatic")
    assert len(api.get(f"{url}/{image['id']}/captions").json()) == 4
    other = api.get(url).json()[1]
    response = api.post(f"{url}/{other['id']}/captions/{history[0]['id']}/restore")
    assert response.status_code == 404 and "revision" in response.json()["error"]


def test_the_worker_outlives_a_database_outage(api, dataset, caplog):
    """The embedded worker loses its database for a while; it says so in the log, and once the database is
    back it still runs the next job (a worker that died with the outage would leave it queued forever)."""
    services = api.client.app.state.services
    working = services.db
    services.db = Database(f"postgresql://postgres@127.0.0.1:{free_port()}/nowhere")  # nothing listens there
    try:
        services.wakeup.notify()
        wait_until(lambda: "The worker failed" in caplog.text, 20, "the worker never noticed the outage")
    finally:
        services.db = working
    assert api.put(f"/tailored-gen/datasets/{dataset['id']}/images", json={}).status_code == 202
    assert wait_until_done(api, dataset["id"], timeout=90)["captions_update"]["done"] == 3
