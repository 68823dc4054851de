"""Rare capabilities and entity types with their rows listed (dashboard/readmodel/
nearlimit_rare.py), against a real redis-server: the lists and counts equal what the
written documents hold, after every kind of change, and every query reads the same rows in
the same order as a brute-force filter of all rows, listed or walked."""
from __future__ import annotations

from datetime import timedelta

import pytest

from dashboard.readmodel import NearLimitQuery as Q
from dashboard.readmodel import ReadModel
from dashboard.readmodel import nearlimit, nearlimit_near, nearlimit_rare
from dashboard.readmodel.keys import RARE_FACETS, part
from dashboard.readmodel.nearlimit import budget_member, entitlement_member
from dashboard.readmodel.nearlimit_rare import member_values, rare_moves

from .near_limit_world import budget, customer_snapshot, expected, found, write_all
from .test_read_model import T0


@pytest.fixture
def limits(monkeypatch):
    """Lists for values of at most 3 members, kept up to 6 (the real limits are thousands);
    no value read from its set of rows near their limits, which would answer first here."""
    monkeypatch.setattr(nearlimit_rare, "RARE_ROWS", 3)
    monkeypatch.setattr(nearlimit_rare, "COMMON_ROWS", 6)
    monkeypatch.setattr(nearlimit_near, "NEAR_LIST_MAX", 0)


def members_by_value(world: dict) -> dict[tuple[str, str], set[str]]:
    """Brute force: every ranking member of the written documents, per rare facet value."""
    out: dict[tuple[str, str], set[str]] = {}
    for cid, (doc, gov) in world.items():
        for e in doc["entitlements"]["metered"]:
            if e["utilization"] is not None:
                out.setdefault(("capability", e["feature_id"]), set()).add("e" + entitlement_member(cid, e["feature_id"]))
        for node in gov["nodes"].values():
            for b in node["budgets"]:
                member = "b" + budget_member(cid, node["id"], b["capability"], b["scope"], node["type"])
                out.setdefault(("capability", b["capability"]), set()).add(member)
                out.setdefault(("entity_type", node["type"]), set()).add(member)
    return out


def stored(rm: ReadModel) -> tuple[dict[tuple[str, str], int], dict[tuple[str, str], set[str]]]:
    """The counts, and the lists of the values that have one."""
    counts, lists = {}, {}
    for facet in RARE_FACETS:
        for value, n in rm.r.zrange(rm.keys.near_rows(facet), 0, -1, withscores=True):
            counts[(facet, value)] = int(n)
            members = rm.r.smembers(rm.keys.near_rare(facet, value))
            if members:
                lists[(facet, value)] = members
    return counts, lists


def check(rm: ReadModel, world: dict, queries: list[Q]) -> dict[tuple[str, str], set[str]]:
    """Counts exact, every list complete, every query as the reference; returns the lists."""
    truth = members_by_value(world)
    counts, lists = stored(rm)
    assert counts == {k: len(v) for k, v in truth.items()}
    for key, members in lists.items():
        assert members == truth[key] and len(members) <= nearlimit_rare.COMMON_ROWS, key
    for q in queries:
        want = expected(world, q)
        assert found(rm.iter_near_limit(q, batch=4)) == want, q
        page = rm.near_limit_page(q, offset=2, limit=3)
        assert found(page.rows) == want[2:5] and (page.next_offset is not None) == (len(want) > 5), q
    return lists


def queries(*, others: tuple[dict, ...] = ({"owner": "Ada"}, {"plan": "free"}), **facet) -> list[Q]:
    return [Q(min_utilization=t, order=o, **f) for t in (0, 0.8) for o in nearlimit.ORDERS
            for f in (facet, *({**facet, **other} for other in others))]


def test_it_reads_the_values_and_changes_of_a_member():
    b = budget_member("a|b", "team:1", "$cr|x", ("s,1",), "type|x")
    assert member_values("b", b) == {"capability": "$cr|x", "entity_type": "type|x"}
    assert member_values("e", entitlement_member("100% é", "api")) == {"capability": "api"}
    moves = rare_moves("b", removed=[b], added=[budget_member("c", "e", "api", (), "type|x")])
    assert moves == {("capability", "$cr|x"): (["b" + b], []),
                     ("entity_type", "type|x"): (["b" + b], ["b" + budget_member("c", "e", "api", (), "type|x")]),
                     ("capability", "api"): ([], ["b" + budget_member("c", "e", "api", (), "type|x")])}
    assert rare_moves("e", [], []) == {}


def test_it_answers_a_rare_and_a_common_value_like_a_filter_of_every_row(rm, limits):
    world = {f"c{i}": customer_snapshot(f"c{i}", plan="free" if i % 2 else "pro", owner="Ada" if i % 3 else "Bob",
                                        api=700 + 30 * i, budgets=(
        budget("t", 60 + 7 * i, 100), budget("u", 95 - 9 * i, 100, type_="user", feature="tokens"),
        *((budget("org", 10 + 40 * i, 1000, type_="org", feature=None, currency="credits"),) if i < 2 else ())))
        for i in range(5)}
    write_all(rm, world)
    lists = check(rm, world, [q for facet in ({"capability": "$credits"}, {"entity_type": "org"},
                                              {"capability": "api"}, {"entity_type": "user"},
                                              {"capability": "$credits", "entity_type": "user"},
                                              {"capability": "tokens", "entity_type": "user"})
                              for q in queries(**facet)])
    # every value grew from nothing, so each is listed until past 6: $credits and org (2 rows),
    # team, user and tokens (5); api (5 budgets, 5 entitlements) is not
    assert set(lists) == {("capability", "$credits"), ("entity_type", "org"), ("entity_type", "team"),
                          ("entity_type", "user"), ("capability", "tokens")}
    assert rm.near_limit_strategy(Q(capability="$credits", order="usage", min_utilization=0)) == "rare"
    assert rm.near_limit_strategy(Q(entity_type="org", owner="Ada", min_utilization=0)) == "rare"
    assert rm.near_limit_strategy(Q(capability="api", order="usage")) == "walk"
    assert rm.near_limit_strategy(Q(capability="api", entity_type="org", min_utilization=0)) == "rare"  # the rarer
    assert rm.near_limit_strategy(Q(customer="c1", capability="$credits")) == "customers"
    assert rm.near_limit_page(Q(capability="$credits", min_utilization=0)).total == 2  # counted: all read
    assert rm.near_limit_page(Q(capability="nothing")).rows == []


def test_it_keeps_the_lists_exact_as_values_turn_common_and_rare_again(rm, limits):
    def team(cid: str, n: int, minute: int, credits: int = 0, api: float | None = 900):
        return customer_snapshot(cid, owner="Ada", api=api, fetched_at=T0 + timedelta(minutes=minute), budgets=(
            *(budget(f"e{j}", 50 + 10 * j, 100, type_="squad") for j in range(n)),
            *(budget(f"c{j}", 90 - 5 * j, 100, type_="team", feature=None, currency="credits")
              for j in range(credits))))

    world: dict = {}
    every = [q for facet in ({"entity_type": "squad"}, {"capability": "$credits"}, {"capability": "api"})
             for q in queries(others=({"owner": "Ada"},), **facet)]

    def write(cid: str, *args, **kwargs) -> dict:
        world[cid] = team(cid, *args, **kwargs)
        assert rm.write_customer(*world[cid])
        return check(rm, world, every)

    assert ("entity_type", "squad") in write("a", 2, 0, credits=1)  # new to the fleet: listed from the start
    assert ("entity_type", "squad") in write("b", 3, 0)  # 5: listed still (up to 6)
    lists = write("c", 2, 0)  # 7: common, its list dropped
    assert ("entity_type", "squad") not in lists
    assert rm.near_limit_strategy(Q(entity_type="squad", order="usage", min_utilization=0)) == "walk"
    assert ("entity_type", "squad") not in write("b", 2, 1)  # 6: not listed again until 3 or fewer
    # customer c rewritten without its squads (its credits grow instead): 4, still not listed
    assert ("entity_type", "squad") not in write("c", 0, 2, credits=3)
    assert ("capability", "$credits") in check(rm, world, every)  # 4 credits: grown from nothing, listed
    rm.remove_customers(["b"])  # 2 left: listed again, from one scan of the rankings
    del world["b"]
    lists = check(rm, world, every)
    assert lists[("entity_type", "squad")] == members_by_value(world)[("entity_type", "squad")]
    assert rm.near_limit_strategy(Q(entity_type="squad", order="urgency", min_utilization=0)) == "rare"
    # a capability in both kinds: api budgets and entitlements together turn it rare again
    for i in range(4):
        write(f"x{i}", 0, 3, api=100 + i)
    assert ("capability", "api") not in stored(rm)[1]  # 8 rows: a's 2 budgets, 6 entitlements
    for cid in ("x0", "x1", "x2", "x3", "c"):  # their api usage gone, the rest rewritten
        lists = write(cid, 0, 4, api=None, credits=3 if cid == "c" else 0)
    # 3 rows: listed again by the entitlements' write, a's budgets found by its scan
    assert lists[("capability", "api")] == {"b" + budget_member("a", "e0", "api", (), "squad"),
                                            "b" + budget_member("a", "e1", "api", (), "squad"),
                                            "e" + entitlement_member("a", "api")}
    rm.remove_customers(list(world))
    world.clear()
    check(rm, world, every)
    assert list(rm.r.scan_iter(match=rm.prefix + "near:*")) == []


def test_it_lists_hostile_values_under_percent_encoded_keys(rm, limits):
    odd_cap, odd_type = "cur|x,y %:é", "type|x=1 ü"
    world = {cid: customer_snapshot(cid, owner=f"{cid} owner", api=900, budgets=(
        budget(f"{cid}|e,1", 95, 100, type_=odd_type, scope=("s|1", "s,2")),
        budget("e", 85, 100, feature=None, currency=odd_cap)))
        for cid in ("a|b", "x:y/z", "100%", "Ünïcødé-客户")}
    write_all(rm, world)
    for q in (Q(capability="$" + odd_cap), Q(entity_type=odd_type, order="usage", min_utilization=0),
              Q(entity_type=odd_type, owner="a|b owner"), Q(capability="$" + odd_cap, plan="pro")):
        assert rm.near_limit_strategy(q) == "rare"
        assert found(rm.near_limit_page(q).rows) == expected(world, q) != [], q
    key = rm.keys.near_rare("entity_type", odd_type)
    assert key.endswith(":" + part(odd_type)) and rm.r.scard(key) == 4
