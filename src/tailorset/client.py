"""A small typed client for a tailorset server (or for Bria's dataset API, where the two agree).

    from tailorset.client import Client

    with Client("http://127.0.0.1:8000", token) as api:     # or TAILORSET_URL / TAILORSET_TOKEN
        for image in api.images(dataset_id):
            if image.caption_source != "manual":
                api.set_caption(dataset_id, image.id, image.caption.replace("foo", "bar"))

Every method returns a frozen dataclass or raises `ApiError`, which carries the HTTP status and the
server's one-sentence message. A 429 is retried after the server's Retry-After, a few times.

The names in `__all__` are the public surface (tests/public_surface.txt keeps it from changing by accident);
anything else here, or in tailorset's other modules, may change in any release."""

from __future__ import annotations

import base64
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, fields
from datetime import datetime
from pathlib import Path
from typing import IO, Any, Literal, TypeVar

import httpx

__all__ = [
    "DEFAULT_URL", "ApiError", "BulkUploadStatus", "Client", "Dataset", "ExportFormat", "FailedImage", "Image",
    "Progress", "SkippedFile",
]  # fmt: skip

DEFAULT_URL = "http://127.0.0.1:8000"
ExportFormat = Literal["kohya", "hf", "jsonl", "ai-toolkit", "fibo"]
Progress = Callable[[int], None]  # called with the number of bytes just sent or received


class ApiError(Exception):
    """The server refused the request: `status` is the HTTP status, `message` its one sentence."""

    def __init__(self, status: int, message: str):
        super().__init__(f"{status}: {message}")
        self.status, self.message = status, message


T = TypeVar("T")


def _parse(cls: type[T], body: dict) -> T:
    """The fields `cls` declares, from a response body that may carry more (newer servers)."""
    values = {}
    for field in fields(cls):
        value = body.get(field.name)
        if field.type in ("datetime", "datetime | None") and isinstance(value, str):
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        values[field.name] = value
    return cls(**values)


@dataclass(frozen=True)
class Image:
    """An image and its caption, as the API returns it (Bria's fields)."""

    id: int
    dataset_id: int
    caption: str | None
    caption_source: str | None  # "automatic", "manual" or None
    image_name: str | None
    image_url: str
    thumbnail_url: str
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class Dataset:
    """A dataset's settings and state, without its images (`Client.images` lists those)."""

    id: int
    project_id: int
    name: str
    training_version: str
    caption_prefix: str | None
    visual_schema: str | None
    status: str  # "draft" or "completed"
    captions_update_status: str
    upload_type: str
    images_count: int
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class FailedImage:
    """A file of a bulk upload that was refused, with the status a single upload of it would have had."""

    filename: str
    error_code: int
    error_message: str


@dataclass(frozen=True)
class SkippedFile:
    """A file of a bulk upload not imported (already in the dataset) or imported without its caption, and why."""

    filename: str
    reason: str


@dataclass(frozen=True)
class BulkUploadStatus:
    """Where a bulk upload stands; `finished` once it has completed or failed."""

    status: str  # "pending", "processing", "completed" or "failed"
    progress_percentage: int
    total_processed: int
    done: int
    failed: int
    failed_images: tuple[FailedImage, ...]
    total: int  # 0 until the server has read the ZIP (and always from Bria, which does not say)
    skipped: int  # already in the dataset
    skipped_images: tuple[SkippedFile, ...]
    uncaptioned_images: tuple[SkippedFile, ...]  # imported with an automatic caption: none came with them
    error: str | None

    @property
    def finished(self) -> bool:
        return self.status in ("completed", "failed")

    @classmethod
    def from_body(cls, body: dict) -> BulkUploadStatus:
        return _parse(
            cls,
            {
                **body,
                "failed_images": tuple(_parse(FailedImage, item) for item in body.get("failed_images") or ()),
                "skipped_images": tuple(_parse(SkippedFile, item) for item in body.get("skipped_images") or ()),
                "uncaptioned_images": tuple(
                    _parse(SkippedFile, item) for item in body.get("uncaptioned_images") or ()
                ),
                "total": body.get("total") or 0,
                "skipped": body.get("skipped") or 0,
            },
        )


class _Counted:
    """A file whose reads report progress (for uploads)."""

    def __init__(self, file: IO[bytes], progress: Progress | None):
        self._file, self._progress = file, progress

    def read(self, size: int = -1) -> bytes:
        data = self._file.read(size)
        if self._progress and data:
            self._progress(len(data))
        return data

    def __getattr__(self, name: str) -> Any:
        return getattr(self._file, name)


class Client:
    """A connection to a tailorset (or Bria) server, for one organization's token. Use it as a context
    manager, or call `close`. `url` and `token` default to TAILORSET_URL and TAILORSET_TOKEN."""

    def __init__(
        self,
        url: str | None = None,
        token: str | None = None,
        *,
        timeout: float = 60.0,
        max_retries: int = 5,
        transport: httpx.BaseTransport | None = None,
    ):
        url = url or os.environ.get("TAILORSET_URL") or DEFAULT_URL
        token = token or os.environ.get("TAILORSET_TOKEN")
        if not token:
            raise ValueError("No API token: pass one with --token, or set TAILORSET_TOKEN.")
        self.max_retries = max_retries
        self._http = httpx.Client(
            base_url=url.rstrip("/") + "/tailored-gen", headers={"api_token": token}, timeout=timeout,
            transport=transport,
        )  # fmt: skip

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_exc) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    # --- requests -----------------------------------------------------------------------------

    def _send(
        self, method: str, path: str, *, stream: bool = False, rewind: IO[bytes] | None = None, **kwargs
    ) -> httpx.Response:
        """The response, once it is not a 429 (after the retries); an ApiError for any other 4xx/5xx."""
        for attempt in range(self.max_retries + 1):
            if rewind is not None:
                rewind.seek(0)
            response = self._http.send(self._http.build_request(method, path, **kwargs), stream=stream)
            if response.status_code != 429 or attempt == self.max_retries:
                break
            response.close()
            time.sleep(min(float(response.headers.get("retry-after") or 1), 60.0))
        if response.is_error:
            response.read()
            response.close()
            raise ApiError(response.status_code, _message(response))
        return response

    def _json(self, method: str, path: str, **kwargs) -> Any:
        return self._send(method, path, **kwargs).json()

    # --- projects, datasets and images ---------------------------------------------------------

    def project(self, project_id: int) -> dict[str, Any]:
        return self._json("GET", f"/projects/{project_id}")

    def create_project(self, **fields: Any) -> dict[str, Any]:
        """POST /projects: project_name, ip_medium and ip_type, and optionally the other project fields."""
        return self._json("POST", "/projects", json={k: v for k, v in fields.items() if v is not None})

    def dataset(self, dataset_id: int) -> Dataset:
        return _parse(Dataset, self._json("GET", f"/datasets/{dataset_id}", params={"max_images": 1}))

    def create_dataset(self, project_id: int, name: str, training_version: str | None = None) -> Dataset:
        body = {"project_id": project_id, "name": name, "training_version": training_version}
        return _parse(Dataset, self._json("POST", "/datasets", json={k: v for k, v in body.items() if v is not None}))

    def update_dataset(self, dataset_id: int, **fields: Any) -> Dataset:
        """PUT /datasets/{id}: name, caption_prefix, visual_schema or status."""
        return _parse(Dataset, self._json("PUT", f"/datasets/{dataset_id}", json=fields))

    def images(self, dataset_id: int, *, page_size: int = 500, **filters: str) -> Iterator[Image]:
        """Every image, oldest first, a keyset page at a time (filters: caption_contains, caption_excludes,
        caption_source)."""
        params: dict[str, Any] = {"limit": page_size, **filters}
        while True:
            response = self._send("GET", f"/datasets/{dataset_id}/images", params=params)
            yield from (_parse(Image, body) for body in response.json())
            cursor = response.headers.get("x-next-cursor")
            if not cursor:
                return
            params["cursor"] = cursor

    def image(self, dataset_id: int, image_id: int) -> Image:
        return _parse(Image, self._json("GET", f"/datasets/{dataset_id}/images/{image_id}"))

    def upload_image(self, dataset_id: int, path: str | Path, image_name: str | None = None) -> Image:
        path = Path(path)
        with path.open("rb") as file:
            files = {"file": (path.name, file, "application/octet-stream")}
            data = {"image_name": image_name} if image_name else None
            body = self._json("POST", f"/datasets/{dataset_id}/images", files=files, data=data, rewind=file)
        return _parse(Image, body)

    def upload_image_data(self, dataset_id: int, data: bytes, image_name: str | None = None) -> Image:
        """Upload Image as Bria documents it: the file base64-encoded in a JSON body."""
        body = {"file": base64.b64encode(data).decode("ascii"), "image_name": image_name}
        body = {k: v for k, v in body.items() if v is not None}
        return _parse(Image, self._json("POST", f"/datasets/{dataset_id}/images", json=body))

    def image_bytes(self, image: Image) -> bytes:
        """The original file behind an image's image_url (signed, or S3's pre-signed: no token goes with it)."""
        request = self._http.build_request("GET", image.image_url)
        del request.headers["api_token"]  # the URL's signature is the credential; the token stays with us
        response = self._http.send(request, follow_redirects=True)
        if response.is_error:
            raise ApiError(response.status_code, f"image {image.id}'s file could not be downloaded.")
        return response.content

    def set_caption(self, dataset_id: int, image_id: int, caption: str) -> Image:
        """A person's caption (caption_source "manual"); for FIBO datasets, a JSON object as a string."""
        body = self._json("PUT", f"/datasets/{dataset_id}/images/{image_id}", json={"caption": caption})
        return _parse(Image, body)

    def regenerate_caption(self, dataset_id: int, image_id: int) -> Image:
        """Have the captioner write the caption anew (caption_source "automatic")."""
        body = self._json("PUT", f"/datasets/{dataset_id}/images/{image_id}", json={"regenerate_caption": True})
        return _parse(Image, body)

    def health(self, dataset_id: int) -> dict:
        """The dataset's health report (tailorset's own endpoint), as the server's JSON."""
        return self._json("GET", f"/datasets/{dataset_id}/health")

    # --- import and export --------------------------------------------------------------------

    def bulk_upload(
        self,
        dataset_id: int,
        zip_file: str | Path | IO[bytes] | None = None,
        *,
        zip_url: str | None = None,
        automatic_captioning: bool = True,
        progress: Progress | None = None,
    ) -> BulkUploadStatus:
        """Start importing a ZIP (a path or an open file, streamed; or a URL the server fetches)."""
        path = f"/datasets/{dataset_id}/images/bulk-upload"
        flags = {"automatic_captioning": automatic_captioning}
        if zip_file is None:
            return BulkUploadStatus.from_body(self._json("POST", path, json={"zip_url": zip_url, **flags}))
        opened = open(zip_file, "rb") if isinstance(zip_file, str | Path) else None  # noqa: SIM115 — closed below
        try:
            file = opened or zip_file
            files = {"file": ("upload.zip", _Counted(file, progress), "application/zip")}
            data = {name: str(value).lower() for name, value in flags.items()}
            return BulkUploadStatus.from_body(self._json("POST", path, files=files, data=data, rewind=file))
        finally:
            if opened:
                opened.close()

    def bulk_upload_status(self, dataset_id: int) -> BulkUploadStatus:
        return BulkUploadStatus.from_body(self._json("GET", f"/datasets/{dataset_id}/images/bulk-upload/status"))

    def wait_for_bulk_upload(
        self,
        dataset_id: int,
        *,
        poll_seconds: float = 2.0,
        timeout: float | None = None,
        on_status: Callable[[BulkUploadStatus], None] | None = None,
    ) -> BulkUploadStatus:
        """Poll until the bulk upload has completed or failed (TimeoutError after `timeout` seconds)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            status = self.bulk_upload_status(dataset_id)
            if on_status:
                on_status(status)
            if status.finished:
                return status
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"The bulk upload into dataset {dataset_id} has not finished in {timeout:g} s.")
            time.sleep(poll_seconds)

    def export(
        self, dataset_id: int, format: ExportFormat, destination: IO[bytes], progress: Progress | None = None
    ) -> int:
        """Stream the dataset's ZIP into an open file; returns its size in bytes."""
        response = self._send("GET", f"/datasets/{dataset_id}/export", params={"format": format}, stream=True)
        size = 0
        try:
            for chunk in response.iter_bytes():
                destination.write(chunk)
                size += len(chunk)
                if progress:
                    progress(len(chunk))
        finally:
            response.close()
        return size


def _message(response: httpx.Response) -> str:
    try:
        return str(response.json()["error"])
    except (ValueError, KeyError, TypeError):
        return response.text.strip()[:200] or response.reason_phrase
