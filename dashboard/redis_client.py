"""The dashboard's own Redis clients (the read model, the request-rate limiter), each
bounded in time: a Redis that accepts connections but does not answer (overloaded,
paused, a half-dead network path) fails a command within REDIS_SOCKET_TIMEOUT_SECONDS, so
a page answers 503 and a task fails and is retried, instead of a thread hanging for good.

redis-py's own default retries a timed-out or broken command ten times, which would
turn one timeout into a minute; here a broken connection (a Redis restarted under a
pooled connection) is redialled once, and a timeout is final."""
from __future__ import annotations

import redis
from redis.backoff import ExponentialWithJitterBackoff
from redis.retry import Retry


def connect(url: str, *, decode_responses: bool = False) -> redis.Redis:
    from django.conf import settings

    return redis.Redis.from_url(
        url, decode_responses=decode_responses,
        socket_timeout=settings.REDIS_SOCKET_TIMEOUT_SECONDS,
        socket_connect_timeout=settings.REDIS_SOCKET_CONNECT_TIMEOUT_SECONDS,
        # A connection idle this long is pinged before use: one cut while idle is redialled
        # instead of failing the command that finds it.
        health_check_interval=settings.REDIS_HEALTH_CHECK_INTERVAL_SECONDS,
        retry=Retry(ExponentialWithJitterBackoff(base=0.01, cap=0.2), 1, supported_errors=(redis.ConnectionError,)),
    )
