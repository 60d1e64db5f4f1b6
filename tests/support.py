"""What tests share: real photos, tokens made with the real CLI, and a client that carries a token."""

from __future__ import annotations

import base64
import contextlib
import io
import time
import warnings
import zipfile
from importlib.resources import files
from pathlib import Path

from PIL import Image
from starlette.testclient import TestClient

from tailorset.cli import main as cli

PHOTOS = files("skimage") / "data"
KOHYA_IMAGE_EXTENSIONS = {".png", ".jpg", ".jpeg", ".webp", ".bmp"}  # what sd-scripts globs for


def photo(name: str) -> bytes:
    """A real photo shipped with scikit-image: astronaut.png, coffee.png, chelsea.png, camera.png…"""
    return (PHOTOS / name).read_bytes()


def create_token(org: str, *extra: str) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert cli(["token", "create", "--org", org, *extra]) == 0
    return out.getvalue().strip().splitlines()[-1]


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
        status = api.get(f"/tailored-gen/datasets/{dataset_id}/images/bulk-upload/status").json()
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
