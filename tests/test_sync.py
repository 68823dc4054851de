"""dashboard.sync against the real emulator and a real Redis: what one refresh asks
Stigg for, counted by the emulator, and what lands in the read model."""
from __future__ import annotations

from datetime import datetime

import pytest
import redis

from dashboard import sync
from dashboard.readmodel import ReadModel
from dashboard.stigg import StiggClient

from . import emulator_world as w


@pytest.fixture(scope="module")
def parts(emulator, redis_server):
    rm = ReadModel(redis.Redis.from_url(redis_server.url), prefix="test-sync:")
    rm.clear()
    client = StiggClient(emulator.url, emulator.key, timeout=10)
    calls = w.feature(emulator)
    product = w.product(emulator)
    plan = w.plan(emulator, product, [{"id": calls, "usageLimit": 100, "resetPeriod": "MONTH"}])
    sync.refresh_catalog(client, rm)
    yield {"rm": rm, "client": client, "calls": calls, "plan": plan}
    client.close()
    rm.clear()


def requests_for(emulator, action) -> int:
    emulator.data("DELETE", "/_emulator/stats")
    action()
    return emulator.data("GET", "/_emulator/stats")["requests"]


def test_it_asks_a_new_customer_for_everything_then_only_what_can_change(emulator, parts):
    rm, client = parts["rm"], parts["client"]
    customer = w.customer(emulator)
    w.subscribe(emulator, customer, parts["plan"])
    refresh = lambda: sync.refresh_customer(client, rm, customer)  # noqa: E731
    # customer, subscriptions, entitlements, promotions, governance tree
    assert requests_for(emulator, refresh) == 5
    # nothing showed promotions or budgets: customer, subscriptions, entitlements
    assert requests_for(emulator, refresh) == 3
    doc = rm.customer(customer)
    assert doc["plan_id"] == parts["plan"] and doc["promotions"] == {"active": [], "expired": []}


def test_it_asks_for_promotions_when_a_value_is_unexplained(emulator, parts):
    """A promotion granted while its webhook was lost shows up as a limit the plan cannot
    explain: the refresh then asks for promotions, and the page names the promotion."""
    rm, client = parts["rm"], parts["client"]
    customer = w.customer(emulator)
    w.subscribe(emulator, customer, parts["plan"])
    sync.refresh_customer(client, rm, customer)
    sync.refresh_customer(client, rm, customer)
    w.grant(emulator, customer, parts["calls"], usageLimit=1000)
    assert requests_for(emulator, lambda: sync.refresh_customer(client, rm, customer)) == 4
    doc = rm.customer(customer)
    ent = next(e for e in doc["entitlements"]["metered"] if e["feature_id"] == parts["calls"])
    assert ent["limit"] == 1000 and ent["provenance"]["label"] == "promotion"
    assert [p["feature_id"] for p in doc["promotions"]["active"]] == [parts["calls"]]


def test_it_keeps_asking_customers_that_have_budgets(emulator, parts):
    rm, client = parts["rm"], parts["client"]
    customer = w.customer(emulator)
    w.subscribe(emulator, customer, parts["plan"])
    emulator.data("PUT", "/api/v1-beta/entity-types",
                  json={"types": [{"id": "user", "displayName": "User", "attributionKeys": ["userId"]}]})
    emulator.data("PUT", f"/api/v1-beta/customers/{customer}/entities",
                  json={"entities": [{"id": "ada", "entityTypeId": "user"}]})
    emulator.data("PUT", f"/api/v1-beta/customers/{customer}/assignments",
                  json={"assignments": [{"entityId": "ada", "featureId": parts["calls"], "usageLimit": 10,
                                         "cadence": "P1M"}]})
    w.report_usage(emulator, customer, parts["calls"], 9, dimensions={"userId": "ada"})
    sync.refresh_customer(client, rm, customer)
    # customer, subscriptions, entitlements, the tree's entities, their budgets (no promotions seen)
    assert requests_for(emulator, lambda: sync.refresh_customer(client, rm, customer)) == 5
    node, budget = rm.nearest_budgets(customer)[0]
    assert (node["id"], budget["usage"], budget["limit"]) == ("ada", 9, 10)
    top = rm.top_budgets(1)
    assert top and top[0].customer_id == customer
    # A hot-tier poll asks only for what is near a limit: unchanged there, one request beside
    # the entitlements, and the stored hierarchy stays; changed there, the whole hierarchy again.
    assert requests_for(emulator, lambda: sync.refresh_customer(client, rm, customer, parts=sync.POLL_PARTS)) == 2
    w.report_usage(emulator, customer, parts["calls"], 1, dimensions={"userId": "ada"})
    assert requests_for(emulator, lambda: sync.refresh_customer(client, rm, customer, parts=sync.POLL_PARTS)) == 4
    assert rm.nearest_budgets(customer)[0][1]["usage"] == 10


def test_it_removes_a_customer_that_disappeared(emulator, parts):
    rm, client = parts["rm"], parts["client"]
    assert sync.refresh_customer(client, rm, "never-existed") is False
    assert rm.customer("never-existed") is None


def test_it_refreshes_only_what_a_webhook_can_have_changed(emulator, parts):
    """A promotion webhook: entitlements and promotions, 2 requests; the rest of the
    customer comes from its last good document unchanged."""
    rm, client = parts["rm"], parts["client"]
    customer = w.customer(emulator, name="Webhook Co")
    w.subscribe(emulator, customer, parts["plan"])
    sync.refresh_customer(client, rm, customer)
    before = rm.customer(customer)
    w.grant(emulator, customer, parts["calls"], usageLimit=700)
    only = sync.parts_for_webhook("promotional_entitlement.granted")
    assert requests_for(emulator, lambda: sync.refresh_customer(client, rm, customer, parts=only)) == 2
    doc = rm.customer(customer)
    assert doc["profile"] == before["profile"] and doc["subscriptions"] == before["subscriptions"]
    ent = next(e for e in doc["entitlements"]["metered"] if e["feature_id"] == parts["calls"])
    assert ent["limit"] == 700 and ent["provenance"]["label"] == "promotion"


def test_it_polls_a_hot_customer_with_one_request(emulator, parts):
    rm, client = parts["rm"], parts["client"]
    customer = w.customer(emulator)
    w.subscribe(emulator, customer, parts["plan"])
    w.report_usage(emulator, customer, parts["calls"], 90)
    sync.refresh_customer(client, rm, customer)
    assert customer in rm.hot_customers(0.8)
    w.report_usage(emulator, customer, parts["calls"], 5)
    assert requests_for(emulator, lambda: sync.refresh_customer(client, rm, customer, parts=sync.POLL_PARTS)) == 1
    ent = next(e for e in rm.customer(customer)["entitlements"]["metered"] if e["feature_id"] == parts["calls"])
    assert ent["usage"] == 95


def test_it_fetches_everything_for_a_customer_it_has_no_good_document_for(emulator, parts):
    rm, client = parts["rm"], parts["client"]
    customer = w.customer(emulator)
    w.subscribe(emulator, customer, parts["plan"])
    rm.mark_customer_error(customer, "never synced", sync.now())  # a stub, not a good document
    assert requests_for(emulator, lambda: sync.refresh_customer(client, rm, customer, parts=sync.POLL_PARTS)) == 5
    assert rm.customer(customer)["error"] is None


def test_it_only_moves_the_time_when_nothing_changed(emulator, parts):
    rm, client = parts["rm"], parts["client"]
    customer = w.customer(emulator)
    w.subscribe(emulator, customer, parts["plan"])
    sync.refresh_customer(client, rm, customer)
    first = rm.customer(customer)
    sync.refresh_customer(client, rm, customer)
    second = rm.customer(customer)
    assert second["fetched_at"] > first["fetched_at"]
    assert {k: v for k, v in second.items() if k != "fetched_at"} == {k: v for k, v in first.items() if k != "fetched_at"}
    row = rm.customer_rows([customer])[0]  # the list page's row shows the new time too
    assert abs((row.fetched_at - datetime.fromisoformat(second["fetched_at"])).total_seconds()) < 0.001
    w.report_usage(emulator, customer, parts["calls"], 3)
    sync.refresh_customer(client, rm, customer)
    ent = next(e for e in rm.customer(customer)["entitlements"]["metered"] if e["feature_id"] == parts["calls"])
    assert ent["usage"] == 3
