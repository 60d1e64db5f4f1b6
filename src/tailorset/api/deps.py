"""Request dependencies: who is calling (api_token → organization) and whether they may, now."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path, Query, Request, Security
from fastapi.security import APIKeyHeader

from tailorset.auth import Caller
from tailorset.domain.errors import Invalid, Unauthorized
from tailorset.schemas import MAX_ID
from tailorset.services import Services

api_token = APIKeyHeader(
    name="api_token", auto_error=False, description="Your organization's API token (`tailorset token create`)."
)


async def get_services(request: Request) -> Services:
    # async: FastAPI runs a plain `def` dependency in its threadpool, a thread hop on every request.
    return request.app.state.services


async def current_caller(request: Request, token: Annotated[str | None, Security(api_token)]) -> Caller:
    """Who is calling, after authentication and the rate limit. (Each dependency is a step FastAPI takes on
    every request: this one takes the services from the app rather than from Svc.)"""
    if (known := request.scope.get("tailorset.caller")) is not None:  # authenticated before the body was read
        return known
    route = request.scope.get("route")
    endpoint = f"{request.method} {(route.path_format if route else request.url.path).removeprefix('/v1')}"
    caller = await authenticate(request.app, token, endpoint)
    request.scope["tailorset.caller"] = caller
    return caller


async def authenticate(app, token: str | None, endpoint: str) -> Caller:
    """The caller owning `token`, with one hit counted against the rate limit of `endpoint` ("PUT /path/{id}");
    Unauthorized or RateLimited if not. (current_caller, and api/hot.py's routes, which skip FastAPI.)"""
    services: Services = app.state.services
    if not token:
        raise Unauthorized("The api_token header is missing.")
    caller = await services.tokens.caller(token)
    if caller is None:
        raise Unauthorized("The api_token is not valid.")
    if services.settings.rate_limits_enabled:
        await app.state.rate_limiter.hit(caller.org_id, caller.rate_limit, endpoint)
    return caller


async def current_org(caller: Annotated[Caller, Depends(current_caller)]) -> int:
    return caller.org_id


Org = Annotated[int, Depends(current_org)]
Who = Annotated[Caller, Depends(current_caller)]
Svc = Annotated[Services, Depends(get_services)]
PathId = Annotated[int, Path(ge=1, le=MAX_ID)]


# tailorset's own image fields, by the name a client asks for them with (`?include=confidence,review`).
INCLUDE_GROUPS = {
    "confidence": ("caption_confidence", "caption_signals"),
    "review": ("review_state", "review_note", "reviewed_at"),
}


async def included_fields(
    include: Annotated[
        str | None,
        Query(
            max_length=200,
            description="Adds tailorset's own fields to each image, comma-separated: `confidence` "
            "(caption_confidence, caption_signals) and `review` (review_state, review_note, reviewed_at). "
            "Without it, image bodies are exactly Bria's.",
        ),
    ] = None,
) -> frozenset[str]:
    names = frozenset(name.strip() for name in (include or "").split(",") if name.strip())
    unknown = sorted(names - INCLUDE_GROUPS.keys())
    if unknown:
        raise Invalid(f"include may list {' and '.join(INCLUDE_GROUPS)}; {unknown[0]!r} is not one of them.")
    return names


Include = Annotated[frozenset[str], Depends(included_fields)]
