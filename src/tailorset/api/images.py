"""/tailored-gen/datasets/{dataset_id}/images"""

from __future__ import annotations

import base64
from typing import Annotated, Literal

from fastapi import APIRouter, Body, Query, Request, Response
from pydantic import ValidationError
from starlette.datastructures import UploadFile

from tailorset import imaging
from tailorset.api.body_limit import ApiRoute, carries_images
from tailorset.api.deps import Include, Org, PathId, Svc, Who
from tailorset.api.errors import describe_validation_error
from tailorset.api.present import Presenter
from tailorset.api.responses import errors
from tailorset.api.review import ONLY, ImageQuery, Only, image_filter
from tailorset.domain.errors import Invalid
from tailorset.schemas import (
    MAX_ID,
    CaptionRevisionOut,
    CaptionSourceFilter,
    CaptionUpdate,
    DatasetOut,
    ImageOut,
    ImageUpload,
    NoNul,
    RegenerateAll,
    ReviewState,
)
from tailorset.services import Services, captioning, datasets, images

router = APIRouter(prefix="/tailored-gen/datasets/{dataset_id}/images", tags=["Images"], route_class=ApiRoute)
# `{image_id:int}`: so that …/images/bulk-upload (api/transfer.py) is never taken for an image id, and a
# method that route does not take is a 405, not a 400 about the id.

FORM_BOOLEANS = {"true": True, "false": False, "1": True, "0": False}
UPLOAD_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/ImageUpload"}},
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "file": {"type": "string", "format": "binary"},
                        "image_url": {"type": "string"},
                        "image_name": {"type": "string", "maxLength": 255},
                        "increase_resolution": {"type": "string", "enum": list(FORM_BOOLEANS)},
                        "content_moderation": {"type": "string", "enum": list(FORM_BOOLEANS)},
                    },
                }
            },
        },
    }
}


def form_flags(fields: dict, flags: tuple[str, ...]) -> dict:
    """Multipart fields are text: "true"/"1" and "false"/"0" become booleans, anything else fails validation."""
    return {k: FORM_BOOLEANS.get(v.lower(), v) if k in flags else v for k, v in fields.items()}


async def _read_upload(request: Request, services: Services) -> images.Upload:
    """The image from a JSON body (base64 `file` or `image_url`) or from multipart/form-data."""
    settings = services.settings
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("multipart/form-data"):
        form = await request.form(max_files=1, max_fields=10, max_part_size=settings.max_upload_bytes)
        fields = {k: v for k, v in form.items() if not isinstance(v, UploadFile)}
        upload = form.get("file")
        data = await upload.read() if isinstance(upload, UploadFile) else None
        fields = form_flags(fields, ("increase_resolution", "content_moderation"))
        if data is not None:
            fields.pop("file", None)
        try:
            body = ImageUpload.model_validate(fields)
        except ValidationError as exc:
            raise Invalid(describe_validation_error(exc)) from None
        name = body.image_name or (upload.filename if data else None)
        if data is None and body.file is not None:
            data = imaging.decode_base64(body.file, "file")
    else:
        try:
            body = ImageUpload.model_validate_json(await request.body() or b"null")
        except ValidationError as exc:
            raise Invalid(describe_validation_error(exc)) from None
        data = imaging.decode_base64(body.file, "file") if body.file is not None else None
        name = body.image_name
    if data is not None and body.image_url:
        raise Invalid("Provide either file or image_url, not both.")
    if data is None and not body.image_url:
        raise Invalid("Provide the image as file (base64 or a multipart file) or as image_url.")
    if data is None:
        name = name or body.image_url.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1] or None
    return images.Upload(data, imaging.safe_name(name), body.image_url, body.increase_resolution)


@router.post(
    "", status_code=201, response_model=ImageOut, response_model_exclude_unset=True,
    responses=errors(400, 404, 409, 410, 412, 413, 415, 422),
    summary="Upload Image", openapi_extra=UPLOAD_BODY,
    description="Adds one image (base64 `file` or `image_url` in JSON, or a multipart `file`) and captions it "
    "automatically: text continuing the dataset's caption_prefix, or a FIBO JSON caption.",
)  # fmt: skip
@carries_images(1)
async def upload_image(dataset_id: PathId, caller: Who, services: Svc, request: Request, include: Include):
    upload = await _read_upload(request, services)
    image = await images.upload(services, caller.org_id, dataset_id, upload, caller.actor)
    return Presenter(request, include).image(image)


@router.put(
    "", status_code=202, response_model=DatasetOut, responses=errors(400, 404, 409, 410),
    summary="Regenerate All Captions",
    description="Queues a background job that writes every automatic caption anew (manual captions are kept "
    'unless `{"include_manual": true}`). captions_update_status becomes in_progress, then completed; '
    "captions_update shows done/total. Survives restarts; a caption changed after the request is never "
    "overwritten.",
)  # fmt: skip
async def regenerate_all_captions(
    dataset_id: PathId,
    org: Org,
    services: Svc,
    request: Request,
    body: Annotated[RegenerateAll | None, Body()] = None,
):
    await captioning.request_regeneration(services, org, dataset_id, bool(body and body.include_manual))
    return Presenter(request).dataset(await datasets.get(services, org, dataset_id, max_images=0))


def _encode_cursor(key: tuple, order: str) -> str:
    """Upload order: "after:ID"; the review queue: "queue:RANK:CONFIDENCE:ID" (repository.sort_key)."""
    text = f"after:{key[0]}" if order == "upload" else f"queue:{key[0]}:{key[1]!r}:{key[2]}"
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def _decode_cursor(cursor: str, order: str) -> tuple:
    try:
        kind, _, value = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode().partition(":")
        parts = value.split(":")
        if kind == "after" and order == "upload" and value.isdigit() and len(value) < 19:
            return (int(value),)
        if kind == "queue" and order == "review" and len(parts) == 3 and all(len(p) < 30 for p in parts):
            rank, confidence, image_id = int(parts[0]), float(parts[1]), int(parts[2])
            if 0 <= rank < 10 and 0 <= confidence <= 2 and 0 < image_id <= MAX_ID:
                return (rank, confidence, image_id)
    except (ValueError, UnicodeDecodeError):
        pass
    raise Invalid("cursor is not valid; use the X-Next-Cursor of a previous page (with the same order).")


@router.get(
    "", response_model=list[ImageOut], response_model_exclude_unset=True, responses=errors(400, 404, 410),
    summary="Get Images",
    description="All the dataset's images, oldest first. With any filter, cursor or limit, one page at a time "
    "(keyset pagination): the response headers `X-Next-Cursor` and `Link: <…>; rel=\"next\"` point at the "
    "next page while there is one.",
    response_description="Images; see X-Next-Cursor for the next page.",
)  # fmt: skip
async def list_images(
    dataset_id: PathId,
    org: Org,
    services: Svc,
    request: Request,
    caption_contains: Annotated[str | None, Query(max_length=1000, description="Case-insensitive."), NoNul] = None,
    caption_excludes: Annotated[str | None, Query(max_length=1000, description="Case-insensitive."), NoNul] = None,
    caption_source: Annotated[CaptionSourceFilter | None, Query()] = None,
    cursor: Annotated[str | None, Query(max_length=100)] = None,
    limit: Annotated[int | None, Query(ge=1, le=1000, description="Page size (default 100 when paging).")] = None,
    include: Include = frozenset(),
    review_state: Annotated[ReviewState | None, Query(description="tailorset: only images in this state.")] = None,
    only: Annotated[Only | None, Query(description=f"tailorset: {ONLY}")] = None,
    order: Annotated[
        Literal["upload", "review"],
        Query(
            description="tailorset: `review` is the review queue: unreviewed first (then flagged, then approved), "
            "the captioner's least confident caption first, then upload order."
        ),
    ] = "upload",  # fmt: skip
):
    query = ImageQuery(
        caption_contains=caption_contains, caption_excludes=caption_excludes, caption_source=caption_source,
        review_state=review_state, only=only,
    )  # fmt: skip
    where = await image_filter(services, org, dataset_id, query)
    chosen = (caption_contains, caption_excludes, caption_source, cursor, limit, review_state, only)
    paged = any(v is not None for v in chosen) or order != "upload"
    page_size = (limit or 100) if paged else None
    after = _decode_cursor(cursor, order) if cursor else None
    found = await images.list_all(services, org, dataset_id, where, after, page_size + 1 if page_size else None, order)
    next_cursor = None
    if page_size and len(found) > page_size:
        found = found[:page_size]
        next_cursor = _encode_cursor(images.sort_key(found[-1], order), order)
    present = Presenter(request, include)
    response = present.response([present.image(image) for image in found])
    if next_cursor:  # after the body's own headers, where FastAPI put them
        response.headers["X-Next-Cursor"] = next_cursor
        response.headers["Link"] = f'<{request.url.include_query_params(cursor=next_cursor)}>; rel="next"'
    return response


@router.get(
    "/{image_id:int}", response_model=ImageOut, response_model_exclude_unset=True, responses=errors(400, 404, 410),
    summary="Get Image",
)  # fmt: skip
async def get_image(dataset_id: PathId, image_id: PathId, caller: Who, request: Request, include: Include):
    present = Presenter(request, include)
    image = await images.get(present.services, caller.org_id, dataset_id, image_id)
    return present.response(present.image(image))


@router.put(
    "/{image_id:int}", response_model=ImageOut, response_model_exclude_unset=True,
    responses=errors(400, 404, 409, 410), summary="Update Image Caption",
    description='Either `caption` (sets caption_source "manual") or `regenerate_caption: true` (the captioner '
    'writes a new caption from the image and the caption_prefix, or the visual_schema for FIBO; caption_source '
    '"automatic"), never both. FIBO captions must be a JSON object matching the caption schema; minor faults are '
    "corrected (the response header X-Caption-Corrected lists the rules applied), the rest is a 400. "
    "A completed dataset answers 409.",
)  # fmt: skip
async def update_image_caption(
    dataset_id: PathId,
    image_id: PathId,
    caller: Who,
    request: Request,
    include: Include,
    body: Annotated[CaptionUpdate | None, Body()] = None,
):
    body = body or CaptionUpdate()
    present = Presenter(request, include)
    result = await images.update_caption(
        present.services, caller.org_id, dataset_id, image_id, body.caption, body.regenerate_caption, caller.actor
    )
    headers = {"X-Caption-Corrected": ", ".join(result.corrections)} if result.corrections else None
    return present.response(present.image(result.image), headers)


@router.delete("/{image_id:int}", status_code=204, responses=errors(400, 404, 409, 410), summary="Delete Image")
async def delete_image(dataset_id: PathId, image_id: PathId, org: Org, services: Svc):
    await images.delete(services, org, dataset_id, image_id)
    return Response(status_code=204)


@router.get(
    "/{image_id:int}/captions", response_model=list[CaptionRevisionOut], responses=errors(400, 404, 410),
    summary="Caption History", description="Every caption the image has had, oldest first.",
)  # fmt: skip
async def caption_history(dataset_id: PathId, image_id: PathId, org: Org, services: Svc):
    return [Presenter.revision(r) for r in await images.history(services, org, dataset_id, image_id)]


@router.post(
    "/{image_id:int}/captions/{revision_id}/restore", response_model=ImageOut, response_model_exclude_unset=True,
    responses=errors(400, 404, 409, 410),
    summary="Restore Caption",
    description="Makes an earlier caption (and its source) current again, as a new revision.",
)  # fmt: skip
async def restore_caption(
    dataset_id: PathId, image_id: PathId, revision_id: PathId, caller: Who, services: Svc, request: Request,
    include: Include,
):  # fmt: skip
    image = await images.restore(services, caller.org_id, dataset_id, image_id, revision_id, caller.actor)
    return Presenter(request, include).image(image)
