"""Each capability's and entity type's rows at or above 80 % (near:above:*, nearlimit_near.py):
kept exact through every write — rows rising past 80 %, falling under it, a budget gone, a
customer gone — and a filter on a value with few such rows, or none, read from its set
instead of walking the rankings, with the same answer."""
from __future__ import annotations

from datetime import timedelta

from dashboard.readmodel import NearLimitQuery as Q
from dashboard.readmodel import nearlimit, nearlimit_rare

from .near_limit_world import budget, customer_snapshot, expected, found, write_all
from .test_read_model import T0

VALUES = [("capability", "api"), ("capability", "tokens"), ("capability", "$credits"), ("entity_type", "team"),
          ("entity_type", "user"), ("entity_type", "agent")]


def world_at(minute: int, usage: dict[str, float]) -> dict:
    at = T0 + timedelta(minutes=minute)
    return {
        "acme": customer_snapshot("acme", api=usage["acme-api"], fetched_at=at, budgets=(
            budget("research", usage["research"], 100, type_="team"),
            budget("ada", usage["ada"], 100, type_="user", feature="tokens"),
            budget("research", 900, 1000, type_="team", feature=None, currency="credits"),
        )),
        "globex": customer_snapshot("globex", api=usage["globex-api"], fetched_at=at, budgets=(
            budget("bot", usage["bot"], 10, type_="agent", feature="tokens"),
        )),
    }


def near_sets(rm) -> dict[tuple[str, str], int]:
    return {(facet, value): int(rm.r.scard(rm.keys.near_above(facet, value))) for facet, value in VALUES}


def reference(world: dict) -> dict[tuple[str, str], int]:
    return {(facet, value): len(expected(world, Q(**{facet: value}))) for facet, value in VALUES}


def check(rm, world: dict) -> None:
    assert near_sets(rm) == reference(world)
    for facet, value in VALUES:
        for order in nearlimit.ORDERS:
            for threshold in (0.8, 0.95):
                q = Q(min_utilization=threshold, order=order, **{facet: value})
                # (a value with no row at all is known empty before its near set is asked)
                assert rm.near_limit_strategy(q) == "near" or not expected(world, Q(min_utilization=0, **{facet: value}))
                assert found(rm.near_limit_page(q).rows) == expected(world, q), q
                assert found(rm.iter_near_limit(q, batch=2)) == expected(world, q), q


def test_the_near_sets_follow_every_write_and_answer_like_the_reference(rm, monkeypatch):
    monkeypatch.setattr(nearlimit_rare, "RARE_ROWS", 0)  # no rare value's list, which could answer first
    monkeypatch.setattr(nearlimit_rare, "COMMON_ROWS", 0)
    first = world_at(0, {"acme-api": 950, "research": 90, "ada": 70, "globex-api": 10, "bot": 9})
    write_all(rm, first)
    assert near_sets(rm) == {("capability", "api"): 2, ("capability", "tokens"): 1, ("capability", "$credits"): 1,
                             ("entity_type", "team"): 2, ("entity_type", "user"): 0, ("entity_type", "agent"): 1}
    check(rm, first)
    # research falls under 80 %, ada rises past it, globex's calls rise past it
    second = world_at(1, {"acme-api": 950, "research": 50, "ada": 85, "globex-api": 99, "bot": 9})
    write_all(rm, second)
    check(rm, second)
    assert near_sets(rm)[("entity_type", "user")] == 1 and near_sets(rm)[("entity_type", "team")] == 1
    # a value with no row near its limit answers at once, empty and counted
    page = rm.near_limit_page(Q(entity_type="nobody"))
    assert page.rows == [] and page.total == 0
    # globex gone: its rows leave the sets
    rm.remove_customers(["globex"])
    del second["globex"]
    check(rm, second)
    assert near_sets(rm)[("entity_type", "agent")] == 0
