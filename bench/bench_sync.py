"""Sync benchmark (issue 3): against an emulator bulk-seeded with 10,000 customers and
100,000 governance nodes, in one run:

1. the full sweep through real Celery workers: the first (discovery) sweep that fills
   an empty read model, and a steady sweep after it — wall time, requests, req/s;
2. a naive sequential loop over the same customers (one customer after another, every
   call for each: customer, subscriptions, entitlements, promotions, governance tree),
   timed on a sample and extrapolated to all customers — the ratio is the figure;
3. freshness, change in the emulator → read model: with webhooks, and by polling alone
   for near-limit customers under a 20 req/s rate limit (p50, p95);
4. the read model's Redis memory.

``--latency-ms`` adds that much to every emulator answer. With 0 the emulator shares
the machine's cores with the workers and the figures are CPU-bound; a real Stigg is
across a network, where each request costs a round trip that a sequential loop pays
in full and concurrent workers overlap.

Everything runs on 127.0.0.1 and stops by itself.
"""
from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "stiggadmin.settings")

from tests.servers import with_secret_key  # noqa: E402

with_secret_key(os.environ)  # this process and the workers, web and emulator it starts

import django  # noqa: E402

django.setup()

import logging  # noqa: E402

logging.getLogger("httpx").setLevel(logging.WARNING)

import redis  # noqa: E402
from celery import Celery  # noqa: E402

from dashboard import sync  # noqa: E402
from dashboard.readmodel import ReadModel  # noqa: E402
from dashboard.stigg import StiggClient  # noqa: E402
from bench.figures import pct, say  # noqa: E402
from bench.harness import bulk_emulator, stop_parts  # noqa: E402
from tests.full_stack import wait_until  # noqa: E402
from tests.servers import CeleryWorker, Emulator, RedisServer, WebServer, django_env  # noqa: E402

SECRET = "bench-webhook-secret"


def fresh_since(rm: ReadModel, t0: float) -> int:
    """How many customers were fetched at or after ``t0``."""
    now = time.time()
    total = rm.customer_count()
    return total - len(rm.stale_customers(older_than=now - t0, now=now))


def run_sweep(stack: dict, label: str, expected: int, timeout: float) -> dict:
    emu, rm = stack["emulator"], stack["rm"]
    emu.data("DELETE", "/_emulator/stats")
    t0 = time.time()
    stack["celery"].send_task("dashboard.tasks.sweep_customers", queue="sweep")
    done = wait_until(lambda: rm.customer_count() >= expected and fresh_since(rm, t0) >= expected, timeout, 0.5)
    wall = time.time() - t0
    stats = emu.data("GET", "/_emulator/stats")
    result = {"wall_s": round(wall, 1), "requests": stats["requests"], "rps": round(stats["requests"] / wall, 1),
              "completed": done, "fresh": fresh_since(rm, t0)}
    say(f"{label:<28} {result['wall_s']:>7.1f} s  {result['requests']:>7} requests  {result['rps']:>7.1f} req/s"
        f"  ({result['fresh']}/{expected} customers{'' if done else ', TIMED OUT'})")
    return result


def naive_loop(emulator: Emulator, redis_url: str, sample: int, total: int) -> dict:
    """What a first version would do: one customer after another, every call each time."""
    rm = ReadModel(redis.Redis.from_url(redis_url), prefix="bench-naive:")
    client = StiggClient(emulator.url, emulator.key, timeout=30)
    try:
        t0 = time.monotonic()
        ids = [c.id for c in client.iter_customers()]
        listing = time.monotonic() - t0
        sync.refresh_catalog(client, rm)
        # a seeded random sample: the bulk world lists its governed (costliest) customers
        # first, so the first N would overstate the naive loop
        picked = random.Random(3).sample(ids, min(sample, len(ids)))
        emulator.data("DELETE", "/_emulator/stats")
        t1 = time.monotonic()
        for cid in picked:
            sync.refresh_customer(client, rm, cid, discover=True)
        per_customer = (time.monotonic() - t1) / len(picked)
        requests = emulator.data("GET", "/_emulator/stats")["requests"] / len(picked)
    finally:
        rm.clear()
        client.close()
    estimate = listing + per_customer * total
    say(f"{'naive sequential loop':<28} {estimate:>7.1f} s  (measured on {len(picked)} customers: "
        f"{per_customer * 1000:.1f} ms and {requests:.1f} requests per customer, + {listing:.1f} s listing)")
    return {"wall_s": round(estimate, 1), "sample": len(picked), "ms_per_customer": round(per_customer * 1000, 2),
            "requests_per_customer": round(requests, 2)}


def freshness_webhooks(stack: dict, changes: int, feature_id: str) -> list[float]:
    emu, rm = stack["emulator"], stack["rm"]
    rng = random.Random(11)
    ids = rng.sample(rm.customer_ids(), changes)
    lags = []
    for cid in ids:
        t0 = time.time()
        emu.data("POST", f"/api/v1/customers/{cid}/promotional-entitlements",
                 json={"promotionalEntitlements": [{"featureId": feature_id, "period": "1 month",
                                                    "usageLimit": 100000 + rng.randint(1, 999)}]})

        def landed() -> bool:
            doc = rm.customer(cid)
            return bool(doc and any(p["feature_id"] == feature_id for p in doc["promotions"]["active"]))

        if wait_until(landed, 30, 0.02):
            lags.append(time.time() - t0)
        time.sleep(0.3)
    return lags


NEAR_LIMIT_FEATURE = "agent-runs"  # usage reported by the app (DELTA), limited on every plan


def make_near_limit(stack: dict, count: int) -> list[str]:
    """Push ``count`` customers to 85–95 % of their agent-runs limit, then let the sync
    see them: they are the near-limit customers the hot tier must keep fresh."""
    emu, rm, rng = stack["emulator"], stack["rm"], random.Random(13)
    chosen: list[str] = []
    for cid in rng.sample(rm.customer_ids(), len(rm.customer_ids())):
        doc = rm.customer(cid)
        ent = next((e for e in (doc or {}).get("entitlements", {}).get("metered", [])
                    if e["feature_id"] == NEAR_LIMIT_FEATURE and e["limit"]), None)
        if ent is None:
            continue
        target = round(ent["limit"] * rng.uniform(0.85, 0.95))
        delta = target - (ent["usage"] or 0)
        if delta > 0:
            emu.data("POST", "/api/v1/usage", json={"usages": [
                {"customerId": cid, "featureId": NEAR_LIMIT_FEATURE, "value": delta}]})
            chosen.append(cid)
            stack["celery"].send_task("dashboard.tasks.refresh_customer_now", args=(cid, "manual"), queue="hot")
        if len(chosen) == count:
            break
    wait_until(lambda: set(chosen) <= set(rm.hot_customers()), 300, 1.0)
    return chosen


def freshness_polling(stack: dict, customers: list[str], changes: int) -> list[float]:
    """Near-limit customers' usage changes with no webhooks: only the hot tier sees it."""
    emu, rm = stack["emulator"], stack["rm"]
    rng = random.Random(12)
    lags = []
    for cid in rng.sample(customers, min(changes, len(customers))):
        ent = next(e for e in rm.customer(cid)["entitlements"]["metered"] if e["feature_id"] == NEAR_LIMIT_FEATURE)
        before = ent["usage"] or 0
        t0 = time.time()
        emu.data("POST", "/api/v1/usage", json={"usages": [
            {"customerId": cid, "featureId": NEAR_LIMIT_FEATURE, "value": 1}]})

        def landed() -> bool:
            e = next(x for x in rm.customer(cid)["entitlements"]["metered"] if x["feature_id"] == NEAR_LIMIT_FEATURE)
            return (e["usage"] or 0) > before

        if wait_until(landed, 120, 0.1):
            lags.append(time.time() - t0)
        time.sleep(rng.uniform(0.5, 2.0))
    return lags


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--nodes", type=int, default=100_000)
    parser.add_argument("--workers", type=int, default=2, help="Celery worker processes")
    parser.add_argument("--concurrency", type=int, default=12, help="threads per worker")
    parser.add_argument("--naive-sample", type=int, default=1000)
    parser.add_argument("--changes", type=int, default=30, help="changes per freshness measurement")
    parser.add_argument("--near-limit", type=int, default=40, help="customers pushed to 85-95%% of a limit")
    parser.add_argument("--skip-naive", action="store_true", help="skip the steady sweep and the naive loop")
    parser.add_argument("--hot-interval", type=float, default=5.0)
    parser.add_argument("--latency-ms", type=float, default=0.0,
                        help="added to every emulator answer, as a network between us and Stigg would")
    args = parser.parse_args()

    tmp = tempfile.mkdtemp(prefix="bench-sync-")
    parts: list = []
    try:
        emulator = bulk_emulator(tmp, args.customers, args.nodes)
        parts.append(emulator)
        if args.latency_ms:
            emulator.faults(latencyMs=args.latency_ms)
        say(f"emulator answers with {args.latency_ms:g} ms added latency")
        redis_server = RedisServer()
        parts.append(redis_server)
        rclient = redis.Redis.from_url(redis_server.url)
        rm = ReadModel(rclient)
        celery = Celery(broker=redis_server.url)
        base_mem = rclient.info("memory")["used_memory"]
        metered = [f["id"] for f in emulator.data("GET", "/api/v1/features", params={"limit": 100})
                   if f["meterType"] != "None"]
        if "api-calls" not in metered or NEAR_LIMIT_FEATURE not in metered:
            raise SystemExit("the bulk catalog lacks the api-calls / agent-runs features this bench changes")
        feature_id = "api-calls"

        say("\n-- full sweep (rate unlimited) --")
        env = django_env(redis_server.url, emulator, STIGG_MAX_RPS="100000", SYNC_SWEEP_BUDGET_SHARE="1",
                         SYNC_SWEEP_INTERVAL_SECONDS="86400", SYNC_HOT_INTERVAL_SECONDS="86400")
        workers = [CeleryWorker(env, concurrency=args.concurrency) for _ in range(args.workers)]
        parts.extend(workers)
        stack = {"emulator": emulator, "rm": rm, "celery": celery}
        sweep_timeout = max(900.0, args.customers * 0.015)  # 1,500 s at 100,000 customers (bench_scale: 880-955 s)
        first = run_sweep(stack, "first (discovery) sweep", args.customers, sweep_timeout)
        steady = None if args.skip_naive else run_sweep(stack, "steady sweep", args.customers, sweep_timeout)
        memory_mb = (rclient.info("memory")["used_memory"] - base_mem) / 2**20
        for wk in workers:
            wk.stop()
            parts.remove(wk)
        if steady is not None:
            naive = naive_loop(emulator, redis_server.url, args.naive_sample, args.customers)
            say(f"ratio naive / first sweep: {naive['wall_s'] / first['wall_s']:.1f}x;  "
                f"naive / steady sweep: {naive['wall_s'] / steady['wall_s']:.1f}x")
        say(f"read model in Redis: {memory_mb:.0f} MB for {rm.customer_count()} customers")

        say("\n-- freshness at a 20 req/s rate limit --")
        env = django_env(redis_server.url, emulator, STIGG_MAX_RPS="20", STIGG_WEBHOOK_SECRET=SECRET,
                         SYNC_SWEEP_INTERVAL_SECONDS="86400", SYNC_HOT_INTERVAL_SECONDS=str(args.hot_interval))
        web = WebServer(env)
        parts.append(web)
        parts.append(CeleryWorker(env, beat=True, concurrency=4, queues="hot"))
        parts.append(CeleryWorker(env, concurrency=8, queues="sweep"))
        emulator.data("DELETE", "/_emulator/stats")
        emulator.data("PUT", "/_emulator/webhook", json={"url": f"{web.url}/webhooks/stigg", "secret": SECRET})
        lags = freshness_webhooks(stack, args.changes, feature_id)
        say(f"with webhooks:            p50 {pct(lags, .5):.2f} s  p95 {pct(lags, .95):.2f} s  "
            f"({len(lags)}/{args.changes} changes seen)")
        emulator.data("PUT", "/_emulator/webhook", json={"url": None})
        near = make_near_limit(stack, args.near_limit)
        # a full sweep runs meanwhile, as it would in production, within its share of the request rate
        celery.send_task("dashboard.tasks.sweep_customers", queue="sweep")
        lags = freshness_polling(stack, near, args.changes)
        say(f"polling alone, {len(near)} near-limit customers (hot tier {len(rm.hot_customers())}), sweep running: "
            f"p50 {pct(lags, .5):.2f} s  p95 {pct(lags, .95):.2f} s  ({len(lags)} changes seen)")
        stats = emulator.data("GET", "/_emulator/stats")
        say(f"most requests Stigg saw in one second at the 20 req/s rate limit: {stats['maxPerSecond']}")
    finally:
        stop_parts(parts, tmp)


if __name__ == "__main__":
    main()
