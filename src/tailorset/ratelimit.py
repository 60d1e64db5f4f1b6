"""Requests per minute, per organization and per endpoint (Bria's model), answered with 429 +
Retry-After. In memory by default; in Redis when several processes must share one budget."""

from __future__ import annotations

import math
import time
from collections import deque

from limits import RateLimitItem, parse
from limits.aio.storage import RedisStorage
from limits.aio.strategies import MovingWindowRateLimiter

from tailorset.domain.errors import Invalid, RateLimited

# Bria's plans; an organization's `rate_limit` is one of these names or a limits string ("120/minute").
PLANS = {"free": "10/minute", "default": "60/minute", "pay_as_you_go": "60/minute", "enterprise": "1000/minute"}


def parse_limit(value: str) -> RateLimitItem:
    try:
        return parse(PLANS.get(value, value))
    except ValueError:
        raise Invalid(f"Rate limit {value!r} is neither a plan ({', '.join(PLANS)}) nor like '60/minute'.") from None


class MemoryWindow:
    """A moving window in this process's memory: for each key, the times of its latest hits.

    limits' own async memory storage hops to a thread for every key on every hit; this is a deque
    per (organization, endpoint), bounded by the limit's amount."""

    def __init__(self):
        self._hits: dict[tuple[str, ...], deque[float]] = {}

    def hit(self, key: tuple[str, ...], amount: int, seconds: float) -> float:
        """0 if the hit is allowed (and counted); else the seconds until the oldest hit leaves the window."""
        now = time.monotonic()
        window = self._hits.setdefault(key, deque())
        while window and window[0] <= now - seconds:
            window.popleft()
        if len(window) < amount:
            window.append(now)
            return 0.0
        return window[0] + seconds - now


class RateLimiter:
    def __init__(self, default: str, redis_url: str | None = None, key_prefix: str = "tailorset"):
        self.default = parse_limit(default)
        self._memory = None if redis_url else MemoryWindow()
        if redis_url:
            storage = RedisStorage("async+" + redis_url, implementation="redispy", key_prefix=key_prefix)
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
        if self._memory is not None:
            wait = self._memory.hit((str(org_id), endpoint), limit.amount, limit.get_expiry())
            if not wait:
                return
            retry_after = max(1, math.ceil(wait))
        else:
            if await self._limiter.hit(limit, str(org_id), endpoint):
                return
            stats = await self._limiter.get_window_stats(limit, str(org_id), endpoint)
            retry_after = max(1, math.ceil(stats.reset_time - time.time()))
        raise RateLimited(
            f"Too many requests: this endpoint allows {limit.amount} per {limit.GRANULARITY.name} "
            f"for your organization; retry in {retry_after} seconds.",
            retry_after,
        )
