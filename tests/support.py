"""What tests share: real photos, tokens made with the real CLI, and a client that carries a token."""

from __future__ import annotations

import base64
import contextlib
import io
import subprocess
import time
from importlib.resources import files

import anyio
import httpx
import pytest
from starlette.testclient import TestClient

from tailorset.cli import main as cli
from tailorset.config import Settings
from tailorset.storage import Storage, open_stores
from tests.s3 import free_ports  # noqa: F401 (for the tests that start servers)

PHOTOS = files("skimage") / "data"


def photo(name: str) -> bytes:
    """A real photo shipped with scikit-image: astronaut.png, coffee.png, chelsea.png, camera.png…"""
    return (PHOTOS / name).read_bytes()


def wait_for(base: str, process: subprocess.Popen, seconds: float = 60, path: str = "/healthz") -> None:
    """Until the server at `base` answers 200 (failing early if its process died)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if httpx.get(base + path, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        assert process.poll() is None, f"the server at {base} exited with {process.returncode}"
        time.sleep(0.2)
    raise AssertionError(f"{base}{path} did not answer within {seconds} s")


# Tests about files run on S3 too (a SeaweedFS of the run's own), with PostgreSQL as in production; the
# rest run on the local backend only: S3 under every test would double the suite's time and test nothing more.
every_storage = pytest.mark.parametrize(
    ("database_url", "storage_backend"),
    [("sqlite", "local"), ("postgresql", "local"), ("postgresql", "s3")],
    indirect=True,
)


def download(client: TestClient, url: str, **kwargs) -> httpx.Response:
    """Fetch an image_url as its holder would: from the service itself, or from S3 (a pre-signed URL)."""
    if url.startswith(str(client.base_url)):
        return client.get(url, **kwargs)
    return httpx.get(url, **kwargs)


async def all_keys(store: Storage) -> list[str]:
    return sorted([key async for key in store.keys()])  # noqa: SIM118 (an async iterator, not a dict)


def stored_keys(settings: Settings) -> list[str]:
    """Every file in the configured backend: the local directory, or this test's prefix in the bucket."""

    async def collect() -> list[str]:
        return await all_keys((await open_stores(settings))[settings.storage])

    return anyio.run(collect)


def run_cli(*args: str) -> tuple[int, str, str]:
    """`tailorset ARGS…` in this process: its exit code, stdout and stderr."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli(list(args))
    return code, out.getvalue(), err.getvalue()


def create_token(org: str, *extra: str) -> str:
    code, out, _ = run_cli("token", "create", "--org", org, *extra)
    assert code == 0
    return out.strip().splitlines()[-1]


class Api:
    """A client for one organization: every call carries its api_token."""

    def __init__(self, client: TestClient, token: str):
        self.client, self.token = client, token

    def __getattr__(self, method: str):
        call = getattr(self.client, method)
        return lambda url, **kwargs: call(url, headers={"api_token": self.token, **kwargs.pop("headers", {})}, **kwargs)

    # Shortcuts for the set-up most tests need.
    def project(self, **fields) -> dict:
        body = {"project_name": "Cats", "ip_medium": "photography", "ip_type": "other", **fields}
        response = self.post("/tailored-gen/projects", json=body)
        assert response.status_code == 201, response.text
        return response.json()

    def dataset(self, project_id: int | None = None, **fields) -> dict:
        project_id = project_id or self.project(training_version=fields.get("training_version"))["id"]
        response = self.post("/tailored-gen/datasets", json={"project_id": project_id, "name": "Set", **fields})
        assert response.status_code == 201, response.text
        return response.json()

    def upload(self, dataset_id: int, name: str = "chelsea.png", **fields) -> dict:
        body = {"file": base64.b64encode(photo(name)).decode(), "image_name": name, **fields}
        response = self.post(f"/tailored-gen/datasets/{dataset_id}/images", json=body)
        assert response.status_code == 201, response.text
        return response.json()
