"""Requests per minute, per organization and per endpoint (Bria's model), answered with 429 +
Retry-After. In memory by default; in Redis when several processes must share one budget.

If Redis stops answering, each process falls back to its own in-memory window (and says so in the
log) rather than failing requests: the limits still hold per process until Redis is back."""

from __future__ import annotations

import logging
import math
import time
from collections import deque

from limits import RateLimitItem, parse
from limits.aio.storage import RedisStorage
from limits.aio.strategies import MovingWindowRateLimiter
from limits.errors import StorageError

from tailorset.domain.errors import Invalid, RateLimited

log = logging.getLogger(__name__)

# Bria's plans; an organization's `rate_limit` is one of these names or a limits string ("120/minute").
PLANS = {"free": "10/minute", "default": "60/minute", "pay_as_you_go": "60/minute", "enterprise": "1000/minute"}


def redis_problem(url: str) -> str | None:
    """Why Redis at `url` cannot be used, in one sentence with the fix; None when it answers."""
    import redis

    try:
        with redis.Redis.from_url(url, socket_connect_timeout=3, socket_timeout=3) as client:
            client.ping()
    except (redis.RedisError, ValueError, OSError) as exc:
        shown = redis.connection.parse_url(url) if url.startswith(("redis://", "rediss://", "unix://")) else {}
        where = f"{shown.get('host', '')}:{shown.get('port', 6379)}" if shown.get("host") else url.split("@")[-1]
        return (
            f"Redis at {where} does not answer ({type(exc).__name__}: {str(exc)[:120]}): rate limits are counted "
            "per process until it does; start it, or fix TAILORSET_REDIS_URL."
        )
    return None


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
    def __init__(self, default: str, redis_url: str | None = None, namespace: str = ""):
        """`namespace` keeps deployments that share a Redis but not a database (so not their
        organization ids) out of each other's budgets."""
        self.default = parse_limit(default)
        self._memory = MemoryWindow()
        self._limiter = None
        if redis_url:
            storage = RedisStorage(
                "async+" + redis_url, implementation="redispy", key_prefix=f"tailorset:{namespace}",
                wrap_exceptions=True, socket_timeout=2, socket_connect_timeout=2,
            )  # fmt: skip
            self._limiter = MovingWindowRateLimiter(storage)
        self._parsed: dict[str, RateLimitItem] = {}
        self._warned_at = -math.inf

    def _limit_for(self, plan: str | None) -> RateLimitItem:
        if plan is None or plan == "default":  # the default plan is whatever this deployment configured
            return self.default
        if plan not in self._parsed:
            self._parsed[plan] = parse_limit(plan)
        return self._parsed[plan]

    async def _shared_wait(self, limit: RateLimitItem, org_id: int, endpoint: str) -> float | None:
        """Seconds to wait per Redis (0: allowed), or None when Redis cannot be reached."""
        try:
            if await self._limiter.hit(limit, str(org_id), endpoint):
                return 0.0
            stats = await self._limiter.get_window_stats(limit, str(org_id), endpoint)
            return max(0.001, stats.reset_time - time.time())
        except StorageError as exc:
            if time.monotonic() - self._warned_at > 60:
                self._warned_at = time.monotonic()
                log.warning("Redis is unreachable (%s); rate limits are per process until it answers.", exc)
            return None

    async def hit(self, org_id: int, plan: str | None, endpoint: str) -> None:
        limit = self._limit_for(plan)
        wait = await self._shared_wait(limit, org_id, endpoint) if self._limiter else None
        if wait is None:
            wait = self._memory.hit((str(org_id), endpoint), limit.amount, limit.get_expiry())
        if not wait:
            return
        retry_after = max(1, math.ceil(wait))
        period = limit.GRANULARITY.name if limit.multiples == 1 else f"{limit.multiples} {limit.GRANULARITY.name}s"
        raise RateLimited(
            f"Too many requests: this endpoint allows {limit.amount} per {period} "
            f"for your organization; retry in {retry_after} seconds.",
            retry_after,
        )
