"""Governance benchmark (issue 8): one customer with a 2,000-node hierarchy.

1. Builds the customer in a fresh emulator over its REST API: ``--nodes`` entities in
   departments → teams → users and agents (depth 4), a node-wide budget on most of them
   for two features, scoped budgets on some teams, and attributed usage.
2. The sync cost of reading the whole hierarchy (tree mode + every budget) and shaping it
   (what blocks each node, time to limit): requests Stigg saw and seconds, over
   ``--syncs`` full refreshes; and a hot-tier poll that finds nothing changed near a limit.
3. Server time of the governance page through Django's full request handling (as
   bench_pages.py): first paint of the tree, one expand, the ranked list, a filtered tree,
   the sunburst. p50 / p95 over ``--requests`` requests each.

    .venv/bin/python bench/bench_governance.py [--nodes 2000] [--requests 200]

Everything runs on 127.0.0.1 and stops by itself.
"""
from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.figures import say  # noqa: E402
from bench.harness import django_here, say_header, signed_in_client, stop_parts, time_page  # noqa: E402
from tests.servers import Emulator, RedisServer  # noqa: E402

CUSTOMER = "bigcorp"


def build(emulator: Emulator, nodes: int, rng: random.Random) -> tuple[list[str], list[str]]:
    """The hierarchy: ~2 % departments, ~10 % teams, the rest users and agents. Returns the
    feature ids and the team ids."""
    e = emulator
    features = []
    for name in ("api-calls", "ai-tokens"):
        e.data("POST", "/api/v1/features", json={"id": name, "displayName": name, "featureType": "NUMBER",
                                                 "meterType": "INCREMENTAL"})
        features.append(name)
    e.data("POST", "/api/v1/products", json={"id": "prod", "displayName": "Product"})
    e.data("POST", "/api/v1/plans", json={"id": "scale", "displayName": "Scale", "productId": "prod"})
    e.data("POST", "/api/v1/plans/scale/entitlements", json={"entitlements": [
        {"type": "FEATURE", "id": f, "hasUnlimitedUsage": True, "resetPeriod": "MONTH"} for f in features]})
    e.data("POST", "/api/v1/plans/scale/publish", json={})
    e.data("POST", "/api/v1/customers", json={"id": CUSTOMER, "name": "Big Corp"})
    e.data("POST", "/api/v1/subscriptions", json={"customerId": CUSTOMER, "planId": "scale"})
    e.data("PUT", "/api/v1-beta/entity-types", json={"types": [
        {"id": t, "displayName": t.title(), "attributionKeys": [f"{t}Id"]} for t in ("dept", "team", "user", "agent")]})
    depts = [f"dept-{i}" for i in range(max(1, nodes // 50))]
    teams = [f"team-{i}" for i in range(max(1, nodes // 10))]
    leaves = [f"{'user' if i % 3 else 'agent'}-{i}" for i in range(nodes - len(depts) - len(teams))]
    parent = {t: rng.choice(depts) for t in teams} | {leaf: rng.choice(teams) for leaf in leaves}
    entities = [{"id": d, "entityTypeId": "dept"} for d in depts] + \
        [{"id": t, "entityTypeId": "team", "displayName": f"Team {t}"} for t in teams] + \
        [{"id": leaf, "entityTypeId": leaf.split("-")[0]} for leaf in leaves]
    for i in range(0, len(entities), 100):
        e.data("PUT", f"/api/v1-beta/customers/{CUSTOMER}/entities", json={"entities": entities[i:i + 100]})
    assignments = []
    for entity in depts + teams + leaves:  # parents first: a node is placed under a placed parent
        for f in features:
            if entity.startswith("dept") or rng.random() < 0.8:
                item = {"entityId": entity, "featureId": f, "cadence": "P1M",
                        "usageLimit": None if rng.random() < 0.1 else rng.choice((1000, 5000, 20000, 100000))}
                if entity in parent:
                    item["parentId"] = parent[entity]
                assignments.append(item)
    for t in rng.sample(teams, len(teams) // 5):
        members = [leaf for leaf in leaves if parent[leaf] == t][:1]
        if members:
            assignments.append({"entityId": t, "featureId": features[0], "cadence": "P1W", "usageLimit": 500,
                                "scopeEntityIds": members})
    for i in range(0, len(assignments), 100):
        e.data("PUT", f"/api/v1-beta/customers/{CUSTOMER}/assignments", json={"assignments": assignments[i:i + 100]})
    usages = [{"customerId": CUSTOMER, "featureId": rng.choice(features), "value": rng.randrange(1, 800),
               "dimensions": {f"{leaf.split('-')[0]}Id": leaf}} for leaf in rng.sample(leaves, len(leaves) // 2)]
    for i in range(0, len(usages), 100):
        e.data("POST", "/api/v1/usage", json={"usages": usages[i:i + 100]})
    say(f"built {len(depts) + len(teams) + len(leaves):,} entities, {len(assignments):,} budgets, "
        f"{len(usages):,} attributed usage reports")
    return features, teams


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nodes", type=int, default=2000)
    parser.add_argument("--requests", type=int, default=200, help="timed requests per page")
    parser.add_argument("--syncs", type=int, default=5, help="timed full refreshes")
    args = parser.parse_args()
    tmp = tempfile.mkdtemp(prefix="bench-governance-")
    parts: list = []
    try:
        redis_server = RedisServer()
        parts.append(redis_server)
        django_here(redis_server.url, tmp)
        from django.urls import reverse

        from dashboard import sync, tasks
        from dashboard.stigg import StiggClient

        emulator = Emulator(workers=2, threads=8)
        parts.append(emulator)
        rng = random.Random(8)
        t = time.monotonic()
        features, teams = build(emulator, args.nodes, rng)
        say(f"world built in {time.monotonic() - t:.1f} s")

        rm = tasks.read_model()
        client = StiggClient(emulator.url, emulator.key, timeout=60)
        sync.refresh_catalog(client, rm)
        memory_before = rm.r.info("memory")["used_memory"]
        seconds, requests = [], []
        for _ in range(args.syncs):
            rm.remove_customers([CUSTOMER])  # a full read and write each time, nothing to compare against
            emulator.data("DELETE", "/_emulator/stats")
            t0 = time.perf_counter()
            sync.refresh_customer(client, rm, CUSTOMER, discover=True)
            seconds.append(time.perf_counter() - t0)
            requests.append(emulator.data("GET", "/_emulator/stats")["requests"])
        summary = rm.customer(CUSTOMER)["governance"]
        say(f"\nsync of one {summary['entities']:,}-node customer ({summary['budgets']:,} budgets), whole hierarchy: "
            f"{requests[0]} requests, p50 {statistics.median(seconds):.2f} s, max {max(seconds):.2f} s "
            f"(n={args.syncs})")
        say(f"its hierarchy in Redis: {(rm.r.info('memory')['used_memory'] - memory_before) / 1e6:.1f} MB")
        emulator.data("DELETE", "/_emulator/stats")
        t0 = time.perf_counter()
        sync.refresh_customer(client, rm, CUSTOMER, parts=sync.POLL_PARTS)
        say(f"hot-tier poll, nothing changed near a limit: {emulator.data('GET', '/_emulator/stats')['requests']} "
            f"requests, {time.perf_counter() - t0:.2f} s")
        client.close()

        browser = signed_in_client()
        page = reverse("customer-governance", args=[CUSTOMER])
        children = reverse("governance-children", args=[CUSTOMER])
        roots = [n["id"] for n in rm.governance_level(CUSTOMER)]
        htmx = {"HTTP_HX_REQUEST": "true"}
        say_header("governance page", args.requests)
        cases = [
            ("tree: first paint (full page)", lambda: page, {}),
            ("tree: first paint, by usage", lambda: f"{page}?order=usage", {}),
            ("tree: one expand (htmx level)", lambda: f"{children}?parent={rng.choice(roots)}", htmx),
            ("tree: a department open (full page)", lambda: f"{page}?open={rng.choice(roots)}", {}),
            ("tree: a node deep down (path opened)", lambda: f"{page}?node=user-{rng.randrange(1000)}", {}),
            ("ranked list, page 1", lambda: f"{page}?view=ranked", {}),
            ("ranked list, one capability, by usage", lambda: f"{page}?view=ranked&order=usage&capability={features[1]}",
             {}),
            ("tree: search (paths to the matches)", lambda: f"{page}?q=team-1", {**htmx, "HTTP_HX_TARGET": "governance-body"}),
            ("sunburst (htmx)", lambda: f"{page}?chart=sunburst", {**htmx, "HTTP_HX_TARGET": "sunburst"}),
        ]
        for label, url_of, headers in cases:
            time_page(label, browser, url_of, headers, args.requests)
    finally:
        stop_parts(parts, tmp)


if __name__ == "__main__":
    main()
