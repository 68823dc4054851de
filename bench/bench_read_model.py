"""Read-model benchmark: ``ReadModel.customers_page`` against 10,000 customers.

Starts its own redis-server on a free 127.0.0.1 port (``tests.servers.RedisServer``),
fills a read model with realistic customer documents (the builders of
``tests/test_read_model.py``: names, emails, plans free / pro / enterprise, statuses
ACTIVE / IN_TRIAL / CANCELED, metered utilizations, ~10 governance budgets each), then
times each kind of customers-page read and prints p50 / p95 in milliseconds.

    .venv/bin/python bench/bench_read_model.py [--customers N] [--calls N]

Each call is the whole ``customers_page`` (the script or range, and the page's rows), as
a page view makes it. Everything runs on 127.0.0.1 and stops by itself.
"""
from __future__ import annotations

import argparse
import random
import sys
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import redis  # noqa: E402

from dashboard.readmodel import CustomerDocument, GovernanceWrite, ReadModel  # noqa: E402
from dashboard.sync import build_snapshot  # noqa: E402
from dashboard.sync.governance import shape_governance  # noqa: E402
from dashboard.stigg import (  # noqa: E402
    AddonQuantity, Customer, CustomerEntitlements, Package, PackageEntitlement, Subscription,
)
from bench.figures import pct  # noqa: E402
from tests.servers import RedisServer  # noqa: E402
from tests.test_read_model import FEATURES, PACKAGES, T0, ent, node  # noqa: E402

PACKAGES_ALL = {**PACKAGES, "enterprise": Package("enterprise", "plan", "Enterprise", "prod", "PUBLISHED", None, (
    PackageEntitlement("sso", "Override", True, None, False, False, None, None),
    PackageEntitlement("api", "Override", True, 100000, False, True, None, "MONTH"),
    PackageEntitlement("storage", "Override", True, 1000, False, False, None, None),
))}
API_LIMIT = {"free": 100, "pro": 1000, "enterprise": 100000}
STORAGE_LIMIT = {"free": None, "pro": 50, "enterprise": 1000}
COMPANIES = ("Acme", "Globex", "Initech", "Umbrella", "Hooli", "Stark", "Wayne", "Wonka", "Tyrell", "Cyberdyne",
             "Soylent", "Vandelay", "Pied Piper", "Aperture", "Massive Dynamic", "Oscorp", "Gringotts", "Monarch")
SUFFIXES = ("Inc", "Labs", "GmbH", "Ltd", "Corp", "Systems", "Analytics", "Cloud")
DOMAINS = ("example.com", "mail.test", "corp.test", "acme.test")
TEAMS = ("platform", "data", "mobile", "web", "ml", "infra", "growth", "billing", "search", "support")

CASES: list[tuple[str, dict]] = [
    ("unfiltered, by name", {"sort": "name"}),
    ("unfiltered, by utilization", {"sort": "utilization"}),
    ("search common substring ('acme')", {"search": "acme"}),
    ("search unique id", {"search": "cust-04242"}),
    ("search no match", {"search": "zz-nobody-zz"}),
    ("plan filter (pro)", {"plan": "pro"}),
    ("plan+status, by utilization", {"plan": "pro", "status": "IN_TRIAL", "sort": "utilization"}),
    ("search+plan, offset 20", {"search": "labs", "plan": "enterprise", "offset": 20}),
    ("search common, by utilization", {"search": "acme", "sort": "utilization"}),
]


def customer_document(i: int, rnd: random.Random) -> tuple[CustomerDocument, GovernanceWrite]:
    cid = f"cust-{i:05d}"
    company = f"{rnd.choice(COMPANIES)} {rnd.choice(SUFFIXES)}"
    name = f"{company} {i}" if rnd.random() < 0.97 else None  # a few customers without a name
    email = f"{rnd.choice(('ops', 'billing', 'admin', 'cto'))}{i}@{rnd.choice(DOMAINS)}"
    plan = rnd.choices(("free", "pro", "enterprise"), weights=(5, 4, 1))[0]
    status = rnd.choices(("ACTIVE", "IN_TRIAL", "CANCELED"), weights=(7, 2, 1))[0]
    subs = [Subscription(f"sub-{cid}", cid, plan, status, None, T0 - timedelta(days=40), None, None, None,
                         T0 + timedelta(days=10), "PAID", (AddonQuantity("extra-seats", 1),) if plan == "pro" else ())]
    ents = [ent("sso", None), ent("seats", 20), ent("region", None)]
    if rnd.random() < 0.85:  # some customers have no metered usage at all
        ents.append(ent("api", API_LIMIT[plan], round(API_LIMIT[plan] * rnd.random() * 1.3)))
    if STORAGE_LIMIT[plan] is not None and rnd.random() < 0.6:
        ents.append(ent("storage", STORAGE_LIMIT[plan], round(STORAGE_LIMIT[plan] * rnd.random(), 1)))
    nodes = tuple(node(f"{team}-{i}", rnd.randrange(0, 1200), 1000) for team in TEAMS)
    customer = Customer(cid, name, email, T0, T0, None)
    governance = shape_governance([], list(nodes), T0)
    return build_snapshot(customer, subs, CustomerEntitlements(None, tuple(ents)), [], governance["summary"],
                          FEATURES, PACKAGES_ALL, T0), governance


def fill(rm: ReadModel, customers: int) -> float:
    rnd = random.Random(42)
    started = time.perf_counter()
    for i in range(customers):
        rm.write_customer(*customer_document(i, rnd))
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--calls", type=int, default=200, help="timed calls per case")
    args = parser.parse_args()

    server = RedisServer()
    try:
        client = redis.Redis.from_url(server.url, decode_responses=True)
        rm = ReadModel(client, prefix="bench:rm:")
        print(f"filling {args.customers:,} customers ...", flush=True)
        print(f"filled in {fill(rm, args.customers):.1f} s; redis memory "
              f"{client.info('memory')['used_memory_human']}", flush=True)
        print()
        print(f"| {'case':<34} | {'total':>6} | {'p50 ms':>7} | {'p95 ms':>7} |")
        print(f"|{'-' * 36}|{'-' * 8}|{'-' * 9}|{'-' * 9}|")
        for label, kwargs in CASES:
            for _ in range(10):  # warm-up: script cache, connection
                page = rm.customers_page(**kwargs)
            times = []
            for _ in range(args.calls):
                t = time.perf_counter()
                rm.customers_page(**kwargs)
                times.append((time.perf_counter() - t) * 1000)
            print(f"| {label:<34} | {page.total:>6} | {pct(times, 0.5):>7.2f} | {pct(times, 0.95):>7.2f} |",
                  flush=True)
        client.close()
    finally:
        server.stop()


if __name__ == "__main__":
    main()
