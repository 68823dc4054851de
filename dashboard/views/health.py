"""GET /healthz: liveness and sync status for load balancers and operators."""
from __future__ import annotations

import logging
from dataclasses import asdict

from django.conf import settings
from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_GET

from .. import tasks

log = logging.getLogger(__name__)


@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """Liveness plus sync status; 503 when the read model (Redis) cannot be read."""
    try:
        status = tasks.read_model().sync_status(settings.SYNC_STALE_AFTER_SECONDS)
    except Exception as exc:  # Redis down: say so instead of a 500 page
        log.warning("healthz: read model unreachable: %s", exc)
        return JsonResponse({"status": "unavailable", "error": "read model unreachable"}, status=503)
    sync = asdict(status)
    for key, value in sync.items():
        if hasattr(value, "isoformat"):
            sync[key] = value.isoformat()
    return JsonResponse({"status": "ok" if status.healthy else "degraded", "sync": sync})
