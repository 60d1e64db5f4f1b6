"""A bulk upload survives its worker killed with SIGKILL: another worker resumes after the last committed
batch, every file in the ZIP is imported exactly once, and what the dead worker was writing is removed."""

import io

from PIL import Image, ImageOps
from starlette.testclient import TestClient

from tailorset.app import create_app
from tailorset.config import Settings
from tests.servers import kill_worker_when, work_until
from tests.support import PHOTOS, Api, bulk_upload, create_token, referenced_files, stored_files, zip_of

SOURCES = ["chelsea.png", "coffee.png", "astronaut.png", "motorcycle_left.png", "rocket.jpg", "camera.png"]


def distinct_photos(count: int) -> dict[str, bytes]:
    """`count` different real photos: as shot, mirrored, flipped, turned."""
    variants = [lambda i: i, ImageOps.mirror, ImageOps.flip, lambda i: i.rotate(90, expand=True)]
    photos = {}
    for n in range(count):
        image = variants[n // len(SOURCES)](Image.open(PHOTOS / SOURCES[n % len(SOURCES)]).convert("RGB"))
        out = io.BytesIO()
        image.save(out, format="PNG")
        photos[f"{n:02d}.png"] = out.getvalue()
    return photos


def status_of(api: Api, dataset_id: int) -> dict:
    return api.get(f"/tailored-gen/datasets/{dataset_id}/images/bulk-upload/status").json()


def test_a_killed_worker_imports_nothing_twice_and_leaves_no_file(env, monkeypatch):
    monkeypatch.setenv("TAILORSET_EMBEDDED_WORKER", "false")
    monkeypatch.setenv("TAILORSET_JOB_LEASE_SECONDS", "2")
    settings = Settings()
    with TestClient(create_app(settings)) as client:
        api = Api(client, create_token("acme", "--rate-limit", "enterprise"))
        dataset = api.dataset()
        photos = distinct_photos(12)
        captions = {f"{n:02d}.txt": f"photo {n}, by hand" for n in range(0, 12, 5)}
        assert bulk_upload(api, dataset["id"], zip_of(photos | captions)).status_code == 202

        def mid_batch() -> bool:
            """After a batch has committed, while the next has stored some of its files but not all (files are
            counted first, so those beyond the committed images are in flight)."""
            in_flight = len([f for f in stored_files(settings) if f.startswith("images/")])
            done = status_of(api, dataset["id"])["done"]
            return done >= 4 and 1 <= in_flight - done <= 3

        kill_worker_when(mid_batch, timeout=90)
        interrupted = status_of(api, dataset["id"])
        assert interrupted["status"] == "processing" and 4 <= interrupted["done"] < 12, interrupted
        assert (
            set(stored_files(settings))
            - referenced_files(api, client, dataset["id"])
            - set(f for f in stored_files(settings) if f.startswith("imports/"))
        ), "the killed worker left no file to clean up"

        work_until(
            lambda: status_of(api, dataset["id"])["status"] == "completed", lambda: status_of(api, dataset["id"])
        )

        status = status_of(api, dataset["id"])
        assert (status["done"], status["failed"], status["skipped"], status["total"]) == (12, 0, 0, 12)
        images = api.get(f"/tailored-gen/datasets/{dataset['id']}/images").json()
        assert sorted(i["image_name"] for i in images) == sorted(photos)  # each file once
        for image in images:
            history = api.get(f"/tailored-gen/datasets/{dataset['id']}/images/{image['id']}/captions").json()
            assert len(history) == 1, (image["image_name"], history)
            expected = "manual" if image["image_name"][:-4] + ".txt" in captions else "automatic"
            assert image["caption_source"] == expected
        # The files the killed worker was writing are gone, and so is the ZIP: only the images' files remain.
        assert set(stored_files(settings)) == referenced_files(api, client, dataset["id"])
