"""The webhook endpoint under gunicorn when the task queue (the Celery broker, its own
redis-server here) is down: Stigg is answered 503, and its retry after the broker is back
is queued — never "duplicate", never "already queued" with nothing in the queue."""
from __future__ import annotations

import json
import uuid

import httpx
import pytest
import redis

from .servers import RedisServer, WebServer, django_env

SECRET = "broker-test-secret"


@pytest.fixture
def servers():
    read_model, broker = RedisServer(), RedisServer()
    web = WebServer(django_env(read_model.url, CELERY_BROKER_URL=broker.url, STIGG_WEBHOOK_SECRET=SECRET))
    held = {"broker": broker}
    yield web, held
    web.stop()
    held["broker"].stop()
    read_model.stop()


def deliver(web: WebServer, message_id: str, customer_id: str) -> httpx.Response:
    message = {"messageId": message_id, "type": "promotionalEntitlement.granted",
               "createdAt": "2026-11-29T00:00:00Z", "data": {"customerId": customer_id}}
    return httpx.post(f"{web.url}/webhooks/stigg", json=message, headers={"Stigg-Webhooks-Secret": SECRET},
                      timeout=30)


def test_an_event_answered_503_while_the_broker_is_down_is_queued_on_stiggs_retry(servers):
    web, held = servers
    message_id, customer = f"m-{uuid.uuid4()}", "acme-broker"
    port = held["broker"].port
    held["broker"].stop()
    down = deliver(web, message_id, customer)
    assert down.status_code == 503 and down.headers["Retry-After"] == "30"
    assert down.json() == {"error": "the task queue is unreachable; retry later"}
    assert "Traceback" not in web.log() and "not queued, answered 503" in web.log()

    held["broker"] = RedisServer(port=port)  # the broker is back, empty
    retry = deliver(web, message_id, customer)
    assert retry.status_code == 202 and retry.json() == {"status": "queued"}
    queued = [json.loads(m) for m in redis.Redis.from_url(held["broker"].url).lrange("hot", 0, -1)]
    assert [m["headers"]["task"] for m in queued] == ["dashboard.tasks.refresh_customer_now"]
    assert customer in queued[0]["headers"]["argsrepr"]
    assert deliver(web, message_id, customer).json() == {"status": "duplicate"}  # answered 2xx once: seen now
