"""What tests share: real photos, tokens made with the real CLI, and a client that carries a token."""

from __future__ import annotations

import base64
import contextlib
import io
import time
import warnings
import zipfile
from collections.abc import Callable
from importlib.resources import files
from pathlib import Path
from typing import TypeVar

import anyio
import httpx
import pytest
from PIL import Image
from starlette.testclient import TestClient

from tailorset.cli import main as cli
from tailorset.config import Settings
from tailorset.storage import Storage, open_stores

T = TypeVar("T")
PHOTOS = files("skimage") / "data"
KOHYA_IMAGE_EXTENSIONS = {".png", ".jpg", ".jpeg", ".webp", ".bmp"}  # what sd-scripts globs for


def photo(name: str) -> bytes:
    """A real photo shipped with scikit-image: astronaut.png, coffee.png, chelsea.png, camera.png…"""
    return (PHOTOS / name).read_bytes()


# Tests about files run on S3 too (a SeaweedFS of the run's own), with PostgreSQL as in production; the
# rest run on the local backend only: S3 under every test would double the suite's time and test nothing more.
every_storage = pytest.mark.parametrize(
    ("database_url", "storage_backend"),
    [("sqlite", "local"), ("postgresql", "local"), ("postgresql", "s3")],
    indirect=True,
)


def wait_until(
    condition: Callable[[], T], timeout: float = 60, why: str | Callable[[], object] = "", interval: float = 0.05
) -> T:
    """Ask `condition` until it answers something true, and return that; an AssertionError (saying `why`) after
    `timeout` seconds. A test waits for what it needs, as long as a loaded machine takes, instead of a fixed
    sleep that is too long on a fast machine and too short on a busy one."""
    deadline = time.monotonic() + timeout
    while not (answer := condition()):
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s: {why() if callable(why) else why}")
        time.sleep(interval)
    return answer


def download(client: TestClient, url: str, **kwargs) -> httpx.Response:
    """Fetch an image_url as its holder would: from the service itself, or from S3 (a pre-signed URL)."""
    if url.startswith(str(client.base_url)):
        return client.get(url, **kwargs)
    return httpx.get(url, **kwargs)


async def all_keys(store: Storage) -> list[str]:
    return sorted([key async for key in store.keys()])  # noqa: SIM118 (an async iterator, not a dict)


def stored_files(settings: Settings) -> list[str]:
    """Every file under the local backend's directory, partial writes included (what a crash could leave)."""
    root = settings.files_dir
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()) if root.exists() else []


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


def zip_of(files: dict[str, bytes | str], compression: int = zipfile.ZIP_STORED) -> bytes:
    """A ZIP holding these files, in this order (names as given, even hostile ones)."""
    out = io.BytesIO()
    with warnings.catch_warnings(), zipfile.ZipFile(out, "w", compression) as archive:
        warnings.simplefilter("ignore", UserWarning)  # "Duplicate name": some tests want one
        for name, data in files.items() if isinstance(files, dict) else files:
            archive.writestr(zipfile.ZipInfo(name, (2024, 1, 1, 0, 0, 0)), data, compression)
    return out.getvalue()


def bulk_upload(api: Api, dataset_id: int, archive: bytes, **fields: str):
    """POST the ZIP as a multipart file; returns the response."""
    files = {"file": ("photos.zip", archive, "application/zip")}
    return api.post(f"/tailored-gen/datasets/{dataset_id}/images/bulk-upload", files=files, data=fields)


def wait_for_bulk_upload(api: Api, dataset_id: int, timeout: float = 120) -> dict:
    """The bulk upload's status once it has completed or failed."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        response = api.get(f"/tailored-gen/datasets/{dataset_id}/images/bulk-upload/status")
        if response.status_code == 429:  # a slow machine: the captioner's first load can outlast the rate limit
            time.sleep(int(response.headers["retry-after"]))
            continue
        status = response.json()
        if status["status"] in ("completed", "failed"):
            return status
        time.sleep(0.05)
    raise AssertionError(f"the bulk upload into dataset {dataset_id} did not finish in {timeout} s: {status}")


def kohya_read(folder: Path) -> dict[str, tuple[Path, str]]:
    """What a kohya (sd-scripts) trainer reads from a folder: each image with the `.txt` of the same stem."""
    images = [p for p in folder.iterdir() if p.suffix.lower() in KOHYA_IMAGE_EXTENSIONS]
    found = {}
    for image in images:
        caption = image.with_suffix(".txt")
        assert caption.is_file(), f"{image.name} has no caption file"
        with Image.open(image) as opened:
            opened.verify()
        found[image.stem] = (image, caption.read_text(encoding="utf-8").strip())
    return found


def b64(data: bytes) -> str:
    """`data` as the JSON upload's base64 `file`."""
    return base64.b64encode(data).decode()


def encoded(size: tuple[int, int], fmt: str, mode: str = "RGB") -> bytes:
    """A plain orange picture of this size, format and mode, encoded."""
    out = io.BytesIO()
    Image.new(mode, size, "orange").save(out, format=fmt)
    return out.getvalue()


def export(api, dataset_id: int, format: str) -> zipfile.ZipFile:
    """The dataset exported in `format`, checked as a download: a streamed ZIP whose CRCs all check out."""
    response = api.get(f"/tailored-gen/datasets/{dataset_id}/export", params={"format": format})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/zip"
    assert response.headers["content-disposition"] == f'attachment; filename="dataset-{dataset_id}-{format}.zip"'
    assert "content-length" not in response.headers  # streamed as it is written, not built first
    archive = zipfile.ZipFile(io.BytesIO(response.content))
    assert archive.testzip() is None  # every CRC checks out
    return archive


def referenced_files(api: Api, client, dataset_id: int) -> set[str]:
    """The file keys the dataset's image and thumbnail URLs point at."""
    keys = set()
    for image in api.get(f"/tailored-gen/datasets/{dataset_id}/images").json():
        for url in (image["image_url"], image["thumbnail_url"]):
            keys.add(url.split("/files/", 1)[1].split("?", 1)[0])
    return keys


def wait_until_done(api: Api, dataset_id: int, timeout: float = 60) -> dict:
    """The dataset once its Regenerate All has completed."""

    def completed() -> dict | None:
        dataset = api.get(f"/tailored-gen/datasets/{dataset_id}").json()
        return dataset if dataset["captions_update_status"] == "completed" else None

    return wait_until(completed, timeout, f"captions of dataset {dataset_id} regenerated", interval=0.1)
