"""Rows → response bodies, with absolute file URLs (signed by us, or pre-signed by the storage backend)."""

from __future__ import annotations

import json

from fastapi import Request, Response
from pydantic_core import to_json

from tailorset.api.errors import STATUS
from tailorset.db.models import CaptionRevision, Image, Job, Project
from tailorset.domain.jobs import BULK_UPLOAD_STATUS, JobStatus
from tailorset.schemas import ErrorBody
from tailorset.services import bulk_upload
from tailorset.services.datasets import DatasetView

# A bulk upload's per-file failures carry the status code a single upload of the file would have had.
ERROR_CODES = {kind.__name__: code for kind, code in STATUS.items()}

ERROR_DESCRIPTIONS = {
    400: "The request is malformed; the message names the field.",
    401: "The api_token header is missing or not valid.",
    404: "No such resource in your organization.",
    409: "The resource's state forbids this, e.g. the dataset is completed.",
    410: "The resource existed and was deleted.",
    412: "The image is too small.",
    413: "The image (or the ZIP) is larger than the limit.",
    415: "The image is not a JPEG, PNG or WebP.",
    422: "The image_url (or zip_url) could not be fetched.",
    429: "Too many requests; see Retry-After.",
    500: "Internal error; nothing was changed.",
    501: "The configured captioner cannot do this; the message names the one to configure.",
}


def errors(*codes: int) -> dict:
    """OpenAPI `responses` for these status codes plus those every authenticated route can give."""
    return {
        code: {"model": ErrorBody, "description": ERROR_DESCRIPTIONS[code]} for code in sorted({*codes, 401, 429, 500})
    }


class Presenter:
    def __init__(self, request: Request, include: frozenset[str] = frozenset()):
        self.services = request.app.state.services
        self.base_url = self.services.settings.public_url or str(request.base_url)
        self.include = include  # api/deps.INCLUDE_GROUPS: which of tailorset's own image fields to add

    @staticmethod
    def response(body: dict, headers: dict[str, str] | None = None) -> Response:
        """The body as JSON, serialised once and sent as it is. Returned from a route, it skips FastAPI's
        validation of the body against the route's response_model (which is then documentation only): on
        the hottest routes that check cost more than the rest of the response. pydantic-core is the
        serialiser FastAPI uses, so the bytes are the same."""
        return Response(to_json(body), headers=headers, media_type="application/json")

    def image(self, image: Image) -> dict:
        body = {
            "id": image.id,
            "dataset_id": image.dataset_id,
            "caption": image.caption,
            "caption_source": image.caption_source,
            "image_name": image.image_name,
            "image_url": self.services.file_url(image.storage, image.file_key, self.base_url),
            "thumbnail_url": self.services.file_url(image.storage, image.thumbnail_key, self.base_url),
            "created_at": image.created_at,
            "updated_at": image.updated_at,
        }
        if "confidence" in self.include:
            body["caption_confidence"] = image.caption_confidence
            body["caption_signals"] = json.loads(image.caption_signals) if image.caption_signals else None
        if "review" in self.include:
            body.update(review_state=image.review_state, review_note=image.review_note, reviewed_at=image.reviewed_at)
        return body

    def dataset_image(self, image: Image) -> dict:
        return {**self.image(image), "upload_source_url": image.upload_source_url}

    def dataset(self, view: DatasetView) -> dict:
        d = view.dataset
        body = {
            "id": d.id,
            "project_id": d.project_id,
            "name": d.name,
            "training_version": d.training_version,
            "caption_prefix": d.caption_prefix,
            "visual_schema": d.visual_schema,
            "status": d.status,
            "captions_update_status": d.captions_update_status,
            "upload_type": d.upload_type,
            "images_count": view.images_count,
            "captions_update": self.captions_update(view.captions_job),
            "created_at": d.created_at,
            "updated_at": d.updated_at,
        }
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
        fields = ("id", "caption", "caption_source", "actor", "job_id", "created_at")
        return {name: getattr(revision, name) for name in fields}

    @staticmethod
    def project(project: Project) -> dict:
        fields = (
            "id", "project_name", "project_description", "ip_name", "ip_description", "ip_medium", "ip_type",
            "training_version", "status", "created_at", "updated_at",
        )  # fmt: skip
        return {name: getattr(project, name) for name in fields}
