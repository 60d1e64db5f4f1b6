"""/files/{key}: originals and thumbnails, for whoever holds the signed URL the API handed out."""

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse

from tailorset.api.deps import Svc
from tailorset.domain.errors import NotFound
from tailorset.schemas import ErrorBody

router = APIRouter(tags=["Files"])

CONTENT_TYPES = {"jpg": "image/jpeg", "png": "image/png", "webp": "image/webp"}


@router.get(
    "/files/{key:path}",
    response_class=StreamingResponse,
    responses={
        200: {"content": {t: {} for t in CONTENT_TYPES.values()}, "description": "The file."},
        404: {"model": ErrorBody, "description": "No such file, or the signature does not match."},
    },
    summary="Download an image or thumbnail",
    description="The URL comes from an image's image_url or thumbnail_url; its signature is the credential.",
)
async def download_file(key: str, services: Svc, sig: Annotated[str, Query(max_length=64)] = ""):
    # A wrong signature looks exactly like a missing file: nothing to learn by probing.
    if not services.signer.verify(key, sig) or not await services.storage.exists(key):
        raise NotFound("File not found.")
    return StreamingResponse(
        services.storage.stream(key),
        media_type=CONTENT_TYPES.get(key.rsplit(".", 1)[-1], "application/octet-stream"),
        headers={"Cache-Control": "private, max-age=31536000, immutable", "ETag": f'"{key.rsplit("/", 1)[-1]}"'},
    )
