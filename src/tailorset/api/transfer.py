"""Import and export: /tailored-gen/datasets/{dataset_id}/images/bulk-upload[/status] and …/export"""

from __future__ import annotations

import time
from typing import Annotated, BinaryIO, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field, ValidationError
from starlette.datastructures import UploadFile

from tailorset.api.body_limit import ApiRoute, carries_zip
from tailorset.api.deps import Org, PathId, Svc, Who
from tailorset.api.errors import describe_validation_error
from tailorset.api.images import form_flags
from tailorset.api.present import Presenter
from tailorset.api.responses import errors
from tailorset.domain.errors import Invalid
from tailorset.schemas import BulkUpload, BulkUploadStatus
from tailorset.services import bulk_upload, export

router = APIRouter(prefix="/tailored-gen/datasets/{dataset_id}", tags=["Import and export"], route_class=ApiRoute)

FLAGS = ("automatic_captioning", "increase_resolution", "content_moderation")
BULK_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/BulkUpload"}},
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "file": {"type": "string", "format": "binary", "description": "The ZIP."},
                        "zip_url": {"type": "string"},
                        "automatic_captioning": {"type": "boolean"},
                        "increase_resolution": {"type": "boolean"},
                        "content_moderation": {"type": "boolean"},
                    },
                }
            },
        },
    }
}


async def _read_body(request: Request, form) -> tuple[BulkUpload, BinaryIO | None]:
    """The options, and the ZIP when it came as a multipart file (spooled to disk by the form parser)."""
    upload = form.get("file") if form is not None else None
    if upload is not None and not isinstance(upload, UploadFile):
        raise Invalid("file must be the ZIP itself, sent as a multipart file.")
    try:
        if form is None:
            body = BulkUpload.model_validate_json(await request.body() or b"null")
        else:
            body = BulkUpload.model_validate(form_flags({k: v for k, v in form.items() if k != "file"}, FLAGS))
    except ValidationError as exc:
        raise Invalid(describe_validation_error(exc)) from None
    if (upload is None) == (body.zip_url is None):
        raise Invalid("Provide the ZIP either as zip_url or as a multipart file, not both and not neither.")
    return body, upload.file if upload is not None else None


@router.post(
    "/images/bulk-upload", status_code=202, response_model=BulkUploadStatus,
    responses=errors(400, 404, 409, 410, 413, 422), summary="Bulk Upload Images", openapi_extra=BULK_BODY,
    description="Imports a ZIP of JPEG, PNG and WebP images in the background: `zip_url` in JSON, or the ZIP as the "
    "multipart `file`. An image's `.txt` beside it (same folder, same name) becomes its manual caption; the others "
    "are captioned automatically. Each file is checked as a single upload is; what fails is listed in the status "
    "report, the rest is imported. Poll GET …/images/bulk-upload/status.",
)  # fmt: skip
@carries_zip
async def bulk_upload_images(dataset_id: PathId, caller: Who, services: Svc, request: Request):
    # The body's size is capped while it streams in, by api/body_limit.py (@carries_zip: the ZIP's own limit).
    multipart = request.headers.get("content-type", "").startswith("multipart/form-data")
    form = await request.form(max_files=1, max_fields=10) if multipart else None
    try:
        body, file = await _read_body(request, form)
        source = bulk_upload.Source(file, body.zip_url, body.automatic_captioning, body.increase_resolution)
        job = await bulk_upload.request(services, caller.org_id, dataset_id, source, caller.actor)
    finally:
        if form is not None:
            await form.close()
    return Presenter.bulk_upload(job, [])


@router.get(
    "/images/bulk-upload/status", response_model=BulkUploadStatus, responses=errors(400, 404, 410),
    summary="Bulk Upload Status",
    description="Progress of the dataset's latest bulk upload, and every file that was refused and why.",
)  # fmt: skip
async def bulk_upload_status(dataset_id: PathId, org: Org, services: Svc):
    return Presenter.bulk_upload(*await bulk_upload.status(services, org, dataset_id))


@router.get(
    "/export", response_class=StreamingResponse, summary="Export Dataset",
    responses={200: {"content": {"application/zip": {}}, "description": "The ZIP, streamed."}, **errors(400, 404, 410)},
    description="The dataset as a ZIP for a trainer. `kohya`: `1_<prefix>/` with each image and a `.txt` of the same "
    "name (sd-scripts' train_data_dir layout). `hf`: `train/` with the images and `metadata.jsonl` (`file_name`, "
    "`text`), as Hugging Face `datasets` loads an imagefolder. `jsonl`: `images/` and `dataset.jsonl`, one record "
    "per image. `ai-toolkit`: each image and its `.txt`, at the top (ostris' ai-toolkit). `fibo` (FIBO datasets): "
    "the images and `metadata.csv` (`file_name`, `caption`), as Bria's FIBO fine-tuning reads them. FIBO captions "
    "are exported as their JSON.",
)  # fmt: skip
async def export_dataset(
    dataset_id: PathId,
    org: Org,
    services: Svc,
    format: Annotated[Literal[export.FORMATS], Query()],
):
    return _stream(await export.export(services, org, dataset_id, format), "application/zip")


downloads = APIRouter(tags=["Import and export"], route_class=ApiRoute)


class DownloadUrls(BaseModel):
    download_url: str = Field(description="The dataset's ZIP: the export in `format` (default jsonl).")
    captions_url: str = Field(description="Its captions: one JSON line per image, `file_name`, `caption`, "
                                          "`caption_source`.")  # fmt: skip


@downloads.get(
    "/datasets/{dataset_id}/download", response_model=DownloadUrls, responses=errors(400, 404, 410),
    summary="Download Dataset",
    description="Signed URLs of the dataset's ZIP and of its captions file, valid for an hour; whoever holds them "
    "can download without a token. The ZIP is the export in `format` (tailorset's addition; default `jsonl`). Unlike "
    "Bria's, any dataset (basic or advanced) can be downloaded. Also at /tailored-gen/datasets/{dataset_id}/download.",
)  # fmt: skip
async def download_dataset(
    dataset_id: PathId, org: Org, services: Svc, request: Request,
    format: Annotated[Literal[export.FORMATS], Query()] = "jsonl",
):  # fmt: skip
    base_url = services.settings.public_url or str(request.base_url)
    return await export.download_urls(services, base_url, org, dataset_id, format, time.time())


router.add_api_route(
    "/download", download_dataset, methods=["GET"], response_model=DownloadUrls, responses=errors(400, 404, 410),
    summary="Download Dataset (under /tailored-gen)", description="The same as GET /datasets/{dataset_id}/download.",
)  # fmt: skip


@downloads.get(
    "/downloads/datasets/{dataset_id}/{name}", response_class=StreamingResponse, include_in_schema=False,
)  # fmt: skip
async def download_file(
    dataset_id: PathId, name: str, services: Svc, org: Annotated[int, Query(ge=1)],
    expires: Annotated[int, Query(ge=0, le=2**40)], sig: Annotated[str, Query(max_length=64)],
):  # fmt: skip
    exported = await export.download(services, org, dataset_id, name, expires, sig, time.time())
    return _stream(exported, "application/zip" if name.endswith(".zip") else "application/jsonl")


def _stream(exported: export.Export, media_type: str) -> StreamingResponse:
    return StreamingResponse(
        exported.chunks,
        media_type=media_type,
        headers={"Content-Disposition": f'attachment; filename="{exported.filename}"', "Cache-Control": "no-store"},
    )
