"""A Redis that accepts connections but never answers (overloaded, paused, a half-dead
network path) must not hang the dashboard: with REDIS_SOCKET_TIMEOUT_SECONDS the web app
under gunicorn answers pages 503 and /healthz 503 within seconds, and a webhook whose
broker hangs is answered 503 (Stigg retries) instead of holding the request."""
from __future__ import annotations

import re
import subprocess
import sys
import uuid

import httpx
import pytest

from .servers import ROOT, RedisServer, SilentServer, WebServer, django_env

SECRET = "silent-redis-secret"
# How long a request may take: the timeout set (0.5 s) with room to spare on a busy machine,
# yet under redis-py's own default of 5 s, so it is the setting that bounds it.
PAGE_PATIENCE = 4.0
# A publish is tried four times (Celery's retry policy) at 1 s each; without a timeout it hangs.
WEBHOOK_PATIENCE = 15.0


@pytest.fixture
def silent():
    server = SilentServer()
    yield server
    server.stop()


def started(web: WebServer) -> WebServer:
    web.manage("ensure_demo_user", "casey", "pw-casey-right-1", "--group", "Viewers")
    return web


def sign_in(web: WebServer) -> httpx.Client:
    client = httpx.Client(base_url=web.url, timeout=PAGE_PATIENCE)
    page = client.get("/accounts/login/")
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
    signed = client.post("/accounts/login/", data={"csrfmiddlewaretoken": token, "username": "casey",
                                                  "password": "pw-casey-right-1", "next": "/"})
    assert signed.status_code == 302, signed.text[:500]
    return client


def test_a_read_model_that_never_answers_is_a_503_page_not_a_hung_one(redis_server, silent):
    web = started(WebServer(django_env(redis_server.url, READ_MODEL_REDIS_URL=silent.url,
                                       REDIS_SOCKET_TIMEOUT_SECONDS="0.5")))  # ready: /healthz answered at all
    try:
        client = sign_in(web)
        for path in ("/", "/customers/", "/near-limit/"):
            page = client.get(path)
            assert page.status_code == 503, (path, page.text[:500])
            assert "The dashboard's data store is unreachable" in " ".join(page.text.split())
        health = httpx.get(f"{web.url}/healthz", timeout=PAGE_PATIENCE)
        assert health.status_code == 503 and health.json()["status"] == "unavailable"
        assert "Traceback" not in web.log()
    finally:
        web.stop()


def test_a_webhook_whose_broker_never_answers_is_answered_503(silent):
    read_model = RedisServer()
    web = WebServer(django_env(read_model.url, CELERY_BROKER_URL=silent.url, STIGG_WEBHOOK_SECRET=SECRET,
                               REDIS_SOCKET_TIMEOUT_SECONDS="1"))
    try:
        message = {"messageId": f"m-{uuid.uuid4()}", "type": "promotionalEntitlement.granted",
                   "createdAt": "2026-11-29T00:00:00Z", "data": {"customerId": "acme-silent"}}
        answer = httpx.post(f"{web.url}/webhooks/stigg", json=message, headers={"Stigg-Webhooks-Secret": SECRET},
                            timeout=WEBHOOK_PATIENCE)
        assert answer.status_code == 503 and answer.headers["Retry-After"] == "30"
        assert "not queued, answered 503" in web.log()
    finally:
        web.stop()
        read_model.stop()


def test_the_brokers_connection_has_the_timeouts_and_visibility_timeout_set(redis_server):
    """What kombu's Redis channel itself ends up with (a killed worker's task comes back
    after the visibility timeout, not kombu's default hour)."""
    env = django_env(redis_server.url, CELERY_BROKER_VISIBILITY_TIMEOUT_SECONDS="420",
                     REDIS_SOCKET_TIMEOUT_SECONDS="3", REDIS_SOCKET_CONNECT_TIMEOUT_SECONDS="1.5",
                     REDIS_HEALTH_CHECK_INTERVAL_SECONDS="20")
    shown = subprocess.run(
        [sys.executable, "-c", "import django; django.setup(); from stiggadmin.celery import app\n"
         "with app.connection_for_write() as conn:\n"
         "    ch = conn.default_channel\n"
         "    print(ch.visibility_timeout, ch.socket_timeout, ch.socket_connect_timeout, ch.health_check_interval,"
         " app.conf.worker_prefetch_multiplier)"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert shown.stdout.split() == ["420", "3.0", "1.5", "20", "1"], shown.stderr
    too_low = subprocess.run([sys.executable, "-c", "import django; django.setup()"], cwd=ROOT, capture_output=True,
                             text=True, timeout=60, env={**env, "CELERY_BROKER_VISIBILITY_TIMEOUT_SECONDS": "120"})
    assert "CELERY_BROKER_VISIBILITY_TIMEOUT_SECONDS must be at least 300" in too_low.stderr


def test_a_retried_task_is_acknowledged_before_the_visibility_timeout_gives_it_out_again(settings):
    """The longest countdown a task is held for (its retry backoff) plus its run fit in the
    visibility timeout, so waiting for a retry never makes a second copy of the task."""
    from dashboard import tasks

    assert tasks.backoff(50, None) <= tasks.MAX_BACKOFF_SECONDS * 1.25
    held = tasks.MAX_BACKOFF_SECONDS * 1.25 + settings.CELERY_TASK_TIME_LIMIT
    assert held < settings.CELERY_BROKER_TRANSPORT_OPTIONS["visibility_timeout"]
    assert held < 300  # the least visibility timeout the settings take
