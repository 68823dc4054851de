"""End to end, with real parts only: the emulator over HTTP, a real redis-server, a real
Celery worker with its beat, and the web app under gunicorn receiving the emulator's
webhooks. Changes in the emulator must reach the read model; faults must not break it."""
from __future__ import annotations

import time

import httpx
import pytest
import redis
from celery import Celery

from dashboard.readmodel import ReadModel

from . import emulator_world as w
from .servers import CeleryWorker, Emulator, RedisServer, WebServer, django_env

SECRET = "e2e-webhook-secret"
MAX_RPS = 12
HOT_INTERVAL = 2


def wait_for(predicate, timeout: float = 20.0, interval: float = 0.2, message: str = "condition"):
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"{message} not met within {timeout}s (last: {last!r})")


class Stack:
    def __init__(self) -> None:
        self.redis = RedisServer()
        self.emulator = Emulator()
        self.rm = ReadModel(redis.Redis.from_url(self.redis.url, decode_responses=False))
        env = django_env(self.redis.url, self.emulator, STIGG_WEBHOOK_SECRET=SECRET, STIGG_MAX_RPS=str(MAX_RPS),
                         SYNC_HOT_INTERVAL_SECONDS=str(HOT_INTERVAL), SYNC_SWEEP_INTERVAL_SECONDS="3600")
        self.web = WebServer(env)
        self.worker = CeleryWorker(env, beat=True, concurrency=6)
        # Not the current app: tasks queued in-process by later tests (views calling
        # .delay) must keep going to the test process's broker, not to this stack's.
        self.celery = Celery(broker=self.redis.url, set_as_current=False)

    def send(self, task: str, *args, queue: str = "hot") -> None:
        self.celery.send_task(f"dashboard.tasks.{task}", args=args, queue=queue)

    def doc(self, customer_id: str):
        return self.rm.customer(customer_id)

    def stop(self) -> None:
        for part in (self.worker, self.web, self.emulator, self.redis):
            part.stop()


@pytest.fixture(scope="module")
def stack():
    s = Stack()
    yield s
    logs = s.worker.log()
    s.stop()
    assert "Traceback" not in logs or "Retry in" in logs, logs[-4000:]


@pytest.fixture(scope="module")
def world(stack):
    emu = stack.emulator
    calls = w.feature(emu)  # metered, monthly reset on the plan below
    sso = w.feature(emu, "BOOLEAN")
    product = w.product(emu)
    plan = w.plan(emu, product, [{"id": calls, "usageLimit": 100, "resetPeriod": "MONTH"},
                                 {"id": sso, "isGranted": True}])
    quiet, busy, broken = w.customer(emu, name="Quiet Co"), w.customer(emu, name="Busy Co"), w.customer(emu)
    for cid in (quiet, busy, broken):
        w.subscribe(emu, cid, plan)
    w.report_usage(emu, busy, calls, 85)  # 85 % of its limit: the hot tier
    emu.data("PUT", "/_emulator/webhook", json={"url": f"{stack.web.url}/webhooks/stigg", "secret": SECRET})
    stack.send("sweep_customers", queue="sweep")
    wait_for(lambda: all(stack.doc(c) and stack.doc(c)["fetched_at"] for c in (quiet, busy, broken)),
             message="first sweep")
    return {"calls": calls, "sso": sso, "plan": plan, "quiet": quiet, "busy": busy, "broken": broken}


def metered(doc, feature_id):
    return next(e for e in doc["entitlements"]["metered"] if e["feature_id"] == feature_id)


def test_it_fills_the_read_model_from_a_sweep(stack, world):
    doc = stack.doc(world["busy"])
    ent = metered(doc, world["calls"])
    assert ent["usage"] == 85 and ent["limit"] == 100 and ent["utilization"] == pytest.approx(0.85)
    assert doc["plan_id"] == world["plan"] and doc["error"] is None
    top = stack.rm.top_entitlements(5)
    assert top[0].customer_id == world["busy"]


def test_it_shows_a_granted_promotion_via_webhook_within_seconds(stack, world):
    customer = world["quiet"]
    w.grant(stack.emulator, customer, world["calls"], usageLimit=500)
    doc = wait_for(lambda: (d := stack.doc(customer)) and d["promotions"]["active"] and d, timeout=10,
                   message="promotion in the read model")
    assert doc["promotions"]["active"][0]["feature_id"] == world["calls"]
    ent = metered(doc, world["calls"])
    assert ent["limit"] == 500 and ent["provenance"]["label"] == "promotion"


def test_it_picks_up_usage_of_a_hot_customer_by_polling_alone(stack, world):
    emu = stack.emulator
    emu.data("PUT", "/_emulator/webhook", json={"url": None})  # no webhooks: polling only
    try:
        w.report_usage(emu, world["busy"], world["calls"], 7)
        doc = wait_for(lambda: (d := stack.doc(world["busy"])) and metered(d, world["calls"])["usage"] == 92 and d,
                       timeout=HOT_INTERVAL * 5, message="usage via the hot tier")
        assert metered(doc, world["calls"])["utilization"] == pytest.approx(0.92)
    finally:
        emu.data("PUT", "/_emulator/webhook", json={"url": f"{stack.web.url}/webhooks/stigg", "secret": SECRET})


def test_it_keeps_the_last_good_data_through_an_outage_and_recovers(stack, world):
    customer = world["busy"]
    before = stack.doc(customer)
    stack.emulator.faults(outage=True)
    try:
        stack.send("refresh_customer_now", customer, "test")
        doc = wait_for(lambda: (d := stack.doc(customer)) and d["error"] and d, message="error recorded")
        assert "unavailable" in doc["error"].lower()
        assert doc["entitlements"] == before["entitlements"] and doc["fetched_at"] == before["fetched_at"]
        assert stack.rm.sync_status().errors_seen >= 1
    finally:
        stack.emulator.clear_faults()
    # no restart: the task's own retry (or the hot tier) brings it back
    doc = wait_for(lambda: (d := stack.doc(customer)) and d["error"] is None and d, timeout=30,
                   message="recovery")
    assert doc["fetched_at"] > before["fetched_at"]


def test_it_marks_one_malformed_customer_and_the_sweep_goes_on(stack, world):
    stack.emulator.faults(malformedCustomerIds=[world["broken"]])
    try:
        marks = {c: stack.doc(c)["fetched_at"] for c in (world["quiet"], world["busy"])}
        stack.send("sweep_customers", queue="sweep")
        wait_for(lambda: all(stack.doc(c)["fetched_at"] > marks[c] for c in marks), message="others refreshed")
        broken = wait_for(lambda: (d := stack.doc(world["broken"])) and d["error"] and d, message="broken marked")
        assert "malformed" in broken["error"]
        assert broken["entitlements"]["metered"]  # the last good data is still there
    finally:
        stack.emulator.clear_faults()


def test_it_rides_out_a_429_storm_within_the_request_rate_limit(stack, world):
    emu = stack.emulator
    emu.data("DELETE", "/_emulator/stats")
    emu.faults(rateLimitPerSecond=3, retryAfterSeconds=1)
    try:
        marks = {c: stack.doc(c)["fetched_at"] for c in (world["quiet"], world["busy"], world["broken"])}
        stack.send("sweep_customers", queue="sweep")
        for c in marks:
            stack.send("refresh_customer_now", c, "storm")
        wait_for(lambda: all((d := stack.doc(c))["fetched_at"] > marks[c] and d["error"] is None for c in marks),
                 timeout=60, message="every customer refreshed through the storm")
        stats = emu.data("GET", "/_emulator/stats")
    finally:
        emu.clear_faults()
    assert stats["throttled"] > 0, "the storm never happened"
    assert stats["maxPerSecond"] <= MAX_RPS, stats["perSecond"]


def test_it_refuses_bad_webhooks_and_ignores_duplicates(stack, world):
    url = f"{stack.web.url}/webhooks/stigg"
    message = {"messageId": "m-1", "type": "customer.updated", "createdAt": "2026-11-21T00:00:00Z",
               "data": {"customerId": world["quiet"]}}
    assert httpx.post(url, json=message).status_code == 401
    assert httpx.post(url, json=message, headers={"Stigg-Webhooks-Secret": "wrong"}).status_code == 401
    headers = {"Stigg-Webhooks-Secret": SECRET}
    assert httpx.post(url, content=b"{nope", headers=headers).status_code == 400
    assert httpx.post(url, json={"messageId": "m-2", "type": "x"}, headers=headers).status_code == 400
    assert httpx.get(url).status_code == 405
    first = httpx.post(url, json=message, headers=headers)
    assert first.status_code == 202
    again = httpx.post(url, json=message, headers=headers)
    assert again.status_code == 200 and again.json()["status"] == "duplicate"
    assert "Stigg webhook refused (401)" in stack.web.log()


def test_it_reports_sync_status_on_healthz(stack, world):
    body = httpx.get(f"{stack.web.url}/healthz").json()
    assert body["sync"]["customers_total"] == 3
    assert body["sync"]["last_sweep_finished_at"] is not None
    assert body["status"] in ("ok", "degraded")
