"""Where a capability's or an entity type's rows begin in the usage rankings
(dashboard/readmodel/nearlimit_bounds.py), against a real redis-server: the bucket counts
equal a count from scratch of the rankings after every change, and a walk that starts at
them reads the same rows as a brute-force filter of all rows, without reading the rows
above them."""
from __future__ import annotations

from collections import Counter
from datetime import timedelta

import pytest

from dashboard.readmodel import NearLimitQuery as Q
from dashboard.readmodel import ReadModel
from dashboard.readmodel import nearlimit, nearlimit_near, nearlimit_rare
from dashboard.readmodel.nearlimit_bounds import BOUNDED_ORDERS, bucket

from .near_limit_world import budget, customer_snapshot, expected, found
from .test_read_model import T0


@pytest.fixture
def rm(rm, monkeypatch):
    monkeypatch.setattr(nearlimit_rare, "RARE_ROWS", 0)  # no value listed: every filter walks
    monkeypatch.setattr(nearlimit_rare, "COMMON_ROWS", 0)
    return rm


def test_it_buckets_scores_on_a_log_scale():
    assert bucket(-3) == bucket(0) == 0 and bucket(1e-9) == 1
    assert [bucket(2 ** (b / 8) - 1 - 1e-9) for b in (1, 8, 80)] == [1, 8, 80]  # just under a bucket's top
    assert bucket(1) == 9 and bucket(1e9) == 240
    assert all(bucket(x) <= bucket(x * 1.01 + 0.01) for x in (0.5, 3, 1000, 1e7))


def counted_from_scratch(rm: ReadModel) -> dict[str, Counter]:
    """The bounds as they must be: every ranking member's bucket per value, per kind and order."""
    out = {}
    for kind, rank in (("b", rm.keys.rank_budgets), ("e", rm.keys.rank_entitlements)):
        for order in BOUNDED_ORDERS:
            fields: Counter = Counter()
            for member, score in rm.r.zrange(rank(order), 0, -1, withscores=True):
                for part in member.split("|"):
                    if part.startswith(("c=", "t=")):
                        fields[f"{part}|{bucket(-score)}"] += 1
            out[f"{kind}:{order}"] = fields
    return out


def stored(rm: ReadModel) -> dict[str, Counter]:
    return {f"{kind}:{order}": Counter({f: int(n) for f, n in rm.r.hgetall(rm.keys.near_bounds(kind, order)).items()})
            for kind in ("b", "e") for order in BOUNDED_ORDERS}


def fleet(tokens: int, runs_usage: float, minute: int = 0) -> dict:
    """Budgets of tokens in the millions above a few agent runs, and entitlements between."""
    at = T0 + timedelta(minutes=minute)
    world = {f"t{i:03d}": customer_snapshot(f"t{i:03d}", api=900, fetched_at=at, budgets=tuple(
        budget(f"m{j}", 1_000_000 + 7919 * (i * 10 + j) % 9_000_000, 10_000_000, feature="tokens") for j in range(10)))
        for i in range(tokens // 10)}
    world["runs"] = customer_snapshot("runs", owner="Ada", fetched_at=at, budgets=tuple(
        budget(f"a{j}", runs_usage - j, 100, type_="agent", feature="runs") for j in range(6)))
    return world


def test_it_starts_a_walk_where_a_low_value_begins_and_still_finds_every_row(rm, monkeypatch):
    monkeypatch.setattr(nearlimit_near, "NEAR_LIST_MAX", 0)  # walked, not read from the near sets
    world = fleet(2000, 90)
    for doc, gov in world.values():
        rm.write_customer(doc, gov)
    assert stored(rm) == counted_from_scratch(rm)
    queries = [Q(min_utilization=t, order=o, **f) for t in (0, 0.85) for o in nearlimit.ORDERS
               for f in ({"capability": "runs"}, {"entity_type": "agent"}, {"capability": "runs", "owner": "Ada"},
                         {"capability": "tokens", "entity_type": "agent"}, {"capability": "api"})]
    for q in queries:
        assert rm.near_limit_strategy(q) == ("customers" if q.owner else "walk")
        assert found(rm.iter_near_limit(q, batch=4)) == expected(world, q), q
        assert found(rm.near_limit_page(q, offset=1, limit=2).rows) == expected(world, q)[1:3], q
    # the 2,000 token budgets above them are not read: with a call stopping after 50 members
    # read, a walk from the top would take ~30 calls; from the runs' bound it takes one
    monkeypatch.setattr(nearlimit, "SCAN_PER_CALL", 50)
    rm.r.config_resetstat()
    assert len(rm.near_limit_page(Q(capability="runs", order="usage", min_utilization=0), limit=5).rows) == 5
    assert rm.r.info("commandstats")["cmdstat_evalsha"]["calls"] == 1


def test_it_keeps_the_bounds_exact_as_rows_rise_shrink_and_go(rm):
    world = fleet(200, 90)
    for doc, gov in world.values():
        rm.write_customer(doc, gov)
    steps = [("runs", fleet(200, 50, minute=1)["runs"]),  # their usage falls: the bound with it
             ("runs", fleet(200, 5_000_000, minute=2)["runs"]),  # then above every token budget
             ("t003", customer_snapshot("t003", api=None, fetched_at=T0 + timedelta(minutes=3)))]  # budgets gone
    queries = [Q(min_utilization=0, order=o, capability=c) for o in nearlimit.ORDERS for c in ("runs", "api")]
    for cid, snapshot in steps:
        world[cid] = snapshot
        assert rm.write_customer(*snapshot)
        assert stored(rm) == counted_from_scratch(rm)
        for q in queries:
            assert found(rm.iter_near_limit(q, batch=7)) == expected(world, q), q
    rm.remove_customers(list(world))
    assert list(rm.r.scan_iter(match=rm.prefix + "near:*")) == []
