"""The Redis read model against a real redis-server."""
from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import threading
import uuid
from datetime import datetime, timedelta, timezone

import pytest
import redis

from dashboard.readmodel import ReadModel
from dashboard.readmodel.packed import unpack
from dashboard.sync import build_snapshot
from dashboard.sync.governance import shape_governance
from dashboard.codec import dump
from dashboard.stigg import (
    AddonQuantity, Customer, CustomerEntitlements, Entitlement, EnumOption, Feature, GovernanceNode, Package,
    PackageEntitlement, Promotion, Subscription,
)

T0 = datetime(2026, 11, 21, 12, 0, tzinfo=timezone.utc)

FEATURES = {
    "sso": Feature("sso", "SSO", "BOOLEAN", "None", False, None, None),
    "seats": Feature("seats", "Seats", "NUMBER", "None", False, "seat", "seats"),
    "region": Feature("region", "Region", "ENUM", "None", False, None, None,
                      (EnumOption("us", "United States"), EnumOption("eu", "Europe"))),
    "api": Feature("api", "API calls", "NUMBER", "INCREMENTAL", True, "call", "calls"),
    "storage": Feature("storage", "Storage", "NUMBER", "FLUCTUATING", True, "GB", "GB"),
}
PACKAGES = {
    "pro": Package("pro", "plan", "Pro", "prod", "PUBLISHED", None, (
        PackageEntitlement("sso", "Override", True, None, False, False, None, None),
        PackageEntitlement("seats", "Override", True, 10, False, False, None, None),
        PackageEntitlement("region", "Override", True, None, False, False, ("us",), None),
        PackageEntitlement("api", "Override", True, 1000, False, True, None, "MONTH"),
        PackageEntitlement("storage", "Override", True, 50, False, False, None, None),
    )),
    "free": Package("free", "plan", "Free", "prod", "PUBLISHED", None, (
        PackageEntitlement("api", "Override", True, 100, False, False, None, "MONTH"),
    )),
    "extra-seats": Package("extra-seats", "addon", "Extra seats", "prod", "PUBLISHED", None, (
        PackageEntitlement("seats", "Increment", True, 5, False, False, None, None),
    )),
}


def ent(feature: str, limit: float | None, usage: float | None = None, *, unlimited: bool = False,
        granted: bool = True, reason: str | None = None) -> Entitlement:
    f = FEATURES[feature]
    return Entitlement(feature, f.display_name, f.feature_type, granted, reason, usage, limit, unlimited,
                       "MONTH" if usage is not None else None, None, T0 - timedelta(days=20),
                       T0 + timedelta(days=10) if usage is not None else None, None)


def node(entity: str, usage: float | None, limit: float | None, *, feature: str | None = "api",
         currency: str | None = None, scope: tuple[str, ...] = ()) -> GovernanceNode:
    util = usage / limit if usage is not None and limit else None
    return GovernanceNode(entity, "team", entity.title(), None, feature, currency, scope, "P1M", limit, usage,
                          util, T0, T0 + timedelta(days=30))


def snapshot(cid: str, *, name: str | None = None, api_usage: float | None = 500, plan: str = "pro",
             status: str = "ACTIVE", nodes: tuple[GovernanceNode, ...] = (), storage: bool = True,
             promotions: tuple[Promotion, ...] = (), fetched_at: datetime = T0, email: str | None = None):
    """One customer's document and its governance hierarchy, as a refresh shapes them:
    ``rm.write_customer(*snapshot(...))``."""
    customer = Customer(cid, name if name is not None else f"Customer {cid}", email or f"{cid}@example.com",
                        T0, T0, None)
    subs = [Subscription(f"sub-{cid}", cid, plan, status, None, T0 - timedelta(days=40), None, None, None,
                         T0 + timedelta(days=10), "PAID", (AddonQuantity("extra-seats", 2),))]
    ents = [ent("sso", None), ent("seats", 20), ent("region", None)]
    if api_usage is not None:
        ents.append(ent("api", 1000 if plan == "pro" else 100, api_usage))
    if storage:
        ents.append(ent("storage", 50, 10))
    governance = shape_governance([], list(nodes), fetched_at)
    return build_snapshot(customer, subs, CustomerEntitlements(None, tuple(ents)), list(promotions),
                          governance["summary"], FEATURES, PACKAGES, fetched_at), governance


def test_it_shapes_entitlements_by_shape_with_provenance():
    promo = Promotion("p1", "region", "Active", "1 month", T0, T0 + timedelta(days=30), None, False, False,
                      ("eu",), None, T0)
    expired = Promotion("p0", "api", "Expired", "1 week", T0 - timedelta(days=30), T0 - timedelta(days=23),
                        5000, False, False, None, None, T0)
    doc, _ = snapshot("c1", promotions=(promo, expired))
    groups = doc["entitlements"]
    assert [e["feature_id"] for e in groups["boolean"]] == ["sso"]
    assert {e["feature_id"] for e in groups["configuration"]} == {"seats", "region"}
    seats = next(e for e in groups["configuration"] if e["feature_id"] == "seats")
    assert seats["value"] == 20 and seats["provenance"]["label"] == "plan + add-on"
    region = next(e for e in groups["configuration"] if e["feature_id"] == "region")
    assert region["enum_values"] == ["us", "eu"] and region["enum_display"] == ["United States", "Europe"]
    api = next(e for e in groups["metered"] if e["feature_id"] == "api")
    assert api["utilization"] == 0.5 and api["soft_limit"] is True and api["provenance"]["label"] == "plan"
    assert doc["highest_utilization"] == 0.5 and doc["plan_name"] == "Pro"
    assert [p["id"] for p in doc["promotions"]["active"]] == ["p1"]
    assert doc["promotions"]["expired"][0]["end_date"] == (T0 - timedelta(days=23)).isoformat()


def test_it_writes_and_reads_back_a_customer(rm):
    rm.write_customer(*snapshot("c1", nodes=(node("team-a", 90, 100),)))
    doc = rm.customer("c1")
    assert doc["id"] == "c1" and doc["fetched_at"] == T0.isoformat() and doc["error"] is None
    assert doc["governance"]["budgets"] == 1 and rm.nearest_budgets("c1")[0][1]["utilization"] == 0.9
    assert rm.customer("missing") is None
    assert rm.customer_ids() == ["c1"]


def test_it_ranks_metered_entitlements_fleet_wide_in_order(rm):
    for i, usage in enumerate([100, 950, 500, 1200]):
        rm.write_customer(*snapshot(f"c{i}", api_usage=usage, storage=False))
    top = rm.top_entitlements(3)
    assert [(t.customer_id, t.utilization) for t in top] == [("c3", 1.2), ("c1", 0.95), ("c2", 0.5)]
    assert top[0].customer_name == "Customer c3" and top[0].feature_name == "API calls" and top[0].soft_limit
    assert rm.entitlement_counts().at_80 == 2 and rm.entitlement_counts().at_100 == 1


def test_it_ranks_budgets_by_utilization_and_by_usage(rm):
    rm.write_customer(*snapshot("c1", nodes=(node("a", 90, 100), node("b", 500, 10000),
                                            node("c", 5, None), node("root", None, None, feature=None))))
    rm.write_customer(*snapshot("c2", nodes=(node("x", 120, 100, scope=("u2", "u1")),
                                            node("y", 10, 100, feature=None, currency="credits"))))
    by_util = rm.top_budgets(10, by="utilization")
    assert [(b.customer_id, b.entity_id) for b in by_util] == [("c2", "x"), ("c1", "a"), ("c2", "y"), ("c1", "b")]
    assert by_util[0].scope == ("u1", "u2")
    by_usage = rm.top_budgets(2, by="usage")
    assert [(b.entity_id, b.usage) for b in by_usage] == [("b", 500), ("x", 120)]
    assert rm.budget_counts().at_80 == 2 and rm.budget_counts().at_100 == 1


def test_it_removes_stale_members_when_a_customer_is_rewritten(rm):
    rm.write_customer(*snapshot("c1", nodes=(node("a", 90, 100), node("b", 10, 100))))
    rm.write_customer(*snapshot("c1", api_usage=None, nodes=(node("b", 20, 100),),
                               fetched_at=T0 + timedelta(minutes=1)))
    assert [t.feature_id for t in rm.top_entitlements(10)] == ["storage"]
    assert [(b.entity_id, b.usage) for b in rm.top_budgets(10)] == [("b", 20)]
    assert [b.entity_id for b in rm.top_budgets(10, by="usage")] == ["b"]


def test_it_is_safe_to_write_the_same_snapshot_twice(rm):
    snap = snapshot("c1", nodes=(node("a", 90, 100),))
    rm.write_customer(*snap)
    first = (rm.top_entitlements(10), rm.top_budgets(10), rm.customers_page())
    rm.write_customer(*snap)
    assert (rm.top_entitlements(10), rm.top_budgets(10), rm.customers_page()) == first
    assert rm.customers_page().total == 1


def test_it_keeps_rankings_and_index_consistent_across_many_rewrites(rm):
    # Each write is one MULTI/EXEC: after every write the document, the index row, the sort
    # orders and the rankings all describe the same snapshot, never a mix of two.
    for step in range(6):
        usage = 1000 - step * 150
        rm.write_customer(*snapshot("c1", api_usage=usage, name=f"Name {step}",
                                   fetched_at=T0 + timedelta(seconds=step)))
        doc = rm.customer("c1")
        row = rm.customers_page(sort="utilization").rows[0]
        top = rm.top_entitlements(1)[0]
        assert doc["highest_utilization"] == row.highest_utilization == top.utilization == usage / 1000
        assert row.name == top.customer_name == f"Name {step}"
        assert [r.name for r in rm.customers_page(sort="name").rows] == [f"Name {step}"]


def test_it_refuses_to_roll_a_customer_back_to_an_older_snapshot(rm):
    assert rm.write_customer(*snapshot("c1", api_usage=900, fetched_at=T0))
    assert not rm.write_customer(*snapshot("c1", api_usage=100, fetched_at=T0 - timedelta(minutes=5)))
    assert rm.customer("c1")["highest_utilization"] == 0.9


def test_it_keeps_the_last_good_data_when_a_refresh_fails(rm):
    rm.write_customer(*snapshot("c1", api_usage=900, nodes=(node("a", 90, 100),)))
    at = T0 + timedelta(minutes=7)
    rm.mark_customer_error("c1", "Stigg unavailable: 503", at)
    doc = rm.customer("c1")
    assert doc["error"] == "Stigg unavailable: 503" and doc["error_at"] == at.isoformat()
    assert doc["fetched_at"] == T0.isoformat() and doc["highest_utilization"] == 0.9
    assert rm.top_entitlements(1)[0].customer_id == "c1" and len(rm.top_budgets(5)) == 1
    row = rm.customers_page().rows[0]
    assert row.error == "Stigg unavailable: 503" and row.fetched_at == T0
    assert rm.sync_status(now=at.timestamp()).customers_in_error == 1
    rm.write_customer(*snapshot("c1", fetched_at=at + timedelta(minutes=1)))
    assert rm.customer("c1")["error"] is None and rm.sync_status(now=at.timestamp()).customers_in_error == 0


def test_it_records_a_stub_for_a_customer_never_synced(rm):
    rm.mark_customer_error("ghost", "malformed answer", T0)
    doc = rm.customer("ghost")
    assert doc["fetched_at"] is None and doc["error"] == "malformed answer"
    row = rm.customers_page(search="ghost").rows[0]
    assert row.fetched_at is None and row.error == "malformed answer"
    assert "ghost" in rm.stale_customers(60, now=T0.timestamp())


def test_it_removes_customers_and_their_rankings(rm):
    rm.write_customer(*snapshot("c1", api_usage=900, nodes=(node("a", 90, 100),)))
    rm.write_customer(*snapshot("c2", api_usage=500))
    rm.mark_changed("c1", now=T0.timestamp())
    assert rm.remove_customers(["c1", "never-there"]) == 1
    assert rm.customer("c1") is None and rm.customer_ids() == ["c2"]
    assert {t.customer_id for t in rm.top_entitlements(10)} == {"c2"}
    assert rm.top_budgets(10) == [] and rm.top_budgets(10, by="usage") == []
    assert [r.id for r in rm.customers_page(sort="name").rows] == ["c2"]
    assert [r.id for r in rm.customers_page(sort="utilization").rows] == ["c2"]
    assert rm.hot_customers(0.8, now=T0.timestamp()) == []
    assert rm.customers_page(search="c1").total == 0


@pytest.fixture(scope="module")
def fleet(redis_server):
    """2,000 customers, written once per module: plans alternate, statuses and usage vary."""
    client = redis.Redis.from_url(redis_server.url, decode_responses=True)
    rm = ReadModel(client, prefix=f"test:{uuid.uuid4().hex[:8]}:")
    for i in range(2000):
        rm.write_customer(*snapshot(
            f"cust-{i:04d}", name=f"Acme {i:04d}" if i % 10 else f"Globex {i:04d}",
            email=f"ops{i}@acme.test", api_usage=(i % 121) * 10 if i % 7 else None, storage=False,
            plan="pro" if i % 2 else "free", status="IN_TRIAL" if i % 5 == 0 else "ACTIVE"))
    yield rm
    rm.clear()
    client.close()


def test_it_pages_the_customer_list_by_name(fleet):
    page = fleet.customers_page(sort="name", limit=50)
    assert page.total == 2000 and len(page.rows) == 50 and page.next_offset == 50 and page.prev_offset is None
    seen = []
    offset: int | None = 0
    while offset is not None:
        page = fleet.customers_page(sort="name", offset=offset, limit=300)
        seen.extend(r.name for r in page.rows)
        offset = page.next_offset
    assert len(seen) == 2000 and seen == sorted(seen, key=str.casefold)
    assert seen[0].startswith("Acme") and seen[-1].startswith("Globex")


def test_it_sorts_the_customer_list_by_highest_utilization(fleet):
    rows = fleet.customers_page(sort="utilization", limit=100).rows
    utils = [r.highest_utilization for r in rows]
    assert utils[0] == 12.0  # free plan: 1,200 of 100 calls
    assert utils == sorted(utils, reverse=True)
    last = fleet.customers_page(sort="utilization", offset=1990, limit=10).rows
    assert all(r.highest_utilization is None for r in last)  # no metered entitlement: last


def test_it_searches_by_id_name_or_email_substring(fleet):
    assert fleet.customers_page(search="GLOBEX").total == 200
    assert [r.id for r in fleet.customers_page(search="cust-0042").rows] == ["cust-0042"]
    assert [r.id for r in fleet.customers_page(search="ops1999@").rows] == ["cust-1999"]
    assert fleet.customers_page(search="nobody").rows == []


def test_it_filters_by_plan_and_status_and_sorts_the_matches(fleet):
    page = fleet.customers_page(plan="pro", status="IN_TRIAL", sort="utilization", limit=1000)
    assert page.total == 200  # odd and multiple of 5
    assert all(r.plan_id == "pro" and r.status == "IN_TRIAL" for r in page.rows)
    utils = [r.highest_utilization if r.highest_utilization is not None else -1 for r in page.rows]
    assert utils == sorted(utils, reverse=True)
    named = fleet.customers_page(search="globex", plan="free", sort="name", limit=20, offset=20)
    assert named.total == 200 and named.prev_offset == 0 and named.next_offset == 40
    assert [r.name for r in named.rows] == sorted(r.name for r in named.rows)


def test_it_counts_a_utilization_histogram(fleet):
    bins = fleet.utilization_histogram()
    assert sum(b.count for b in bins) == len(fleet.top_entitlements(5000))
    assert bins[-1].label == "≥ 100%" and bins[-1].count == fleet.entitlement_counts().at_100


def test_it_finds_hot_and_stale_customers(rm):
    rm.write_customer(*snapshot("near", api_usage=850, storage=False, fetched_at=T0))
    rm.write_customer(*snapshot("calm", api_usage=100, storage=False, fetched_at=T0 - timedelta(hours=1)))
    rm.write_customer(*snapshot("poked", api_usage=100, storage=False, fetched_at=T0))
    now = T0.timestamp()
    assert rm.hot_customers(0.8, now=now) == ["near"]
    rm.mark_changed("poked", ttl=60, now=now)
    assert rm.hot_customers(0.8, now=now + 30) == ["near", "poked"]  # near its limit, then somebody acted
    assert rm.hot_customers(0.8, now=now + 61) == ["near"]
    assert rm.stale_customers(600, now=now) == ["calm"]
    assert rm.sync_status(behind_after=600, now=now).customers_behind == 1


def test_it_counts_budgets_near_their_limits_in_the_hot_tier_after_entitlements(rm):
    now = T0.timestamp()
    rm.write_customer(*snapshot("team-full", api_usage=100, storage=False, nodes=(node("t", 9, 10),),
                               fetched_at=T0 - timedelta(minutes=5)))
    rm.write_customer(*snapshot("team-ok", api_usage=100, storage=False, nodes=(node("t", 1, 10),)))
    rm.write_customer(*snapshot("near-new", api_usage=900, storage=False, fetched_at=T0))
    rm.write_customer(*snapshot("near-old", api_usage=950, storage=False, fetched_at=T0 - timedelta(minutes=9)))
    # entitlements near their limit first (longest unread first), then budgets
    assert rm.hot_customers(0.8, now=now) == ["near-old", "near-new", "team-full"]
    assert rm.hot_customers(0.8, now=now, limit=2) == ["near-old", "near-new"]
    # recently changed customers come after entitlements near their limit, never before
    rm.mark_changed("team-ok", ttl=60, now=now)
    assert rm.hot_customers(0.8, now=now + 1) == ["near-old", "near-new", "team-ok", "team-full"]
    assert rm.hot_customers(0.8, now=now + 1, limit=2) == ["near-old", "near-new"]
    rm.r.delete(rm.keys.changed())
    # the budget drops below the threshold: out of the tier; removed customers leave it
    rm.write_customer(*snapshot("team-full", api_usage=100, storage=False, nodes=(node("t", 2, 10),)))
    assert rm.hot_customers(0.8, now=now) == ["near-old", "near-new"]
    rm.write_customer(*snapshot("team-full", api_usage=100, storage=False, nodes=(node("t", 10, 10),)))
    rm.remove_customers(["team-full"])
    assert "team-full" not in rm.hot_customers(0.8, now=now)


def test_it_reports_sync_status(rm):
    rm.write_customer(*snapshot("c1"))
    rm.record_sweep_started(T0)
    assert rm.sync_status(now=T0.timestamp()).sweep_running
    rm.record_errors(2)
    rm.record_rate_limited(5)
    rm.record_sweep_finished(T0 + timedelta(seconds=42), {"customers": 1, "errors": 0})
    status = rm.sync_status(now=T0.timestamp())
    assert not status.sweep_running and status.last_sweep_duration == 42
    assert status.last_sweep_stats == {"customers": 1, "errors": 0}
    assert (status.customers_total, status.errors_seen, status.rate_limited_seen) == (1, 2, 5)


def test_it_lets_only_one_holder_take_a_customer_lock(rm):
    with rm.customer_lock("c1", ttl=30) as first:
        assert first.acquired
        with rm.customer_lock("c1", ttl=30) as second:
            assert not second.acquired
        assert rm.r.exists(first.key)  # the loser's release did not free the winner's lock
        with rm.customer_lock("c2", ttl=30) as other:
            assert other.acquired
    with rm.customer_lock("c1", ttl=30) as again:
        assert again.acquired


def test_a_lock_kept_alive_outlives_its_ttl_until_released(rm):
    held = rm.acquire_customer_lock("slow", ttl=0.3).keep_alive()
    time.sleep(1.0)  # three TTLs: a slow refresh still holds it
    assert not rm.acquire_customer_lock("slow", ttl=0.3).acquired
    held.release()
    assert rm.acquire_customer_lock("slow", ttl=0.3).acquired


def test_a_lock_whose_holder_was_killed_frees_itself_within_its_ttl(rm, redis_server):
    """A worker SIGKILLed mid-refresh stops renewing: the next refresh gets the lock."""
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time, redis\n"
        "from dashboard.readmodel import ReadModel\n"
        f"rm = ReadModel(redis.Redis.from_url({redis_server.url!r}), prefix={rm.prefix!r})\n"
        "assert rm.acquire_customer_lock('killed', ttl=0.5).keep_alive().acquired\n"
        "print('held', flush=True)\n"
        "time.sleep(60)\n")], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        time.sleep(1.0)  # two TTLs: renewed meanwhile
        assert not rm.acquire_customer_lock("killed", ttl=0.5).acquired
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    time.sleep(0.6)
    assert rm.acquire_customer_lock("killed", ttl=0.5).acquired


def test_it_never_releases_a_lock_it_no_longer_owns(rm):
    lock = rm.acquire_customer_lock("c1", ttl=30)
    rm.r.set(lock.key, "someone-else")  # our lock expired and another worker took it
    assert lock.release() is False
    assert rm.r.get(lock.key) == "someone-else"


def test_it_stores_the_catalog(rm):
    assert rm.catalog() is None
    rm.write_catalog(dump(list(FEATURES.values())), dump(list(PACKAGES.values())), T0, entity_types=[])
    cat = rm.catalog()
    assert cat.fetched_at == T0 and cat.features["region"]["enum_options"][1]["value"] == "eu"
    assert (cat.governance_enabled, cat.entity_types) == (True, {})
    assert rm.plans() == [("free", "Free"), ("pro", "Pro")]


def test_it_clears_only_its_own_prefix(rm, redis_server):
    rm.write_customer(*snapshot("c1", nodes=(node("a", 1, 2),)))
    rm.write_catalog(dump(list(FEATURES.values())), dump(list(PACKAGES.values())), T0, entity_types=None)
    rm.r.set("celery-broker-key", "keep me")
    assert rm.clear() > 5
    # all that is left is the mark of an empty read model in this layout
    assert list(rm.r.scan_iter(match=rm.prefix + "*")) == [rm.prefix + "layout"]
    assert rm.r.get("celery-broker-key") == "keep me"
    rm.r.delete("celery-broker-key")
    assert rm.customers_page().total == 0 and rm.top_entitlements(5) == []


def test_it_renders_hostile_names_as_plain_data(rm):
    rm.write_customer(*snapshot("evil", name="<script>alert(1)</script>\x1f\0x"))
    row = rm.customers_page(search="<script>").rows[0]
    assert row.name == "<script>alert(1)</script>\x1f\0x"
    assert rm.customers_page(sort="name").rows[0].id == "evil"


# Ids may hold any character: each pair below collided in key names or ranking members
# while ids went into them raw ("acme:history" was acme's usage history, "yy:members"
# made customer yy unwritable).
HOSTILE_IDS = ["acme", "acme:history", "yy:members", "yy", "a/b/c", "100%", "100%25", "with space",
               "x" * 300, "Ünïcødé-客户", "a|b", "a", "a,b"]


def test_it_keeps_customers_with_hostile_ids_apart(rm):
    history = {"fetched_at": T0.isoformat(), "start": T0.isoformat(), "features": {}}
    for cid in HOSTILE_IDS:
        rm.write_customer(*snapshot(cid, name=f"Name of {cid}"))
        if cid == "acme":
            rm.write_usage_history(cid, history)
    for cid in HOSTILE_IDS:
        doc = rm.customer(cid)
        assert doc is not None and doc["id"] == cid and doc["profile"]["name"] == f"Name of {cid}"
        assert cid in [r.id for r in rm.customers_page(search=cid, limit=500).rows]
    assert sorted(rm.customer_ids()) == sorted(HOSTILE_IDS)
    assert rm.usage_history("acme") == history and rm.usage_history("acme:history") is None
    api = [t.customer_id for t in rm.top_entitlements(n=100) if t.feature_id == "api"]
    assert sorted(api) == sorted(HOSTILE_IDS)
    rm.remove_customers(["acme:history", "yy:members"])
    assert rm.customer("acme") is not None and rm.usage_history("acme") == history
    assert rm.customer("yy") is not None and rm.customer("yy:members") is None


def test_it_keeps_budgets_of_hostile_entity_ids_apart(rm):
    # customer "a" with entity "b|x", customer "a|b" with entity "x": once the same member
    rm.write_customer(*snapshot("a", nodes=(node("b|x", 90, 100), node("p,q", 10, 100, scope=("s,t",)))))
    rm.write_customer(*snapshot("a|b", nodes=(node("x", 50, 100), node("p", 20, 100, scope=("q", "s,t")))))
    budgets = {(b.customer_id, b.entity_id, b.scope) for b in rm.top_budgets(n=10)}
    assert budgets == {("a", "b|x", ()), ("a", "p,q", ("s,t",)), ("a|b", "x", ()), ("a|b", "p", ("q", "s,t"))}
    rm.remove_customers(["a|b"])
    assert {(b.customer_id, b.entity_id) for b in rm.top_budgets(n=10)} == {("a", "b|x"), ("a", "p,q")}


def test_it_never_shows_a_reader_half_an_update(rm):
    # A writer flips one customer between two snapshots; a reader takes consistent cuts
    # (MULTI of reads) of the document, index row, sort order and ranking. With one MULTI/EXEC
    # per customer write, every cut describes a single snapshot.
    a = snapshot("c1", name="Alpha", api_usage=900, nodes=(node("x", 90, 100),))
    b = snapshot("c1", name="Beta", api_usage=100, nodes=(node("y", 10, 100),))
    stop = threading.Event()

    def writer() -> None:
        i = 0
        while not stop.is_set():
            i += 1
            doc, governance = a if i % 2 else b
            snap = dict(doc)
            snap["fetched_at"] = (T0 + timedelta(milliseconds=i)).isoformat()
            rm.write_customer(snap, governance)

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        rm.write_customer(*a)
        for _ in range(300):
            pipe = rm.r.pipeline(transaction=True)
            pipe.get(rm.keys.customer("c1"))
            pipe.hget(rm.keys.rows(), "c1")
            pipe.zrange(rm.keys.order("name"), 0, -1)
            pipe.zrange(rm.keys.rank_budgets("usage"), 0, -1)
            pipe.zscore(rm.keys.rank_entitlements(), "c1|c=api|")
            doc, row, names, budgets, util = pipe.execute()
            name = unpack(doc)["profile"]["name"]
            assert json.loads(row)["name"] == name and len(names) == 1 and names[0].startswith(name.casefold())
            assert budgets == (["c1|x||c=api|t=team|"] if name == "Alpha" else ["c1|y||c=api|t=team|"])
            assert util == (-0.9 if name == "Alpha" else -0.1)  # scores are negated (keys.py)
    finally:
        stop.set()
        thread.join()


def test_it_keeps_members_consistent_under_concurrent_writers_of_one_customer(rm):
    # WATCH on the customer's keys makes a racing writer retry instead of leaving members
    # of both snapshots behind.
    snaps = [snapshot("c1", nodes=(node(f"e{i}", i, 100),), fetched_at=T0 + timedelta(seconds=i))
             for i in range(1, 41)]
    threads = [threading.Thread(target=lambda chunk=snaps[k::4]: [rm.write_customer(*s) for s in chunk])
               for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    doc = rm.customer("c1")
    assert doc["fetched_at"] == (T0 + timedelta(seconds=40)).isoformat()
    assert [b.entity_id for b in rm.top_budgets(100)] == [n["id"] for n in rm.governance_index("c1")] == ["e40"]


def test_it_finds_a_renamed_customer_by_its_new_name_and_email_only(rm):
    rm.write_customer(*snapshot("c1", name="Old Name", email="old@acme.test"))
    rm.write_customer(*snapshot("c2", name="Middle"))
    rm.write_customer(*snapshot("c1", name="Zed New", email="new@acme.test", fetched_at=T0 + timedelta(minutes=1)))
    for sort in ("name", "utilization"):
        assert rm.customers_page(search="old", sort=sort).total == 0
        assert [r.id for r in rm.customers_page(search="zed new", sort=sort).rows] == ["c1"]
        assert [r.id for r in rm.customers_page(search="new@acme", plan="pro", sort=sort).rows] == ["c1"]
    assert [r.name for r in rm.customers_page(sort="name").rows] == ["Middle", "Zed New"]
    assert rm.customers_page(plan="pro").total == 2


def test_it_moves_a_customer_between_plan_and_status_filters(rm):
    rm.write_customer(*snapshot("c1", plan="pro", status="ACTIVE"))
    rm.write_customer(*snapshot("c1", plan="pro", status="ACTIVE"))  # written twice: listed once
    assert [rm.customers_page(plan="pro", status="ACTIVE", sort=s).total for s in ("name", "utilization")] == [1, 1]
    rm.write_customer(*snapshot("c1", plan="free", status="IN_TRIAL", fetched_at=T0 + timedelta(minutes=1)))
    for sort in ("name", "utilization"):
        def total(**filters: str) -> int:
            return rm.customers_page(sort=sort, **filters).total

        assert total(plan="pro") == total(status="ACTIVE") == total(plan="pro", status="ACTIVE") == 0
        assert total(plan="pro", search="c1") == total(plan="free", status="ACTIVE") == 0
        assert total(plan="free") == total(status="IN_TRIAL") == total(plan="FREE", status="in_trial") == 1
        assert total(plan="free", status="IN_TRIAL", search="c1") == total() == 1


def test_it_drops_a_removed_customer_from_filtered_and_searched_pages(rm):
    rm.write_customer(*snapshot("c1", plan="pro", status="IN_TRIAL"))
    rm.write_customer(*snapshot("c2", plan="pro", status="IN_TRIAL"))
    rm.remove_customers(["c1"])
    for sort in ("name", "utilization"):
        assert [r.id for r in rm.customers_page(plan="pro", status="IN_TRIAL", sort=sort).rows] == ["c2"]
        assert [r.id for r in rm.customers_page(search="customer c", sort=sort).rows] == ["c2"]
    rm.remove_customers(["c2"])
    assert rm.customers_page(plan="pro").total == rm.customers_page(search="c").total == 0
    assert list(rm.r.scan_iter(match=rm.prefix + "customers:*")) == []  # no empty index left behind


def test_it_matches_hostile_search_text_literally(rm):
    names = {"pct": "100% Pure", "dot": "a.b*c [x] (y) ^z$", "axb": "axb %a", "sep": "sep\x1fname\0end",
             "Mixed:ID\x1f1": "Mixed", "nul\0id": "Zero"}
    for cid, name in names.items():
        rm.write_customer(*snapshot(cid, name=name, email=f"{len(cid)}@example.com"))
    keys_before = set(rm.r.scan_iter(match=rm.prefix + "*"))

    def found(search: str, sort: str = "name") -> list[str]:
        return [r.id for r in rm.customers_page(search=search, sort=sort).rows]

    for sort in ("name", "utilization"):
        assert found("%", sort) == ["pct", "axb"]  # "1" < "a"; equal utilizations: higher id first
        assert found("0% p", sort) == ["pct"]
        assert found("a.b", sort) == found("[x] (y)", sort) == found("^z$", sort) == ["dot"]
        assert found("%a", sort) == ["axb"]
        assert found("sep name end", sort) == ["sep"]  # stored as cleaned, as shown in the list
        assert found("p\x1fn", sort) == found("p\0e", sort) == found("\0", sort) == []
        assert found("mixed:id 1", sort) == ["Mixed:ID\x1f1"]  # the id comes back exactly
        assert found("zero", sort) == found("nul", sort) == ["nul\0id"]
    assert [r.id for r in rm.customers_page(sort="name").rows] == [
        "pct", "dot", "axb", "Mixed:ID\x1f1", "sep", "nul\0id"]
    assert set(rm.r.scan_iter(match=rm.prefix + "*")) == keys_before  # reads never write


def test_it_keeps_plan_ids_with_separators_apart_in_filters(rm):
    rm.write_customer(*snapshot("a", plan="gold:status:active", status="CANCELED"))
    rm.write_customer(*snapshot("b", plan="gold", status="ACTIVE"))
    rm.write_customer(*snapshot("c", plan="gold%3Astatus", status="ACTIVE"))
    assert [r.id for r in rm.customers_page(plan="gold", status="ACTIVE").rows] == ["b"]
    assert [r.id for r in rm.customers_page(plan="gold:status:active").rows] == ["a"]
    assert [r.id for r in rm.customers_page(plan="gold%3Astatus").rows] == ["c"]
    assert [r.id for r in rm.customers_page(status="ACTIVE", search="customer").rows] == ["b", "c"]


def test_it_empties_a_read_model_written_in_another_layout(rm):
    from dashboard.readmodel import LAYOUT_VERSION

    rm.clear()
    rm.r.delete(rm.prefix + "layout")
    assert rm.ensure_layout() is False  # empty: nothing to rebuild, the layout is recorded
    assert rm.r.get(rm.prefix + "layout") == LAYOUT_VERSION
    rm.write_customer(*snapshot("c1"))
    assert rm.ensure_layout() is False and rm.customer_count() == 1  # same layout: kept
    rm.r.set(rm.prefix + "layout", "1")
    assert rm.ensure_layout() is True and rm.customer_count() == 0  # another layout: emptied
    rm.write_customer(*snapshot("c1"))
    rm.r.delete(rm.prefix + "layout")  # written before layouts were recorded
    assert rm.ensure_layout() is True and rm.customer_count() == 0
    assert rm.r.get(rm.prefix + "layout") == LAYOUT_VERSION


def test_it_reads_only_the_budgets_at_or_above_a_threshold(rm):
    # one entity with a budget near its limit and one far from it, for two features
    rm.write_customer(*snapshot("c1", nodes=(node("a", 90, 100), node("a", 10, 100, feature="storage"),
                                             node("b", 5, 100))))
    assert rm.budgets_at_or_above("c1", 0.8) == {("a", "api", ()): 90}
    assert set(rm.budgets_at_or_above("c1", 0.0)) == {("a", "api", ()), ("a", "storage", ()), ("b", "api", ())}
