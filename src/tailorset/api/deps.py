"""Request dependencies: who is calling (api_token → organization) and whether they may, now."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import APIKeyHeader

from tailorset.db import repository as repo
from tailorset.domain.errors import Unauthorized
from tailorset.services import Services

api_token = APIKeyHeader(
    name="api_token", auto_error=False, description="Your organization's API token (`tailorset token create`)."
)


def get_services(request: Request) -> Services:
    return request.app.state.services


async def current_org(
    request: Request,
    token: Annotated[str | None, Security(api_token)],
    services: Annotated[Services, Depends(get_services)],
) -> int:
    """The caller's organization id, after authentication and the rate limit."""
    if not token:
        raise Unauthorized("The api_token header is missing.")
    async with services.db.read() as session:
        org = await repo.organization_for_token(session, token)
    if org is None:
        raise Unauthorized("The api_token is not valid.")
    route = request.scope.get("route")
    endpoint = f"{request.method} {getattr(route, 'path', request.url.path).removeprefix('/v1')}"
    if services.settings.rate_limits_enabled:
        await request.app.state.rate_limiter.hit(org.id, org.rate_limit, endpoint)
    return org.id


Org = Annotated[int, Depends(current_org)]
Svc = Annotated[Services, Depends(get_services)]
