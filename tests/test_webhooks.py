"""The Stigg webhook endpoint in-process, on the test process's own Redis (read model and
broker): what a webhook does to the hot tier."""
from __future__ import annotations

import json
import time
import uuid

import pytest
import redis
from django.test import Client
from django.urls import reverse

from dashboard import tasks

SECRET = "test-webhook-secret"


@pytest.fixture
def webhook(settings):
    settings.STIGG_WEBHOOK_SECRET = SECRET
    broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    sent: list[str] = []

    def send(customer_id: str) -> dict:
        sent.append(customer_id)
        message = {"messageId": f"m-{uuid.uuid4()}", "type": "customer.updated",
                   "createdAt": "2026-11-21T00:00:00Z", "data": {"customerId": customer_id}}
        response = Client().post(reverse("stigg-webhook"), json.dumps(message), content_type="application/json",
                                 HTTP_STIGG_WEBHOOKS_SECRET=SECRET)
        assert response.status_code == 202, response.content
        return response.json()

    yield send
    # Leave no refresh queued for a customer that exists nowhere: only ours, nobody else's.
    for raw in broker.lrange("hot", 0, -1):
        if any(cid in json.loads(raw)["headers"].get("argsrepr", "") for cid in sent):
            broker.lrem("hot", 0, raw)
    for cid in sent:
        tasks.read_model().release_queued(cid)


def test_it_keeps_the_named_customer_hot_for_sync_hot_changed_seconds(webhook, settings):
    settings.SYNC_HOT_CHANGED_SECONDS = 120
    rm = tasks.read_model()
    customer_id = f"webhook-{uuid.uuid4()}"
    before = time.time()
    assert webhook(customer_id)["status"] == "queued"
    after = time.time()
    assert customer_id in rm.hot_customers(now=before + 119)
    assert customer_id not in rm.hot_customers(now=after + 121)  # not the old fixed 15 minutes


def test_it_keeps_nobody_hot_for_a_change_alone_when_the_setting_is_zero(webhook, settings):
    settings.SYNC_HOT_CHANGED_SECONDS = 0
    customer_id = f"webhook-{uuid.uuid4()}"
    before = time.time()
    webhook(customer_id)
    assert customer_id not in tasks.read_model().hot_customers(now=before)


def _post(body: bytes, **extra) -> "object":
    return Client().post(reverse("stigg-webhook"), body, content_type="application/json",
                         HTTP_STIGG_WEBHOOKS_SECRET=SECRET, **extra)


def test_it_refuses_a_body_too_large_by_its_content_length_without_a_traceback(webhook, caplog):
    response = _post(b"{" + b" " * (3 * 1024 * 1024) + b"}")
    assert response.status_code == 413 and response.json() == {"error": "body too large"}
    assert not [r for r in caplog.records if r.exc_info or r.levelname == "ERROR"]


def test_it_refuses_a_body_nested_too_deep_as_not_json(webhook):
    response = _post(b"[" * 200_000 + b"]" * 200_000)
    assert response.status_code == 400 and response.json() == {"error": "body is not JSON"}


def test_it_refuses_a_content_length_that_is_not_a_number(webhook):
    assert _post(b"{}", CONTENT_LENGTH="many").status_code == 400

def test_it_tells_the_refresh_when_the_event_arrived(webhook, settings):
    """A customer read since the event arrived is not asked for again (tasks.refresh_customer_now)."""
    import ast

    broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    customer_id = f"webhook-{uuid.uuid4()}"
    before = time.time()
    webhook(customer_id)
    after = time.time()
    [args] = [ast.literal_eval(json.loads(raw)["headers"]["argsrepr"]) for raw in broker.lrange("hot", 0, -1)
              if customer_id in json.loads(raw)["headers"]["argsrepr"]]
    assert args[:2] == (customer_id, "webhook:customer.updated") and before <= args[2] <= after
