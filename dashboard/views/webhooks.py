"""POST /webhooks/stigg: Stigg's events queue an immediate refresh of the customer named."""
from __future__ import annotations

import hmac
import json
import logging
import time

from django.conf import settings
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from .. import tasks

log = logging.getLogger(__name__)

MAX_WEBHOOK_BYTES = 1024 * 1024


def _refuse(reason: str, status: int) -> JsonResponse:
    log.warning("Stigg webhook refused (%s): %s", status, reason)
    return JsonResponse({"error": reason}, status=status)


@csrf_exempt
@require_POST
def stigg_webhook(request: HttpRequest) -> JsonResponse:
    """Stigg's events: check the shared secret, drop duplicates, queue an immediate
    refresh of the customer named. Never a 500 for anything a sender can send."""
    secret = settings.STIGG_WEBHOOK_SECRET
    if not secret:
        return _refuse("webhooks are not configured (STIGG_WEBHOOK_SECRET is empty)", 403)
    given = request.headers.get("Stigg-Webhooks-Secret", "")
    if not hmac.compare_digest(given.encode(), secret.encode()):
        return _refuse("missing or wrong Stigg-Webhooks-Secret", 401)
    if len(request.body) > MAX_WEBHOOK_BYTES:
        return _refuse("body too large", 413)
    try:
        message = json.loads(request.body)
    except (ValueError, UnicodeDecodeError):
        return _refuse("body is not JSON", 400)
    if not isinstance(message, dict):
        return _refuse("body is not a JSON object", 400)
    message_id, event_type, data = message.get("messageId"), message.get("type"), message.get("data")
    customer_id = data.get("customerId") if isinstance(data, dict) else None
    if not all(isinstance(v, str) and v for v in (message_id, event_type, customer_id)):
        return _refuse("messageId, type and data.customerId are required strings", 400)
    received_at = time.time()
    rm = tasks.read_model()
    if not rm.webhook_first_seen(message_id):
        return JsonResponse({"status": "duplicate"})
    rm.mark_changed(customer_id, ttl=settings.SYNC_HOT_CHANGED_SECONDS)
    queued = tasks.queue_refresh(customer_id, f"webhook:{event_type}", received_at=received_at)
    return JsonResponse({"status": "queued" if queued else "already queued"}, status=202)
