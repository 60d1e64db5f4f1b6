"""Request dependencies: who is calling (api_token → organization) and whether they may, now."""

from __future__ import annotations

from dataclasses import dataclass
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


@dataclass(frozen=True)
class Caller:
    org_id: int
    actor: str  # who, as recorded in caption history: "token:<name or prefix>"


async def current_caller(
    request: Request,
    token: Annotated[str | None, Security(api_token)],
    services: Annotated[Services, Depends(get_services)],
) -> Caller:
    """Who is calling, after authentication and the rate limit."""
    if not token:
        raise Unauthorized("The api_token header is missing.")
    async with services.db.read() as session:
        owner = await repo.token_owner(session, token)
    if owner is None:
        raise Unauthorized("The api_token is not valid.")
    org, api_token_row = owner
    route = request.scope.get("route")
    endpoint = f"{request.method} {getattr(route, 'path', request.url.path).removeprefix('/v1')}"
    if services.settings.rate_limits_enabled:
        await request.app.state.rate_limiter.hit(org.id, org.rate_limit, endpoint)
    return Caller(org.id, f"token:{api_token_row.name or api_token_row.token_prefix}")


async def current_org(caller: Annotated[Caller, Depends(current_caller)]) -> int:
    return caller.org_id


Org = Annotated[int, Depends(current_org)]
Who = Annotated[Caller, Depends(current_caller)]
Svc = Annotated[Services, Depends(get_services)]
