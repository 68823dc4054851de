"""GET /metrics: Prometheus's text format (dashboard/metrics.py). Without a session: a
scraper signs in with a token instead, `Authorization: Bearer $METRICS_TOKEN`, when the
setting is set; left empty, /metrics is open (it shows counts and timings, never a customer
or a secret) and the deployment keeps it off the public side of the proxy."""
from __future__ import annotations

import hmac

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from .. import metrics


def _allowed(request: HttpRequest) -> bool:
    token = settings.METRICS_TOKEN
    if not token:
        return True
    given = request.headers.get("Authorization", "")
    return hmac.compare_digest(given.encode(), f"Bearer {token}".encode())


@never_cache
@require_GET
def metrics_view(request: HttpRequest) -> HttpResponse:
    if not _allowed(request):
        response = HttpResponse("A bearer token is required: Authorization: Bearer <METRICS_TOKEN>.\n",
                                status=401, content_type="text/plain")
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    body, content_type = metrics.exposition()
    return HttpResponse(body, content_type=content_type)
