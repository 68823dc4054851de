"""GET /healthz: for load balancers and operators. 200 while this instance can serve pages
("ok", or "degraded" when Stigg is unreachable or the sync is behind), 503 when it cannot
(its Redis or its database failing). Checks: dashboard/health.py."""
from __future__ import annotations

import logging
import time
from dataclasses import asdict

import redis
from django.conf import settings
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from .. import health, tasks
from ..ratelimit import RequestRateLimiter
from ..stigg import StiggClient

log = logging.getLogger(__name__)

_probe_clients: dict[str, StiggClient] = {}


def probe_client() -> StiggClient:
    """One short attempt, within the shared request budget: a probe never waits long. One
    pooled client per process (and per Stigg URL)."""
    url = settings.STIGG_API_URL
    if url not in _probe_clients:
        _probe_clients[url] = StiggClient.from_settings(
            rate_limiter=RequestRateLimiter.from_settings(), max_attempts=1,
            timeout=health.STIGG_PROBE_TIMEOUT_SECONDS, rate_limit_wait=1.0)
    return _probe_clients[url]


@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    rm, now = tasks.read_model(), time.time()
    lag, lag_seconds = health.sync_lag_check(rm, now)
    checks = {"read_model": health.read_model_check(rm), "database": health.database_check(),
              "stigg": health.stigg_check(rm, probe_client()), "sync_lag": lag}
    status, code = health.status_of(checks)
    if code != 200:
        log.warning("healthz: %s", {name: c.detail for name, c in checks.items() if not c.ok})
    body = {"status": status, "checks": health.as_json(checks), "sync_lag_seconds": lag_seconds}
    try:
        sync = asdict(rm.sync_status(settings.SYNC_STALE_AFTER_SECONDS))
        body["sync"] = {k: v.isoformat() if hasattr(v, "isoformat") else v for k, v in sync.items()}
    except redis.RedisError:  # the read-model check already says why
        pass
    return JsonResponse(body, status=code)
