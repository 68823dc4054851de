"""Near-limit benchmark: the page's server time, the CSV, and the read model's memory at
10,000 customers, ~100,600 budgets and ~46,000 metered entitlements
(bench_read_model.governed_fleet: the bulk seeder's hierarchies with usage; ~28,000 rows at
>= 80 %, ~134,000 with a utilization).

1. Fills a read model in its own redis-server with ``ReadModel.write_customer``, as the
   sync writes it, and prints Redis ``used_memory`` for the whole read model and for the
   near-limit keys alone. ``--before REV`` fills the same world with the code of another
   revision (default: where this branch left main), in a subprocess and another
   redis-server, for the figure before the index.
2. Times ``/near-limit/`` through Django's full request handling in-process (middleware,
   session, auth, view, templates), as bench_pages.py does: p50 / p95 over ``--requests``
   requests after a warm-up, for the top 50 unfiltered in each order, each filter alone
   (a common and a rare value) and a few combinations, a later page and the htmx partial;
   then the read-model call alone (p50) and Redis's own time in it (SLOWLOG), which
   other processes sharing the cores disturb less, and how it was read.
3. Streams ``/near-limit.csv?min_utilization=0`` (every row with a utilization, ~134,000):
   its time, then its peak Python memory under tracemalloc.

    .venv/bin/python bench/bench_near_limit.py [--requests N] [--before REV | --before none]
                                               [--only TEXT] [--skip-csv]

Prints figures; asserts nothing. Everything runs on 127.0.0.1 and stops by itself.
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.figures import say  # noqa: E402
from bench.harness import django_here, say_header, signed_in_client, time_page  # noqa: E402
from tests.servers import RedisServer  # noqa: E402

MIB = 2 ** 20

# Fill a read model with governed_fleet and print its memory: run by --before in a copy of
# another revision (with this revision's world generator copied in).
FILL = """
import sys, redis
sys.path.insert(0, ".")
from bench.bench_read_model import governed_fleet
from dashboard.readmodel import ReadModel
client = redis.Redis.from_url(sys.argv[1], decode_responses=True)
base = client.info("memory")["used_memory"]
rm = ReadModel(client, prefix="bench:rm:")
for doc, gov in governed_fleet():
    rm.write_customer(doc, gov)
print(client.info("memory")["used_memory"] - base)
"""


def memory_before(rev: str) -> float | None:
    """The world's read model in MiB, written by the code of ``rev``."""
    tree = tempfile.mkdtemp(prefix="bench-near-limit-before-")
    server = RedisServer()
    try:
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev], check=True, capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", tree], input=archive, check=True)
        for path in ("bench/bench_read_model.py", "bench/figures.py"):  # the same world, whatever the revision
            shutil.copy(ROOT / path, Path(tree) / path)
        out = subprocess.run([sys.executable, "-c", FILL, server.url], cwd=tree, check=True, capture_output=True,
                             text=True, env={**os.environ, "PYTHONPATH": tree}).stdout
        return int(out.split()[-1]) / MIB
    finally:
        server.stop()
        shutil.rmtree(tree, ignore_errors=True)


def near_limit_keys_mib(client, prefix: str) -> float:
    keys = [*client.scan_iter(match=prefix + "near:*", count=1000), prefix + "rank:entitlements:usage",
            prefix + "rank:entitlements:urgency"]
    return sum(client.memory_usage(k, samples=0) or 0 for k in keys) / MIB


def query_of(text: str) -> tuple[Any, int]:
    """The NearLimitQuery and offset of a case's query string."""
    from dashboard.readmodel import NearLimitQuery

    params = {k: v[0] for k, v in parse_qs(text).items()}
    offset = int(params.pop("offset", 0))
    params["min_utilization"] = float(params.get("min_utilization", 0.8))
    return NearLimitQuery(**params), offset


def read_model_cost(rm: Any, text: str, calls: int = 30) -> tuple[float, float, str]:
    """The read-model call alone (rows included): p50 ms; Redis's own time per call (every
    command's duration in SLOWLOG, logged for all of them meanwhile, scripts as one); and
    how the query was read."""
    query, offset = query_of(text)
    rm.r.config_set("slowlog-max-len", 100_000)
    rm.r.config_set("slowlog-log-slower-than", 0)
    rm.r.slowlog_reset()
    times = []
    for _ in range(calls):
        t0 = time.perf_counter()
        rm.near_limit_page(query, offset, 50)
        times.append((time.perf_counter() - t0) * 1000)
    entries = rm.r.slowlog_get(100_000)
    rm.r.config_set("slowlog-log-slower-than", 10_000)
    usec = sum(e["duration"] for e in entries
               if not str(e["command"]).upper().lstrip("B'").startswith(("SLOWLOG", "CONFIG")))
    strategy = getattr(rm, "near_limit_strategy", None)  # (older revisions, timed for comparison, lack it)
    return statistics.median(times), usec / 1000 / calls, strategy(query) if strategy else "?"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=200, help="timed requests per case")
    parser.add_argument("--before", default="", help="revision for the memory before the index ('none': skip)")
    parser.add_argument("--only", default="", help="time only the cases whose label holds this text")
    parser.add_argument("--skip-csv", action="store_true", help="leave the CSV out")
    args = parser.parse_args()

    tmp = tempfile.mkdtemp(prefix="bench-near-limit-")
    redis_server = RedisServer()
    try:
        django_here(redis_server.url, tmp, prefix="bench:rm:")
        from django.urls import reverse

        from bench.bench_read_model import fill_governed
        from dashboard import tasks
        from dashboard.readmodel import NearLimitQuery

        rm = tasks.read_model()
        base = rm.r.info("memory")["used_memory"]
        say(fill_governed(rm))
        after = (rm.r.info("memory")["used_memory"] - base) / MIB
        say(f"read model in Redis: {after:.1f} MiB (near:* keys and the entitlements' usage and urgency "
            f"rankings: {near_limit_keys_mib(rm.r, rm.prefix):.1f} MiB; the facets in ranking members are "
            f"in the rest)")
        before_rev = args.before or subprocess.run(["git", "-C", str(ROOT), "merge-base", "HEAD", "main"],
                                                   capture_output=True, text=True).stdout.strip()
        if before_rev and before_rev != "none":
            before = memory_before(before_rev)
            say(f"before (the same world written by {before_rev[:10]}): {before:.1f} MiB; "
                f"difference {after - before:+.1f} MiB")
        q = NearLimitQuery()
        say(f"rows at >= 80 %: {rm.near_limit_page(q).total:,}; with a utilization: "
            f"{rm.near_limit_page(NearLimitQuery(min_utilization=0)).total:,}")

        browser = signed_in_client()
        url = reverse("near-limit")
        htmx = {"HTTP_HX_REQUEST": "true", "HTTP_HX_TARGET": "near-limit-table"}
        cases: list[tuple[str, str, dict]] = [
            ("top 50, by utilization", "", {}),
            ("top 50, by usage", "order=usage", {}),
            ("top 50, by urgency", "order=urgency", {}),
            ("page 10 (offset 450), by urgency", "order=urgency&offset=450", {}),
            ("htmx partial (polled)", "", htmx),
            ("customer: a governed one (~200 budgets)", "customer=cust-00007", {}),
            ("customer: a small one", "customer=cust-05005", {}),
            ("capability: ai-tokens (most budgets)", "capability=ai-tokens", {}),
            ("capability: api (entitlements only)", "capability=api", {}),
            ("capability: $credits (rare: 140 rows)", f"capability={quote('$credits')}", {}),
            ("entity_type: user", "entity_type=user", {}),
            ("entity_type: org (rare: 500 rows)", "entity_type=org", {}),
            ("plan: enterprise", "plan=enterprise", {}),
            ("plan: free (no budgets)", "plan=free", {}),
            ("owner: one of 12", f"owner={quote('Wei Chen')}", {}),
            ("owner + plan: pro", f"owner={quote('Wei Chen')}&plan=pro", {}),
            ("owner + entity_type, by urgency", f"owner={quote('Wei Chen')}&entity_type=user&order=urgency", {}),
            ("capability + entity_type, by usage", "capability=ai-tokens&entity_type=team&order=usage", {}),
            ("$credits, by usage, >= 0 %", f"capability={quote('$credits')}&order=usage&min_utilization=0", {}),
            # rare values (a few hundred to a few thousand rows) at a threshold of 0, where a walk
            # of the rankings would find them last
            ("$credits, by urgency, >= 0 %", f"capability={quote('$credits')}&order=urgency&min_utilization=0", {}),
            ("$credits, by utilization, >= 0 %", f"capability={quote('$credits')}&min_utilization=0", {}),
            ("entity_type: org, by usage, >= 0 %", "entity_type=org&order=usage&min_utilization=0", {}),
            ("entity_type: org, by urgency, >= 0 %", "entity_type=org&order=urgency&min_utilization=0", {}),
            ("entity_type: department, by usage, >= 0 %", "entity_type=department&order=usage&min_utilization=0",
             {}),
            ("capability: storage, by usage, >= 0 %", "capability=storage&order=usage&min_utilization=0", {}),
            ("org + owner, by usage, >= 0 %", f"entity_type=org&owner={quote('Wei Chen')}&order=usage"
                                              "&min_utilization=0", {}),
            ("$credits + plan, page 2, >= 0 %", f"capability={quote('$credits')}&plan=enterprise&order=usage"
                                                "&min_utilization=0&offset=50", {}),
            ("customer: a governed one, by usage, >= 0 %", "customer=cust-00007&order=usage&min_utilization=0", {}),
            # common values (~20,000 rows) that sit low in an order: still a walk (bench/README.md)
            ("capability: agent-runs, by usage, >= 0 %", "capability=agent-runs&order=usage&min_utilization=0",
             {}),
            ("entity_type: agent, by usage, >= 0 %", "entity_type=agent&order=usage&min_utilization=0", {}),
        ]
        say_header("/near-limit/", args.requests)
        for label, query, headers in cases:
            if args.only and args.only not in label:
                continue
            time_page(label, browser, lambda query=query: f"{url}?{query}" if query else url, headers, args.requests)
            alone, in_redis, strategy = read_model_cost(rm, query)
            say(f"{'':<4}read model alone p50 {alone:.1f} ms, of it Redis {in_redis:.1f} ms ({strategy})")
        # My accounts: a customer-success manager (one of the world's 12 owners) whose page opens
        # on their accounts: the owner filter, set by their profile instead of the query
        csm = signed_in_client("bench-csm", account_owner="Wei Chen")
        owner = f"owner={quote('Wei Chen')}"
        for label, query, headers in (("My accounts (one of 12 owners), default", "", {}),
                                      ("My accounts, by urgency", "order=urgency", {}),
                                      ("My accounts, page 3", "offset=100", {}),
                                      ("My accounts, htmx partial (polled)", "", htmx)):
            if args.only and args.only not in label:
                continue
            time_page(label, csm, lambda query=query: f"{url}?{query}" if query else url, headers, args.requests)
            alone, in_redis, strategy = read_model_cost(rm, f"{owner}&{query}" if query else owner)
            say(f"{'':<4}read model alone p50 {alone:.1f} ms, of it Redis {in_redis:.1f} ms ({strategy})")

        if args.skip_csv:
            return
        csv_url = f"{reverse('near-limit-csv')}?min_utilization=0"
        t0 = time.perf_counter()
        lines = size = 0
        for chunk in browser.get(csv_url).streaming_content:
            lines, size = lines + 1, size + len(chunk)
        seconds = time.perf_counter() - t0
        say(f"\nCSV of {lines - 1:,} rows ({size / MIB:.1f} MiB): {seconds:.1f} s, {lines / seconds:,.0f} rows/s")
        tracemalloc.start()
        for _ in browser.get(csv_url).streaming_content:
            pass
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        say(f"CSV peak Python memory (tracemalloc): {peak / MIB:.1f} MiB")
    finally:
        redis_server.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
