"""Who an api_token belongs to: looked up by the token's SHA-256, and remembered for a few seconds.

Remembering saves a database round trip on every request. The price: a revoked token keeps working
for at most `token_cache_seconds` (default 5) on processes that saw it just before; 0 turns the
memory off. Only successful lookups are remembered, so a new token works at once."""

from __future__ import annotations

import time
from dataclasses import dataclass

from tailorset.db import repository as repo
from tailorset.db.engine import Database

MAX_REMEMBERED = 10_000


@dataclass(frozen=True)
class Caller:
    org_id: int
    actor: str  # who, as recorded in caption history: "token:<name or prefix>"
    rate_limit: str | None  # the organization's plan; None = the default


class TokenLookup:
    def __init__(self, db: Database, ttl_seconds: float):
        self.db, self.ttl = db, ttl_seconds
        self._remembered: dict[str, tuple[float, Caller]] = {}

    async def caller(self, token: str) -> Caller | None:
        key = repo.hash_token(token)
        now = time.monotonic()
        remembered = self._remembered.get(key)
        if remembered and remembered[0] > now:
            return remembered[1]
        async with self.db.read() as session:
            owner = await repo.token_owner(session, key)
        if owner is None:
            self._remembered.pop(key, None)
            return None
        org, row = owner
        caller = Caller(org.id, f"token:{row.name or row.token_prefix}", org.rate_limit)
        if self.ttl > 0:
            if len(self._remembered) >= MAX_REMEMBERED:
                self._remembered.clear()
            self._remembered[key] = (now + self.ttl, caller)
        return caller
