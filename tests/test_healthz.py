"""/healthz: 200 while the instance can serve pages ("ok", or "degraded" when Stigg is
unreachable or the sync is behind), 503 when its Redis refuses writes or its database is
gone. Real Redis servers, the emulator over HTTP, a real PostgreSQL database dropped under
a running gunicorn."""
from __future__ import annotations

import uuid

import httpx
import pytest
import redis
from django.test import Client
from django.urls import reverse

from dashboard import sync, tasks
from dashboard.readmodel import ReadModel
from dashboard.stigg import StiggClient

from . import emulator_world as w
from .servers import RedisServer, WebServer, django_env
from .test_settings_database import POSTGRES_ADMIN_URL, _admin_connection


def healthz() -> tuple[int, dict]:
    response = Client().get(reverse("healthz"))
    return response.status_code, response.json()


@pytest.mark.django_db
def test_it_is_degraded_not_down_while_stigg_is_unreachable_and_nothing_is_synced(rm, monkeypatch):
    monkeypatch.setattr(tasks, "_read_model", rm)  # an empty read model; Stigg: a refused port (process_env)
    code, body = healthz()
    assert code == 200 and body["status"] == "degraded"
    checks = body["checks"]
    assert checks["read_model"] == {"ok": True, "detail": "wrote and read back", "critical": True}
    assert checks["database"]["ok"] is True
    assert checks["stigg"]["ok"] is False and "StiggUnavailable" in checks["stigg"]["detail"]
    assert checks["sync_lag"] == {"ok": False, "detail": "nothing synced yet", "critical": False}


@pytest.mark.django_db
def test_it_is_ok_with_stigg_answering_and_every_customer_fresh(app_read_model, emulator, settings):
    settings.STIGG_API_KEY = emulator.key
    customer = w.customer(emulator)
    with StiggClient(emulator.url, emulator.key, rate_limiter=None) as stigg:
        sync.refresh_customer(stigg, app_read_model, customer)
    code, body = healthz()
    assert code == 200 and body["status"] == "ok", body
    assert body["checks"]["stigg"]["ok"] is True and body["checks"]["stigg"]["detail"].startswith("answered in")
    assert 0 <= body["sync_lag_seconds"] < 60
    again = healthz()[1]["checks"]["stigg"]["detail"]  # within 30 s: the cached answer, no new request
    assert again.split(" (")[0] == body["checks"]["stigg"]["detail"].split(" (")[0]


@pytest.mark.django_db
def test_it_is_503_when_redis_answers_pings_but_refuses_writes(monkeypatch):
    replica = RedisServer()
    try:
        client = redis.Redis.from_url(replica.url)
        client.execute_command("REPLICAOF", "127.0.0.1", "9")  # a replica is read-only
        assert client.ping()
        monkeypatch.setattr(tasks, "_read_model", ReadModel(client, prefix="health-test:"))
        code, body = healthz()
        assert code == 503 and body["status"] == "unavailable"
        assert body["checks"]["read_model"]["ok"] is False and "ReadOnly" in body["checks"]["read_model"]["detail"]
    finally:
        replica.stop()


def test_it_is_503_when_its_database_is_gone():
    admin = _admin_connection()
    name = f"stiggadmin_health_{uuid.uuid4().hex[:8]}"
    admin.execute(f'CREATE DATABASE "{name}"')
    read_model = RedisServer()
    web = None
    try:
        url = f"{POSTGRES_ADMIN_URL.rsplit('/', 1)[0]}/{name}"
        web = WebServer(django_env(read_model.url, DATABASE_URL=url))
        assert httpx.get(f"{web.url}/healthz").json()["checks"]["database"] == {
            "ok": True, "detail": "postgresql", "critical": True}
        admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        answer = httpx.get(f"{web.url}/healthz", timeout=10)
        assert answer.status_code == 503 and answer.json()["checks"]["database"]["ok"] is False
        assert "Traceback" not in web.log()
    finally:
        if web is not None:
            web.stop()
        read_model.stop()
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
