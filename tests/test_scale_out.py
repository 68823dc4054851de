"""Scaling out: two sets of worker processes (as two hosts would run them: each with its
hot and sweep workers), one Redis, one emulator. They share one request budget — the
emulator never counts more than STIGG_MAX_RPS requests in a second — and never refresh one
customer at the same time: every refresh logs when it held the customer's lock, and no two
intervals of one customer overlap, across both sets."""
from __future__ import annotations

import json
import time
from collections import defaultdict

import pytest
from celery import Celery

from . import emulator_world as w
from .servers import CeleryWorker, Emulator, RedisServer, django_env

pytestmark = pytest.mark.slow
MAX_RPS = 10
CUSTOMERS = 16


def refreshes(log: str) -> list[dict]:
    return [line for line in (json.loads(raw) for raw in log.splitlines() if raw.startswith("{"))
            if line.get("logger") == "dashboard.refresh"]


def test_two_sets_of_workers_share_the_budget_and_never_refresh_one_customer_at_once():
    redis_server, emulator = RedisServer(), Emulator()
    sets: list[CeleryWorker] = []
    try:
        calls = w.feature(emulator, displayName="API calls")
        plan = w.plan(emulator, w.product(emulator), [{"id": calls, "usageLimit": 100, "resetPeriod": "MONTH"}])
        customers = [w.customer(emulator) for _ in range(CUSTOMERS)]
        for cid in customers:
            w.subscribe(emulator, cid, plan)
            w.report_usage(emulator, cid, calls, 50)
        env = django_env(redis_server.url, emulator, STIGG_MAX_RPS=str(MAX_RPS), LOG_FORMAT="json",
                         LOG_LEVEL="INFO", SYNC_SWEEP_INTERVAL_SECONDS="3600")
        for _host in ("a", "b"):  # each set takes both queues, as a second host would
            sets.append(CeleryWorker(env, concurrency=4))
        emulator.data("DELETE", "/_emulator/stats")
        celery = Celery(broker=redis_server.url, set_as_current=False)
        celery.send_task("dashboard.tasks.sweep_customers", queue="sweep")
        for _round in range(2):  # webhooks naming every customer, again and again: contention
            for cid in customers:
                celery.send_task("dashboard.tasks.refresh_customer_now", args=[cid, "webhook:customer.updated"],
                                 queue="hot")
        deadline = time.time() + 120
        while time.time() < deadline:
            done = {line["customer_id"] for s in sets for line in refreshes(s.log())}
            if done >= set(customers) and len([1 for s in sets for _ in refreshes(s.log())]) >= 2 * CUSTOMERS:
                break
            time.sleep(1)
        time.sleep(2)
        stats = emulator.data("GET", "/_emulator/stats")
        by_set = [refreshes(s.log()) for s in sets]
    finally:
        for part in (*sets, emulator, redis_server):
            part.stop()
    assert all(by_set), "both sets must have refreshed customers"
    held: dict[str, list[tuple[float, float, int]]] = defaultdict(list)
    for index, lines in enumerate(by_set):
        for line in lines:
            start = line["started_at"]
            held[line["customer_id"]].append((start, start + line["duration_ms"] / 1000, index))
    assert set(held) >= set(customers)
    for cid, spans in held.items():
        spans.sort()
        for (_, end, _), (start, _, _) in zip(spans, spans[1:]):
            assert start >= end - 0.001, f"customer {cid} refreshed twice at once: {spans}"
    assert {i for spans in held.values() for *_, i in spans} == {0, 1}
    assert stats["maxPerSecond"] <= MAX_RPS, stats["perSecond"]
