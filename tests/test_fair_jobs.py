"""Background jobs are shared fairly between organizations, and a job that keeps failing is given up."""

from __future__ import annotations

import json
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
from tests.support import Api, bulk_upload, create_token, zip_of

JUNK_FILES = 2000  # refused one by one (415): a long job of cheap batches


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
        while a.get(status_url).json()["total_processed"] < 100:  # A's job is under way
            assert time.monotonic() < deadline
            time.sleep(0.05)

        assert b.put(f"/tailored-gen/datasets/{small['id']}/images").status_code == 202
        while (regenerated := b.get(f"/tailored-gen/datasets/{small['id']}").json())["captions_update_status"] != (
            "completed"
        ):
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert regenerated["captions_update"]["done"] == 2
        meanwhile = a.get(status_url).json()
        assert meanwhile["status"] == "processing" and meanwhile["total_processed"] < JUNK_FILES, meanwhile

        while (finished := a.get(status_url).json())["status"] == "processing":
            assert time.monotonic() < deadline + 300
            time.sleep(0.5)  # each answer lists every refused file: no need to ask 20 times a second
        assert (finished["status"], finished["failed"], len(finished["failed_images"])) == (
            "completed", JUNK_FILES, JUNK_FILES
        )  # fmt: skip
        assert {failure["error_code"] for failure in finished["failed_images"]} == {415}


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
