"""Rows → response bodies, with absolute file URLs (signed by us, or pre-signed by the storage backend).

One presenter per resource. Each takes its field names, in order, from the response model in schemas.py:
a field stored as it is on the row needs no change here (CONTRIBUTING.md, "How to add a field"); only
the computed ones (URLs, counts, decoded JSON) are written out below."""

from __future__ import annotations

import json

from fastapi import Request, Response
from pydantic_core import to_json

from tailorset.api.deps import INCLUDE_GROUPS
from tailorset.api.errors import STATUS
from tailorset.db.models import CaptionRevision, Image, Job, Project
from tailorset.domain.jobs import BULK_UPLOAD_STATUS, JobStatus
from tailorset.schemas import CaptionRevisionOut, DatasetOut, ImageOut, ProjectOut
from tailorset.services import bulk_upload
from tailorset.services.datasets import DatasetView

# A bulk upload's per-file failures carry the status code a single upload of the file would have had.
ERROR_CODES = {kind.__name__: code for kind, code in STATUS.items()}

# Bria's image fields (the optional include= groups apart), and the dataset's, in the response's order.
_IMAGE_FIELDS = tuple(
    name for name in ImageOut.model_fields if not any(name in group for group in INCLUDE_GROUPS.values())
)
_DATASET_FIELDS = tuple(DatasetOut.model_fields)
_REVISION_FIELDS = tuple(CaptionRevisionOut.model_fields)
_PROJECT_FIELDS = tuple(ProjectOut.model_fields)


# request.base_url by what Starlette builds it from: building it took 4 µs, a few % of a Get Image. The Host header
# is the client's to choose, so only the first names a server is reached by are kept.
_BASE_URLS: dict[tuple, str] = {}
_MAX_BASE_URLS = 64


def _base_url(request: Request) -> str:
    scope = request.scope
    host = next((value for name, value in scope["headers"] if name == b"host"), None)
    server = scope.get("server")  # a list, from some servers
    key = (scope.get("scheme"), server and tuple(server), scope.get("app_root_path", scope.get("root_path", "")), host)
    if (url := _BASE_URLS.get(key)) is None:
        url = str(request.base_url)
        if len(_BASE_URLS) < _MAX_BASE_URLS:
            _BASE_URLS[key] = url
    return url


class Presenter:
    def __init__(self, request: Request, include: frozenset[str] = frozenset()):
        self.services = request.app.state.services
        self.base_url = self.services.settings.public_url or _base_url(request)
        self.include = include  # api/deps.INCLUDE_GROUPS: which of tailorset's own image fields to add

    @staticmethod
    def response(body: dict, headers: dict[str, str] | None = None) -> Response:
        """The body as JSON, serialised once and sent as it is. Returned from a route, it skips FastAPI's
        validation of the body against the route's response_model (which is then documentation only): on
        the hottest routes that check cost more than the rest of the response. pydantic-core is the
        serialiser FastAPI uses, so the bytes are the same (tests/api/test_presented_bodies.py holds Get Dataset's
        and Get Images' bodies to it)."""
        return Response(to_json(body), headers=headers, media_type="application/json")

    def image(self, image: Image) -> dict:
        computed = {
            "image_url": self.services.file_url(image.storage, image.file_key, self.base_url),
            "thumbnail_url": self.services.file_url(image.storage, image.thumbnail_key, self.base_url),
        }
        body = {name: computed[name] if name in computed else getattr(image, name) for name in _IMAGE_FIELDS}
        for group, names in INCLUDE_GROUPS.items():
            if group in self.include:
                body.update((name, getattr(image, name)) for name in names)
        if "caption_signals" in body:  # stored as JSON text
            body["caption_signals"] = json.loads(image.caption_signals) if image.caption_signals else None
        return body

    def dataset_image(self, image: Image) -> dict:
        return {**self.image(image), "upload_source_url": image.upload_source_url}

    def dataset(self, view: DatasetView) -> dict:
        computed = {"images_count": view.images_count, "captions_update": self.captions_update(view.captions_job)}
        d = view.dataset
        body = {name: computed[name] if name in computed else getattr(d, name) for name in _DATASET_FIELDS}
        if view.images is not None:
            body["images"] = [self.dataset_image(image) for image in view.images]
        return body

    @staticmethod
    def captions_update(job: Job | None) -> dict | None:
        if job is None:
            return None
        return {
            "job_id": job.id,
            "status": job.status,
            "done": job.done,
            "failed": job.failed,
            "total": job.total,
            "include_manual": json.loads(job.options).get("include_manual", False),
            "error": job.error,
        }

    @staticmethod
    def bulk_upload(job: Job, outcomes: list[bulk_upload.Failure]) -> dict:
        skipped = [{"filename": f.filename, "reason": f.message} for f in outcomes if f.skipped]
        uncaptioned = [{"filename": f.filename, "reason": f.message} for f in outcomes if f.uncaptioned]
        failed = [
            {"filename": f.filename, "error_code": ERROR_CODES.get(f.error, 500), "error_message": f.message}
            for f in outcomes
            if f.failed
        ]
        processed = job.done + job.failed + len(skipped)
        percentage = processed * 100 // job.total if job.total else 0
        if job.status == JobStatus.COMPLETED:
            percentage = 100
        return {
            "status": BULK_UPLOAD_STATUS[job.status], "progress_percentage": percentage, "total_processed": processed,
            "done": job.done, "failed": job.failed, "failed_images": failed, "total": job.total,
            "skipped": len(skipped), "skipped_images": skipped, "uncaptioned_images": uncaptioned, "error": job.error,
        }  # fmt: skip

    @staticmethod
    def revision(revision: CaptionRevision) -> dict:
        return {name: getattr(revision, name) for name in _REVISION_FIELDS}

    @staticmethod
    def project(project: Project) -> dict:
        return {name: getattr(project, name) for name in _PROJECT_FIELDS}
