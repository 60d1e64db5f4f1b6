"""Scaled out as the README's Production section says: two API processes and one `tailorset worker` on
loopback, each with a data directory of its own, all sharing PostgreSQL, Redis (rate limits) and S3
(SeaweedFS), embedded workers off. What one process writes, the other serves."""

import os
import subprocess
import sys
import time

import anyio
import httpx
import pytest

from tailorset.config import Settings
from tailorset.storage import open_stores
from tests.servers import free_ports, wait_for
from tests.support import all_keys, create_token, photo


@pytest.fixture
def cluster(env, redis_url, tmp_path):
    """Starts processes sharing the test's database and bucket; stops them all at the end."""
    shared = {
        **os.environ,
        "TAILORSET_EMBEDDED_WORKER": "false",
        "TAILORSET_REDIS_URL": redis_url,
    }
    processes = []

    def start(name: str, *command: str) -> subprocess.Popen:
        home = tmp_path / name
        home.mkdir()
        log = (tmp_path / f"{name}.log").open("wb")
        process = subprocess.Popen(
            [sys.executable, "-m", "tailorset", *command, "--log-level", "warning"],
            env={**shared, "TAILORSET_DATA_DIR": str(home)}, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        processes.append(process)
        return process

    def api(name: str) -> httpx.Client:
        (port,) = free_ports()
        base = f"http://127.0.0.1:{port}"
        wait_for(base, start(name, "serve", "--port", str(port)), path="/readyz")  # database, S3 and queue answer
        return httpx.Client(base_url=base + "/tailored-gen", timeout=60)

    yield api, lambda: start("worker", "worker", "--poll-seconds", "0.2")
    for process in processes:
        process.terminate()
    for process in processes:
        process.wait(timeout=30)


@pytest.mark.parametrize(("database_url", "storage_backend"), [("postgresql", "s3")], indirect=True)
def test_two_api_processes_and_a_worker_share_one_service(cluster, env, tmp_path):
    start_api, start_worker = cluster
    a, b = start_api("api-a"), start_api("api-b")
    token = {"api_token": create_token("acme", "--rate-limit", "enterprise")}

    # Uploaded through one process, read through the other; the files are in S3.
    project = a.post(
        "/projects", headers=token, json={"project_name": "P", "ip_medium": "photography", "ip_type": "other"}
    )
    dataset = a.post("/datasets", headers=token, json={"project_id": project.json()["id"], "name": "D"}).json()
    url = f"/datasets/{dataset['id']}"
    uploaded = [
        a.post(f"{url}/images", headers=token, files={"file": (name, photo(name))}).json()
        for name in ("chelsea.png", "coffee.png", "astronaut.png")
    ]
    seen = b.get(url, headers=token).json()
    assert seen["images_count"] == 3
    assert [i["caption"] for i in seen["images"]] == [i["caption"] for i in uploaded]
    assert httpx.get(seen["images"][0]["image_url"]).content == photo("chelsea.png")
    assert httpx.get(seen["images"][1]["thumbnail_url"]).headers["content-type"] == "image/jpeg"
    bucket = anyio.run(open_stores, Settings())["s3"]
    assert len(anyio.run(all_keys, bucket)) == 6
    assert not [p for p in tmp_path.glob("api-*/files/**/*") if p.is_file()]  # nothing on the API hosts' disks

    # Regenerate All asked of one process is left to the worker: the API processes run none.
    b.put(url, headers=token, json={"caption_prefix": "sks style"})
    assert a.put(f"{url}/images", headers=token).status_code == 202

    # One rate-limit budget across both processes (Redis): 4 a minute in all, not 4 each.
    tight = {"api_token": create_token("tight", "--rate-limit", "4/minute")}
    assert [(a, b)[n % 2].get("/projects", headers=tight).status_code for n in range(4)] == [200] * 4
    for process in (a, b):
        refused = process.get("/projects", headers=tight)
        assert refused.status_code == 429 and int(refused.headers["retry-after"]) >= 1

    assert b.get(url, headers=token).json()["captions_update"]["status"] == "queued"
    worker = start_worker()
    deadline = time.monotonic() + 120
    while (progress := a.get(url, headers=token).json())["captions_update_status"] != "completed":
        assert time.monotonic() < deadline and worker.poll() is None, progress
        time.sleep(0.2)
    assert progress["captions_update"] | {"job_id": 0} == {
        "job_id": 0, "status": "completed", "done": 3, "failed": 0, "total": 3, "include_manual": False,
        "error": None,
    }  # fmt: skip
    assert all(image["caption"].startswith("sks style, ") for image in b.get(f"{url}/images", headers=token).json())

    # A delete through either process removes the objects from the bucket.
    assert b.delete(f"{url}/images/{uploaded[0]['id']}", headers=token).status_code == 204
    assert len(anyio.run(all_keys, bucket)) == 4
    assert httpx.get(uploaded[0]["image_url"]).status_code == 404


@pytest.mark.parametrize(("database_url", "storage_backend"), [("sqlite", "local")], indirect=True)
def test_processes_starting_together_on_a_new_sqlite_file_migrate_in_turn(env):
    """`tailorset serve --workers N` on a fresh SQLite file: every process migrates at start."""
    starting = [
        subprocess.Popen([sys.executable, "-m", "tailorset", "migrate"], stderr=subprocess.PIPE) for _ in range(4)
    ]
    failures = [p.stderr.read().decode()[-300:] for p in starting if p.wait(timeout=60) != 0]
    assert not failures, failures
