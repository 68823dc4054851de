"""POST /webhooks/stigg: Stigg's events queue an immediate refresh of the customer named.

Never loses an event it answered 2xx: a delivery is marked seen (the dedupe) before its
refresh is queued, and when the task queue cannot take it both marks are undone and the
answer is 503, so Stigg's retry is treated as new. The body's size is checked from its
Content-Length before it is read."""
from __future__ import annotations

import hmac
import json
import logging
import time

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST
from kombu.exceptions import OperationalError as BrokerUnavailable

from .. import tasks

log = logging.getLogger(__name__)

MAX_WEBHOOK_BYTES = 1024 * 1024
RETRY_AFTER_SECONDS = 30


def _declared_length(request: HttpRequest) -> int | None:
    try:
        return int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return None


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
    declared = _declared_length(request)
    if declared is None:
        return _refuse("Content-Length is not a number", 400)
    if declared > MAX_WEBHOOK_BYTES:
        return _refuse("body too large", 413)
    try:
        body = request.body
    except RequestDataTooBig:  # no Content-Length, and more than Django reads into memory
        return _refuse("body too large", 413)
    if len(body) > MAX_WEBHOOK_BYTES:
        return _refuse("body too large", 413)
    try:
        message = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):  # RecursionError: nested too deep
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
    try:
        queued = tasks.queue_refresh(customer_id, f"webhook:{event_type}", received_at=received_at)
    except (BrokerUnavailable, OSError) as exc:
        rm.forget_webhook(message_id)
        log.warning("Stigg webhook %s for customer %s not queued, answered 503 so Stigg retries: %s",
                    message_id, customer_id, exc)
        response = JsonResponse({"error": "the task queue is unreachable; retry later"}, status=503)
        response["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return response
    return JsonResponse({"status": "queued" if queued else "already queued"}, status=202)
