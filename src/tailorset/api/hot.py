"""The two hottest routes, Get Image and Update Image Caption, served without FastAPI's routing and dependency
injection, which cost more per request than everything the request itself does.

A caption PUT, from route to SQL:
  HotRoutes.__call__ (here) — the path and method; the route's body limit (api/body_limit.py); who is calling
  and the rate limit, counted once (api/deps.authenticate); the JSON body and its pydantic model
  (schemas.CaptionUpdate) → api/images.update_image_caption, the route's own function → services/images.
  update_caption → db/repository.write_caption, run by Database.write_blocking (db/engine.py).

The steps are FastAPI's, in its order (a declared body over the limit is 413 before anything else; then 401 or
429; then the body), and errors leave through the same handlers (api/errors.py). Whatever this does not serve —
another route or method, a query string, a body FastAPI would refuse or read differently — goes on to FastAPI,
which answers it as always; when the caller is already known, it is in the scope, so that FastAPI neither looks
up the token again nor counts the request twice. tests/api/test_hot_routes.py holds both paths to the same bytes.
"""

from __future__ import annotations

import json
import re

from fastapi.routing import APIRoute
from pydantic import ValidationError
from starlette.requests import Request

from tailorset.api import images
from tailorset.api.body_limit import ApiRoute
from tailorset.api.deps import authenticate
from tailorset.api.errors import captioner_error, domain_error, error_response
from tailorset.captioners import CaptionerError
from tailorset.domain.errors import DomainError
from tailorset.schemas import MAX_ID, CaptionUpdate

# The routes' paths once VersionPrefix (app.py) has taken /v1 or /v2 off. 19 digits: every id up to MAX_ID.
PATH = re.compile(r"/tailored-gen/datasets/([0-9]{1,19})/images/([0-9]{1,19})")
ENDPOINTS = {"GET": images.get_image, "PUT": images.update_image_caption}
NO_INCLUDE: frozenset[str] = frozenset()


class HotRoutes:
    def __init__(self, app):
        self.app = app
        # By method, the routes of ENDPOINTS (api/images.py): their path template and body limit.
        self.routes = {
            method: next(r for r in images.router.routes if isinstance(r, APIRoute) and r.endpoint is endpoint)
            for method, endpoint in ENDPOINTS.items()
        }

    async def __call__(self, scope, receive, send):
        method = scope["method"] if scope["type"] == "http" else None
        found = PATH.fullmatch(scope["path"]) if method in ENDPOINTS and not scope["query_string"] else None
        ids = (int(found[1]), int(found[2])) if found else (0, 0)
        if not (0 < ids[0] <= MAX_ID and 0 < ids[1] <= MAX_ID):  # FastAPI says what is wrong with them
            return await self.app(scope, receive, send)
        route = self.routes[method]
        scope["route"], scope["endpoint"] = route, route.endpoint  # the access log's route, as FastAPI sets it
        request = Request(scope, receive)
        try:
            response = await self._serve(request, send, route, *ids)
        except DomainError as exc:
            response = await domain_error(request, exc)
        except CaptionerError as exc:
            response = await captioner_error(request, exc)
        if response is not None:
            await response(scope, receive, send)

    async def _serve(self, request: Request, send, route: ApiRoute, dataset_id: int, image_id: int):
        """The route's response, or None when FastAPI has answered."""
        scope, headers = request.scope, dict(request.scope["headers"])
        limit, too_large, declared_over = route.limit(scope, headers)
        if declared_over:
            return error_response(413, too_large)
        endpoint = f"{request.method} {route.path_format}"
        caller = await authenticate(scope["app"], request.headers.get("api_token"), endpoint)  # the first, as FastAPI
        if request.method == "GET":
            return await images.get_image(dataset_id, image_id, caller, request, NO_INCLUDE)

        body = bytearray()
        async for chunk in request.stream():  # as api/body_limit.py caps it: while it streams in
            body += chunk
            if len(body) > limit:
                return error_response(413, too_large)
        update = _caption_update(bytes(body), headers.get(b"content-type", b""))
        if update is None:  # FastAPI answers it, from the same bytes, knowing the caller
            scope["tailorset.caller"] = caller
            await self.app(scope, _replay(bytes(body), request.receive), send)
            return None
        return await images.update_image_caption(dataset_id, image_id, caller, request, NO_INCLUDE, update)


def _caption_update(body: bytes, content_type: bytes) -> CaptionUpdate | None:
    """The body as FastAPI reads it for this route when it is a JSON object that fits the model; else None."""
    if content_type != b"application/json" or not body:
        return None
    try:
        parsed = json.loads(body)
        return CaptionUpdate.model_validate(parsed) if isinstance(parsed, dict) else None
    except (ValueError, ValidationError):
        return None


def _replay(body: bytes, receive):
    """`receive` for an app that reads a body already read: the body, then what the client sends next."""
    sent = False

    async def replay():
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay
