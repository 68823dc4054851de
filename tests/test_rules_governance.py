from __future__ import annotations

import json
import math
import random
from datetime import datetime, timedelta, timezone

import pytest

from dashboard.codec import dump, load
from dashboard.rules.governance import (
    Blocking,
    Budget,
    Node,
    NodeFacts,
    TimeToLimit,
    applicable_budgets,
    blocking_budget,
    capability_key,
    chain,
    compute_node_facts,
    describe_time_to_limit,
    index_budgets,
    order_siblings,
    sibling_sort_key,
    time_to_limit,
    urgency,
    utilization,
)

T0 = datetime(2025, 3, 1, tzinfo=timezone.utc)
DAY = 86400.0
HOUR = 3600.0


def day(n: float) -> datetime:
    return T0 + timedelta(days=n)


def budget(entity: str, limit: float | None, usage: float | None = 0.0, scope: tuple[str, ...] = (),
           capability: str = "calls", days: float = 30) -> Budget:
    return Budget(entity_id=entity, capability=capability, scope=scope, limit=limit, usage=usage,
                  cadence="P30D", period_start=T0, period_end=day(days))


# org → dept → team → user, and a second team beside the first
NODES = {n.entity_id: n for n in (
    Node("org", "organization"),
    Node("dept", "department", "Research", "org"),
    Node("team", "team", "Models", "dept"),
    Node("other-team", "team", None, "dept"),
    Node("user", "user", "Ada", "team"),
)}


def blocking_of(entity: str, *budgets: Budget, capability: str = "calls") -> Blocking | None:
    return blocking_budget(entity, capability, NODES, index_budgets(budgets))


# chain


def test_it_walks_the_chain_leaf_to_root() -> None:
    assert chain(NODES, "user") == ["user", "team", "dept", "org"]
    assert chain(NODES, "org") == ["org"]


def test_it_stops_the_chain_at_a_missing_parent() -> None:
    nodes = {"a": Node("a", "t", parent_id="b"), "b": Node("b", "t", parent_id="gone")}
    assert chain(nodes, "a") == ["a", "b"]
    assert chain(nodes, "unknown") == ["unknown"]


def test_it_stops_the_chain_at_a_cycle() -> None:
    nodes = {"a": Node("a", "t", parent_id="b"), "b": Node("b", "t", parent_id="c"),
             "c": Node("c", "t", parent_id="a"), "s": Node("s", "t", parent_id="s")}
    assert chain(nodes, "a") == ["a", "b", "c"]
    assert chain(nodes, "s") == ["s"]


def test_it_walks_chains_deeper_than_stigg_allows() -> None:
    nodes = {f"n{i}": Node(f"n{i}", "t", parent_id=f"n{i - 1}" if i else None) for i in range(10)}
    assert chain(nodes, "n9") == [f"n{i}" for i in range(9, -1, -1)]


# utilization


def test_it_computes_utilization() -> None:
    assert utilization(50, 200) == 0.25
    assert utilization(300, 200) == 1.5  # ingest never gates


def test_it_counts_a_zero_limit_as_full() -> None:
    assert utilization(0, 0) == 1.0
    assert utilization(7, 0) == 1.0


def test_it_has_no_utilization_without_limit_or_usage() -> None:
    assert utilization(5, None) is None
    assert utilization(None, 10) is None


# applicable and blocking budgets


def test_it_blocks_a_leaf_under_an_exhausted_ancestor() -> None:
    b = blocking_of("user", budget("org", 1000, 1000), budget("team", 500, 100), budget("user", 50, 10))
    assert b is not None
    assert (b.blocking_entity_id, b.headroom, b.exhausted) == ("org", 0, True)
    assert (b.is_ancestor, b.is_own, b.is_scoped) == (True, False, False)
    assert b.own_headroom == 40


def test_it_tells_own_headroom_apart_from_the_department_that_blocks() -> None:
    b = blocking_of("team", budget("team", 500, 100), budget("dept", 2000, 2000))
    assert b is not None
    assert (b.blocking_entity_id, b.headroom, b.own_headroom) == ("dept", 0, 400)


def test_it_reports_an_own_budget_that_binds_first() -> None:
    b = blocking_of("user", budget("user", 50, 45), budget("org", 1000, 10))
    assert b is not None
    assert (b.blocking_entity_id, b.is_own, b.is_ancestor, b.headroom, b.exhausted) == ("user", True, False, 5, False)


def test_it_counts_overspending_as_negative_headroom() -> None:
    b = blocking_of("user", budget("team", 100, 130), budget("dept", 100, 110))
    assert b is not None
    assert (b.blocking_entity_id, b.headroom, b.exhausted) == ("team", -30, True)


def test_it_applies_a_scoped_budget_whose_scope_is_on_the_chain() -> None:
    scoped = budget("dept", 100, 100, scope=("team",))
    assert applicable_budgets("user", "calls", NODES, index_budgets([scoped])) == [scoped]
    b = blocking_of("user", scoped, budget("dept", 1000, 100))
    assert b is not None
    assert (b.budget, b.is_scoped, b.is_own, b.exhausted) == (scoped, True, False, True)


def test_it_excludes_a_scoped_budget_whose_scope_is_off_the_chain() -> None:
    off = budget("dept", 100, 100, scope=("other-team",))
    partly = budget("dept", 100, 100, scope=("other-team", "team"))
    assert applicable_budgets("user", "calls", NODES, index_budgets([off, partly])) == []
    assert blocking_of("user", off, partly) is None
    b = blocking_of("other-team", off, partly)
    assert b is not None and b.budget == off


def test_it_ignores_budgets_of_descendants_and_other_capabilities() -> None:
    assert blocking_of("team", budget("user", 10, 10), budget("team", 10, 10, capability="$credits")) is None


def test_it_blocks_an_unlimited_node_by_its_limited_parent() -> None:
    b = blocking_of("user", budget("user", None, 900), budget("team", 1000, 1000))
    assert b is not None
    assert (b.blocking_entity_id, b.exhausted, b.own_headroom) == ("team", True, None)


def test_it_has_no_blocking_budget_when_nothing_is_limited() -> None:
    assert blocking_of("user") is None
    assert blocking_of("user", budget("user", None, 5), budget("org", None, 500)) is None


def test_it_blocks_on_a_zero_limit_with_no_usage() -> None:
    b = blocking_of("user", budget("team", 0, None))
    assert b is not None and b.exhausted and b.headroom == 0


def test_it_breaks_headroom_ties_by_nearest_then_node_wide_then_scope() -> None:
    org, team = budget("org", 100, 50), budget("team", 60, 10)
    assert (b := blocking_of("user", org, team)) is not None and b.blocking_entity_id == "team"
    wide, scoped = budget("dept", 100, 50), budget("dept", 60, 10, scope=("team",))
    assert (b := blocking_of("user", scoped, wide)) is not None and b.budget == wide
    s1, s2 = budget("org", 80, 30, scope=("team", "user")), budget("org", 90, 40, scope=("dept",))
    assert (b := blocking_of("user", s1, s2)) is not None and b.budget == s2


# time to limit


def test_it_projects_the_limit_at_the_window_rate() -> None:
    ttl = time_to_limit(budget("team", 100, 50), day(5))
    assert ttl.state == "before_reset"
    assert ttl.seconds_to_limit == 5 * DAY
    assert ttl.reaches_at == day(10)
    assert ttl.seconds_before_reset == 20 * DAY
    assert ttl.rate_per_hour == pytest.approx(10 / 24)


def test_it_says_when_the_limit_is_not_reached_this_window() -> None:
    ttl = time_to_limit(budget("team", 100, 10), day(5))
    assert (ttl.state, ttl.reaches_at, ttl.seconds_to_limit, ttl.seconds_before_reset) == (
        "not_this_window", None, None, None)
    assert ttl.rate_per_hour == pytest.approx(2 / 24)


def test_it_counts_reaching_the_limit_at_reset_as_not_this_window() -> None:
    assert time_to_limit(budget("team", 60, 10), day(5)).state == "not_this_window"  # exactly day 30


def test_it_says_exhausted_at_or_over_the_limit() -> None:
    assert time_to_limit(budget("team", 100, 100), day(5)).state == "exhausted"
    assert time_to_limit(budget("team", 100, 150), day(5)).seconds_to_limit == 0
    assert time_to_limit(budget("team", 0, None), day(5)).state == "exhausted"


def test_it_says_unlimited_without_a_limit() -> None:
    assert time_to_limit(budget("team", None, 500), day(5)) == TimeToLimit("unlimited")


def test_it_does_not_project_without_usage_or_window() -> None:
    assert time_to_limit(budget("team", 100, 0), day(5)).state == "unknown"
    assert time_to_limit(budget("team", 100, None), day(5)).state == "unknown"
    windowless = Budget("team", "calls", limit=100, usage=50)
    assert time_to_limit(windowless, day(5)).state == "unknown"


def test_it_does_not_project_from_the_first_moments_of_a_window() -> None:
    # 1 % of a 30-day window is 7.2 hours
    assert time_to_limit(budget("team", 100, 50), T0 + timedelta(hours=7)).state == "unknown"
    assert time_to_limit(budget("team", 100, 50), T0 + timedelta(hours=7.2)).state == "before_reset"
    # a one-hour window: 1 % is 36 s, so the 60 s floor decides
    hourly = Budget("team", "calls", limit=100, usage=1, cadence="PT1H",
                    period_start=T0, period_end=T0 + timedelta(hours=1))
    assert time_to_limit(hourly, T0 + timedelta(seconds=59)).state == "unknown"
    assert time_to_limit(hourly, T0 + timedelta(seconds=60)).state == "not_this_window"


def test_it_does_not_project_a_window_that_is_over() -> None:
    assert time_to_limit(budget("team", 100, 50), day(30)).state == "unknown"


def test_it_ranks_urgency_exhausted_then_soonest_then_the_rest() -> None:
    now = day(5)
    exhausted = time_to_limit(budget("a", 100, 100), now)
    soon = time_to_limit(budget("b", 100, 90), now)
    later = time_to_limit(budget("c", 100, 50), now)
    scores = [urgency(t) for t in (exhausted, soon, later, time_to_limit(budget("d", 100, 10), now),
                                    time_to_limit(budget("e", 100, 0), now), time_to_limit(budget("f", None), now))]
    assert scores == sorted(scores, reverse=True) and len(set(scores)) == len(scores)
    assert all(math.isfinite(s) for s in scores)
    assert urgency(TimeToLimit("before_reset", seconds_to_limit=0.0)) < urgency(exhausted)
    far = TimeToLimit("before_reset", seconds_to_limit=400 * DAY)
    assert urgency(TimeToLimit("not_this_window")) < urgency(far) < urgency(later)


def test_it_describes_each_state() -> None:
    now = day(5)
    assert describe_time_to_limit(time_to_limit(budget("t", 100, 100), now), now) == "limit reached"
    assert describe_time_to_limit(time_to_limit(budget("t", 100, 10), now), now) == "will not reach it this window"
    assert describe_time_to_limit(time_to_limit(budget("t", None), now), now) == "no limit"
    assert describe_time_to_limit(time_to_limit(budget("t", 100), now), now) == "not enough usage yet to project"


def test_it_describes_a_projection_in_days_hours_and_minutes() -> None:
    # 10 per day; 30 left → 3 days, reaching day 12 of 21
    ttl = time_to_limit(budget("t", 120, 90, days=21), day(9))
    assert describe_time_to_limit(ttl, day(9)) == "reaches its limit in ~3 days, 9 days before reset"
    ttl = TimeToLimit("before_reset", seconds_to_limit=5 * HOUR, seconds_before_reset=47 * HOUR)
    assert describe_time_to_limit(ttl, T0) == "reaches its limit in ~5 hours, 47 hours before reset"
    ttl = TimeToLimit("before_reset", seconds_to_limit=60, seconds_before_reset=42 * 60 + 10)
    assert describe_time_to_limit(ttl, T0) == "reaches its limit in ~1 minute, 42 minutes before reset"
    ttl = TimeToLimit("before_reset", seconds_to_limit=20, seconds_before_reset=20)
    assert describe_time_to_limit(ttl, T0) == "reaches its limit in less than a minute, less than a minute before reset"


def test_it_counts_the_time_left_from_the_page_time() -> None:
    ttl = time_to_limit(budget("t", 100, 50), day(5))  # reaches day 10
    assert describe_time_to_limit(ttl, day(8)).startswith("reaches its limit in ~2 days,")
    assert describe_time_to_limit(ttl, day(11)) == "projected to have reached its limit by now"


# ordering


def test_it_orders_siblings_by_usage_descending_with_none_last_and_ties_by_id() -> None:
    rows = [budget("c", 10, 5), budget("a", 10, None), budget("b", 10, 5), budget("d", 10, 9), budget("e", None, 0)]
    assert [r.entity_id for r in order_siblings(rows, "usage")] == ["d", "b", "c", "e", "a"]


def test_it_orders_siblings_by_utilization() -> None:
    rows = [budget("a", 100, 50), budget("b", 0, 0), budget("c", None, 99), budget("d", 10, 5), budget("e", 10, 20)]
    assert [r.entity_id for r in order_siblings(rows, "utilization")] == ["e", "b", "a", "d", "c"]
    with pytest.raises(ValueError):
        order_siblings(rows, "name")  # type: ignore[arg-type]


def test_it_shares_the_sibling_key() -> None:
    assert sorted([sibling_sort_key(None, "a"), sibling_sort_key(0.0, "z"), sibling_sort_key(2.0, "b"),
                   sibling_sort_key(2.0, "a")]) == [(False, -2.0, "a"), (False, -2.0, "b"), (False, -0.0, "z"),
                                                    (True, 0.0, "a")]


# facts for a whole tree


def test_it_names_capabilities() -> None:
    assert capability_key("calls", None) == "calls"
    assert capability_key(None, "credits") == "$credits"
    with pytest.raises(ValueError):
        capability_key("calls", "credits")


def test_it_computes_facts_for_every_node_with_a_budget_on_its_chain() -> None:
    own, scoped = budget("team", 500, 100), budget("team", 50, 50, scope=("user",))
    credits = budget("user", 10, 2, capability="$credits")
    facts = compute_node_facts(NODES.values(), [own, scoped, budget("dept", 2000, 2000), credits,
                                                budget("ghost", 5, 1)], day(5))
    team = facts[("team", "calls")]
    assert (team.own, team.scoped, team.own_ttl) == (own, (scoped,), time_to_limit(own, day(5)))
    assert team.blocking is not None and team.blocking.blocking_entity_id == "dept"
    assert team.blocking_ttl is not None and team.blocking_ttl.state == "exhausted"
    assert facts[("user", "calls")].blocking == blocking_of("user", own, scoped, budget("dept", 2000, 2000))
    assert facts[("user", "calls")].own is None
    assert facts[("user", "$credits")].own == credits
    assert ("team", "$credits") not in facts and ("org", "calls") not in facts
    assert facts[("ghost", "calls")].blocking is not None
    assert set(facts) == {("dept", "calls"), ("team", "calls"), ("other-team", "calls"), ("user", "calls"),
                          ("user", "$credits"), ("ghost", "calls")}


def test_it_round_trips_every_result_through_json() -> None:
    facts = compute_node_facts(NODES.values(), [budget("team", 500, 100), budget("dept", 100, 60),
                                                budget("team", None, 3, scope=("user",))], day(5))
    assert facts[("team", "calls")].blocking_ttl is not None
    assert facts[("team", "calls")].blocking_ttl.state == "before_reset"
    for f in facts.values():
        assert load(NodeFacts, json.loads(json.dumps(dump(f), allow_nan=False))) == f
    for ttl in (TimeToLimit("unlimited"), time_to_limit(budget("t", 100, 50), day(5))):
        assert load(TimeToLimit, json.loads(json.dumps(dump(ttl)))) == ttl


CAPABILITIES = ("calls", "tokens", "images", "$credits", "$usd")


def _tree(rng: random.Random, n_nodes: int, n_budgets: int) -> tuple[list[Node], list[Budget]]:
    nodes: list[Node] = []
    depth: dict[str, int] = {}
    for i in range(n_nodes):
        parents = [n.entity_id for n in nodes[-200:] if depth[n.entity_id] < 3]
        parent = rng.choice(parents) if parents and i >= 5 else None
        nodes.append(Node(f"e{i}", "t", parent_id=parent))
        depth[f"e{i}"] = depth[parent] + 1 if parent else 0
    by_key: dict[tuple[str, str, tuple[str, ...]], Budget] = {}
    while len(by_key) < n_budgets:
        e = rng.choice(nodes).entity_id
        scope = tuple(sorted({rng.choice(nodes).entity_id for _ in range(rng.randint(1, 2))})) \
            if rng.random() < 0.2 else ()
        limit = rng.choice([None, 0.0, 100.0, 1000.0])
        b = Budget(e, rng.choice(CAPABILITIES), scope, limit, rng.choice([None, 0.0, 50.0, 100.0]),
                   "P30D", T0, day(30))
        by_key[(b.entity_id, b.capability, b.scope)] = b
    return nodes, list(by_key.values())


def test_it_agrees_with_a_brute_force_reading_on_random_trees() -> None:
    rng = random.Random(7)
    for _ in range(20):
        nodes, budgets = _tree(rng, 60, 150)
        # the same tree with a cycle and a dangling parent mixed in
        nodes[10] = Node("e10", "t", parent_id="e11")
        nodes[11] = Node("e11", "t", parent_id="e10")
        nodes[12] = Node("e12", "t", parent_id="gone")
        facts = compute_node_facts(nodes, budgets, day(5))
        by_id = {n.entity_id: n for n in nodes}
        for n in nodes:
            on_chain = set(chain(by_id, n.entity_id))
            for capability in CAPABILITIES:
                gating = [b for b in budgets if b.capability == capability and b.entity_id in on_chain
                          and set(b.scope) <= on_chain and b.limit is not None]
                got = facts.get((n.entity_id, capability))
                if not gating:
                    assert got is None or got.blocking is None
                    continue
                assert got is not None and got.blocking is not None
                least = min((b.limit or 0) - (b.usage or 0) for b in gating)
                assert got.blocking.headroom == least
                assert got.blocking.exhausted == (least <= 0)


def test_it_computes_facts_for_a_large_tree() -> None:
    nodes, budgets = _tree(random.Random(1), 2000, 5000)
    facts = compute_node_facts(nodes, budgets, day(5))
    assert len(budgets) == 5000 and len(facts) > 2000
    by_id, by_entity = {n.entity_id: n for n in nodes}, index_budgets(budgets)
    for (entity, capability), f in list(facts.items())[::97]:
        assert f.blocking == blocking_budget(entity, capability, by_id, by_entity)
