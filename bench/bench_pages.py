"""Page benchmark (issue 4): server time of the dashboard's pages with 10,000 customers
in the read model.

1. Bulk-seeds an emulator with 10,000 customers and 100,000 governance nodes (the same
   world as bench_sync.py) and fills a Redis read model from it with the real sweep,
   through real Celery workers; then fetches usage history for a sample of customers.
2. Times each page through Django's full request handling in this process (middleware,
   session, auth, the view, template rendering): the server time of a request, without
   the network or the browser. p50 and p95 over ``--requests`` requests each, after a
   warm-up. Whole pages, and the htmx partials the pages poll or swap.

Everything runs on 127.0.0.1 and stops by itself.
"""
from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.figures import say  # noqa: E402
from bench.harness import bulk_emulator, django_here, say_header, signed_in_client, stop_parts, time_page  # noqa: E402
from tests.servers import CeleryWorker, RedisServer, django_env  # noqa: E402



def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--nodes", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=200, help="timed requests per page")
    parser.add_argument("--history-sample", type=int, default=100, help="customers whose usage history is fetched")
    args = parser.parse_args()

    tmp = tempfile.mkdtemp(prefix="bench-pages-")
    parts: list = []
    try:
        redis_server = RedisServer()
        parts.append(redis_server)
        django_here(redis_server.url, tmp)  # the in-process Django reads this Redis and a throwaway database
        from django.urls import reverse

        from dashboard import sync, tasks
        from dashboard.stigg import StiggClient
        emulator = bulk_emulator(tmp, args.customers, args.nodes)
        parts.append(emulator)
        env = django_env(redis_server.url, emulator, STIGG_MAX_RPS="100000", SYNC_SWEEP_BUDGET_SHARE="1",
                         READ_MODEL_PREFIX="stiggadmin:rm:")
        workers = [CeleryWorker(env, concurrency=12, queues="sweep") for _ in range(2)]
        parts.extend(workers)
        rm = tasks.read_model()
        t = time.monotonic()
        from celery import Celery

        Celery(broker=redis_server.url).send_task("dashboard.tasks.sweep_customers", queue="sweep")
        while rm.customer_count() < args.customers or rm.sync_status().customers_behind:
            if time.monotonic() - t > 900:
                raise SystemExit("the sweep did not fill the read model in 15 minutes")
            time.sleep(0.5)
        time.sleep(2)  # the last pages finish writing
        say(f"read model filled by the sweep: {rm.customer_count():,} customers in {time.monotonic() - t:.1f} s")
        for wk in workers:
            wk.stop()
            parts.remove(wk)

        ids = rm.customer_ids()
        rng = random.Random(4)
        with_metered = [cid for cid in rng.sample(ids, min(len(ids), args.history_sample * 3))
                        if rm.customer(cid)["entitlements"]["metered"]][: args.history_sample]
        client = StiggClient(emulator.url, emulator.key, timeout=30)
        for cid in with_metered:
            sync.refresh_usage_history(client, rm, cid, days=62)
        client.close()
        say(f"usage history fetched for {len(with_metered)} customers")

        browser = signed_in_client()
        plans = [p for p, _ in rm.plans()]
        some = rm.customers_page(limit=1, offset=len(ids) // 2).rows[0]
        common = (some.name or "a").split()[0][:4].lower()
        htmx = {"HTTP_HX_REQUEST": "true"}
        customers = reverse("customers")

        def customer_url() -> str:
            return reverse("customer", args=[rng.choice(with_metered)])

        cases: list[tuple[str, callable, dict]] = [
            ("overview (full page)", lambda: reverse("overview"), {}),
            ("overview (live partial, polled)", lambda: reverse("overview"), {**htmx, "HTTP_HX_TARGET": "overview-live"}),
            ("customers: first page by name", lambda: customers, {}),
            ("customers: by highest utilization", lambda: f"{customers}?sort=utilization", {}),
            ("customers: page 100 by name", lambda: f"{customers}?offset=4950", {}),
            (f"customers: search '{common}' (htmx)", lambda: f"{customers}?q={common}",
             {**htmx, "HTTP_HX_TARGET": "customer-table"}),
            (f"customers: search '{common}', by utilization", lambda: f"{customers}?q={common}&sort=utilization",
             {**htmx, "HTTP_HX_TARGET": "customer-table"}),
            ("customers: search one id", lambda: f"{customers}?q={some.id}", {**htmx, "HTTP_HX_TARGET": "customer-table"}),
            ("customers: plan + status, by utilization",
             lambda: f"{customers}?plan={plans[0] if plans else ''}&status=ACTIVE&sort=utilization", {}),
            ("customer page (full, with charts)", customer_url, {}),
            ("customer page (live partial, polled)", customer_url, {**htmx, "HTTP_HX_TARGET": "customer-live"}),
        ]
        say_header("page", args.requests)
        for label, url_of, headers in cases:
            time_page(label, browser, url_of, headers, args.requests)
        # My accounts: a customer-success manager of the bulk fleet's team (1 in 8 customers),
        # whose list opens on their accounts
        from emulator.demo.company import ACCOUNT_OWNERS

        owner = ACCOUNT_OWNERS[0]
        csm = signed_in_client("bench-csm", account_owner=owner)
        say(f"\nMy accounts of {owner}: {rm.customers_page(owner=owner, limit=1).total:,} customers")
        mine_cases: list[tuple[str, callable, dict]] = [
            ("customers, My accounts: first page by name", lambda: customers, {}),
            ("customers, My accounts: by highest utilization", lambda: f"{customers}?sort=utilization", {}),
            ("customers, My accounts: page 10 by name", lambda: f"{customers}?offset=450", {}),
            (f"customers, My accounts: search '{common}' (htmx)", lambda: f"{customers}?q={common}",
             {**htmx, "HTTP_HX_TARGET": "customer-table"}),
            ("customers, My accounts: plan + status, by util.",
             lambda: f"{customers}?plan={plans[0] if plans else ''}&status=ACTIVE&sort=utilization", {}),
            ("customers, every account (mine=0), first page", lambda: f"{customers}?mine=0", {}),
        ]
        for label, url_of, headers in mine_cases:
            time_page(label, csm, url_of, headers, args.requests)
    finally:
        stop_parts(parts, tmp)


if __name__ == "__main__":
    main()
