"""Background jobs are shared fairly between organizations, and a job that keeps failing is given up."""

from __future__ import annotations

import http.server
import json
import threading
import time

import anyio
from sqlalchemy import update
from starlette.testclient import TestClient

from tailorset.app import create_app
from tailorset.config import Settings
from tailorset.db.models import Job
from tailorset.domain.jobs import GIVEN_UP, MAX_ATTEMPTS
from tailorset.services import Services
from tailorset.worker import Worker
from tests.support import Api, bulk_upload, create_token, wait_until, zip_of

JUNK_FILES = 6000  # refused one by one (415): a long job of cheap batches


def regenerate_all(api: Api, dataset_id: int, within: float) -> dict:
    """Ask for Regenerate All and wait until it has completed; the dataset as it is then."""
    assert api.put(f"/tailored-gen/datasets/{dataset_id}/images").status_code == 202

    def completed() -> dict | None:
        dataset = api.get(f"/tailored-gen/datasets/{dataset_id}").json()
        return dataset if dataset["captions_update_status"] == "completed" else None

    return wait_until(completed, within, f"Regenerate All of dataset {dataset_id} completed")


def test_one_organizations_long_job_does_not_keep_anothers_waiting(env):
    with TestClient(create_app(Settings())) as client:
        a = Api(client, create_token("acme", "--rate-limit", "enterprise"))
        b = Api(client, create_token("globex", "--rate-limit", "enterprise"))
        small = b.dataset()
        for name in ("chelsea.png", "coffee.png"):
            b.upload(small["id"], name)
        large = a.dataset()
        junk = zip_of({f"{n}.png": f"not a picture {n}".encode() for n in range(JUNK_FILES)})
        assert bulk_upload(a, large["id"], junk).status_code == 202
        status_url = f"/tailored-gen/datasets/{large['id']}/images/bulk-upload/status"
        deadline = time.monotonic() + 60
        wait_until(lambda: a.get(status_url).json()["total_processed"] >= 100, 60, "A's job under way")

        assert regenerate_all(b, small["id"], within=60)["captions_update"]["done"] == 2
        meanwhile = a.get(status_url).json()
        assert meanwhile["status"] == "processing" and meanwhile["total_processed"] < JUNK_FILES, meanwhile

        while (finished := a.get(status_url).json())["status"] == "processing":
            assert time.monotonic() < deadline + 300
            time.sleep(0.5)  # each answer lists every refused file: no need to ask 20 times a second
        assert (finished["status"], finished["failed"], len(finished["failed_images"])) == (
            "completed", JUNK_FILES, JUNK_FILES
        )  # fmt: skip
        assert {failure["error_code"] for failure in finished["failed_images"]} == {415}


class Trickle(http.server.BaseHTTPRequestHandler):
    """A zip_url that sends a few bytes now and then, as a slow or hostile server does, until told to stop."""

    def do_GET(self):
        self.server.hits.append(self.path)
        self.send_response(200)
        self.send_header("Content-Length", "1000000")
        self.end_headers()
        while not self.server.done.wait(0.2):
            self.wfile.write(b"PK")
            self.wfile.flush()

    def log_message(self, *args):
        pass


def test_a_trickling_zip_url_does_not_keep_another_organization_waiting(env, monkeypatch):
    """A download cannot be cut into slices; it holds one of a worker's slots, and only one."""
    monkeypatch.setenv("TAILORSET_IMAGE_URL_ALLOWED_NETWORKS", "127.0.0.2/32")  # stands in for a public host
    trickle = http.server.ThreadingHTTPServer(("127.0.0.2", 0), Trickle)
    trickle.hits, trickle.done, trickle.daemon_threads = [], threading.Event(), True
    threading.Thread(target=trickle.serve_forever, daemon=True).start()
    try:
        with TestClient(create_app(Settings())) as client:
            a = Api(client, create_token("acme", "--rate-limit", "enterprise"))
            b = Api(client, create_token("globex", "--rate-limit", "enterprise"))
            small = b.dataset()
            b.upload(small["id"], "chelsea.png")
            slow, other = a.dataset(), a.dataset()
            zip_url = f"http://127.0.0.2:{trickle.server_address[1]}/photos.zip"
            for dataset in (slow, other):  # two of A's: still one slot left for B
                url = f"/tailored-gen/datasets/{dataset['id']}/images/bulk-upload"
                response = a.post(url, json={"zip_url": zip_url})
                assert response.status_code == 202, response.text
            deadline = time.monotonic() + 30
            while len(trickle.hits) < 1:
                assert time.monotonic() < deadline
                time.sleep(0.05)

            assert regenerate_all(b, small["id"], within=30)["captions_update"]["done"] == 1
            status = a.get(f"/tailored-gen/datasets/{slow['id']}/images/bulk-upload/status").json()
            assert status["status"] == "processing" and len(trickle.hits) == 1  # A's second waits its turn
            trickle.done.set()  # the download ends short of its Content-Length: the job fails, and says why
            while (status := a.get(f"/tailored-gen/datasets/{slow['id']}/images/bulk-upload/status").json())[
                "status"
            ] == "processing":
                assert time.monotonic() < deadline + 30
                time.sleep(0.1)
            assert status["status"] == "failed" and "zip_url could not be fetched" in status["error"], status
    finally:
        trickle.done.set()
        trickle.shutdown()


def test_a_job_that_keeps_failing_is_given_up_with_a_reason(env, monkeypatch):
    """A poison job (here: a row a bug left without a field its batches need) would stop every worker
    that takes it up, forever; after MAX_ATTEMPTS it fails, and says so where its progress is shown."""
    monkeypatch.setenv("TAILORSET_EMBEDDED_WORKER", "false")
    settings = Settings()
    with TestClient(create_app(settings)) as client:
        api = Api(client, create_token("acme"))
        dataset = api.dataset()
        api.upload(dataset["id"], "chelsea.png")
        url = f"/tailored-gen/datasets/{dataset['id']}"
        assert api.put(f"{url}/images").status_code == 202

        async def work() -> None:
            async with Services.open(settings) as services:
                async with services.db.write() as session:
                    await session.execute(update(Job).values(options=json.dumps({"include_manual": False})))
                with anyio.fail_after(60):
                    await Worker(services, poll_seconds=0.01).run(until_idle=True)

        anyio.run(work)
        body = api.get(url).json()
        assert body["captions_update_status"] == "completed"
        assert body["captions_update"] | {"job_id": 0} == {
            "job_id": 0, "status": "failed", "done": 0, "failed": 0, "total": 1, "include_manual": False,
            "error": GIVEN_UP,
        }  # fmt: skip
        assert f"{MAX_ATTEMPTS} times in a row" in GIVEN_UP
