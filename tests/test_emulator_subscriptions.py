"""Subscriptions over real HTTP (stigg-api.md §4), mostly through Stigg's own client."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
import stigg as stigg_sdk

from . import emulator_world as w


def _iso(value: datetime) -> str:
    return value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def _parse(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


@pytest.fixture(scope="module")
def catalog(emulator):
    seats = w.feature(emulator, "NUMBER", metered=False)
    api = w.feature(emulator, "NUMBER")
    sso = w.feature(emulator, "BOOLEAN")
    product = w.product(emulator)
    other_product = w.product(emulator)
    basic = w.plan(emulator, product, [{"id": seats, "usageLimit": 5}, {"id": api, "usageLimit": 100,
                                                                           "resetPeriod": "MONTH"}], pricingType="PAID")
    pro = w.plan(emulator, product, [{"id": sso}, {"id": api, "hasUnlimitedUsage": True}])
    trial = w.plan(emulator, product, [{"id": sso}], defaultTrialConfig={"duration": 14, "units": "DAY"})
    draft = w.plan(emulator, product, [], publish=False)
    extra_seats = w.addon(emulator, product, [{"id": seats, "usageLimit": 2}])
    foreign_addon = w.addon(emulator, other_product, [{"id": seats, "usageLimit": 1}])
    other_plan = w.plan(emulator, other_product, [{"id": sso}])
    return {"seats": seats, "api": api, "sso": sso, "basic": basic, "pro": pro, "trial": trial, "draft": draft,
            "extra_seats": extra_seats, "foreign_addon": foreign_addon, "other_plan": other_plan}


def test_it_provisions_an_active_subscription_with_entitlements(emulator, stigg, catalog):
    """Guarantee 8: provisioning returns SUCCESS, the subscription (every required field)
    and the customer's effective entitlements, add-ons included (Inferred: ACTIVE status)."""
    customer = w.customer(emulator)
    resp = stigg.v1.subscriptions.provision(customer_id=customer, plan_id=catalog["basic"],
                                            addons=[{"id": catalog["extra_seats"], "quantity": 3}])
    assert resp.data.status == "SUCCESS"
    sub = resp.data.subscription
    assert sub.status == "ACTIVE" and sub.customer_id == customer and sub.plan_id == catalog["basic"]
    assert sub.pricing_type == "PAID" and sub.payment_collection == "NOT_REQUIRED"
    assert sub.current_billing_period_start <= sub.start_date < sub.current_billing_period_end
    seats = next(e for e in resp.data.entitlements if e.feature.id == catalog["seats"])
    assert seats.usage_limit == 5 + 2 * 3
    again = stigg.v1.subscriptions.retrieve(resp.data.id)
    assert again.data.id == resp.data.id and again.data.addons[0].quantity == 3


def test_it_starts_a_trial_from_the_plan_default_and_ends_it(emulator, stigg, catalog):
    """Guarantee 11 (trials count as active) / §4: status IN_TRIAL when the plan has
    defaultTrialConfig; trialEndDate = start + 14 days.
    Inferred: after the trial a CONVERT_TO_PAID subscription reads ACTIVE."""
    customer = w.customer(emulator)
    sub = stigg.v1.subscriptions.provision(customer_id=customer, plan_id=catalog["trial"]).data.subscription
    assert sub.status == "IN_TRIAL"
    assert sub.trial_end_date - sub.start_date == timedelta(days=14)
    assert sub.trial.trial_end_behavior == "CONVERT_TO_PAID"
    emulator.advance_clock(15 * 86400)
    assert stigg.v1.subscriptions.retrieve(sub.id).data.status == "ACTIVE"


def test_it_starts_a_trial_when_asked_and_expires_it(emulator, catalog):
    """Guarantee 11 / §4: trialOverrideConfiguration.isTrial makes IN_TRIAL. Inferred: CANCEL_SUBSCRIPTION
    reads EXPIRED after trialEndDate, and the trial then grants nothing."""
    customer = w.customer(emulator)
    end = _parse(w.now(emulator)) + timedelta(days=3)
    sub = w.subscribe(emulator, customer, catalog["pro"], trialOverrideConfiguration={
        "isTrial": True, "trialEndDate": _iso(end), "trialEndBehavior": "CANCEL_SUBSCRIPTION"})["subscription"]
    assert sub["status"] == "IN_TRIAL" and sub["trialEndDate"] == _iso(end)
    assert w.check(emulator, customer, catalog["sso"])["isGranted"] is True
    emulator.advance_clock(4 * 86400)
    assert emulator.data("GET", f"/api/v1/subscriptions/{sub['id']}")["status"] == "EXPIRED"
    assert w.check(emulator, customer, catalog["sso"])["accessDeniedReason"] == "NoActiveSubscription"


def test_it_replaces_the_subscription_for_the_same_product(emulator, stigg, catalog):
    """Guarantee 8, Inferred (§4): a new subscription for the same (customer, resourceId, product)
    cancels the old one with UPGRADE_OR_DOWNGRADE; another product's stays."""
    customer = w.customer(emulator)
    first = stigg.v1.subscriptions.provision(customer_id=customer, plan_id=catalog["basic"]).data.id
    other = stigg.v1.subscriptions.provision(customer_id=customer, plan_id=catalog["other_plan"]).data.id
    second = stigg.v1.subscriptions.provision(customer_id=customer, plan_id=catalog["pro"]).data.id
    old = stigg.v1.subscriptions.retrieve(first).data
    assert old.status == "CANCELED" and old.cancel_reason == "UPGRADE_OR_DOWNGRADE"
    assert stigg.v1.subscriptions.retrieve(other).data.status == "ACTIVE"
    active = [s.id for s in stigg.v1.subscriptions.list(customer_id=customer, status=["ACTIVE"])]
    assert sorted(active) == sorted([other, second])


def test_it_creates_the_resource_and_scopes_entitlements_to_it(emulator, stigg, catalog):
    """Guarantee 11 / §4: resourceId creates a customer resource; the subscription covers that resource only
    (Inferred: the customer-level view does not see it)."""
    customer = w.customer(emulator)
    stigg.v1.subscriptions.provision(customer_id=customer, plan_id=catalog["pro"], resource_id="site-1")
    resources = [r.id for r in stigg.v1.customers.list_resources(customer)]
    assert resources == ["site-1"]
    scoped = stigg.v1.customers.check_entitlement(customer, feature_id=catalog["sso"], resource_id="site-1")
    assert scoped.data.is_granted is True
    plain = stigg.v1.customers.check_entitlement(customer, feature_id=catalog["sso"])
    assert plain.data.access_denied_reason == "NoActiveSubscription"


def test_it_lists_with_filters_and_without_subscription_entitlements(emulator, stigg, catalog):
    """Guarantees 2 and 4 / §4: the list filters by comma lists and leaves out subscriptionEntitlements."""
    customer = w.customer(emulator)
    sub = stigg.v1.subscriptions.provision(
        customer_id=customer, plan_id=catalog["basic"],
        entitlements=[{"type": "FEATURE", "id": catalog["seats"], "usageLimit": 50}]).data.subscription
    assert [e.id for e in sub.subscription_entitlements] == [catalog["seats"]]
    listed = list(stigg.v1.subscriptions.list(customer_id=customer, plan_id=catalog["basic"],
                                              pricing_type=["PAID", "CUSTOM"]))
    assert [s.id for s in listed] == [sub.id] and listed[0].subscription_entitlements is None
    raw = emulator.call("GET", "/api/v1/subscriptions", params={"customerId": customer})
    assert "subscriptionEntitlements" not in raw.json()["data"][0]
    assert list(stigg.v1.subscriptions.list(customer_id=customer, pricing_type=["FREE"])) == []
    assert list(stigg.v1.subscriptions.list(customer_id=customer, status=["CANCELED", "EXPIRED"])) == []


def test_it_cancels_immediately(emulator, stigg, catalog):
    """IMMEDIATE cancel reads CANCELED at once and the features go (guarantee 11:
    NoActiveSubscription)."""
    customer = w.customer(emulator)
    sub_id = stigg.v1.subscriptions.provision(customer_id=customer, plan_id=catalog["pro"]).data.id
    canceled = stigg.v1.subscriptions.cancel(sub_id, cancellation_time="IMMEDIATE").data
    assert canceled.status == "CANCELED" and canceled.cancel_reason == "Immediate"
    check = stigg.v1.customers.check_entitlement(customer, feature_id=catalog["sso"]).data
    assert check.is_granted is False and check.access_denied_reason == "NoActiveSubscription"


def test_it_cancels_at_the_end_of_the_billing_period(emulator, stigg, catalog):
    """Guarantee 11 / §4: END_OF_BILLING_PERIOD keeps the subscription active until currentBillingPeriodEnd,
    then it reads CANCELED (status computed from the clock)."""
    customer = w.customer(emulator)
    sub_id = stigg.v1.subscriptions.provision(customer_id=customer, plan_id=catalog["pro"]).data.id
    sub = stigg.v1.subscriptions.cancel(sub_id, cancellation_time="END_OF_BILLING_PERIOD").data
    assert sub.status == "ACTIVE" and sub.end_date == sub.current_billing_period_end == sub.effective_end_date
    assert stigg.v1.customers.check_entitlement(customer, feature_id=catalog["sso"]).data.is_granted
    emulator.advance_clock((sub.end_date - _parse(w.now(emulator))).total_seconds() + 1)
    assert stigg.v1.subscriptions.retrieve(sub_id).data.status == "CANCELED"
    assert not stigg.v1.customers.check_entitlement(customer, feature_id=catalog["sso"]).data.is_granted


def test_it_cancels_on_a_specific_date(emulator, stigg, catalog):
    """Guarantee 5 / §4: SPECIFIC_DATE stores endDate and turns CANCELED once the clock passes it."""
    customer = w.customer(emulator)
    sub_id = stigg.v1.subscriptions.provision(customer_id=customer, plan_id=catalog["pro"]).data.id
    end = _parse(w.now(emulator)) + timedelta(days=2)
    sub = stigg.v1.subscriptions.cancel(sub_id, cancellation_time="SPECIFIC_DATE", end_date=end).data
    assert sub.status == "ACTIVE" and sub.end_date == end.replace(microsecond=end.microsecond // 1000 * 1000)
    emulator.advance_clock(2 * 86400 + 1)
    assert stigg.v1.subscriptions.retrieve(sub_id).data.status == "CANCELED"
    with pytest.raises(stigg_sdk.BadRequestError):
        stigg.v1.subscriptions.cancel(sub_id, cancellation_time="IMMEDIATE")


def test_it_revokes_entitlements_at_once_when_asked(emulator, catalog):
    """Guarantee 11, Inferred: cancellationAction REVOKE_ENTITLEMENTS stops the entitlements now even
    though the subscription runs to the end of its period."""
    customer = w.customer(emulator)
    sub_id = w.subscribe(emulator, customer, catalog["pro"])["id"]
    sub = emulator.data("POST", f"/api/v1/subscriptions/{sub_id}/cancel",
                        json={"cancellationTime": "END_OF_BILLING_PERIOD", "cancellationAction": "REVOKE_ENTITLEMENTS"})
    assert sub["status"] == "ACTIVE"
    assert w.check(emulator, customer, catalog["sso"])["isGranted"] is False


@pytest.mark.parametrize("body, status, fragment", [
    ({"planId": "x"}, 400, "customerId"),
    ({"customerId": "nobody-here", "planId": "x"}, 404, "not found"),
    ({"customerId": "$C", "planId": "no-such-plan"}, 400, "does not exist"),
    ({"customerId": "$C", "planId": "$draft"}, 400, "DRAFT"),
    ({"customerId": "$C", "planId": "$basic", "addons": [{"id": "$foreign_addon", "quantity": 1}]}, 400,
     "not available"),
    ({"customerId": "$C", "planId": "$basic", "addons": [{"id": "$extra_seats", "quantity": "2"}]}, 400, "quantity"),
    ({"customerId": "$C", "planId": "$basic", "billingPeriod": "WEEKLY"}, 400, "billingPeriod"),
    ({"customerId": "$C", "planId": "$basic", "startDate": "yesterday"}, 400, "startDate"),
    ({"customerId": "$C", "planId": "$basic", "unitQuantity": -1}, 400, "unitQuantity"),
    ({"customerId": "$C", "planId": "$basic", "entitlements": [{"type": "FEATURE", "id": "nope"}]}, 400, "nope"),
    ({"customerId": "$C", "planId": "$basic", "trialOverrideConfiguration": {"isTrial": "yes"}}, 400, "isTrial"),
    ({"customerId": "$C", "planId": "$basic", "colour": "red"}, 400, "colour"),
    ({"customerId": 7, "planId": "$basic"}, 400, "customerId"),
])
def test_it_rejects_bad_provisioning_and_stores_nothing(emulator, catalog, body, status, fragment):
    """Guarantee 5: bad input gets a 4xx JSON {code, message}, never a 500, and nothing
    stored changes (the customer still has no subscription)."""
    customer = w.customer(emulator)
    body = {k: (customer if v == "$C" else catalog.get(v[1:], v) if isinstance(v, str) and v.startswith("$") else v)
            for k, v in body.items()}
    if "addons" in body:
        body["addons"] = [{**a, "id": catalog[a["id"][1:]]} for a in body["addons"]]
    before = w.snapshot(emulator, customer)
    resp = emulator.call("POST", "/api/v1/subscriptions", json=body)
    assert resp.status_code == status, resp.text
    assert set(resp.json()) == {"code", "message"} and fragment in resp.json()["message"]
    assert w.snapshot(emulator, customer) == before


def test_it_rejects_malformed_json_and_archived_customers(emulator, catalog):
    """Guarantee 5: malformed JSON → 400; an archived customer cannot be provisioned (400
    with a clear message); a duplicate id → 409 with x-should-retry false."""
    resp = emulator.call("POST", "/api/v1/subscriptions", content=b"{not json",
                         headers={"Content-Type": "application/json"})
    assert resp.status_code == 400 and resp.json()["code"] == "BadUserInput"
    archived = w.customer(emulator)
    emulator.data("POST", f"/api/v1/customers/{archived}/archive")
    resp = emulator.call("POST", "/api/v1/subscriptions", json={"customerId": archived, "planId": catalog["pro"]})
    assert resp.status_code == 400 and "archived" in resp.json()["message"]
    customer = w.customer(emulator)
    w.subscribe(emulator, customer, catalog["pro"], id="sub-fixed-id")
    resp = emulator.call("POST", "/api/v1/subscriptions",
                         json={"customerId": customer, "planId": catalog["pro"], "id": "sub-fixed-id"})
    assert resp.status_code == 409 and resp.headers["x-should-retry"] == "false"


def test_it_answers_404_for_unknown_subscriptions(emulator, stigg):
    """Guarantee 5: an unknown path id gets 404 with code SubscriptionNotFound."""
    with pytest.raises(stigg_sdk.NotFoundError):
        stigg.v1.subscriptions.retrieve("no-such-subscription")
    resp = emulator.call("POST", "/api/v1/subscriptions/no-such-subscription/cancel", json={})
    assert resp.status_code == 404 and resp.json()["code"] == "SubscriptionNotFound"


def test_it_rejects_bad_cancellations(emulator, catalog):
    """Guarantee 5: bad cancel input → 400 and the subscription is untouched."""
    customer = w.customer(emulator)
    sub_id = w.subscribe(emulator, customer, catalog["pro"])["id"]
    for body in ({"cancellationTime": "LATER"}, {"cancellationTime": "SPECIFIC_DATE"},
                 {"cancellationTime": "SPECIFIC_DATE", "endDate": "2000-01-01T00:00:00Z"}, {"prorate": "yes"}):
        resp = emulator.call("POST", f"/api/v1/subscriptions/{sub_id}/cancel", json=body)
        assert resp.status_code == 400, (body, resp.text)
    sub = emulator.data("GET", f"/api/v1/subscriptions/{sub_id}")
    assert sub["status"] == "ACTIVE" and sub["endDate"] is None


def test_it_emits_subscription_webhooks(emulator, catalog):
    """No numbered guarantee covers webhooks (§10): subscription.created,
    subscription.canceled (also for the replaced one) and entitlements.updated are
    queued with the subscription as data (Inferred payload)."""
    emulator.data("PUT", "/_emulator/webhook", json={"url": "http://127.0.0.1:9/hook"})
    try:
        customer = w.customer(emulator)
        first = w.subscribe(emulator, customer, catalog["basic"])["id"]
        second = w.subscribe(emulator, customer, catalog["pro"])["id"]
        emulator.data("POST", f"/api/v1/subscriptions/{second}/cancel",
                      json={"cancellationTime": "END_OF_BILLING_PERIOD"})
        events = [(m["message"]["type"], m["message"]["data"].get("id")) for m in
                  reversed(emulator.data("GET", "/_emulator/webhooks"))
                  if m["message"]["data"].get("customerId") == customer]
        assert [e for e in events if e[0].startswith("subscription.")] == [
            ("subscription.created", first), ("subscription.canceled", first), ("subscription.created", second),
            ("subscription.updated", second)]
        assert ("entitlements.updated", None) in events
    finally:
        emulator.data("PUT", "/_emulator/webhook", json={"url": None})
