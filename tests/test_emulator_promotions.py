"""Promotional entitlements over real HTTP (stigg-api.md §6, guarantees 9 and 14–17)."""
from __future__ import annotations

import time
from datetime import datetime, timedelta

import pytest
import stigg as stigg_sdk

from . import emulator_world as w

NULLS = {"custom_end_date": None, "enum_values": None, "has_soft_limit": None, "has_unlimited_usage": None,
         "is_visible": None, "monthly_reset_period_configuration": None, "reset_period": None, "usage_limit": None,
         "weekly_reset_period_configuration": None, "yearly_reset_period_configuration": None}


def _parse(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _grant(**values):
    """A grant as the SDK requires it: every key present, most of them null."""
    return {**NULLS, **values}


@pytest.fixture(scope="module")
def world(emulator):
    calls = w.feature(emulator, "NUMBER")
    sso = w.feature(emulator, "BOOLEAN")
    tier = w.feature(emulator, "ENUM")
    plan = w.plan(emulator, w.product(emulator), [{"id": calls, "usageLimit": 10}])
    return {"calls": calls, "sso": sso, "tier": tier, "plan": plan}


@pytest.mark.parametrize("period, delta", [
    ("1 week", timedelta(days=7)), ("1 month", None), ("6 month", None), ("1 year", None), ("lifetime", None)])
def test_it_grants_one_active_record_per_feature(emulator, stigg, world, period, delta):
    """Guarantee 14: one record per feature, status Active, startDate = now and endDate
    from period (Inferred calendar mapping of §6; lifetime = no end)."""
    customer = w.customer(emulator)
    before = _parse(w.now(emulator))
    data = stigg.v1.customers.promotional_entitlements.create(customer, promotional_entitlements=[
        _grant(feature_id=world["sso"], period=period),
        _grant(feature_id=world["calls"], period=period, usage_limit=50)]).data
    assert [(p.feature_id, p.status) for p in data] == [(world["sso"], "Active"), (world["calls"], "Active")]
    record = data[0]
    assert before <= record.start_date <= _parse(w.now(emulator))
    months = {"1 month": 1, "6 month": 6, "1 year": 12}.get(period)
    if period == "lifetime":
        assert record.end_date is None
    elif months:
        total = record.start_date.month - 1 + months
        expected_month, expected_year = total % 12 + 1, record.start_date.year + total // 12
        assert (record.end_date.year, record.end_date.month) == (expected_year, expected_month)
    else:
        assert record.end_date - record.start_date == delta
    assert data[1].usage_limit == 50 and record.is_visible is True


def test_it_ends_a_custom_grant_on_its_custom_end_date(emulator, stigg, world):
    """Guarantee 14: period custom takes endDate from customEndDate."""
    customer = w.customer(emulator)
    end = _parse(w.now(emulator)).replace(microsecond=0) + timedelta(days=3)
    record = stigg.v1.customers.promotional_entitlements.create(customer, promotional_entitlements=[
        _grant(feature_id=world["sso"], period="custom", custom_end_date=end)]).data[0]
    assert record.end_date == end and record.period == "custom"


def test_it_replaces_a_second_grant_for_the_same_feature(emulator, stigg, world):
    """Guarantee 15: the list holds exactly one record for the feature, with the new values
    (Inferred: a new id)."""
    customer = w.customer(emulator)
    promos = stigg.v1.customers.promotional_entitlements
    first = promos.create(customer, promotional_entitlements=[
        _grant(feature_id=world["calls"], period="1 month", usage_limit=20)]).data[0]
    second = promos.create(customer, promotional_entitlements=[
        _grant(feature_id=world["calls"], period="1 year", usage_limit=30)]).data[0]
    listed = list(promos.list(customer))
    assert [(p.id, p.usage_limit, p.period) for p in listed] == [(second.id, 30, "1 year")]
    assert second.id != first.id


def test_it_revokes_and_returns_the_record(emulator, stigg, world):
    """Guarantees 9 and 16: revoke returns the record; it leaves the list and the effective
    entitlements; revoking again → 404 PromotionalEntitlementNotFoundError (Inferred)."""
    customer = w.customer(emulator)
    w.subscribe(emulator, customer, world["plan"])
    promos = stigg.v1.customers.promotional_entitlements
    granted = promos.create(customer, promotional_entitlements=[
        _grant(feature_id=world["calls"], period="1 month", usage_limit=500)]).data[0]
    assert stigg.v1.customers.check_entitlement(customer, feature_id=world["calls"]).data.usage_limit == 500
    revoked = promos.revoke(world["calls"], id=customer).data
    assert revoked.id == granted.id and revoked.usage_limit == 500
    assert list(promos.list(customer)) == []
    assert stigg.v1.customers.check_entitlement(customer, feature_id=world["calls"]).data.usage_limit == 10
    with pytest.raises(stigg_sdk.NotFoundError) as err:
        promos.revoke(world["calls"], id=customer)
    assert err.value.body["code"] == "PromotionalEntitlementNotFoundError"


def test_it_expires_a_grant_after_its_end_date(emulator, stigg, world):
    """Guarantees 9 and 17: after endDate the record reads Expired, stays listed, and grants
    nothing (the check falls back to NoActiveSubscription)."""
    customer = w.customer(emulator)
    promos = stigg.v1.customers.promotional_entitlements
    promos.create(customer, promotional_entitlements=[_grant(feature_id=world["sso"], period="1 week")])
    promos.create(customer, promotional_entitlements=[_grant(feature_id=world["calls"], period="lifetime",
                                                             usage_limit=5)])
    assert stigg.v1.customers.check_entitlement(customer, feature_id=world["sso"]).data.is_granted is True
    emulator.advance_clock(8 * 86400)
    statuses = {p.feature_id: p.status for p in promos.list(customer)}
    assert statuses == {world["sso"]: "Expired", world["calls"]: "Active"}
    check = stigg.v1.customers.check_entitlement(customer, feature_id=world["sso"]).data
    assert (check.is_granted, check.access_denied_reason) == (False, "NoActiveSubscription")
    assert [p.feature_id for p in promos.list(customer, status=["Expired"])] == [world["sso"]]
    both = emulator.data("GET", f"/api/v1/customers/{customer}/promotional-entitlements",
                         params=[("status", "Active"), ("status", "Expired")])
    assert len(both) == 2


def test_it_anchors_a_promo_reset_period_on_its_start_date(emulator, world):
    """Guarantees 13 and 14 / §5.3: a promotional reset period is anchored on the promotion's startDate, and the
    promo's endDate caps validUntil (Inferred: earliest of period end and promo end)."""
    customer = w.customer(emulator)
    record = w.grant(emulator, customer, world["calls"], period="1 week", usageLimit=7, resetPeriod="MONTH",
                     monthlyResetPeriodConfiguration={"accordingTo": "SubscriptionStart"})
    data = w.check(emulator, customer, world["calls"])
    assert data["usagePeriodAnchor"] == record["startDate"] == data["usagePeriodStart"]
    assert data["validUntil"] == record["endDate"] and data["usageLimit"] == 7
    assert record["resetPeriodConfiguration"] == {"accordingTo": "SubscriptionStart"}


def test_it_paginates_the_list(emulator, stigg, world):
    """Guarantee 3: after=<next> visits every record once."""
    customer = w.customer(emulator)
    stigg.v1.customers.promotional_entitlements.create(customer, promotional_entitlements=[
        _grant(feature_id=f, period="1 month") for f in (world["sso"], world["tier"])])
    page = stigg.v1.customers.promotional_entitlements.list(customer, limit=1)
    seen = [p.feature_id for p in page]  # iterating the SDK page follows pagination.next
    assert sorted(seen) == sorted([world["sso"], world["tier"]])


def test_it_emits_webhooks_for_grant_and_revoke(emulator, world):
    """Guarantees 14 and 16 / §10: promotional_entitlement.granted / .revoked and entitlements.updated are queued
    (Inferred data: the affected REST object plus customerId)."""
    emulator.data("PUT", "/_emulator/webhook", json={"url": "http://127.0.0.1:9/hook"})
    try:
        customer = w.customer(emulator)
        w.grant(emulator, customer, world["sso"])
        emulator.data("DELETE", f"/api/v1/customers/{customer}/promotional-entitlements/{world['sso']}")
        messages = [m["message"] for m in emulator.data("GET", "/_emulator/webhooks")
                    if m["message"]["data"].get("customerId") == customer]
        types = {m["type"] for m in messages}
        assert {"promotional_entitlement.granted", "promotional_entitlement.revoked", "entitlements.updated"} <= types
    finally:
        emulator.data("PUT", "/_emulator/webhook", json={"url": None})


@pytest.mark.parametrize("items, fragment", [
    ([{"featureId": "$sso", "period": "custom"}], "customEndDate"),
    ([{"featureId": "$sso", "period": "custom", "customEndDate": "2001-01-01T00:00:00Z"}], "future"),
    ([{"featureId": "$sso", "period": "custom", "customEndDate": "soon"}], "customEndDate"),
    ([{"featureId": "$sso", "period": "2 weeks"}], "period"),
    ([{"featureId": "$sso"}], "period"),
    ([{"period": "1 month"}], "featureId"),
    ([{"featureId": "no-such-feature", "period": "1 month"}], "no-such-feature"),
    ([{"featureId": "$calls", "period": "1 month"}], "usageLimit"),
    ([{"featureId": "$calls", "period": "1 month", "usageLimit": "ten"}], "usageLimit"),
    ([{"featureId": "$tier", "period": "1 month", "enumValues": ["zzz"]}], "enumValues"),
    ([{"featureId": "$sso", "period": "1 month"}, {"featureId": "$sso", "period": "1 week"}], "once"),
    ([{"featureId": "$sso", "period": "1 month"}, "oops"], "must be an object"),
    ([{"featureId": "$sso", "period": "1 month", "colour": "red"}], "colour"),
    ([], "at least"),
])
def test_it_rejects_bad_grants_and_stores_nothing(emulator, world, items, fragment):
    """Guarantees 5 and 14: bad grants → 400 {code, message}, validated as a whole before
    writing, so an earlier good item in the same call is not stored either."""
    customer = w.customer(emulator)
    w.grant(emulator, customer, world["tier"], enumValues=["a"])
    items = [{k: world[v[1:]] if isinstance(v, str) and v.startswith("$") else v for k, v in i.items()}
             if isinstance(i, dict) else i for i in items]
    before = w.snapshot(emulator, customer)
    resp = emulator.call("POST", f"/api/v1/customers/{customer}/promotional-entitlements",
                         json={"promotionalEntitlements": items})
    assert resp.status_code == 400, resp.text
    assert set(resp.json()) == {"code", "message"} and fragment in resp.json()["message"]
    assert w.snapshot(emulator, customer) == before


def test_it_rejects_malformed_bodies_unknown_customers_and_bad_filters(emulator, world):
    """Guarantee 5: malformed JSON → 400, an unknown customer → 404 CustomerNotFound, an
    unknown status filter → 400."""
    customer = w.customer(emulator)
    path = f"/api/v1/customers/{customer}/promotional-entitlements"
    resp = emulator.call("POST", path, content=b"[1,", headers={"Content-Type": "application/json"})
    assert resp.status_code == 400 and resp.json()["code"] == "BadUserInput"
    resp = emulator.call("POST", path, json={"promotionalEntitlements": {"featureId": world["sso"]}})
    assert resp.status_code == 400
    resp = emulator.call("POST", "/api/v1/customers/nobody/promotional-entitlements",
                         json={"promotionalEntitlements": [{"featureId": world["sso"], "period": "1 month"}]})
    assert resp.status_code == 404 and resp.json()["code"] == "CustomerNotFound"
    assert emulator.call("GET", "/api/v1/customers/nobody/promotional-entitlements").status_code == 404
    assert emulator.call("GET", path, params={"status": "Gone"}).status_code == 400
    assert emulator.data("GET", path) == []


def test_it_announces_each_expiry_once(emulator, world):
    """Guarantee 17 / §10: expire_due_promotions (called by the webhook dispatcher) queues
    promotional_entitlement.expired once per promotion past its endDate. It runs here
    against the emulator's own storage, the way the dispatcher runs it."""
    from emulator import store
    from emulator.domain import promotions as entitlements  # promotional entitlements (§6)

    emulator.data("PUT", "/_emulator/webhook", json={"url": "http://127.0.0.1:9/hook"})
    conn = store.connect(emulator.db_path)
    try:
        customer = w.customer(emulator)
        w.grant(emulator, customer, world["sso"], period="1 week")
        assert customer not in _expired_customers(emulator)
        emulator.advance_clock(8 * 86400)
        # The server's dispatcher runs the same scan every second, so either may win;
        # what matters is exactly one announcement, however often the scan runs.
        entitlements.expire_due_promotions(conn)
        assert _expired_customers(emulator).count(customer) == 1
        entitlements.expire_due_promotions(conn)
        time.sleep(1.5)
        assert _expired_customers(emulator).count(customer) == 1
        listed = emulator.data("GET", f"/api/v1/customers/{customer}/promotional-entitlements")
        assert listed[0]["status"] == "Expired" and "_expiredNotified" not in listed[0]
    finally:
        conn.close()
        emulator.data("PUT", "/_emulator/webhook", json={"url": None})


def _expired_customers(emulator) -> list[str]:
    return [m["message"]["data"]["customerId"] for m in emulator.data("GET", "/_emulator/webhooks")
            if m["message"]["type"] == "promotional_entitlement.expired"]
