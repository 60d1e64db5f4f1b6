"""Who an api_token belongs to: looked up by the token's SHA-256, and remembered for a few seconds.

Remembering saves a database round trip on every request. The price: a revoked token keeps working
for at most `token_cache_seconds` (default 5) on processes that saw it just before; 0 turns the
memory off. Only successful lookups are remembered, so a new token works at once. Requests that
find their token not remembered while it is being looked up wait for that lookup: under load,
each expiry would otherwise send every request in flight to the database at once."""

from __future__ import annotations

import asyncio
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
        self._looking_up: dict[str, asyncio.Future] = {}  # by hash: the lookups under way

    async def caller(self, token: str) -> Caller | None:
        key = repo.hash_token(token)
        remembered = self._remembered.get(key)
        if remembered and remembered[0] > time.monotonic():
            return remembered[1]
        if (lookup := self._looking_up.get(key)) is None:
            lookup = self._looking_up[key] = asyncio.ensure_future(self._look_up(key))
            lookup.add_done_callback(lambda done: self._finished(key, done))
        return await asyncio.shield(lookup)  # a waiter's cancellation leaves the lookup to the others

    async def _look_up(self, key: str) -> Caller | None:
        owner = await self.db.read_blocking(repo.token_owner, key)
        if owner is None:
            self._remembered.pop(key, None)
            return None
        caller = Caller(owner.org_id, f"token:{owner.name or owner.token_prefix}", owner.rate_limit)
        if self.ttl > 0:
            if len(self._remembered) >= MAX_REMEMBERED:
                self._remembered.clear()
            self._remembered[key] = (time.monotonic() + self.ttl, caller)
        return caller

    def _finished(self, key: str, lookup: asyncio.Future) -> None:
        del self._looking_up[key]
        if not lookup.cancelled():
            lookup.exception()  # retrieved: its waiters, if any are left, raise it
