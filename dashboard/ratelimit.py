"""The Stigg request-rate limiter shared by every process that calls Stigg.

At most ``STIGG_MAX_RPS`` requests a second reach Stigg, however many workers run; the
sweep and the hot tier each get a share of that rate (``SYNC_SWEEP_BUDGET_SHARE``,
``SYNC_HOT_BUDGET_SHARE``: shares of the request rate, not of any governance budget), and
a bulk grant's job at most ``BULK_GRANT_RATE`` requests a second.
Not to be confused with Stigg governance budgets, which limit what a team, user or agent
may use.

Slot reservation (GCRA with no burst) in one Redis key: the key holds the earliest time,
in microseconds on the Redis server clock, at which the next request may start. Taking
a slot moves it one interval further. Every process reads the same clock (Redis
``TIME``), so host clock skew between workers cannot let two of them send at once, and
the reservation is a single Lua script, so it is atomic across any number of workers.

The Stigg client takes a limiter as an argument (anything with ``acquire(max_wait)``);
this module knows only the client's errors, never the client.
"""
from __future__ import annotations

import logging
import time
from typing import Any

import redis

from .redis_client import connect
from .stigg.errors import RateLimitExhausted, StiggUnavailable

logger = logging.getLogger(__name__)

# The key's value is older than the limiter's name; it stays as it is, so processes of
# the previous release keep sharing one limit with this one during a deploy.
DEFAULT_KEY = "stiggadmin:budget"

# Requests are spaced a little more than 1/max_rps apart. Stigg counts the rate when
# requests *arrive*, and scheduling and network jitter can bunch two sends that left on
# time; 5% keeps ~50 ms of slack in every one-second window whatever the rate.
DEFAULT_HEADROOM = 0.05

# KEYS[1] = limiter key, KEYS[2] = its count of slots granted (for /metrics).
# ARGV[1] = interval (µs), ARGV[2] = max wait (µs).
# Returns {1, wait_us} after reserving, or {0, wait_us} without reserving.
# Integers in microseconds: Lua numbers are doubles (exact below 2^53, i.e. until the
# year 2255 in µs), and Redis truncates fractional Lua numbers in replies.
_RESERVE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local max_wait = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0') or 0
local slot = math.max(now, tat)
local wait = slot - now
if wait > max_wait then
  return {0, wait}
end
local next_slot = slot + interval
local ttl_ms = math.floor((next_slot - now) / 1000) + 1000
redis.call('SET', KEYS[1], string.format('%.0f', next_slot), 'PX', ttl_ms)
redis.call('INCR', KEYS[2])
return {1, wait}
"""


SHARES = {"all": DEFAULT_KEY, "sweep": f"{DEFAULT_KEY}:sweep", "hot": f"{DEFAULT_KEY}:hot",
          "bulk": f"{DEFAULT_KEY}:bulk"}


def granted_key(key: str) -> str:
    return f"{key}:granted"


def usage(client: redis.Redis) -> dict[str, tuple[int, float]]:
    """Per share of the request rate ("all" counts every request, the sweep's and the hot
    tier's included): (slots granted since Redis started, seconds of slots reserved ahead
    of now — above zero, callers are queueing for the budget)."""
    pipe = client.pipeline(transaction=False)
    pipe.time()
    for key in SHARES.values():
        pipe.get(granted_key(key))
        pipe.get(key)
    (seconds, micros), *raw = pipe.execute()
    now = int(seconds) * 1_000_000 + int(micros)
    found = {}
    for i, share in enumerate(SHARES):
        granted, next_slot = raw[2 * i], raw[2 * i + 1]
        found[share] = (int(granted or 0), max(0.0, (int(float(next_slot or 0)) - now) / 1e6))
    return found


class RequestRateLimiter:
    """At most ``max_rps`` Stigg requests per second across every process sharing
    ``key`` in the same Redis."""

    def __init__(self, redis_client: redis.Redis, max_rps: float, key: str = DEFAULT_KEY, *,
                 headroom: float = DEFAULT_HEADROOM) -> None:
        if max_rps <= 0:
            raise ValueError("max_rps must be positive")
        if not 0 <= headroom < 1:
            raise ValueError("headroom must be in [0, 1)")
        self.redis = redis_client
        self.max_rps = float(max_rps)
        self.key = key
        self.interval_us = int(round(1_000_000 * (1 + headroom) / self.max_rps))
        self._reserve: Any = redis_client.register_script(_RESERVE)

    @classmethod
    def from_settings(cls) -> RequestRateLimiter:
        """The whole request rate (``STIGG_MAX_RPS``): for refreshes somebody waits for."""
        from django.conf import settings

        return cls(connect(settings.REDIS_URL), settings.STIGG_MAX_RPS)

    @classmethod
    def for_sweep(cls) -> RateLimitShare:
        """The sweep's limit: the shared one, and within it at most
        SYNC_SWEEP_RATE_SHARE of the rate, so webhooks and the hot tier always find
        slots even while a 10,000-customer sweep is running."""
        from django.conf import settings

        return cls._share("sweep", settings.SYNC_SWEEP_RATE_SHARE)

    @classmethod
    def for_hot_tier(cls) -> RateLimitShare:
        """The hot tier's polls: at most SYNC_HOT_RATE_SHARE of the rate, so refreshes
        somebody waits for (webhooks, Refresh now, after a write) always find slots too."""
        from django.conf import settings

        return cls._share("hot", settings.SYNC_HOT_RATE_SHARE)

    @classmethod
    def for_bulk(cls) -> RateLimitShare:
        """A bulk grant's job: at most BULK_GRANT_RATE requests a second (its grants and
        read-backs together), so the sweep, the hot tier and webhooks keep theirs."""
        from django.conf import settings

        return cls._share("bulk", min(1.0, settings.BULK_GRANT_RATE / settings.STIGG_MAX_RPS))

    @classmethod
    def _share(cls, name: str, share: float) -> RateLimitShare:
        from django.conf import settings

        client = connect(settings.REDIS_URL)
        own = cls(client, settings.STIGG_MAX_RPS * share, key=SHARES[name], headroom=0)
        return RateLimitShare(own, cls(client, settings.STIGG_MAX_RPS))

    def acquire(self, max_wait: float) -> None:
        """Reserve the next free slot and sleep until it. Raise ``RateLimitExhausted``
        (a ``StiggUnavailable``) without reserving when that slot is more than
        ``max_wait`` seconds away, so a caller that gives up never wastes a slot others
        could use."""
        try:
            granted, wait_us = self._reserve(keys=[self.key, granted_key(self.key)],
                                             args=[self.interval_us, int(max(0.0, max_wait) * 1e6)])
        except redis.RedisError as exc:
            # Fail closed: without Redis nobody can prove the rate limit holds.
            logger.warning("request rate limiter unavailable: %s", exc)
            # Both messages keep their earlier wording: a customer's error line shows this one.
            raise StiggUnavailable(f"request budget unavailable: {exc}") from exc
        wait = int(wait_us) / 1e6
        if not int(granted):
            raise RateLimitExhausted("request budget exhausted", retry_after=wait)
        if wait > 0:
            time.sleep(wait)


class RateLimitShare:
    """A share of the request rate: a slot from each limiter in turn, first the share's
    own, then the total."""

    def __init__(self, *limiters: RequestRateLimiter) -> None:
        self.limiters = limiters

    def acquire(self, max_wait: float) -> None:
        for limiter in self.limiters:
            limiter.acquire(max_wait)
