"""Read-model benchmark: ``ReadModel.customers_page`` against 10,000 customers.

Starts its own redis-server on a free 127.0.0.1 port (``tests.servers.RedisServer``),
fills a read model with realistic customer documents (the builders of
``tests/test_read_model.py``: names, emails, plans free / pro / enterprise, statuses
ACTIVE / IN_TRIAL / CANCELED, metered utilizations, ~10 governance budgets each), then
times each kind of customers-page read and prints p50 / p95 in milliseconds.

    .venv/bin/python bench/bench_read_model.py [--customers N] [--calls N]

Each call is the whole ``customers_page`` (the script or range, and the page's rows), as
a page view makes it. Everything runs on 127.0.0.1 and stops by itself.

``governed_fleet`` builds the other world benchmarks read (bench_near_limit.py): the
bulk seeder's shape (10,000 customers, 5 % of them with a ~200-entity hierarchy, 100,000
budgets; ~4.6 metered entitlements per customer, as the demo catalog's plans have), shaped
by the real ``shape_governance``, with usage spread across each window and an account owner
in every customer's metadata.
"""
from __future__ import annotations

import argparse
import random
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Sequence

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import redis  # noqa: E402

from dashboard.readmodel import CustomerDocument, GovernanceWrite, ReadModel  # noqa: E402
from dashboard.sync import build_snapshot  # noqa: E402
from dashboard.sync.governance import shape_governance  # noqa: E402
from dashboard.stigg import (  # noqa: E402
    AddonQuantity, Customer, CustomerEntitlements, Entitlement, Package, PackageEntitlement, Promotion, Subscription,
)
from bench.figures import pct  # noqa: E402
from tests.servers import RedisServer  # noqa: E402
from dashboard.stigg import GovernanceNode  # noqa: E402
from emulator.demo.bulk import build_plan  # noqa: E402
from tests.test_read_model import FEATURES, PACKAGES, T0, ent, node  # noqa: E402

PACKAGES_ALL = {**PACKAGES, "enterprise": Package("enterprise", "plan", "Enterprise", "prod", "PUBLISHED", None, (
    PackageEntitlement("sso", "Override", True, None, False, False, None, None),
    PackageEntitlement("api", "Override", True, 100000, False, True, None, "MONTH"),
    PackageEntitlement("storage", "Override", True, 1000, False, False, None, None),
))}
API_LIMIT = {"free": 100, "pro": 1000, "enterprise": 100000}
# The demo catalog's other metered features (emulator/seed.py): not in the test catalog, metered by their usage.
EXTRA_METERED = (("ai-tokens", "AI tokens", {"free": 50_000, "pro": 1_000_000, "enterprise": 100_000_000}),
                 ("agent-runs", "Agent runs", {"free": 20, "pro": 300, "enterprise": 3_000}),
                 ("monthly-active-users", "Monthly active users", {"free": 50, "pro": 500, "enterprise": 5_000}))
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
    # My accounts: one of 12 owners' customers (~830)
    ("My accounts, by name", {"owner": "Wei Chen"}),
    ("My accounts, by utilization", {"owner": "Wei Chen", "sort": "utilization"}),
    ("My accounts, page 10", {"owner": "Wei Chen", "offset": 450}),
    ("My accounts, search common", {"owner": "Wei Chen", "search": "acme"}),
    ("My accounts, plan+status, by util.", {"owner": "Wei Chen", "plan": "pro", "status": "ACTIVE",
                                           "sort": "utilization"}),
]


def customer_document(i: int, rnd: random.Random, metadata: dict[str, str] | None = None,
                      budgets: list[GovernanceNode] | None = None, plan: str | None = None,
                      extra_metered: bool = False, promotions: Sequence[Promotion] = ()
                      ) -> tuple[CustomerDocument, GovernanceWrite]:
    """One customer as a refresh writes it; ``budgets`` (hydrated rows) replace the ten flat
    team budgets every customer has otherwise; ``extra_metered``: the demo catalog's three
    other metered features too, used like the budgets."""
    cid = f"cust-{i:05d}"
    company = f"{rnd.choice(COMPANIES)} {rnd.choice(SUFFIXES)}"
    name = f"{company} {i}" if rnd.random() < 0.97 else None  # a few customers without a name
    email = f"{rnd.choice(('ops', 'billing', 'admin', 'cto'))}{i}@{rnd.choice(DOMAINS)}"
    plan = plan or rnd.choices(("free", "pro", "enterprise"), weights=(5, 4, 1))[0]
    status = rnd.choices(("ACTIVE", "IN_TRIAL", "CANCELED"), weights=(7, 2, 1))[0]
    subs = [Subscription(f"sub-{cid}", cid, plan, status, None, T0 - timedelta(days=40), None, None, None,
                         T0 + timedelta(days=10), "PAID", (AddonQuantity("extra-seats", 1),) if plan == "pro" else ())]
    ents = [ent("sso", None), ent("seats", 20), ent("region", None)]
    if rnd.random() < 0.85:  # some customers have no metered usage at all
        ents.append(ent("api", API_LIMIT[plan], round(API_LIMIT[plan] * rnd.random() * 1.3)))
    if STORAGE_LIMIT[plan] is not None and rnd.random() < 0.6:
        ents.append(ent("storage", STORAGE_LIMIT[plan], round(STORAGE_LIMIT[plan] * rnd.random(), 1)))
    for feature, feature_name, limits in EXTRA_METERED if extra_metered else ():
        usage = round(limits[plan] * rnd.betavariate(1.3, 2.6) * 1.5)
        ents.append(Entitlement(feature, feature_name, "NUMBER", True, None, usage, limits[plan], False, "MONTH",
                                None, T0 - timedelta(days=20), T0 + timedelta(days=10), None))
    if budgets is None:
        budgets = [node(f"{team}-{i}", rnd.randrange(0, 1200), 1000) for team in TEAMS]
    customer = Customer(cid, name, email, T0, T0, None, metadata or {})
    governance = shape_governance([], budgets, T0)
    return build_snapshot(customer, subs, CustomerEntitlements(None, tuple(ents)), list(promotions),
                          governance["summary"], FEATURES, PACKAGES_ALL, T0), governance


OWNERS = ("Maria Garcia", "James Smith", "Aisha Khan", "Wei Chen", "Sofia Rossi", "Liam Murphy", "Priya Patel",
          "Mateo Fernández", "Yuki Tanaka", "Olivia Johnson", "Noah Müller", "Fatima Okafor")
CADENCE_SECONDS = {"P1M": 30 * 86400, "P1W": 7 * 86400, "P1D": 86400}


def _budget_row(item: dict, entity: dict, parent: str | None, rnd: random.Random) -> GovernanceNode:
    """One hydrated budget row: usage drawn so that ~19 % of budgets are at >= 80 % of their
    limit and ~8 % over it, at a random point of the current window."""
    window = CADENCE_SECONDS.get(item["cadence"], 30 * 86400)
    start = T0 - timedelta(seconds=window * rnd.uniform(0.02, 0.98))
    limit = item["usageLimit"] if rnd.random() > 0.03 else None
    usage = None if rnd.random() < 0.05 else round(item["usageLimit"] * rnd.betavariate(1.3, 2.6) * 1.5)
    util = usage / limit if usage is not None and limit else None
    return GovernanceNode(item["entityId"], entity["entityTypeId"], entity["displayName"], parent,
                          item.get("featureId"), item.get("currencyId"), tuple(item.get("scopeEntityIds") or ()),
                          item["cadence"], limit, usage, util, start, start + timedelta(seconds=window))


def governed_fleet(customers: int = 10_000, nodes: int = 100_000, seed: int = 42):
    """(document, governance) per customer, as a refresh writes them: the bulk seeder's
    hierarchies (emulator.demo.bulk.build_plan) with usage, owners in the metadata."""
    rnd = random.Random(seed)
    hierarchies = {g.customer_id: g for g in build_plan(customers, nodes, seed=seed).governed}
    for i in range(customers):
        owner = rnd.choice(OWNERS) if rnd.random() < 0.95 else None
        g = hierarchies.get(f"cust-{i:05d}")
        rows: list[GovernanceNode] = []
        if g is not None:
            entities = {e["id"]: e for e in g.entities}
            rows = [_budget_row(item, entities[item["entityId"]], g.parents[item["entityId"]], rnd)
                    for level in g.levels for item in level]
            if rnd.random() < 0.3:  # some spend credits too: a currency budget on the org
                org = f"org-{g.customer_id}"
                rows.append(_budget_row({"entityId": org, "currencyId": "credits", "usageLimit": 5000,
                                         "cadence": "P1M"}, entities[org], None, rnd))
        # the governed customers are the big ones, on the enterprise plan (as in the bulk seeder)
        yield customer_document(i, rnd, {"accountOwner": owner, "segment": "bench"} if owner else {}, rows,
                                "enterprise" if g is not None else None, extra_metered=True)


def fill_governed(rm: ReadModel) -> str:
    """Write the governed_fleet world into ``rm``; what it filled, in words, with the time."""
    started, budgets = time.perf_counter(), 0
    for doc, gov in governed_fleet():
        rm.write_customer(doc, gov)
        budgets += gov["summary"]["budgets"]
    return f"filled {rm.customer_count():,} customers, {budgets:,} budgets in {time.perf_counter() - started:.1f} s"


def fill(rm: ReadModel, customers: int) -> float:
    """``customers`` customers, owned by the 12 OWNERS in turn (no draw: the rest as before)."""
    rnd = random.Random(42)
    started = time.perf_counter()
    for i in range(customers):
        rm.write_customer(*customer_document(i, rnd, {"accountOwner": OWNERS[i % len(OWNERS)]}))
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
        orders = list(client.scan_iter(match="bench:rm:customers:order:*", count=1000))
        mine = [k for k in orders if ":owner:" in k]
        size = {k: client.memory_usage(k, samples=0) or 0 for k in orders}
        print(f"the list's sort orders: {sum(size.values()) / 2**20:.1f} MiB in {len(orders)} keys, of which "
              f"My accounts' per-owner copies {sum(size[k] for k in mine) / 2**20:.1f} MiB in {len(mine)} keys",
              flush=True)
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
