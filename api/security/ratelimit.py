"""Rate limits (限流) shared by every worker through Redis, with an in-process fallback.

The algorithm is GCRA (generic cell rate algorithm, a leaky bucket that stores one number per
bucket): ``limit`` requests per ``window_s`` seconds, bursts of up to ``limit``, and capacity
coming back steadily at one request every ``window_s / limit`` seconds. In Redis one Lua
script reads and updates the bucket atomically, using the server's clock so that every worker
agrees; keys are ``cityops:rl:<bucket>`` and expire once the bucket is full again.

When Redis is not configured or cannot be reached, the same algorithm runs in process memory
(limits then hold per worker), one warning is logged per outage, and Redis is tried again at
most every ``retry_s`` seconds.
"""

from __future__ import annotations

import asyncio
import logging
import math
import threading
import time
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

from spatial.settings import LimitSettings

log = logging.getLogger("cityops.ratelimit")

KEY_PREFIX = "cityops:rl:"
EPSILON_MS = 0.001  # float slack: the limit-th request of a burst in one instant is allowed

# KEYS[1] bucket; ARGV[1] limit, ARGV[2] window in ms. Times in ms (floats: exact to 1 µs);
# the 0.001 and 1e-6 are EPSILON_MS and the rounding slack of MemoryLimiter.
# Returns {allowed, remaining, reset_ms, retry_after_ms}.
GCRA_LUA = """
local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local interval = window / limit
local tat = tonumber(redis.call('GET', KEYS[1])) or now
if tat < now then tat = now end
local new_tat = tat + interval
local allow_at = new_tat - window
if allow_at - now > 0.001 then
  return {0, 0, math.ceil(tat - now), math.ceil(allow_at - now)}
end
redis.call('SET', KEYS[1], string.format('%.3f', new_tat), 'PX', math.ceil(new_tat - now))
return {1, math.floor((window - (new_tat - now)) / interval + 1e-6), math.ceil(new_tat - now), 0}
"""


@dataclass(frozen=True)
class RateDecision:
    """The outcome of one hit: allowed or not, and the numbers for ``RateLimit-*`` headers.

    ``reset_s`` is the time until the bucket is full again; ``retry_after_s`` (denied hits
    only) the time until the next request will be allowed.
    """

    allowed: bool
    limit: int
    remaining: int
    reset_s: int
    retry_after_s: int = 0


def _decision(
    limit: int, allowed: Any, remaining: Any, reset_ms: Any, retry_ms: Any
) -> RateDecision:
    return RateDecision(
        allowed=bool(int(allowed)),
        limit=limit,
        remaining=max(0, min(limit, int(remaining))),
        reset_s=max(0, math.ceil(int(reset_ms) / 1000)),
        retry_after_s=max(1, math.ceil(int(retry_ms) / 1000)) if not int(allowed) else 0,
    )


class MemoryLimiter:
    """GCRA in process memory: the fallback, with the same semantics as the Lua script."""

    def __init__(self, max_buckets: int = 100_000) -> None:
        self._tat: dict[str, float] = {}
        self._lock = threading.Lock()
        self._max_buckets = max_buckets

    def hit(self, bucket: str, limit: int, window_s: int) -> RateDecision:
        """Count one request against ``bucket``."""
        window = window_s * 1000.0
        interval = window / limit
        with self._lock:
            now = time.monotonic() * 1000.0
            tat = max(self._tat.get(bucket, now), now)
            new_tat = tat + interval
            allow_at = new_tat - window
            if allow_at - now > EPSILON_MS:
                return _decision(limit, 0, 0, math.ceil(tat - now), math.ceil(allow_at - now))
            if bucket not in self._tat and len(self._tat) >= self._max_buckets:
                self._purge(now)
            self._tat[bucket] = new_tat
            remaining = math.floor((window - (new_tat - now)) / interval + 1e-6)
            return _decision(limit, 1, remaining, math.ceil(new_tat - now), 0)

    def _purge(self, now: float) -> None:
        """Forget full buckets (their TAT lies in the past); drop the oldest if still full."""
        self._tat = {k: v for k, v in self._tat.items() if v > now}
        if len(self._tat) >= self._max_buckets:
            for key in sorted(self._tat, key=self._tat.__getitem__)[: self._max_buckets // 10]:
                del self._tat[key]


class RateLimiter:
    """``hit(bucket, limit, window_s)`` against Redis, falling back to process memory."""

    def __init__(
        self,
        redis_url: str | None,
        *,
        prefix: str = KEY_PREFIX,
        retry_s: float = 30.0,
        timeout_s: float = 0.5,
    ) -> None:
        self.redis_url = redis_url
        self.prefix = prefix
        self.retry_s = retry_s
        self.timeout_s = timeout_s
        self.memory = MemoryLimiter()
        self._client: Redis | None = None
        self._script: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._next_try = 0.0
        self._warned = False

    @classmethod
    def from_settings(cls, limits: LimitSettings) -> RateLimiter:
        """A limiter on the configured (or project-local) Redis."""
        return cls(limits.resolved_redis_url())

    @property
    def using_redis(self) -> bool:
        """True while hits go to Redis (False before the first hit and during outages)."""
        return self._client is not None

    async def hit(self, bucket: str, limit: int, window_s: int = 60) -> RateDecision:
        """Count one request against ``bucket``: at most ``limit`` per ``window_s`` seconds."""
        if limit < 1 or window_s < 1:
            raise ValueError("limit and window_s must be positive")
        if await self._connected():
            try:
                reply = await self._script(
                    keys=[self.prefix + bucket], args=[limit, window_s * 1000]
                )
                return _decision(limit, *reply)
            except (RedisError, OSError) as exc:
                await self._lost(exc)
        return self.memory.hit(bucket, limit, window_s)

    async def close(self) -> None:
        """Close the Redis connections."""
        client, self._client, self._script = self._client, None, None
        if client is not None:
            await client.aclose()

    async def _connected(self) -> bool:
        """Connect when needed (at most every ``retry_s``); False means: use the fallback."""
        loop = asyncio.get_running_loop()
        if self._client is not None and self._loop is not loop:
            self._client = self._script = None  # bound to a finished event loop; reconnect
            self._next_try = 0.0
        if self._client is not None:
            return True
        if not self.redis_url:
            self._warn("Redis is not configured (CITY_LIMITS_REDIS_URL)")
            return False
        now = time.monotonic()
        if now < self._next_try:
            return False
        self._next_try = now + self.retry_s
        client = Redis.from_url(
            self.redis_url,
            socket_connect_timeout=self.timeout_s,
            socket_timeout=self.timeout_s,
        )
        try:
            await client.ping()
        except (RedisError, OSError) as exc:
            await client.aclose()
            self._warn(f"Redis at {_safe(self.redis_url)} is unreachable ({exc})")
            return False
        self._client, self._loop = client, loop
        self._script = client.register_script(GCRA_LUA)
        if self._warned:
            log.warning("Redis at %s is back: rate limits are shared again", _safe(self.redis_url))
            self._warned = False
        return True

    async def _lost(self, exc: Exception) -> None:
        client, self._client, self._script = self._client, None, None
        self._next_try = time.monotonic() + self.retry_s
        self._warn(f"Redis at {_safe(self.redis_url)} failed ({exc})")
        if client is not None:
            try:
                await client.aclose()
            except (RedisError, OSError):
                pass

    def _warn(self, why: str) -> None:
        if not self._warned:
            self._warned = True
            log.warning("%s: rate limits fall back to per-process memory", why)


def _safe(url: str | None) -> str:
    """The URL without its password, for logs."""
    if not url or "@" not in url:
        return str(url)
    scheme, _, rest = url.partition("://")
    return f"{scheme}://***@{rest.rsplit('@', 1)[1]}"
