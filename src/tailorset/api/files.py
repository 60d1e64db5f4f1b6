"""/files/{key}: originals and thumbnails, for whoever holds the signed URL the API handed out."""

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import RedirectResponse, StreamingResponse

from tailorset.api.body_limit import ApiRoute
from tailorset.api.deps import Svc
from tailorset.domain.errors import NotFound
from tailorset.schemas import ErrorBody

router = APIRouter(tags=["Files"], route_class=ApiRoute)

CONTENT_TYPES = {"jpg": "image/jpeg", "png": "image/png", "webp": "image/webp"}


@router.get(
    "/files/{key:path}",
    response_class=StreamingResponse,
    responses={
        200: {"content": {t: {} for t in CONTENT_TYPES.values()}, "description": "The file."},
        307: {"description": "The file has moved to a storage backend that serves it (S3): its pre-signed URL."},
        404: {"model": ErrorBody, "description": "No such file, or the signature does not match."},
    },
    summary="Download an image or thumbnail",
    description="The URL comes from an image's image_url or thumbnail_url; its signature is the credential.",
)
async def download_file(key: str, services: Svc, sig: Annotated[str, Query(max_length=64)] = ""):
    # A wrong signature looks exactly like a missing file: nothing to learn by probing.
    if not services.signer.verify(key, sig):
        raise NotFound("File not found.")
    # Ours to serve first; a file moved to a backend with its own URLs since this URL was handed out
    # (tailorset migrate-storage) is a redirect there, so old URLs keep working.
    for store in sorted(services.stores.values(), key=lambda store: hasattr(store, "url_for")):
        if not await store.exists(key):
            continue
        if hasattr(store, "url_for"):
            return RedirectResponse(store.url_for(key), status_code=307)
        return StreamingResponse(
            store.stream(key),
            media_type=CONTENT_TYPES.get(key.rsplit(".", 1)[-1], "application/octet-stream"),
            headers={"Cache-Control": "private, max-age=31536000, immutable", "ETag": f'"{key.rsplit("/", 1)[-1]}"'},
        )
    raise NotFound("File not found.")
