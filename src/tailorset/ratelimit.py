"""Requests per minute, per organization and per endpoint (Bria's model), answered with 429 +
Retry-After. In memory by default; in Redis when several processes must share one budget."""

from __future__ import annotations

import math
import time

from limits import RateLimitItem, parse
from limits.aio.storage import MemoryStorage, RedisStorage
from limits.aio.strategies import MovingWindowRateLimiter

from tailorset.domain.errors import Invalid, RateLimited

# Bria's plans; an organization's `rate_limit` is one of these names or a limits string ("120/minute").
PLANS = {"free": "10/minute", "default": "60/minute", "pay_as_you_go": "60/minute", "enterprise": "1000/minute"}


def parse_limit(value: str) -> RateLimitItem:
    try:
        return parse(PLANS.get(value, value))
    except ValueError:
        raise Invalid(f"Rate limit {value!r} is neither a plan ({', '.join(PLANS)}) nor like '60/minute'.") from None


class RateLimiter:
    def __init__(self, default: str, redis_url: str | None = None):
        self.default = parse_limit(default)
        if redis_url:
            storage = RedisStorage("async+" + redis_url, implementation="redispy", key_prefix="tailorset")
        else:
            storage = MemoryStorage()
        self._limiter = MovingWindowRateLimiter(storage)
        self._parsed: dict[str, RateLimitItem] = {}

    def _limit_for(self, plan: str | None) -> RateLimitItem:
        if plan is None:
            return self.default
        if plan not in self._parsed:
            self._parsed[plan] = parse_limit(plan)
        return self._parsed[plan]

    async def hit(self, org_id: int, plan: str | None, endpoint: str) -> None:
        limit = self._limit_for(plan)
        if await self._limiter.hit(limit, str(org_id), endpoint):
            return
        stats = await self._limiter.get_window_stats(limit, str(org_id), endpoint)
        retry_after = max(1, math.ceil(stats.reset_time - time.time()))
        raise RateLimited(
            f"Too many requests: this endpoint allows {limit.amount} per {limit.GRANULARITY.name} "
            f"for your organization; retry in {retry_after} seconds.",
            retry_after,
        )
