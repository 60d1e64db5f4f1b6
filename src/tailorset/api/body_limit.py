"""The route class of every API router. Two rules hold on each route, before its body is read:

* The body is capped by the route itself, while it streams in: a client cannot make a process buffer
  gigabytes (a chunked body has no Content-Length to refuse up front). 1 MiB, unless the endpoint is marked
  as carrying images or a ZIP. 413 with the usual error body.
* The caller is authenticated first: without a valid token the answer is 401, whatever the body holds, and an
  unauthenticated client gets no JSON parsed."""

from __future__ import annotations

import functools

from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException

from tailorset.api.deps import current_caller
from tailorset.api.errors import error_response
from tailorset.config import Settings

DEFAULT = 1024 * 1024  # captions, schemas, projects: far below this


def _default(settings: Settings, content_type: bytes) -> tuple[int, str]:
    return DEFAULT, f"The request body is larger than this endpoint's limit of {DEFAULT:,} bytes."


def _images(count: int, settings: Settings, content_type: bytes) -> tuple[int, str]:
    # base64 (4/3 of the bytes) in JSON or multipart files, and room for the other fields.
    limit = (settings.max_upload_bytes * 4 // 3 + 64 * 1024) * count
    return limit, f"The request body is larger than the upload limit of {settings.max_upload_bytes:,} bytes."


def _zip(settings: Settings, content_type: bytes) -> tuple[int, str]:
    if not content_type.startswith(b"multipart/form-data"):
        return _default(settings, content_type)  # JSON naming a zip_url
    return settings.max_zip_bytes + 64 * 1024, f"The ZIP is larger than {settings.max_zip_bytes:,} bytes."


def carries_images(count: int):
    """Marks an endpoint whose body holds up to `count` images."""

    def mark(endpoint):
        endpoint.body_limit = functools.partial(_images, count)
        return endpoint

    return mark


def carries_zip(endpoint):
    """Marks an endpoint whose multipart body is a ZIP."""
    endpoint.body_limit = _zip
    return endpoint


def _depends_on(dependant, call) -> bool:
    return any(sub.call is call or _depends_on(sub, call) for sub in dependant.dependencies)


class ApiRoute(APIRoute):
    def __init__(self, path: str, endpoint, **kwargs):
        self.body_limit = getattr(endpoint, "body_limit", _default)
        super().__init__(path, endpoint, **kwargs)  # builds the handler, with self.authenticated

    @functools.cached_property
    def authenticated(self) -> bool:
        return _depends_on(self.dependant, current_caller)

    def limit(self, scope, headers: dict[bytes, bytes]) -> tuple[int, str, bool]:
        """This request's body limit, the 413 message, and whether its Content-Length already declares more
        (refused before anything else; also by api/hot.py). `headers`: dict(scope["headers"])."""
        limit, message = self.body_limit(scope["app"].state.services.settings, headers.get(b"content-type", b""))
        declared = headers.get(b"content-length", b"")
        return limit, message, declared.isdigit() and int(declared) > limit

    async def handle(self, scope, receive, send):
        limit, message, declared_over = self.limit(scope, dict(scope["headers"]))
        if declared_over:
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

        await super().handle(scope, limited_receive, send)

    def get_route_handler(self):
        handler = super().get_route_handler()
        if not self.authenticated:
            return handler

        async def authenticated_first(request):
            # current_caller keeps its answer for the route's own dependency: one lookup, one rate-limit hit.
            await current_caller(request, request.headers.get("api_token"))
            return await handler(request)

        return authenticated_first
