"""Bulk grant benchmark (issue 10): a bulk grant of 500 customers under the 20 req/s rate
limit, against an emulator bulk-seeded with 1,000 customers, through real parts (gunicorn
receiving the emulator's webhooks, Celery workers with beat, Redis, one SQLite database):

1. baseline: a steady sweep of every customer, with webhook changes to other customers
   every few seconds — the sweep's wall time and request rate, the webhooks' lag
   (change in the emulator → read model);
2. the same, with a bulk grant of ``--rows`` customers running (its job held to
   BULK_GRANT_RATE): the bulk's wall time and request rate, the sweep's wall time and
   rate, the webhooks' lag, and what Stigg saw in total per second (never above 20).

Everything runs on 127.0.0.1 and stops by itself.
"""
from __future__ import annotations

import argparse
import os
import random
import re
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.figures import pct, say  # noqa: E402
from tests.full_stack import wait_until  # noqa: E402
from bench.harness import django_here, stop_parts  # noqa: E402
from tests.servers import CeleryWorker, Emulator, RedisServer, WebServer, django_env  # noqa: E402

SECRET = "bench-webhook-secret"
FEATURE = "api-calls"
MAX_RPS = 20


class WebhookProbe(threading.Thread):
    """Every few seconds, a promotion granted in the emulator to a customer outside the
    batch: its webhook must bring it into the read model; the lag of each is kept."""

    def __init__(self, emulator, rm, customers: list[str], every: float) -> None:
        super().__init__(daemon=True)
        self.emulator, self.rm, self.customers, self.every = emulator, rm, customers, every
        self.lags: list[float] = []
        self.missed = 0
        self.stop = threading.Event()
        self.rng = random.Random(7)

    def run(self) -> None:
        while not self.stop.is_set():
            cid, limit = self.rng.choice(self.customers), 900_000 + self.rng.randint(1, 99_999)
            t0 = time.time()
            self.emulator.data("POST", f"/api/v1/customers/{cid}/promotional-entitlements", json={
                "promotionalEntitlements": [{"featureId": "seats", "period": "1 week", "usageLimit": limit}]})

            def landed() -> bool:
                doc = self.rm.customer(cid)
                return bool(doc and any(p.get("usage_limit") == limit for p in doc["stigg"]["promotions"]))

            if wait_until(landed, 60, 0.05):
                self.lags.append(time.time() - t0)
            else:
                self.missed += 1
            self.stop.wait(self.every)


def fresh_among(rm, ids: set[str], t0: float) -> int:
    now = time.time()
    stale = set(rm.stale_customers(older_than=now - t0, now=now))
    return len(ids - stale)


def sweep_window(stack: dict, control: set[str], timeout: float) -> tuple[float, bool]:
    """Send a sweep; seconds until every customer of ``control`` was read after it started."""
    t0 = time.time()
    stack["celery"].send_task("dashboard.tasks.sweep_customers", queue="sweep")
    done = wait_until(lambda: fresh_among(stack["rm"], control, t0) >= len(control), timeout, 1.0)
    return time.time() - t0, done


def stigg_saw(emulator, since: float, until: float) -> tuple[int, float, int]:
    """Requests Stigg saw between two moments: total, mean per second, most in one second."""
    seconds = [s for s in emulator.data("GET", "/_emulator/stats")["perSecond"] if since <= s["second"] < until]
    total = sum(s["requests"] for s in seconds)
    return total, total / max(1.0, until - since), max((s["requests"] for s in seconds), default=0)


def lag_words(probe: WebhookProbe) -> str:
    if not probe.lags:
        return f"no webhook change seen ({probe.missed} missed)"
    return (f"p50 {pct(probe.lags, .5):.2f} s  p95 {pct(probe.lags, .95):.2f} s  max {max(probe.lags):.2f} s  "
            f"({len(probe.lags)} changes{f', {probe.missed} missed' if probe.missed else ''})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=1000)
    parser.add_argument("--nodes", type=int, default=2000)
    parser.add_argument("--rows", type=int, default=500, help="customers in the bulk grant")
    parser.add_argument("--bulk-rate", type=float, default=4.0, help="BULK_GRANT_RATE, requests a second")
    parser.add_argument("--probe-every", type=float, default=3.0, help="seconds between webhook changes")
    args = parser.parse_args()
    tmp = tempfile.mkdtemp(prefix="bench-bulk-")
    parts: list = []
    try:
        from emulator.demo import bulk as seeder

        db_path = os.path.join(tmp, "emulator.sqlite3")
        seeder.seed_bulk(db_path, customers=args.customers, nodes=args.nodes, log=lambda m: None)
        emulator = Emulator(db_path=db_path, workers=2, threads=16)
        redis_server = RedisServer()
        parts += [emulator, redis_server]
        database_url = f"sqlite:///{os.path.join(tmp, 'dashboard.sqlite3')}"
        django_here(redis_server.url, tmp, database_url=database_url)
        bench_main(args, emulator, redis_server, database_url, parts)
    finally:
        stop_parts(parts, tmp)


def bench_main(args, emulator, redis_server, database_url: str, parts: list) -> None:
    import redis
    from celery import Celery
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from django.db.models import Count

    from dashboard.actions import bulk
    from dashboard.models import BulkBatch, BulkRow
    from dashboard.readmodel import ReadModel
    from dashboard.rules.bulk import Amount

    rm = ReadModel(redis.Redis.from_url(redis_server.url, decode_responses=True))
    celery = Celery(broker=redis_server.url, set_as_current=False)
    stack = {"rm": rm, "celery": celery}  # what sweep_window needs
    # 1. fill the read model, fast
    fill = CeleryWorker(django_env(redis_server.url, emulator, STIGG_MAX_RPS="100000", SYNC_SWEEP_BUDGET_SHARE="1",
                                   DATABASE_URL=database_url), concurrency=12)
    t = time.monotonic()
    celery.send_task("dashboard.tasks.sweep_customers", queue="sweep")
    wait_until(lambda: rm.customer_count() >= args.customers, 600, 1.0)
    fill.stop()
    say(f"read model filled: {rm.customer_count()} customers in {time.monotonic() - t:.0f} s")
    # 2. the stack under the 20 req/s rate limit
    env = django_env(redis_server.url, emulator, STIGG_MAX_RPS=str(MAX_RPS), STIGG_WEBHOOK_SECRET=SECRET,
                     SYNC_SWEEP_INTERVAL_SECONDS="86400", BULK_GRANT_RATE=str(args.bulk_rate),
                     DATABASE_URL=database_url, LOG_LEVEL="WARNING")
    web = WebServer(env)
    hot = CeleryWorker(env, beat=True, concurrency=4, queues="hot")
    parts += [web, hot, CeleryWorker(env, concurrency=8, queues="sweep")]
    emulator.data("PUT", "/_emulator/webhook", json={"url": f"{web.url}/webhooks/stigg", "secret": SECRET})
    metered = [cid for cid in rm.customer_ids() if any(
        e["feature_id"] == FEATURE and e["limit"] for e in rm.customer(cid)["entitlements"]["metered"])]
    rng = random.Random(5)
    rows = rng.sample(metered, min(args.rows, len(metered)))
    others = [cid for cid in rm.customer_ids() if cid not in set(rows)]
    control = set(rng.sample(others, min(200, len(others) // 2)))  # read only by the sweep
    probed = [cid for cid in others if cid not in control]
    say(f"\nStigg rate limit {MAX_RPS} req/s: sweep share {0.6 * MAX_RPS:g}, hot tier {0.25 * MAX_RPS:g}, "
        f"bulk job {args.bulk_rate:g} (BULK_GRANT_RATE); webhooks and writes the whole rate")

    say("\n-- baseline: a steady sweep, webhook changes every "
        f"{args.probe_every:g} s --")
    probe = WebhookProbe(emulator, rm, probed, args.probe_every)
    probe.start()
    started = time.time()
    sweep_s, done = sweep_window(stack, control, 900)
    probe.stop.set()
    probe.join()
    total, mean, most = stigg_saw(emulator, int(started) + 1, int(time.time()))
    say(f"sweep of {args.customers} customers       {sweep_s:7.1f} s{'' if done else ' (TIMED OUT)'}")
    say(f"Stigg saw                        {total:7d} requests, {mean:.1f} req/s, at most {most} in one second")
    say(f"webhooks                         {lag_words(probe)}")

    say(f"\n-- with a bulk grant of {len(rows)} customers running --")
    user_model = get_user_model()
    author = user_model.objects.create_user("bench-cs")
    lead = user_model.objects.create_user("bench-lead")
    lead.groups.add(Group.objects.get(name="Customer success lead"))
    wanted = [bulk.Wanted(cid, FEATURE, Amount("percent", percent=50), "1 month") for cid in rows]
    t = time.monotonic()
    batch = bulk.dry_run(rm, wanted, user=author, source=BulkBatch.Source.CSV, summary="bench", reason="bench",
                         ticket="", token=uuid.uuid4())
    ticked = list(batch.rows.filter(selected=True).values_list("pk", flat=True))
    say(f"dry run of {len(rows)} rows: {time.monotonic() - t:.1f} s in-process; {len(ticked)} ticked")
    status = bulk.confirm(batch, ticked, user=author)
    say(f"confirmed: {status} ({'; '.join(BulkBatch.objects.get(pk=batch.pk).why)})")
    probe = WebhookProbe(emulator, rm, probed, args.probe_every)
    probe.start()
    started, hot_log_from = time.time(), len(hot.log())
    bulk.approve(BulkBatch.objects.get(pk=batch.pk), user=lead, reason="bench")
    sweep_s2, done2 = sweep_window(stack, control, 900)
    sweep_end = time.time()
    finished = wait_until(lambda: BulkBatch.objects.get(pk=batch.pk).status == "finished", 3600, 1.0)
    bulk_s = time.time() - started
    probe.stop.set()
    probe.join()
    states = dict(BulkRow.objects.filter(batch=batch).values("state").annotate(n=Count("id"))
                  .values_list("state", "n"))
    total, mean, most = stigg_saw(emulator, int(started) + 1, int(time.time()))
    s_total, s_mean, s_most = stigg_saw(emulator, int(started) + 1, int(sweep_end))
    bulk_requests = 3 * states.get("done", 0) + states.get("failed", 0)
    say(f"bulk grant of {len(rows)} customers   {bulk_s:7.1f} s{'' if finished else ' (TIMED OUT)'}  "
        f"rows {states}, ~{bulk_requests} requests = {bulk_requests / bulk_s:.1f} req/s")
    say(f"sweep of {args.customers} customers       {sweep_s2:7.1f} s{'' if done2 else ' (TIMED OUT)'}  "
        f"(alone: {sweep_s:.1f} s)")
    say(f"Stigg saw while both ran         {s_total:7d} requests, {s_mean:.1f} req/s, at most {s_most} in one second")
    say(f"Stigg saw over the whole bulk    {total:7d} requests, {mean:.1f} req/s, at most {most} in one second")
    say(f"webhooks                         {lag_words(probe)}")
    say(f"the hot queue meanwhile          {hot_queue_words(hot.log()[hot_log_from:])}")


def hot_queue_words(log: str) -> str:
    """What the hot queue's tasks did, from the worker's log: refreshes webhooks queued (those
    that found the customer read since the event arrived asked Stigg nothing) and the
    customers the hot tier polled."""
    outcomes = re.findall(r"refresh_customer_now\[[^]]+\] succeeded in [0-9.]+s: '(\w+)'", log)
    polled = sum(int(n) for n in re.findall(r"sweep_hot_customers\[[^]]+\] succeeded in [0-9.]+s: "
                                            r"\{[^}]*'refreshed': (\d+)", log))
    counts = {o: outcomes.count(o) for o in sorted(set(outcomes))}
    return f"webhook refreshes {counts}; hot-tier polls {polled} customers"


if __name__ == "__main__":
    main()
