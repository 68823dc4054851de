"""Scale benchmark (issue 11): the read model at 10x today's fleet — 100,000 customers and
1,000,000 governance budgets — filled by the real sweep, its memory, and every page's
server time on it.

1. Bulk-seeds an emulator (``--customers``, ``--nodes``: the bulk seeder's world, 5 % of the
   customers governed, ~200 entities each) and fills a Redis read model from it with the
   real sweep through two Celery workers (rate unlimited, as bench_pages.py); prints how
   long the first (discovery) sweep took, then usage history for ``--history-sample``
   customers.
2. Prints Redis ``used_memory`` of the whole read model and ``MEMORY USAGE`` per key family.
3. Times each page through Django's full request handling in-process (as bench_pages.py):
   overview, customers (filters, sorts, searches, My accounts), a customer, a governed
   customer's governance page, near-limit (orders, filters, a later page, the partial),
   expiring promotions, alerts; p50 / p95 over ``--requests`` requests after a warm-up.
4. ``/near-limit.csv``: builds its snapshot as the worker does (export_tasks.py; its time,
   rows and compressed size printed), then times the whole download p50 / p95 from the
   snapshot (the view as it opens, asked as a browser asks, with gzip, and without; My
   accounts), and once each read live (the same, snapshots off, and two filters): the
   time to the first row and to the end.

``--keep DIR`` keeps the seeded emulator and the filled read model (an RDB dump) in DIR and,
when they are there, starts from them instead of seeding and sweeping again (a page-only
rerun: minutes, not half an hour). Everything runs on 127.0.0.1 and stops by itself.

    .venv/bin/python bench/bench_scale.py                          # 100,000 / 1,000,000
    .venv/bin/python bench/bench_scale.py --keep /tmp/scale-world  # keep, or reuse, the world
    .venv/bin/python bench/bench_scale.py --customers 2000 --nodes 20000 --requests 20  # quick
"""
from __future__ import annotations

import argparse
import os
import random
import re
import shutil
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Callable
from urllib.parse import quote

import redis

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.figures import say  # noqa: E402
from bench.harness import (  # noqa: E402
    bulk_emulator, django_here, say_header, signed_in_client, stop_parts, time_page, time_requests,
)
from tests.servers import CeleryWorker, Emulator, RedisServer, django_env  # noqa: E402

MIB = 2 ** 20
PREFIX = "stiggadmin:rm:"


def fill_by_sweep(redis_server: RedisServer, emulator: Emulator, customers: int, timeout: float) -> None:
    """The first (discovery) sweep through two Celery workers until every customer is in."""
    from celery import Celery

    from dashboard import tasks

    env = django_env(redis_server.url, emulator, STIGG_MAX_RPS="100000", SYNC_SWEEP_BUDGET_SHARE="1",
                     READ_MODEL_PREFIX=PREFIX)
    workers = [CeleryWorker(env, concurrency=12, queues="sweep") for _ in range(2)]
    try:
        rm = tasks.read_model()
        started = time.monotonic()
        Celery(broker=redis_server.url).send_task("dashboard.tasks.sweep_customers", queue="sweep")
        last_said = started
        # Done when every customer has been read once and the sweep's queue is empty ("behind"
        # would never clear: a sweep this long makes its first customers older than that).
        while (rm.customer_count() < customers or rm.r.zcount(rm.keys.fetched_at(), "-inf", 0)
               or rm.r.llen("sweep")):
            if time.monotonic() - started > timeout:
                raise SystemExit(f"the sweep did not fill the read model in {timeout:.0f} s "
                                 f"({rm.customer_count():,} of {customers:,})")
            if time.monotonic() - last_said > 60:
                last_said = time.monotonic()
                say(f"  ... {rm.customer_count():,} customers after {last_said - started:.0f} s")
            time.sleep(0.5)
        say(f"first (discovery) sweep: {rm.customer_count():,} customers in {time.monotonic() - started:.1f} s")
        time.sleep(2)  # the last pages finish writing
    finally:
        for worker in workers:
            worker.stop()


def history_sample(rm, emulator: Emulator, sample: int) -> list[str]:
    """Usage history for ``sample`` customers with a metered entitlement (their charts)."""
    from dashboard import sync
    from dashboard.stigg import StiggClient

    rng = random.Random(4)
    ids = rm.customer_ids()
    metered = [cid for cid in rng.sample(ids, min(len(ids), sample * 3))
               if (rm.customer(cid) or {}).get("entitlements", {}).get("metered")][:sample]
    client = StiggClient(emulator.url, emulator.key, timeout=30)
    for cid in metered:
        sync.refresh_usage_history(client, rm, cid, days=62)
    client.close()
    return metered


def alerts_of_fleet(rm) -> None:
    """The fleet's alerts in this process's database, as the sweep's evaluations open them
    (a page's nav counts the open ones): one full pass unless they are there already."""
    from datetime import datetime, timezone

    from dashboard.alerts import evaluate, subjects
    from dashboard.models import Alert

    if not Alert.objects.exists():
        started = time.monotonic()
        evaluate.evaluate_fleet(rm, datetime.now(timezone.utc), subjects.thresholds())
        say(f"alerts of the fleet evaluated in {time.monotonic() - started:.0f} s")
    say(f"open alerts: {Alert.objects.filter(state='open').count():,}")


def memory_report(client, before: int) -> None:
    used = client.info("memory")["used_memory"] - before
    say(f"read model in Redis: {used / MIB:,.0f} MiB ({used / 1e9:.2f} GB) used_memory")
    families, counts = Counter(), Counter()
    for key in client.scan_iter(match=PREFIX + "*", count=5000):
        family = re.sub(r"^(customer|gov):[^:]+", r"\1:{id}", key[len(PREFIX):])
        family = re.sub(r"(owner|plan|status|rare:[a-z_]+|customers:[a-z]+):[^:]+", r"\1:*", family)
        families[family] += client.memory_usage(key, samples=0) or 0
        counts[family] += 1
    for family, size in families.most_common(14):
        say(f"  {size / MIB:9.1f} MiB {counts[family]:>9,} keys  {family}")
    say(f"  {sum(families.values()) / MIB:9.1f} MiB in all keys")


def page_cases(rm, metered: list[str], rng: random.Random) -> list[tuple[str, object, dict, str]]:
    """(label, url or url maker, headers, who) for every page kind."""
    from django.urls import reverse

    from emulator.demo.company import ACCOUNT_OWNERS

    htmx = {"HTTP_HX_REQUEST": "true"}
    ids = rm.customer_ids()
    some = rm.customers_page(limit=1, offset=len(ids) // 2).rows[0]
    common = (some.name or "a").split()[0][:4].lower()
    plans = [p for p, _ in rm.plans()]
    customers, near = reverse("customers"), reverse("near-limit")
    governed = rm.customers_page(plan="enterprise", limit=1).rows[0].id if "enterprise" in plans else metered[0]
    gov = reverse("customer-governance", args=[governed])
    roots = [n["id"] for n in rm.governance_level(governed)] or [""]
    owner = quote(ACCOUNT_OWNERS[0])
    table = {**htmx, "HTTP_HX_TARGET": "customer-table"}
    return [
        ("overview (full page)", reverse("overview"), {}, "all"),
        ("overview (live partial, polled)", reverse("overview"), {**htmx, "HTTP_HX_TARGET": "overview-live"}, "all"),
        ("customers: first page by name", customers, {}, "all"),
        ("customers: by highest utilization", f"{customers}?sort=utilization", {}, "all"),
        ("customers: page 1,000 by name", f"{customers}?offset={min(49_950, len(ids) // 2)}", {}, "all"),
        (f"customers: search '{common}' (htmx)", f"{customers}?q={common}", table, "all"),
        (f"customers: search '{common}', by utilization", f"{customers}?q={common}&sort=utilization", table, "all"),
        ("customers: search one id", f"{customers}?q={some.id}", table, "all"),
        ("customers: search, no match", f"{customers}?q=zzqx", table, "all"),
        ("customers: search 'labs' (common word)", f"{customers}?q=labs", table, "all"),
        ("customers: plan + status, by utilization", f"{customers}?plan={plans[0]}&status=ACTIVE&sort=utilization",
         {}, "all"),
        ("customers, My accounts: first page", customers, {}, "mine"),
        (f"customers, My accounts: search '{common}'", f"{customers}?q={common}", table, "mine"),
        ("customer page (full, with charts)", lambda: reverse("customer", args=[rng.choice(metered)]), {}, "all"),
        ("customer page (live partial, polled)", lambda: reverse("customer", args=[rng.choice(metered)]),
         {**htmx, "HTTP_HX_TARGET": "customer-live"}, "all"),
        ("governance: tree, first paint", gov, {}, "all"),
        ("governance: a department open", lambda: f"{gov}?open={rng.choice(roots)}", {}, "all"),
        ("governance: ranked list", f"{gov}?view=ranked", {}, "all"),
        ("governance: search", f"{gov}?q=team-1", {**htmx, "HTTP_HX_TARGET": "governance-body"}, "all"),
        ("governance: sunburst (htmx)", f"{gov}?chart=sunburst", {**htmx, "HTTP_HX_TARGET": "sunburst"}, "all"),
        ("near-limit: top 50, by utilization", near, {}, "all"),
        ("near-limit: top 50, by usage", f"{near}?order=usage", {}, "all"),
        ("near-limit: top 50, by urgency", f"{near}?order=urgency", {}, "all"),
        ("near-limit: page 10, by urgency", f"{near}?order=urgency&offset=450", {}, "all"),
        ("near-limit: htmx partial (polled)", near, {**htmx, "HTTP_HX_TARGET": "near-limit-table"}, "all"),
        ("near-limit: one governed customer", f"{near}?customer={quote(governed)}", {}, "all"),
        ("near-limit: capability agent-runs", f"{near}?capability=agent-runs", {}, "all"),
        ("near-limit: entity_type org", f"{near}?entity_type=org", {}, "all"),
        ("near-limit: entity_type department, by usage", f"{near}?entity_type=department&order=usage", {}, "all"),
        ("near-limit: plan enterprise", f"{near}?plan=enterprise", {}, "all"),
        ("near-limit: owner", f"{near}?owner={owner}", {}, "all"),
        ("near-limit: owner + entity_type, by urgency", f"{near}?owner={owner}&entity_type=user&order=urgency",
         {}, "all"),
        ("near-limit: org, by usage, >= 0 %", f"{near}?entity_type=org&order=usage&min_utilization=0", {}, "all"),
        ("near-limit, My accounts", near, {}, "mine"),
        ("promotions expiring", reverse("promotions-expiring"), {}, "all"),
        ("alerts", reverse("alerts"), {}, "all"),
    ]


def time_csv(browser, url: str) -> None:
    """One download read live, as the client reads it: the first row, and the end."""
    started = time.perf_counter()
    first = None
    lines = size = 0
    response = browser.get(url)
    if "X-Snapshot-At" in response:
        raise SystemExit(f"{url} came from the snapshot; this times the live read")
    for chunk in response.streaming_content:
        if first is None and b"\n" in chunk:
            first = time.perf_counter() - started
        lines, size = lines + chunk.count(b"\n"), size + len(chunk)
    seconds = time.perf_counter() - started
    say(f"{url} (live): {lines - 1:,} rows ({size / MIB:.1f} MiB); first row after {first * 1000:.0f} ms, "
        f"all of it in {seconds:.1f} s ({lines / seconds:,.0f} rows/s)")


def time_csvs(browsers: dict, requests: int) -> None:
    """The near-limit CSV: its snapshot built as the worker builds it, whole downloads of it
    timed, then live reads (snapshots off, and filters no snapshot has)."""
    from django.conf import settings
    from django.urls import reverse

    from dashboard.export_tasks import snapshot_near_limit_csv
    from emulator.demo.company import ACCOUNT_OWNERS

    say(f"\nnear-limit CSV snapshot built: {snapshot_near_limit_csv()}")
    url = reverse("near-limit-csv")

    def download(browser, headers: dict) -> Callable:
        def send() -> tuple:
            response = browser.get(url, **headers)
            if "X-Snapshot-At" not in response:
                raise SystemExit(f"{url} was read live: no fresh snapshot")
            size = sum(len(chunk) for chunk in response.streaming_content)
            return response, f"{url} ({size / MIB:.1f} MiB)"
        return send

    say_header("near-limit CSV, whole download", requests)
    gzip = {"HTTP_ACCEPT_ENCODING": "gzip, deflate, br"}  # as a browser asks
    time_requests("/near-limit.csv (snapshot, gzip)", download(browsers["all"], gzip), requests)
    time_requests("/near-limit.csv (snapshot, no gzip)", download(browsers["all"], {}), requests)
    time_requests("/near-limit.csv, My accounts (snapshot, gzip)", download(browsers["mine"], gzip), requests)
    interval = settings.NEAR_LIMIT_CSV_SNAPSHOT_SECONDS
    settings.NEAR_LIMIT_CSV_SNAPSHOT_SECONDS = 0
    try:
        for live in (url, f"{url}?entity_type=user", f"{url}?owner={quote(ACCOUNT_OWNERS[0])}&plan=enterprise"):
            time_csv(browsers["all"], live)
    finally:
        settings.NEAR_LIMIT_CSV_SNAPSHOT_SECONDS = interval


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--nodes", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=100, help="timed requests per page")
    parser.add_argument("--history-sample", type=int, default=100)
    parser.add_argument("--sweep-timeout", type=float, default=3600)
    parser.add_argument("--keep", default="", help="keep (or reuse) the seeded world and the read model here")
    parser.add_argument("--only", default="", help="time only the pages whose label holds this text")
    args = parser.parse_args()

    tmp = tempfile.mkdtemp(prefix="bench-scale-")
    keep = Path(args.keep) if args.keep else None
    reuse = keep is not None and (keep / "dump.rdb").exists() and (keep / "emulator.sqlite3").exists()
    parts: list = []
    try:
        redis_server = RedisServer(dump=str(keep / "dump.rdb") if reuse else None)
        parts.append(redis_server)
        django_here(redis_server.url, tmp, prefix=PREFIX)
        from dashboard import tasks

        rm = tasks.read_model()
        if reuse:
            emulator = Emulator(db_path=str(keep / "emulator.sqlite3"), workers=2, threads=32)
            parts.append(emulator)
            say(f"reused the world in {keep}: {rm.customer_count():,} customers")
            metered = [cid for cid in rm.customer_ids() if rm.r.exists(rm.keys.history(cid))]
            if not metered:
                metered = history_sample(rm, emulator, args.history_sample)
        else:
            if keep:
                keep.mkdir(parents=True, exist_ok=True)
            if keep and (keep / "emulator.sqlite3").exists():  # seeded before, not yet swept
                emulator = Emulator(db_path=str(keep / "emulator.sqlite3"), workers=2, threads=32)
                say(f"reused the seeded emulator in {keep}")
            else:
                emulator = bulk_emulator(str(keep or tmp), args.customers, args.nodes)
            parts.append(emulator)
            before = rm.r.info("memory")["used_memory"]
            fill_by_sweep(redis_server, emulator, args.customers, args.sweep_timeout)
            memory_report(rm.r, before)
            metered = history_sample(rm, emulator, args.history_sample)
            say(f"usage history fetched for {len(metered)} customers")
            if keep:  # SAVE of gigabytes outlasts the read model client's socket timeout
                redis.Redis.from_url(redis_server.url, socket_timeout=None).save()
                shutil.copy(os.path.join(redis_server.dir, "dump.rdb"), keep / "dump.rdb")
                say(f"kept the world and its read model in {keep}")

        alerts_of_fleet(rm)
        from emulator.demo.company import ACCOUNT_OWNERS

        browsers = {"all": signed_in_client(), "mine": signed_in_client("bench-csm", account_owner=ACCOUNT_OWNERS[0])}
        rng = random.Random(5)
        say_header("page", args.requests)
        for label, url, headers, who in page_cases(rm, metered, rng):
            if args.only and args.only not in label:
                continue
            time_page(label, browsers[who], url if callable(url) else (lambda url=url: url), headers, args.requests)
        if not args.only or "csv" in args.only:
            time_csvs(browsers, args.requests)
    finally:
        stop_parts(parts, tmp)


if __name__ == "__main__":
    main()
