"""Customer entitlements and checks over real HTTP (stigg-api.md §5, guarantees 8–13)."""
from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from . import emulator_world as w


def _parse(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _add_months(value: datetime, months: int) -> datetime:
    total = value.month - 1 + months
    return value.replace(year=value.year + total // 12, month=total % 12 + 1)


@pytest.fixture(scope="module")
def world(emulator):
    f = {name: w.feature(emulator, kind, metered=metered) for name, kind, metered in (
        ("calls", "NUMBER", True), ("seats", "NUMBER", False), ("sso", "BOOLEAN", True), ("tier", "ENUM", True),
        ("export", "BOOLEAN", True), ("storage", "NUMBER", True))}
    f["gauge"] = w.feature(emulator, "NUMBER", meterType="FLUCTUATING")
    product = w.product(emulator)
    base = w.plan(emulator, product, [
        {"id": f["calls"], "usageLimit": 10, "resetPeriod": "DAY"}, {"id": f["seats"], "usageLimit": 3},
        {"id": f["tier"], "enumValues": ["a"]}, {"id": f["sso"]}, {"id": f["gauge"], "usageLimit": 5},
        {"id": f["storage"], "usageLimit": 100, "hasSoftLimit": True},
        {"id": f["export"], "isGranted": False}])
    child = w.plan(emulator, product, [{"id": f["calls"], "usageLimit": 5, "behavior": "Increment"},
                                       {"id": f["seats"], "usageLimit": 20, "behavior": "Override"}],
                   parentPlanId=base)
    addon = w.addon(emulator, product, [{"id": f["calls"], "usageLimit": 3}, {"id": f["tier"], "enumValues": ["b"]}])
    monthly = w.plan(emulator, product, [{"id": f["calls"], "usageLimit": 50, "resetPeriod": "MONTH"}])
    return {**f, "base": base, "child": child, "addon": addon, "monthly": monthly}


def _customer_on(emulator, plan_id: str, **extra) -> str:
    customer = w.customer(emulator)
    w.subscribe(emulator, customer, plan_id, **extra)
    return customer


def test_it_lists_every_source_feature_through_the_sdk(emulator, stigg, world):
    """Guarantee 8 / §5.1: one item per feature of any source, denied ones included; a
    NUMBER configuration value shows in usageLimit with currentUsage null (Inferred)."""
    customer = _customer_on(emulator, world["base"])
    data = stigg.v1.customers.retrieve_entitlements(customer).data
    assert data.access_denied_reason is None
    by_id = {e.feature.id: e for e in data.entitlements}
    assert by_id[world["sso"]].is_granted is True
    assert by_id[world["seats"]].usage_limit == 3 and by_id[world["seats"]].current_usage is None
    assert by_id[world["calls"]].usage_limit == 10 and by_id[world["calls"]].current_usage == 0
    assert by_id[world["export"]].is_granted is False
    assert by_id[world["export"]].access_denied_reason == "NoFeatureEntitlementInSubscription"


def test_it_inherits_the_parent_plan_and_adds_add_ons_times_quantity(emulator, stigg, world):
    """Guarantee 8 / §5.4: child Increment adds to the parent (10 + 5), Override replaces
    (20, not 3), and add-ons add value × quantity (3 × 2). Inferred: Increment/Override
    semantics of §3."""
    customer = _customer_on(emulator, world["child"], addons=[{"id": world["addon"], "quantity": 2}])
    by_id = {e.feature.id: e for e in stigg.v1.customers.retrieve_entitlements(customer).data.entitlements}
    assert by_id[world["calls"]].usage_limit == 10 + 5 + 3 * 2
    assert by_id[world["seats"]].usage_limit == 20
    assert by_id[world["sso"]].is_granted is True  # inherited untouched
    check = stigg.v1.customers.check_entitlement(customer, feature_id=world["tier"], requested_values=["a", "b"])
    assert check.data.is_granted is True  # ENUM union of plan and add-on


def test_it_applies_subscription_overrides(emulator, stigg, world):
    """Guarantee 8 / §5.4: the subscription total uses the override instead of the plan value."""
    customer = w.customer(emulator)
    stigg.v1.subscriptions.provision(customer_id=customer, plan_id=world["base"], entitlements=[
        {"type": "FEATURE", "id": world["seats"], "usageLimit": 42},
        {"type": "FEATURE", "id": world["export"], "hasUnlimitedUsage": False}])
    assert stigg.v1.customers.check_entitlement(customer, feature_id=world["seats"]).data.usage_limit == 42
    assert stigg.v1.customers.check_entitlement(customer, feature_id=world["export"]).data.is_granted is True


def test_it_takes_the_most_generous_source(emulator, stigg, world):
    """Guarantee 8: usageLimit = max(plan total, Active promo limits), not the sum; any
    unlimited source makes it unlimited."""
    customer = _customer_on(emulator, world["base"])
    w.grant(emulator, customer, world["seats"], usageLimit=2)
    assert stigg.v1.customers.check_entitlement(customer, feature_id=world["seats"]).data.usage_limit == 3
    w.grant(emulator, customer, world["seats"], usageLimit=8)
    assert stigg.v1.customers.check_entitlement(customer, feature_id=world["seats"]).data.usage_limit == 8
    w.grant(emulator, customer, world["seats"], hasUnlimitedUsage=True)
    data = stigg.v1.customers.check_entitlement(customer, feature_id=world["seats"], requested_usage=10**6).data
    assert data.has_unlimited_usage is True and data.usage_limit is None and data.is_granted is True


def test_it_grants_a_metered_check_only_within_the_limit(emulator, stigg, world):
    """Guarantee 10: granted exactly when currentUsage + requestedUsage ≤ usageLimit,
    otherwise RequestedUsageExceedingLimit; requestedUsage defaults to 1 (Inferred)."""
    customer = _customer_on(emulator, world["base"])
    w.measure(emulator, customer, world["calls"], 7)
    ok = stigg.v1.customers.check_entitlement(customer, feature_id=world["calls"], requested_usage=3).data
    assert ok.is_granted is True and ok.current_usage == 7
    over = stigg.v1.customers.check_entitlement(customer, feature_id=world["calls"], requested_usage=4).data
    assert over.is_granted is False and over.access_denied_reason == "RequestedUsageExceedingLimit"
    w.measure(emulator, customer, world["calls"], 3)
    assert w.check(emulator, customer, world["calls"])["accessDeniedReason"] == "RequestedUsageExceedingLimit"


def test_it_grants_past_a_soft_limit(emulator, stigg, world):
    """Guarantee 10 (Inferred for features): a soft limit still grants past the limit."""
    customer = _customer_on(emulator, world["base"])
    w.measure(emulator, customer, world["storage"], 150)
    data = stigg.v1.customers.check_entitlement(customer, feature_id=world["storage"], requested_usage=5).data
    assert data.is_granted is True and data.current_usage == 150 and data.usage_limit == 100


def test_it_names_why_access_is_denied(emulator, stigg, world):
    """Guarantee 11: NoFeatureEntitlementInSubscription, NoActiveSubscription, FeatureNotFound,
    CustomerNotFound, CustomerIsArchived; Inferred: CustomerResourceNotFound for an unknown
    resourceId."""
    subscribed = _customer_on(emulator, world["monthly"])
    bare = w.customer(emulator)
    archived = _customer_on(emulator, world["base"])
    emulator.data("POST", f"/api/v1/customers/{archived}/archive")
    cases = [(subscribed, world["sso"], {}, "NoFeatureEntitlementInSubscription"),
             (bare, world["sso"], {}, "NoActiveSubscription"),
             (subscribed, "no-such-feature", {}, "FeatureNotFound"),
             ("no-such-customer", world["sso"], {}, "CustomerNotFound"),
             (archived, world["sso"], {}, "CustomerIsArchived"),
             (subscribed, world["calls"], {"resource_id": "no-such-resource"}, "CustomerResourceNotFound")]
    for customer, feature, extra, reason in cases:
        data = stigg.v1.customers.check_entitlement(customer, feature_id=feature, **extra).data
        assert (data.is_granted, data.access_denied_reason) == (False, reason), (customer, feature)
    assert stigg.v1.customers.retrieve_entitlements("no-such-customer").data.access_denied_reason == "CustomerNotFound"
    listed = stigg.v1.customers.retrieve_entitlements(archived).data
    assert listed.access_denied_reason == "CustomerIsArchived" and listed.entitlements == []


def test_it_grants_a_promoted_feature_without_a_subscription(emulator, stigg, world):
    """Guarantee 11 (Inferred): without an active subscription an Active promo still grants
    its feature; the list says NoActiveSubscription at data level and lists the promo."""
    customer = w.customer(emulator)
    w.grant(emulator, customer, world["sso"])
    assert stigg.v1.customers.check_entitlement(customer, feature_id=world["sso"]).data.is_granted is True
    listed = stigg.v1.customers.retrieve_entitlements(customer).data
    assert listed.access_denied_reason == "NoActiveSubscription"
    assert [e.feature.id for e in listed.entitlements] == [world["sso"]]


def test_it_checks_enum_requested_values(emulator, stigg, world):
    """Guarantee 12: every requested value must be among the effective values, else
    RequestedValuesMismatch; requestedValues on a non-ENUM feature → FeatureTypeMismatch."""
    customer = _customer_on(emulator, world["base"])
    check = stigg.v1.customers.check_entitlement
    assert check(customer, feature_id=world["tier"], requested_values=["a"]).data.is_granted is True
    denied = check(customer, feature_id=world["tier"], requested_values=["a", "b"]).data
    assert denied.access_denied_reason == "RequestedValuesMismatch"
    repeated = emulator.data("GET", f"/api/v1/customers/{customer}/entitlements/check",
                             params=[("featureId", world["tier"]), ("requestedValues", "a"), ("requestedValues", "c")])
    assert repeated["accessDeniedReason"] == "RequestedValuesMismatch"
    mismatch = check(customer, feature_id=world["sso"], requested_values=["a"]).data
    assert mismatch.access_denied_reason == "FeatureTypeMismatch"


def test_it_counts_only_usage_in_the_current_daily_period(emulator, stigg, world):
    """Guarantee 13 (Inferred): usagePeriodStart ≤ now < usagePeriodEnd, and usage before
    the start is not counted after the reset; validUntil is the period end."""
    customer = _customer_on(emulator, world["base"])
    w.measure(emulator, customer, world["calls"], 4)
    first = stigg.v1.customers.check_entitlement(customer, feature_id=world["calls"]).data
    now = _parse(w.now(emulator))
    assert first.current_usage == 4 and first.reset_period == "DAY"
    assert first.usage_period_start <= now < first.usage_period_end == first.valid_until
    assert first.usage_period_end - first.usage_period_start == timedelta(days=1)
    emulator.advance_clock((first.usage_period_end - now).total_seconds() + 1)
    second = stigg.v1.customers.check_entitlement(customer, feature_id=world["calls"]).data
    assert second.current_usage == 0 and second.usage_period_start == first.usage_period_end


def test_it_anchors_a_monthly_period_on_the_subscription_start(emulator, stigg, world):
    """Guarantee 13 / §5.3: MONTH resets count calendar months from the subscription start
    (usagePeriodAnchor); a measurement from the previous month is left out."""
    now = _parse(w.now(emulator))
    start = (now - timedelta(days=40)).replace(microsecond=0)
    start = start.replace(day=min(start.day, 28))
    customer = _customer_on(emulator, world["monthly"], startDate=start.isoformat())
    w.measure(emulator, customer, world["calls"], 9, ts=(start + timedelta(days=1)).isoformat().replace("+00:00", "Z"))
    w.measure(emulator, customer, world["calls"], 2)
    data = stigg.v1.customers.check_entitlement(customer, feature_id=world["calls"]).data
    assert data.usage_period_anchor == start
    assert data.usage_period_start == _add_months(start, 1) and data.usage_period_end == _add_months(start, 2)
    assert data.current_usage == 2


def test_it_aggregates_meters_and_unit_transformation(emulator, world):
    """Guarantees 10 and 13 / §8.2: aggregation as read by entitlements: UNIQUE counts distinct values, MAX takes
    the largest, and unitTransformation divides and rounds UP."""
    meter = {"filters": [{"conditions": [{"field": "eventName", "operation": "EQUALS", "value": "e"}]}]}
    users = w.feature(emulator, meter={**meter, "aggregation": {"function": "UNIQUE", "field": "user"}})
    peak = w.feature(emulator, meter={**meter, "aggregation": {"function": "MAX", "field": "n"}},
                     unitTransformation={"divide": 10, "round": "UP"})
    plan = w.plan(emulator, w.product(emulator), [{"id": users, "usageLimit": 10}, {"id": peak, "usageLimit": 10}])
    customer = _customer_on(emulator, plan)
    for text in ("u1", "u2", "u1"):
        w.measure(emulator, customer, users, None, text=text)
    for value in (12, 31, 5):
        w.measure(emulator, customer, peak, value)
    assert w.check(emulator, customer, users)["currentUsage"] == 2
    assert w.check(emulator, customer, peak)["currentUsage"] == 4  # ceil(31 / 10)


def test_it_never_resets_fluctuating_usage(emulator, world):
    """Guarantee 13, Inferred (§3): FLUCTUATING usage goes up and down and never resets."""
    customer = _customer_on(emulator, world["base"])
    w.measure(emulator, customer, world["gauge"], 4)
    w.measure(emulator, customer, world["gauge"], -1)
    emulator.advance_clock(40 * 86400)
    data = w.check(emulator, customer, world["gauge"], requestedUsage=2)
    assert data["currentUsage"] == 3 and data["isGranted"] is True and data["usagePeriodStart"] is None


@pytest.mark.parametrize("params", [
    {}, {"featureId": "x", "currencyId": "y"}, {"featureId": "x", "requestedUsage": "lots"},
    {"featureId": "x", "requestedUsage": "-1"},
])
def test_it_rejects_bad_check_queries(emulator, params):
    """Guarantee 5 / §5.2 (Inferred): featureId xor currencyId, and a numeric, non-negative
    requestedUsage; otherwise 400 {code, message}."""
    resp = emulator.call("GET", "/api/v1/customers/anyone/entitlements/check", params=params)
    assert resp.status_code == 400 and set(resp.json()) == {"code", "message"}
