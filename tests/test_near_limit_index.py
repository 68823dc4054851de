"""The near-limit index and reads (dashboard/readmodel/nearlimit.py) against a real
redis-server, checked row for row against a reference computed from the documents written."""
from __future__ import annotations

import random
import uuid
from datetime import timedelta

import pytest
import redis

from dashboard.readmodel import NearLimitQuery as Q
from dashboard.readmodel import ReadModel
from dashboard.readmodel import nearlimit, nearlimit_near, nearlimit_rare

from .near_limit_world import budget, customer_snapshot, expected, found, write_all
from .test_read_model import T0


def no_rare_lists(monkeypatch) -> None:
    """Written from here on, no capability or entity type has its rows listed; and none
    is read from its set of rows near their limits (nearlimit_near.py)."""
    monkeypatch.setattr(nearlimit_rare, "RARE_ROWS", 0)
    monkeypatch.setattr(nearlimit_rare, "COMMON_ROWS", 0)
    monkeypatch.setattr(nearlimit_near, "NEAR_LIST_MAX", 0)


def small_world() -> dict:
    return {
        "acme": customer_snapshot("acme", plan="pro", owner="Ada", api=950, storage=10, budgets=(
            budget("research", 90, 100, type_="team"),
            budget("ada", 120, 100, type_="user", parent="research"),
            budget("bot", 30, 40, type_="agent", parent="research"),
            budget("research", 900, 1000, type_="team", feature=None, currency="credits"),
            budget("free-rider", None, 100, type_="user"),  # no usage: no utilization
            budget("unlimited", 500, None, type_="user"),  # no limit: no utilization
        )),
        "globex": customer_snapshot("globex", plan="free", owner="Bob", api=85, budgets=(
            budget("ops", 81, 100, type_="team"),
        )),
        "initech": customer_snapshot("initech", plan="pro", api=100, storage=49),
    }


def test_it_lists_budgets_and_entitlements_at_or_above_the_threshold_across_customers(rm):
    world = small_world()
    write_all(rm, world)
    page = rm.near_limit_page(Q())
    assert found(page.rows) == expected(world, Q()) == [
        ("budget", "acme", "ada", ()), ("entitlement", "initech", "storage", ()),
        ("entitlement", "acme", "api", ()), ("budget", "acme", "research", ()), ("budget", "acme", "research", ()),
        ("entitlement", "globex", "api", ()), ("budget", "globex", "ops", ())]
    assert page.total == 7 and page.next_offset is None and page.prev_offset is None
    assert [r.capability for r in page.rows if r.entity_id == "research"] == ["$credits", "api"]
    assert found(rm.near_limit_page(Q(min_utilization=0.95)).rows) == [
        ("budget", "acme", "ada", ()), ("entitlement", "initech", "storage", ()), ("entitlement", "acme", "api", ())]
    everything = rm.near_limit_page(Q(min_utilization=0), limit=100)
    assert found(everything.rows) == expected(world, Q(min_utilization=0)) and everything.total == 10
    assert not {"free-rider", "unlimited"} & {r.entity_id for r in everything.rows}  # no utilization: never listed
    assert rm.near_limit_page(Q(min_utilization=5)).rows == []


def test_it_shows_each_row_with_what_pages_need(rm):
    write_all(rm, small_world())
    rows = {(r.kind, r.customer_id, r.entity_id or r.capability): r for r in rm.near_limit_page(Q()).rows}
    ada = rows[("budget", "acme", "ada")]
    assert (ada.customer_name, ada.entity_name, ada.entity_type, ada.capability) == ("Customer acme", "Ada", "user",
                                                                                       "api")
    assert (ada.usage, ada.limit, ada.utilization, ada.period) == (120, 100, 1.2, "P1M")
    assert ada.ttl["state"] == "exhausted" and ada.fetched_at == T0 and (ada.plan_id, ada.owner) == ("pro", "Ada")
    api = rows[("entitlement", "acme", "api")]
    assert (api.feature_name, api.usage, api.limit, api.utilization, api.soft_limit) == ("API calls", 950, 1000,
                                                                                         0.95, True)
    assert api.entity_id is None and api.period == "MONTH" and api.period_end == T0 + timedelta(days=10)
    # 950 of 1,000 in 20 days of a 30-day period: the limit comes in ~1 day, before the reset
    assert api.ttl["state"] == "before_reset" and api.ttl["seconds_to_limit"] == pytest.approx(50 * 20 / 950 * 86400)


def test_it_orders_by_usage_and_by_urgency(rm):
    world = small_world()
    write_all(rm, world)
    for order in ("usage", "urgency"):
        assert found(rm.near_limit_page(Q(order=order)).rows) == expected(world, Q(order=order))
    by_usage = rm.near_limit_page(Q(order="usage")).rows
    assert [r.usage for r in by_usage] == sorted((r.usage for r in by_usage), reverse=True)
    assert [(r.entity_id, r.capability, r.usage) for r in by_usage[:2]] == [(None, "api", 950),
                                                                              ("research", "$credits", 900)]
    # exhausted first (ada at 120 %), then what reaches its limit soonest before reset
    by_urgency = rm.near_limit_page(Q(order="urgency")).rows
    assert by_urgency[0].entity_id == "ada" and by_urgency[0].ttl["state"] == "exhausted"


def test_it_breaks_ties_by_customer_id_with_budgets_first(rm):
    twins = {cid: customer_snapshot(cid, api=900, budgets=(budget("team", 90, 100),)) for cid in ("b", "a", "c")}
    write_all(rm, twins)
    for order in ("utilization", "urgency"):
        rows = found(rm.near_limit_page(Q(order=order)).rows)
        assert rows == expected(twins, Q(order=order)) == [
            ("budget", "a", "team", ()), ("budget", "b", "team", ()), ("budget", "c", "team", ()),
            ("entitlement", "a", "api", ()), ("entitlement", "b", "api", ()), ("entitlement", "c", "api", ())]


def test_it_filters_by_customer_capability_entity_type_plan_and_owner(rm):
    world = small_world()
    write_all(rm, world)
    cases = {
        Q(customer="acme"): 4, Q(customer="nobody"): 0, Q(capability="$credits"): 1, Q(capability="storage"): 1,
        Q(capability="api"): 5, Q(entity_type="team"): 3, Q(entity_type="user"): 1, Q(plan="free"): 2,
        Q(plan="pro"): 5, Q(owner="Ada"): 4, Q(owner="Bob"): 2, Q(owner="Nobody"): 0,
        Q(plan="pro", owner="Ada", entity_type="team", order="usage"): 2, Q(customer="acme", plan="free"): 0,
        Q(capability="api", entity_type="team", min_utilization=0): 2,
    }
    for q, n in cases.items():
        rows = found(rm.near_limit_page(q).rows)
        assert rows == expected(world, q) and len(rows) == n, q
    # an entity type filter leaves entitlements out: they belong to no entity
    assert {r.kind for r in rm.near_limit_page(Q(entity_type="team", min_utilization=0)).rows} == {"budget"}
    choices = rm.near_limit_choices()
    assert choices["plan"] == [("free", 1), ("pro", 2)] and choices["owner"] == [("Ada", 1), ("Bob", 1)]
    assert ("$credits", 1) in choices["capability"] and ("api", 3) in choices["capability"]
    assert choices["entity_type"] == [("agent", 1), ("team", 2), ("user", 1)]


def test_it_pages_through_the_rows_and_streams_them_all_in_order(rm, monkeypatch):
    no_rare_lists(monkeypatch)  # every filter walks the rankings
    world = {f"c{i:02d}": customer_snapshot(f"c{i:02d}", api=800 + i, budgets=tuple(
        budget(f"t{j}", 80 + (i * 7 + j) % 30, 100) for j in range(5))) for i in range(12)}
    write_all(rm, world)
    want = expected(world, Q(order="urgency"))
    assert len(want) == 72
    seen, offset = [], 0
    while offset is not None:
        page = rm.near_limit_page(Q(order="urgency"), offset=offset, limit=10)
        seen += found(page.rows)
        assert page.total == 72 and (page.prev_offset is None) == (offset == 0)
        offset = page.next_offset
    assert seen == want
    filtered = Q(capability="api", entity_type="team", order="usage")
    pages = [rm.near_limit_page(filtered, offset=o, limit=25) for o in (0, 25, 50)]
    assert [len(p.rows) for p in pages] == [25, 25, 10] and [p.next_offset for p in pages] == [25, 50, None]
    assert pages[2].total == 60 and pages[0].total is None  # counted only when a walk reaches the end
    assert sum((found(p.rows) for p in pages), []) == expected(world, filtered)
    # a walk that must stop every few members goes on from its cursor, never repeating a row
    monkeypatch.setattr(nearlimit, "SCAN_PER_CALL", 3)
    assert found(rm.iter_near_limit(Q(order="urgency"), batch=7)) == want
    assert found(rm.near_limit_page(filtered, offset=30, limit=25).rows) == expected(world, filtered)[30:55]


# no value listed; some ($credits, storage, team, agent:x, but neither api nor user); every one;
# and no value read from its set of rows near their limits (but those with none), or every one
@pytest.mark.parametrize("near_max", [0, 10_000])
@pytest.mark.parametrize("rare_rows", [0, 25, 10_000])
def test_it_answers_every_query_like_the_reference_whichever_way_it_reads(rm, monkeypatch, rare_rows, near_max):
    monkeypatch.setattr(nearlimit_near, "NEAR_LIST_MAX", near_max)
    monkeypatch.setattr(nearlimit_rare, "RARE_ROWS", rare_rows)
    monkeypatch.setattr(nearlimit_rare, "COMMON_ROWS", 2 * rare_rows)
    rnd = random.Random(7)
    world = {}
    owners, plans = ["Ada", "Bob", "Çelik | Co", None], ["pro", "free"]
    for i in range(40):
        cid = rnd.choice(["cust-", "a:b/", "100% ", "客户-", "x|y=", "c,d"]) + str(i)
        budgets = tuple(budget(f"e{j}", rnd.choice([None, rnd.randrange(0, 130)]), rnd.choice([100, 100, 0, None]),
                               type_=rnd.choice(["team", "user", "agent:x"]),
                               feature=None if j % 4 == 3 else rnd.choice(["api", "ai|tokens"]),
                               currency="credits" if j % 4 == 3 else None,
                               scope=tuple(rnd.sample(["s1", "s,2"], rnd.randrange(0, 3))),
                               elapsed=rnd.choice([0.001, 0.3, 0.9]))
                        for j in range(rnd.randrange(0, 8)))
        world[cid] = customer_snapshot(cid, plan=rnd.choice(plans), owner=rnd.choice(owners),
                                       api=rnd.choice([None, rnd.randrange(0, 1300)]),
                                       storage=rnd.choice([None, rnd.randrange(0, 60)]), budgets=budgets)
    write_all(rm, world)
    queries = [Q(min_utilization=t, order=o, **f) for t in (0, 0.8, 1.0) for o in nearlimit.ORDERS for f in (
        {}, {"capability": "api"}, {"capability": "$credits"}, {"capability": "ai|tokens"}, {"entity_type": "agent:x"},
        {"plan": "free"}, {"owner": "Çelik | Co"}, {"owner": "Ada", "entity_type": "team"},
        {"customer": rnd.choice(sorted(world))}, {"plan": "pro", "capability": "storage"})]
    listed = {q.capability or q.entity_type for q in queries if rm.near_limit_strategy(q) == "rare"}
    rare = {"$credits", "storage", "team", "agent:x"}
    assert listed == {0: set(), 25: rare, 10_000: rare | {"api", "ai|tokens"}}[rare_rows]
    near = {q.capability or q.entity_type for q in queries if rm.near_limit_strategy(q) == "near"}
    assert all(q.min_utilization >= nearlimit_near.NEAR for q in queries if rm.near_limit_strategy(q) == "near")
    if near_max and not rare_rows:
        assert {"api", "ai|tokens", "agent:x"} <= near  # their few near rows, not a walk
    # a walk of the rankings (in one go, or stopping every 5 members), or customer by customer
    for per_customer, scan in ((0, 20_000), (0, 5), (10_000, 20_000)):
        monkeypatch.setattr(nearlimit, "PER_CUSTOMER_MAX_CUSTOMERS", per_customer)
        monkeypatch.setattr(nearlimit, "SCAN_PER_CALL", scan)
        for q in queries:
            want = expected(world, q)
            assert found(rm.iter_near_limit(q, batch=9)) == want, q
            page = rm.near_limit_page(q, offset=3, limit=11)
            assert found(page.rows) == want[3:14] and (page.next_offset is not None) == (len(want) > 14), q
            assert page.total in (None, len(want))


def test_it_moves_rows_when_plan_or_owner_change_without_the_hierarchy_being_rewritten(rm):
    doc, gov = customer_snapshot("acme", plan="pro", owner="Ada", api=950, budgets=(budget("team", 90, 100),))
    rm.write_customer(doc, gov)
    assert len(rm.near_limit_page(Q(plan="pro", owner="Ada")).rows) == 2
    moved, _ = customer_snapshot("acme", plan="free", owner="Bob", api=95, budgets=(budget("team", 90, 100),),
                                 fetched_at=T0 + timedelta(minutes=1))
    rm.write_customer(moved, None)  # the hierarchy is not read again: it stays as stored
    assert rm.near_limit_page(Q(plan="pro")).rows == rm.near_limit_page(Q(owner="Ada")).rows == []
    for q in (Q(plan="free"), Q(owner="Bob"), Q(plan="free", owner="Bob", entity_type="team")):
        assert {(r.kind, r.plan_id, r.owner) for r in rm.near_limit_page(q).rows} >= {("budget", "free", "Bob")}
    assert rm.near_limit_choices()["owner"] == [("Bob", 1)] and rm.near_limit_choices()["plan"] == [("free", 1)]
    rm.mark_customer_error("acme", "Stigg unavailable", T0 + timedelta(minutes=2))  # keeps the last good data
    assert len(rm.near_limit_page(Q(owner="Bob")).rows) == 2


def test_it_unranks_a_budget_that_loses_its_limit_or_its_usage(rm):
    world = {"a": customer_snapshot("a", budgets=(budget("x", 95, 100), budget("y", 90, 100), budget("z", 85, 100)))}
    write_all(rm, world)
    world["a"] = customer_snapshot("a", fetched_at=T0 + timedelta(minutes=1), budgets=(
        budget("x", 95, None), budget("y", None, 100), budget("z", 85, 100)))  # x: unlimited now; y: no usage
    write_all(rm, world)
    for order in nearlimit.ORDERS:
        q = Q(order=order, min_utilization=0)
        page = rm.near_limit_page(q)
        assert found(page.rows) == expected(world, q) == [("budget", "a", "z", ())] and page.total == 1, order
    assert rm.r.zcard(rm.keys.rank_budgets("utilization")) == 1 and rm.r.zcard(rm.keys.rank_budgets("usage")) == 2


def test_it_forgets_removed_customers_and_their_facets(rm):
    write_all(rm, small_world())
    rm.remove_customers(["acme", "globex", "initech"])
    assert rm.near_limit_page(Q(min_utilization=0)).rows == []
    assert rm.near_limit_choices() == {"plan": [], "owner": [], "capability": [], "entity_type": []}
    assert list(rm.r.scan_iter(match=rm.prefix + "near:*")) == []
    assert list(rm.r.scan_iter(match=rm.prefix + "rank:*")) == []


def test_it_keeps_hostile_ids_and_names_apart(rm):
    ids = ["a|b", "a", "x:y/z", "100%", "100%25", "with space", "Ünïcødé-客户", "c=1", "=cmd"]
    world = {cid: customer_snapshot(cid, name=f"=HYPERLINK({cid!r})", owner=f"{cid} | owner=x", api=900, budgets=(
        budget(f"{cid}|e,1", 95, 100, type_="type|x", scope=("s|1", "s,2")),
        budget("e", 85, 100, feature=None, currency=f"cur|{cid}"))) for cid in ids}
    write_all(rm, world)
    keys_before = set(rm.r.scan_iter(match=rm.prefix + "*"))
    assert found(rm.near_limit_page(Q(), limit=100).rows) == expected(world, Q())
    for cid in ids:
        for q in (Q(customer=cid), Q(owner=f"{cid} | owner=x"), Q(capability=f"$cur|{cid}"),
                  Q(owner=f"{cid} | owner=x", entity_type="type|x")):
            rows = rm.near_limit_page(q).rows
            assert rows and {r.customer_id for r in rows} == {cid} and found(rows) == expected(world, q), q
        row = next(r for r in rm.near_limit_page(Q(customer=cid)).rows if r.kind == "budget" and r.scope)
        assert (row.entity_id, row.scope, row.entity_type) == (f"{cid}|e,1", ("s,2", "s|1"), "type|x")
    assert set(rm.r.scan_iter(match=rm.prefix + "*")) == keys_before  # reads never write


def test_it_reads_the_owner_from_the_configured_metadata_key(redis_server):
    client = redis.Redis.from_url(redis_server.url, decode_responses=True)
    rm = ReadModel(client, prefix=f"test:{uuid.uuid4().hex[:8]}:", owner_key="csm")
    try:
        rm.write_customer(*customer_snapshot("acme", owner="Ada", api=900))  # under "accountOwner": not ours
        rm.write_customer(*customer_snapshot("globex", owner=" Cy ", api=900, owner_key="csm"))
        assert [r.customer_id for r in rm.near_limit_page(Q(owner="Cy")).rows] == ["globex"]
        assert rm.near_limit_choices()["owner"] == [("Cy", 1)]
    finally:
        rm.clear()
        client.close()


def test_it_reads_a_few_customers_one_by_one_only_while_their_rows_are_few(rm, monkeypatch):
    rm.write_customer(*customer_snapshot("acme", owner="Ada", api=900, storage=45,
                                         budgets=(budget("a", 90, 100), budget("b", 95, 100))))
    rm.write_customer(*customer_snapshot("globex", owner="Bob", api=990))
    q = Q(owner="Ada")
    monkeypatch.setattr(nearlimit, "PER_CUSTOMER_MAX_ROWS", 4)  # acme's 2 budgets and 2 entitlements
    assert rm.near_limit_page(q, limit=1).total == 4  # its own rows, all read and counted
    monkeypatch.setattr(nearlimit, "PER_CUSTOMER_MAX_ROWS", 3)
    page = rm.near_limit_page(q, limit=1)
    assert page.total is None and page.next_offset == 1  # a walk of the rankings, stopped after one more row
    assert [r.entity_id for r in page.rows] == ["b"]


def test_rows_crossing_the_default_threshold_move_in_and_out_of_the_near_rankings(rm):
    """By usage or urgency at >= 80 % a walk reads the rankings' near copies (nearlimit_near.py):
    rows rising past 80 %, falling under it, losing their limit, or going with their customer
    are read as the reference says after each rewrite."""
    rnd = random.Random(5)
    world: dict = {}
    for step in range(4):
        for i in range(12):
            cid = f"c{i}"
            if step == 3 and i % 4 == 0:
                if cid in world:
                    rm.remove_customers([cid])
                    del world[cid]
                continue
            budgets = tuple(budget(f"e{j}", rnd.randrange(0, 130), rnd.choice([100, 100, 100, None]),
                                   type_=rnd.choice(["team", "user"])) for j in range(rnd.randrange(0, 6)))
            world[cid] = customer_snapshot(cid, api=rnd.randrange(0, 1300), fetched_at=T0 + timedelta(minutes=step),
                                           budgets=budgets)
        write_all(rm, world)
        for order in ("usage", "urgency"):
            for threshold in (0.8, 0.95):
                for filters in ({}, {"entity_type": "user"}):
                    q = Q(order=order, min_utilization=threshold, **filters)
                    assert found(rm.iter_near_limit(q, batch=7)) == expected(world, q), (step, q)
        near = {m for kind in ("budgets", "entitlements") for by in ("usage", "urgency")
                for m in rm.r.zrange(rm.keys.rank_near(kind, by), 0, -1)}
        at_80 = {m for kind in ("budgets", "entitlements")
                 for m in rm.r.zrangebyscore(rm.keys.rank_budgets("utilization") if kind == "budgets"
                                             else rm.keys.rank_entitlements(), "-inf", -0.8)}
        assert near == at_80, step  # the copies hold exactly the rows at or above 80 %
