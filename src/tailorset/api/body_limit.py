"""A cap on every request body, enforced while it streams in: a client cannot make a process buffer
gigabytes (a chunked body has no Content-Length to refuse up front). 413 with the usual error body."""

from __future__ import annotations

from starlette.exceptions import HTTPException

from tailorset.api.errors import error_response
from tailorset.config import Settings

DEFAULT = 1024 * 1024  # captions, schemas, projects: far below this
# Routes that carry images, base64 (4/3 of the bytes) in JSON or as multipart files: how many at most.
IMAGES_PER_BODY = {"/images": 1, "/generate_prefix": 6, "/generate_visual_schema": 10}


class BodyLimit:
    def __init__(self, app, settings: Settings):
        self.app = app
        self.max_upload_bytes = settings.max_upload_bytes
        self.max_zip_bytes = settings.max_zip_bytes

    def limit(self, path: str, content_type: bytes) -> tuple[int, str]:
        """The most bytes a body to `path` may have, and the sentence that refuses more."""
        if path.endswith("/images/bulk-upload") and content_type.startswith(b"multipart/form-data"):
            # The ZIP itself, and room for the form's other fields.
            return self.max_zip_bytes + 64 * 1024, f"The ZIP is larger than {self.max_zip_bytes:,} bytes."
        for suffix, images in IMAGES_PER_BODY.items():
            if path.endswith(suffix):
                limit = (self.max_upload_bytes * 4 // 3 + 64 * 1024) * images
                return limit, f"The request body is larger than the upload limit of {self.max_upload_bytes:,} bytes."
        return DEFAULT, f"The request body is larger than this endpoint's limit of {DEFAULT:,} bytes."

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope["headers"])
        limit, message = self.limit(scope["path"], headers.get(b"content-type", b""))
        declared = headers.get(b"content-length", b"")
        if declared.isdigit() and int(declared) > limit:
            return await error_response(413, message)(scope, receive, send)
        received = 0

        async def limited_receive():
            nonlocal received
            event = await receive()
            if event["type"] == "http.request":
                received += len(event.get("body", b""))
                if received > limit:
                    raise HTTPException(413, message)  # FastAPI passes HTTPExceptions through body parsing
            return event

        await self.app(scope, limited_receive, send)
