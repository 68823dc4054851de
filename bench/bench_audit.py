"""Audit log benchmark: the page's server time and the CSV at 100,000 audit rows.

1. Fills the audit log with ``--rows`` rows (default 100,000) in one year: the five actions
   mixed as a customer-success team makes them, ~200 customers, 10 people, promotions'
   and budgets' JSON as the actions record it, Stigg's answers, ~8 % failed; some rows
   share a timestamp (a script's burst), as keyset paging must handle.
2. Times ``/audit/`` through Django's full request handling in this process (middleware,
   session, auth and permission, view, template): p50 / p95 over ``--requests`` requests
   after a warm-up, for the first page, a page 90,000 rows deep by cursor and the way back,
   each filter alone and a few together, and the htmx partial. ``--explain`` prints the
   plan of every query a case sends to the audit table (SQLite: EXPLAIN QUERY PLAN;
   PostgreSQL: EXPLAIN ANALYZE).
3. Streams ``/audit.csv`` of every row: its time, then its peak Python memory under
   tracemalloc.

    .venv/bin/python bench/bench_audit.py [--rows N] [--requests N] [--explain]
        [--postgres postgresql://postgres@127.0.0.1:5432/test]

SQLite by default (a new file); with ``--postgres`` a throwaway database is created on
that server (from the given database's connection) and dropped at the end. Prints
figures; asserts nothing. Everything runs on 127.0.0.1 and stops by itself.
"""
from __future__ import annotations

import argparse
import json
import random
import shutil
import sys
import tempfile
import time
import tracemalloc
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Iterator
from urllib.parse import quote, urlencode

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.figures import say  # noqa: E402
from bench.harness import django_here, say_header, signed_in_client, time_page  # noqa: E402
from tests.servers import RedisServer  # noqa: E402

MIB = 2 ** 20
USERS = ("ada.lovelace", "grace.hopper", "wei.chen", "noor.khan", "sam.okafor", "lena.muller", "raj.patel",
         "ines.ferreira", "tom.baker", "yuki.tanaka")
ACTIONS = (("budget.change", 35), ("budget.add", 8), ("promotion.grant", 30), ("promotion.extend", 15),
           ("promotion.revoke", 12))
FEATURES = (("api-calls", "MONTH"), ("ai-tokens", "MONTH"), ("agent-runs", "WEEK"), ("seats", None),
            ("storage-gb", None), ("export-formats", None))
ENTITIES = ("research", "platform", "support-bots", "data-eng", "ada", "ingest-agent", "eu-sales", "ml-team")
REASONS = ("Script blew through the API quota; extra for the rest of the period",
           "Early access for the launch, agreed with their CSM", "Enterprise accommodation while the contract renews",
           "Raised for the quarter-end batch jobs", "Back to plan after the pilot", "Customer asked on the QBR call",
           "Agent loop burned the weekly budget; unblocking while they fix it", "Trial extended by sales")
PERIODS = ("1 week", "1 month", "6 months", "1 year", "lifetime", "custom")


def promotion(rng: random.Random, at: datetime, feature: str, reset: str | None) -> dict[str, Any]:
    unlimited = rng.random() < .1
    return {"feature": feature, "limit": None if unlimited or feature == "export-formats" else rng.choice(
                (1000, 5000, 20_000, 250_000, 1_000_000)),
            "unlimited": unlimited, "soft_limit": rng.random() < .3, "reset_period": reset,
            "enum_values": ["csv", "parquet"] if feature == "export-formats" else [],
            "period": (period := rng.choice(PERIODS)),
            "end_date": None if period == "lifetime" else (at + timedelta(days=rng.choice((7, 30, 182, 365)))).isoformat()}


def rows(count: int, seed: int = 9) -> Iterator[dict[str, Any]]:
    """The log's rows, oldest first (ids grow with time, as they do)."""
    rng = random.Random(seed)
    customers = [f"cust-{i:05d}" for i in range(200)]
    now = datetime.now(timezone.utc).replace(microsecond=0)
    times = sorted(now - timedelta(seconds=rng.randrange(365 * 86400)) for _ in range(count))
    actions, weights = zip(*ACTIONS)
    for i, at in enumerate(times):
        if i and rng.random() < .05:  # a burst from a script: the same second as the row before
            at = times[i - 1]
        action = rng.choices(actions, weights)[0]
        customer, user = rng.choice(customers), rng.choice(USERS)
        feature, reset = rng.choice(FEATURES)
        failed = rng.random() < .08
        if action.startswith("budget"):
            scope = rng.choice(([], [], ["ada"], ["ada", "ingest-agent"]))
            cadence = rng.choice(("P1M", "P1W", "P1D"))
            before = None if action == "budget.add" else {"limit": rng.choice((100, 1000, 5000)), "cadence": cadence,
                                                           "scope": scope}
            after = {"limit": rng.choice((2000, 10_000, None)), "cadence": cadence, "scope": scope}
            entity, capability = rng.choice(ENTITIES), rng.choice((feature, feature, "$credits"))
        else:
            scope, entity, capability = [], "", feature
            granted = promotion(rng, at, feature, reset)
            before = None if action == "promotion.grant" and rng.random() < .7 else granted
            after = None if action == "promotion.revoke" else (
                {**granted, "end_date": (at + timedelta(days=60)).isoformat()} if action == "promotion.extend"
                else promotion(rng, at, feature, reset))
        status = rng.choice((409, 422, 503, None)) if failed else 200
        answer = ("timed out after 5.0 s" if status is None else json.dumps(
            {"error": {"code": "Conflict" if status == 409 else "Invalid", "message": "limit must be >= 0",
                       "traceId": uuid.UUID(int=rng.getrandbits(128)).hex}}) if failed else json.dumps(
            {"data": {"customerId": customer, "featureId": feature, "entityId": entity or None, "usageLimit": 20_000,
                      "updatedAt": at.isoformat(), "id": f"{action}-{i}"}}))
        yield {"at": at, "username": user, "customer_id": customer, "action": action, "entity_id": entity,
               "capability": capability, "scope": scope, "before": before, "after": after,
               "reason": rng.choice(REASONS),
               "ticket": rng.choice(("", f"https://support.example.com/tickets/{rng.randrange(10**5)}",
                                     f"ZD-{rng.randrange(10**4)}")),
               "stigg_status": status, "stigg_answer": answer, "outcome": "failed" if failed else "done",
               "idempotency_key": uuid.UUID(int=rng.getrandbits(128))}


def fill(count: int) -> None:
    from django.contrib.auth import get_user_model
    from django.db import connection

    from dashboard.models import AuditEntry

    people = {name: get_user_model().objects.create_user(name) for name in USERS}
    batch: list[AuditEntry] = []
    for values in rows(count):
        batch.append(AuditEntry(user=people[values["username"]], **values))
        if len(batch) == 2000:
            AuditEntry.objects.bulk_create(batch)
            batch = []
    AuditEntry.objects.bulk_create(batch)
    if connection.vendor == "postgresql":  # what autovacuum does after so many inserts
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE dashboard_auditentry")


def cursor_at(depth: float, **filters: str) -> tuple[int, str]:
    """How many rows down ``depth`` (0-1) of the rows matching ``filters`` is, and the cursor
    of the page starting there (found once, untimed)."""
    from dashboard.auditlog import AuditFilters, Cursor

    query = AuditFilters(**filters).queryset().order_by("-at", "-id")
    offset = max(1, int(query.count() * depth))
    return offset, str(Cursor.older_than(query[offset - 1]))


def explain(browser: Any, url: str) -> None:
    """The plan of every query one request sends to the audit table."""
    from django.db import connection

    sent: list[tuple[str, Any]] = []

    def keep(execute, sql, params, many, context):
        if "dashboard_auditentry" in sql:
            sent.append((sql, params))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(keep):
        browser.get(url)
    prefix = "EXPLAIN QUERY PLAN " if connection.vendor == "sqlite" else "EXPLAIN (ANALYZE, COSTS OFF) "
    with connection.cursor() as cursor:
        for sql, params in sent:
            cursor.execute(prefix + sql, params)
            plan = [str(row[-1]).strip() for row in cursor.fetchall()]
            say("      " + " / ".join(line for line in plan if not line.startswith(("Planning", "Execution")) or
                                      line.startswith("Execution")))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=200, help="timed requests per case")
    parser.add_argument("--explain", action="store_true", help="print each case's query plans")
    parser.add_argument("--postgres", default="", help="a PostgreSQL URL to make a throwaway database from")
    args = parser.parse_args()

    tmp = tempfile.mkdtemp(prefix="bench-audit-")
    redis_server = RedisServer()
    database, admin = "", None
    try:
        if args.postgres:
            import psycopg

            admin = psycopg.connect(args.postgres, autocommit=True)
            name = f"bench_audit_{uuid.uuid4().hex[:8]}"
            admin.execute(f'CREATE DATABASE "{name}"')
            database = f"{args.postgres.rsplit('/', 1)[0]}/{name}"
        django_here(redis_server.url, tmp, prefix="bench:rm:", database_url=database)
        from django.contrib.auth.models import Group
        from django.db import connection
        from django.urls import reverse

        t = time.monotonic()
        fill(args.rows)
        say(f"{connection.vendor}: filled {args.rows:,} audit rows in {time.monotonic() - t:.1f} s")
        browser = signed_in_client()
        from django.contrib.auth import get_user_model

        get_user_model().objects.get(username="bench").groups.add(Group.objects.get(name="Viewers"))
        url = reverse("audit-log")
        htmx = {"HTTP_HX_REQUEST": "true", "HTTP_HX_TARGET": "audit-table"}
        customer, user = "cust-00042", "wei.chen"
        week = (datetime.now(timezone.utc) - timedelta(days=100)).date()
        deep, deep_cursor = cursor_at(.9)
        customer_deep = cursor_at(.8, customer=customer)
        user_deep = cursor_at(.9, user=user)
        add_deep = cursor_at(.9, action="budget.add")
        cases: list[tuple[str, dict[str, str], dict]] = [
            ("first page", {}, {}),
            (f"page {deep:,} rows deep (cursor)", {"cursor": deep_cursor}, {}),
            ("newer, from there (cursor)", {"cursor": "newer." + deep_cursor.split(".", 1)[1]}, {}),
            ("htmx partial (filter or pager)", {}, htmx),
            ("customer: one of 200", {"customer": customer}, {}),
            (f"customer, {customer_deep[0]:,} rows deep", {"customer": customer, "cursor": customer_deep[1]}, {}),
            ("user: one of 10", {"user": user}, {}),
            (f"user, {user_deep[0]:,} rows deep", {"user": user, "cursor": user_deep[1]}, {}),
            ("action: promotion.revoke (12 %)", {"action": "promotion.revoke"}, {}),
            (f"action: budget.add (8 %), {add_deep[0]:,} deep", {"action": "budget.add", "cursor": add_deep[1]}, {}),
            ("since + until: one week, 100 days ago", {"since": week.isoformat(),
                                                       "until": (week + timedelta(days=6)).isoformat()}, {}),
            ("since: the last 30 days", {"since": (datetime.now(timezone.utc) - timedelta(days=30)).date()
                                         .isoformat()}, {}),
            ("customer + action", {"customer": customer, "action": "promotion.grant"}, {}),
            ("user + action + a week", {"user": user, "action": "promotion.extend", "since": week.isoformat(),
                                        "until": (week + timedelta(days=6)).isoformat()}, {}),
            ("customer + user (rare)", {"customer": customer, "user": user}, {}),
            ("a mistyped user + action (no row)", {"user": "wei.chn", "action": "promotion.grant"}, {}),
            ("no row matches (customer=nobody)", {"customer": "nobody"}, {}),
            ("a bad filter (since=yesterday)", {"since": "yesterday"}, {}),
        ]
        say_header(f"/audit/ ({connection.vendor}, {args.rows:,} rows)", args.requests, cpu=True)
        for label, query, headers in cases:
            here = f"{url}?{urlencode(query, quote_via=quote)}" if query else url
            time_page(label, browser, lambda here=here: here, headers, args.requests, cpu=True)
            if args.explain:
                explain(browser, here)

        csv_url = reverse("audit-log-csv")
        for label, query in (("every row", ""), (f"customer {customer}", f"?customer={customer}")):
            t0 = time.perf_counter()
            lines = size = 0
            for chunk in browser.get(csv_url + query).streaming_content:
                lines, size = lines + chunk.count(b"\n"), size + len(chunk)
            seconds = time.perf_counter() - t0
            say(f"\nCSV, {label}: {lines - 1:,} rows ({size / MIB:.1f} MiB) in {seconds:.2f} s, "
                f"{lines / seconds:,.0f} rows/s")
        tracemalloc.start()
        for _ in browser.get(csv_url).streaming_content:
            pass
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        say(f"CSV of every row, peak Python memory (tracemalloc): {peak / MIB:.1f} MiB")
    finally:
        if admin is not None:
            from django.db import connections

            connections.close_all()
            admin.execute(f'DROP DATABASE IF EXISTS "{database.rsplit("/", 1)[1]}" WITH (FORCE)')
            admin.close()
        redis_server.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
