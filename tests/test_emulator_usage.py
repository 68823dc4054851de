"""Calculated usage over real HTTP: POST /api/v1/usage, /api/v2/usage, usage history and
estimates (stigg-api.md §7, guarantees 18–20 and 23). The catalog each test needs is
built over REST by the helpers below."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from stigg import BadRequestError, NotFoundError, Stigg

from . import emulator_world as w

DAY = 86400
# POST /api/v1/usage is deprecated in the SDK; it is still part of the API we emulate.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")




def _feature(emulator: Any, **fields: Any) -> str:
    body = {"id": w.uid("feat"), "displayName": "Feature", "featureType": "NUMBER", "meterType": "INCREMENTAL", **fields}
    emulator.data("POST", "/api/v1/features", json=body)
    return body["id"]


def _plan(emulator: Any, entitlements: list[dict[str, Any]]) -> str:
    product_id, plan_id = w.uid("prod"), w.uid("plan")
    emulator.data("POST", "/api/v1/products", json={"id": product_id, "displayName": "Product"})
    emulator.data("POST", "/api/v1/plans", json={"id": plan_id, "displayName": "Plan", "productId": product_id})
    emulator.data("POST", f"/api/v1/plans/{plan_id}/entitlements",
                  json={"entitlements": [{"type": "FEATURE", **e} for e in entitlements]})
    emulator.data("POST", f"/api/v1/plans/{plan_id}/publish")
    return plan_id


def _subscribed(emulator: Any, feature_id: str, **entitlement: Any) -> str:
    """A customer subscribed to a plan granting ``feature_id`` with these values."""
    customer_id = w.customer(emulator)
    plan_id = _plan(emulator, [{"id": feature_id, **entitlement}])
    emulator.data("POST", "/api/v1/subscriptions", json={"customerId": customer_id, "planId": plan_id})
    return customer_id


def _report(emulator: Any, *usages: dict[str, Any], version: str = "v1") -> Any:
    return emulator.call("POST", f"/api/{version}/usage", json={"usages": list(usages)})


def _all_usage(emulator: Any, customer_id: str, feature_id: str, **query: str) -> float:
    """Usage as of now, read through the history endpoint (no subscription needed)."""
    start = (datetime.now(timezone.utc) - timedelta(days=400)).isoformat()
    data = emulator.data("GET", f"/api/v1/usage/{customer_id}/history/{feature_id}",
                         params={"startDate": start, "endDate": _far_future(), **query})
    return data["series"][0]["points"][-1]["value"]


def _far_future() -> str:
    return (datetime.now(timezone.utc) + timedelta(days=500)).isoformat()


def _check(stigg_client: Stigg, customer_id: str, feature_id: str, requested: int = 1) -> Any:
    return stigg_client.v1.customers.check_entitlement(customer_id, feature_id=feature_id,
                                                       requested_usage=requested).data


# --- guarantee 18: DELTA and SET ------------------------------------------------------


def test_it_adds_delta_values_to_current_usage(emulator, stigg):
    """Guarantee 18: DELTA adds value; the response's currentUsage is the value after it."""
    feature_id = _feature(emulator)
    customer_id = _subscribed(emulator, feature_id, usageLimit=100)
    first = stigg.v1.usage.report(usages=[{"customer_id": customer_id, "feature_id": feature_id, "value": 4}])
    second = stigg.v1.usage.report(usages=[{"customer_id": customer_id, "feature_id": feature_id, "value": 3,
                                            "update_behavior": "DELTA"}])
    assert first.data[0].current_usage == 4
    assert second.data[0].current_usage == 7
    assert second.data[0].value == 3
    assert _check(stigg, customer_id, feature_id).current_usage == 7


def test_it_sets_current_usage_to_the_value(emulator, stigg):
    """Guarantee 18: SET makes currentUsage equal value, going down as well as up."""
    feature_id = _feature(emulator, meterType="FLUCTUATING")
    customer_id = _subscribed(emulator, feature_id, usageLimit=50)
    stigg.v2.usage.report(usages=[{"customer_id": customer_id, "feature_id": feature_id, "value": 10}])
    down = stigg.v2.usage.report(usages=[{"customer_id": customer_id, "feature_id": feature_id, "value": 4,
                                          "update_behavior": "SET"}])
    assert down.data.usages[0].current_usage == 4
    up = stigg.v2.usage.report(usages=[{"customer_id": customer_id, "feature_id": feature_id, "value": 1}])
    assert up.data.usages[0].current_usage == 5
    assert _check(stigg, customer_id, feature_id).current_usage == 5


def test_it_applies_a_batch_in_request_order(emulator, stigg):
    """Guarantee 18: items of one call apply in order, each answer showing usage after it."""
    feature_id = _feature(emulator)
    customer_id = w.customer(emulator)
    item = {"customer_id": customer_id, "feature_id": feature_id}
    resp = stigg.v2.usage.report(usages=[{**item, "value": 2}, {**item, "value": 10, "update_behavior": "SET"},
                                         {**item, "value": 1}])
    assert [u.current_usage for u in resp.data.usages] == [2, 10, 11]


def test_it_fills_period_fields_for_a_resetting_entitlement(emulator, stigg):
    """Guarantees 13 and 18: a monthly entitlement answers usagePeriodStart ≤ now <
    usagePeriodEnd, and nextResetDate (Inferred) equals usagePeriodEnd."""
    feature_id = _feature(emulator)
    customer_id = _subscribed(emulator, feature_id, usageLimit=100, resetPeriod="MONTH")
    usage = stigg.v1.usage.report(usages=[{"customer_id": customer_id, "feature_id": feature_id, "value": 1}]).data[0]
    assert usage.usage_period_start <= usage.timestamp < usage.usage_period_end
    assert usage.next_reset_date == usage.usage_period_end


def test_it_rounds_fractions_half_away_from_zero(emulator, stigg):
    """§1 Numbers: fractional values are rounded half away from zero to 5 decimals."""
    feature_id = _feature(emulator, meterType="FLUCTUATING")
    customer_id = w.customer(emulator)
    item = {"customer_id": customer_id, "feature_id": feature_id}
    resp = stigg.v2.usage.report(usages=[{**item, "value": 0.123455}, {**item, "value": -0.000005}])
    assert [u.value for u in resp.data.usages] == [0.12346, -0.00001]
    assert resp.data.usages[1].current_usage == pytest.approx(0.12345)


def test_it_accepts_whole_numbers_up_to_2_pow_53(emulator):
    """§1 Numbers: whole numbers are accepted up to ±(2^53−1)."""
    feature_id = _feature(emulator, meterType="FLUCTUATING")
    customer_id = w.customer(emulator)
    resp = _report(emulator, {"customerId": customer_id, "featureId": feature_id, "value": 2 ** 53 - 1})
    assert resp.status_code == 201
    assert resp.json()["data"][0]["currentUsage"] == 2 ** 53 - 1


# --- guarantee 19: idempotency ---------------------------------------------------------


def test_it_counts_a_repeated_idempotency_key_once(emulator, stigg):
    """Guarantee 19: a repeat within 7 days changes nothing, still answers 2xx, with the
    same id; v2 leaves it out of entities."""
    feature_id = _feature(emulator)
    customer_id = w.customer(emulator)
    item = {"customer_id": customer_id, "feature_id": feature_id, "value": 5, "idempotency_key": "k-1"}
    first = stigg.v2.usage.report(usages=[item])
    again = stigg.v2.usage.report(usages=[item])
    assert again.data.usages[0].current_usage == 5
    assert again.data.usages[0].id == first.data.usages[0].id
    assert not again.data.entities
    assert _all_usage(emulator, customer_id, feature_id) == 5


def test_it_dedupes_a_key_repeated_within_one_batch(emulator):
    """Guarantee 19: the second use of a key inside the same call is a repeat too."""
    feature_id = _feature(emulator)
    customer_id = w.customer(emulator)
    item = {"customerId": customer_id, "featureId": feature_id, "value": 2, "idempotencyKey": "same"}
    resp = _report(emulator, item, item)
    assert [u["currentUsage"] for u in resp.json()["data"]] == [2, 2]


def test_it_scopes_idempotency_keys_to_the_customer(emulator):
    """Guarantee 19, Inferred scope: the same key for two customers counts for both."""
    feature_id = _feature(emulator)
    one, two = w.customer(emulator), w.customer(emulator)
    for customer_id in (one, two):
        _report(emulator, {"customerId": customer_id, "featureId": feature_id, "value": 3, "idempotencyKey": "shared"})
    assert _all_usage(emulator, one, feature_id) == 3
    assert _all_usage(emulator, two, feature_id) == 3


def test_it_forgets_idempotency_keys_after_seven_days(emulator):
    """Guarantee 19: after the 7-day window a retry is new usage."""
    feature_id = _feature(emulator, meterType="FLUCTUATING")  # FLUCTUATING: no period to leave
    customer_id = w.customer(emulator)
    item = {"customerId": customer_id, "featureId": feature_id, "value": 1, "idempotencyKey": "old"}
    _report(emulator, item)
    emulator.advance_clock(7 * DAY + 60)
    assert _report(emulator, item).json()["data"][0]["currentUsage"] == 2


# --- guarantee 20 and bad input: rejected calls change nothing ------------------------


def _assert_rejected(resp: Any, status: int, code: str | None = None) -> None:
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert set(body) >= {"code", "message"}
    if code:
        assert body["code"] == code


def test_it_rejects_more_than_100_usages(emulator):
    """Guarantee 20: over 100 usages per call → 400 and nothing is written."""
    feature_id = _feature(emulator)
    customer_id = w.customer(emulator)
    item = {"customerId": customer_id, "featureId": feature_id, "value": 1}
    _assert_rejected(_report(emulator, *[item] * 101), 400)
    assert _report(emulator, *[item] * 100).status_code == 201
    assert _all_usage(emulator, customer_id, feature_id) == 100


def test_it_rejects_usage_for_a_feature_with_a_meter(emulator, stigg):
    """Guarantee 20: a meter feature → 400 CannotReportUsageForEntitlementWithMeterError;
    the valid item before it in the same call is not applied either."""
    plain = _feature(emulator)
    metered = _feature(emulator, meter={"aggregation": {"function": "COUNT"},
                                        "filters": [{"conditions": [{"field": "eventName", "operation": "EQUALS",
                                                                     "value": "x"}]}]})
    customer_id = w.customer(emulator)
    with pytest.raises(BadRequestError) as info:
        stigg.v1.usage.report(usages=[{"customer_id": customer_id, "feature_id": plain, "value": 1},
                                      {"customer_id": customer_id, "feature_id": metered, "value": 1}])
    assert info.value.body["code"] == "CannotReportUsageForEntitlementWithMeterError"
    assert _all_usage(emulator, customer_id, plain) == 0


@pytest.mark.parametrize("fields", [
    {"featureType": "NUMBER", "meterType": "None"},
    {"featureType": "BOOLEAN", "meterType": "None"},
])
def test_it_rejects_usage_for_unmetered_features(emulator, fields):
    """§7: meterType None or a BOOLEAN feature → 400 MeteringNotAvailableForFeatureType (Inferred status)."""
    feature_id = _feature(emulator, **fields)
    customer_id = w.customer(emulator)
    resp = _report(emulator, {"customerId": customer_id, "featureId": feature_id, "value": 1})
    _assert_rejected(resp, 400, "MeteringNotAvailableForFeatureType")


def test_it_answers_404_for_unknown_customer_or_feature(emulator, stigg):
    """§7: unknown customer → 404 CustomerNotFound; unknown feature → 404 FeatureNotFound (Inferred status)."""
    feature_id = _feature(emulator)
    customer_id = w.customer(emulator)
    with pytest.raises(NotFoundError) as info:
        stigg.v2.usage.report(usages=[{"customer_id": "nobody-here", "feature_id": feature_id, "value": 1}])
    assert info.value.body["code"] == "CustomerNotFound"
    resp = _report(emulator, {"customerId": customer_id, "featureId": feature_id, "value": 1},
                   {"customerId": customer_id, "featureId": "no-such-feature", "value": 1})
    _assert_rejected(resp, 404, "FeatureNotFound")
    assert _all_usage(emulator, customer_id, feature_id) == 0


@pytest.mark.parametrize("body", [
    b"{not json",
    b"[]",
    b'{"usages": {}}',
    b'{"usages": []}',
    b'{"usages": [{"customerId": "%s", "featureId": "%s", "value": "7"}]}',
    b'{"usages": [{"customerId": "%s", "featureId": "%s", "value": true}]}',
    b'{"usages": [{"customerId": "%s", "featureId": "%s", "value": NaN}]}',
    b'{"usages": [{"customerId": "%s", "featureId": "%s", "value": 9007199254740992}]}',
    b'{"usages": [{"customerId": "%s", "featureId": "%s", "value": 34359738368.5}]}',
    b'{"usages": [{"customerId": "%s", "featureId": "%s", "value": 1, "updateBehavior": "ADD"}]}',
    b'{"usages": [{"customerId": "%s", "featureId": "%s", "value": 1, "dimensions": {"a": {"b": 1}}}]}',
    b'{"usages": [{"customerId": "%s", "featureId": "%s", "value": 1, "createdAt": "yesterday"}]}',
    b'{"usages": [{"customerId": "%s", "featureId": "%s", "value": 1, "colour": "red"}]}',
    b'{"usages": [{"customerId": "%s", "featureId": "%s"}]}',
    b'{"usages": [{"customerId": 5, "featureId": "%s", "value": 1}]}',
])
def test_it_rejects_bad_input_with_400_and_changes_nothing(emulator, body):
    """Bad input (malformed JSON, wrong types, out-of-range values, unknown keys) →
    400 JSON {code, message}, never a 500, and no usage is recorded."""
    feature_id = _feature(emulator, meterType="FLUCTUATING")
    customer_id = w.customer(emulator)
    content = body.replace(b"%s", customer_id.encode(), 1).replace(b"%s", feature_id.encode(), 1) \
        if body.count(b"%s") == 2 else body.replace(b"%s", feature_id.encode())
    for version in ("v1", "v2"):
        resp = emulator.call("POST", f"/api/{version}/usage", content=content,
                             headers={"Content-Type": "application/json"})
        _assert_rejected(resp, 400)
    assert _all_usage(emulator, customer_id, feature_id) == 0


# --- guarantee 23: ingest never gates --------------------------------------------------


def test_it_lets_usage_go_past_the_limit(emulator, stigg):
    """Guarantee 23: usage may pass usageLimit; the check then denies more."""
    feature_id = _feature(emulator)
    customer_id = _subscribed(emulator, feature_id, usageLimit=10)
    resp = stigg.v1.usage.report(usages=[{"customer_id": customer_id, "feature_id": feature_id, "value": 15}])
    assert resp.data[0].current_usage == 15
    check = _check(stigg, customer_id, feature_id)
    assert check.current_usage == 15 and check.usage_limit == 10
    assert not check.is_granted and check.access_denied_reason == "RequestedUsageExceedingLimit"


def test_it_emits_usage_exceeded_when_crossing_the_limit(emulator):
    """§10 (Inferred data shape): crossing the limit upwards queues entitlement.usage_exceeded once."""
    feature_id = _feature(emulator)
    customer_id = _subscribed(emulator, feature_id, usageLimit=10)
    emulator.data("PUT", "/_emulator/webhook", json={"url": "http://127.0.0.1:9/hook", "retryDelaySeconds": 3600})
    try:
        for value in (10, 1, 5):
            _report(emulator, {"customerId": customer_id, "featureId": feature_id, "value": value})
        outbox = emulator.data("GET", "/_emulator/webhooks")
    finally:
        emulator.data("PUT", "/_emulator/webhook", json={"url": None})
    exceeded = [m["message"] for m in outbox if m["message"]["type"] == "entitlement.usage_exceeded"
                and m["message"]["data"]["customerId"] == customer_id]
    assert len(exceeded) == 1
    assert exceeded[0]["data"]["featureId"] == feature_id and exceeded[0]["data"]["currentUsage"] == 11


# --- v2 entities and governance --------------------------------------------------------


def test_it_leaves_entities_out_when_governance_is_off(emulator, stigg):
    """§7: entities is absent from the v2 answer when governance is off."""
    feature_id = _feature(emulator)
    customer_id = w.customer(emulator)
    emulator.data("PUT", "/_emulator/settings", json={"governanceEnabled": False})
    try:
        resp = emulator.call("POST", "/api/v2/usage", json={"usages": [
            {"customerId": customer_id, "featureId": feature_id, "value": 1, "dimensions": {"userId": "u1"}}]})
    finally:
        emulator.data("PUT", "/_emulator/settings", json={"governanceEnabled": True})
    assert resp.status_code == 201
    assert "entities" not in resp.json()["data"]


# --- history -----------------------------------------------------------------------------


def _midnights(start: datetime, end: datetime) -> list[datetime]:
    day = datetime(start.year, start.month, start.day, tzinfo=timezone.utc)
    if day < start:
        day += timedelta(days=1)
    out = []
    while day <= end:
        out.append(day)
        day += timedelta(days=1)
    return out


def test_it_returns_daily_history_with_reset_markers(emulator, stigg):
    """§7 history (Inferred shape): one point a day plus endDate, each the cumulative
    in-period usage; PERIODIC_RESET markers at every period start in the range, and a
    reset point after each."""
    feature_id = _feature(emulator)
    customer_id = _subscribed(emulator, feature_id, usageLimit=100, resetPeriod="DAY")
    first = stigg.v1.usage.report(usages=[{"customer_id": customer_id, "feature_id": feature_id, "value": 3}]).data[0]
    emulator.advance_clock(DAY)
    second = stigg.v1.usage.report(usages=[{"customer_id": customer_id, "feature_id": feature_id, "value": 2}]).data[0]
    assert second.current_usage == 2  # the daily reset left yesterday's 3 behind
    start, end = first.timestamp, second.timestamp + timedelta(minutes=1)
    history = stigg.v1.usage.history(feature_id, customer_id=customer_id, start_date=start, end_date=end).data
    assert [m.timestamp for m in history.markers] == _midnights(start, end)
    assert {m.type for m in history.markers} == {"PERIODIC_RESET"}
    (series,) = history.series
    assert series.tags == []
    assert series.points[0].timestamp == start and series.points[0].value == 3
    assert series.points[-1].timestamp == end and series.points[-1].value == 2
    assert any(p.is_reset_point for p in series.points)
    assert [p.timestamp for p in series.points[:-1]] == [start + timedelta(days=k) for k in range(len(series.points) - 1)]


def test_it_keeps_earlier_calendar_months_in_history(emulator):
    """§7 history: a calendar-month reset (anchored on the 1st of this month) still shows
    last month's usage, with a reset marker at the 1st, not zero before this month."""
    # start on the 2nd of a month, whatever other tests did to the clock
    now = datetime.fromisoformat(w.now(emulator).replace("Z", "+00:00"))
    second = datetime(now.year + now.month // 12, now.month % 12 + 1, 2, tzinfo=timezone.utc)
    emulator.advance_clock((second - now).total_seconds())
    feature_id = _feature(emulator)
    customer_id = _subscribed(emulator, feature_id, usageLimit=100, resetPeriod="MONTH",
                              monthlyResetPeriodConfiguration={"accordingTo": "StartOfTheMonth"})
    _report(emulator, {"customerId": customer_id, "featureId": feature_id, "value": 7})
    reported = datetime.fromisoformat(w.now(emulator).replace("Z", "+00:00"))
    emulator.advance_clock(35 * DAY)
    _report(emulator, {"customerId": customer_id, "featureId": feature_id, "value": 2})
    now = datetime.fromisoformat(w.now(emulator).replace("Z", "+00:00"))
    start = reported - timedelta(hours=1)
    data = emulator.data("GET", f"/api/v1/usage/{customer_id}/history/{feature_id}",
                         params={"startDate": start.isoformat(), "endDate": now.isoformat()})
    # the first period starts with the subscription, the next ones on each 1st
    starts = [datetime.fromisoformat(m["timestamp"].replace("Z", "+00:00")) for m in data["markers"]]
    assert len(starts) == 2 and starts[0] <= reported and starts[1].day == 1 and starts[1].hour == 0
    points = data["series"][0]["points"]
    assert points[1]["value"] == 7  # last month's usage, the day after it was reported
    assert points[-1]["value"] == 2 and any(p["isResetPoint"] for p in points)


def test_it_groups_history_by_a_dimension(emulator, stigg):
    """§7 history groupBy: one series per dimension value, tagged [{key, value}]
    (Inferred: usage without that dimension joins no series)."""
    feature_id = _feature(emulator)
    customer_id = w.customer(emulator)
    item = {"customer_id": customer_id, "feature_id": feature_id}
    stigg.v2.usage.report(usages=[{**item, "value": 2, "dimensions": {"region": "eu"}},
                                  {**item, "value": 5, "dimensions": {"region": "us"}},
                                  {**item, "value": 1, "dimensions": {"region": "eu"}},
                                  {**item, "value": 7}])
    history = stigg.v1.usage.history(feature_id, customer_id=customer_id, group_by="region",
                                     start_date=datetime.now(timezone.utc) - timedelta(days=30),
                                     end_date=_far_future()).data
    finals = {s.tags[0].value: s.points[-1].value for s in history.series}
    assert finals == {"eu": 3, "us": 5}
    assert all(s.tags[0].key == "region" for s in history.series)


def test_it_separates_history_by_resource(emulator):
    """§7: usage with a resourceId is its own counter; history filters by resourceId."""
    feature_id = _feature(emulator)
    customer_id = w.customer(emulator)
    _report(emulator, {"customerId": customer_id, "featureId": feature_id, "value": 4, "resourceId": "site-1"},
            {"customerId": customer_id, "featureId": feature_id, "value": 6})
    assert _all_usage(emulator, customer_id, feature_id, resourceId="site-1") == 4
    assert _all_usage(emulator, customer_id, feature_id) == 6


@pytest.mark.parametrize("query", [{}, {"startDate": "soon"}, {"startDate": "2026-01-02", "endDate": "2026-01-01"}])
def test_it_rejects_bad_history_queries(emulator, query):
    """History: startDate is required and must not be after endDate → 400 otherwise."""
    feature_id = _feature(emulator)
    customer_id = w.customer(emulator)
    _assert_rejected(emulator.call("GET", f"/api/v1/usage/{customer_id}/history/{feature_id}", params=query), 400)


def test_it_answers_404_for_history_of_unknown_ids(emulator):
    """Guarantee 5: unknown customer or feature in the path → 404."""
    feature_id = _feature(emulator)
    customer_id = w.customer(emulator)
    params = {"startDate": "2026-01-01T00:00:00Z"}
    _assert_rejected(emulator.call("GET", f"/api/v1/usage/nobody/history/{feature_id}", params=params), 404,
                     "CustomerNotFound")
    _assert_rejected(emulator.call("GET", f"/api/v1/usage/{customer_id}/history/nothing", params=params), 404,
                     "FeatureNotFound")


# --- estimates ---------------------------------------------------------------------------


def test_it_estimates_no_credit_cost(emulator, stigg):
    """§7 estimates, Inferred: no credits are emulated → estimates [] with FEATURE_NOT_CREDIT_BASED."""
    feature_id = _feature(emulator)
    customer_id = w.customer(emulator)
    usage = stigg.v1.usage.estimate(customer_id=customer_id, feature_id=feature_id, value=3).data
    event = stigg.v1.events.estimate(customer_id=customer_id, event_name="api_call").data
    assert usage.estimates == [] and usage.warnings == ["FEATURE_NOT_CREDIT_BASED"]
    assert event.estimates == [] and event.warnings == ["FEATURE_NOT_CREDIT_BASED"]


def _budget(emulator: Any, customer_id: str, feature_id: str, entity_id: str) -> None:
    """An entity with a P1M budget on the feature, matched by dimensions[userId]."""
    emulator.data("PUT", "/api/v1-beta/entity-types",
                  json={"types": [{"id": "user", "displayName": "User", "attributionKeys": ["userId"]}]})
    emulator.data("PUT", f"/api/v1-beta/customers/{customer_id}/entities",
                  json={"entities": [{"id": entity_id, "entityTypeId": "user"}]})
    emulator.data("PUT", f"/api/v1-beta/customers/{customer_id}/assignments", json={"assignments": [
        {"entityId": entity_id, "featureId": feature_id, "usageLimit": 100, "cadence": "P1M"}]})


def test_it_attributes_delta_and_set_usage_to_entities(emulator, stigg):
    """§7 v2 + §9.4: DELTA attributes its value, SET its computed delta; entities carry the
    budget's absolute usage, and an idempotent repeat is left out of entities."""
    feature_id = _feature(emulator, meterType="FLUCTUATING")
    customer_id = w.customer(emulator)
    _budget(emulator, customer_id, feature_id, "u1")
    item = {"customer_id": customer_id, "feature_id": feature_id, "dimensions": {"userId": "u1"}}
    first = stigg.v2.usage.report(usages=[{**item, "value": 5, "idempotency_key": "g-1"}]).data
    assert [(e.entity_id, e.current_usage) for e in first.entities] == [("u1", 5)]
    repeat = stigg.v2.usage.report(usages=[{**item, "value": 5, "idempotency_key": "g-1"}]).data
    assert repeat.entities == []
    set_to = stigg.v2.usage.report(usages=[{**item, "value": 8, "update_behavior": "SET"}]).data
    assert set_to.usages[0].current_usage == 8
    assert [(e.entity_id, e.current_usage, e.feature_id) for e in set_to.entities] == [("u1", 8, feature_id)]


def test_it_answers_history_reaching_back_before_the_subscription(emulator, stigg):
    """§7 history with a monthly reset anchored at the subscription start: a range that
    begins months earlier has zero points before it and one marker per month boundary after it."""
    feature_id = _feature(emulator)
    customer_id = _subscribed(emulator, feature_id, usageLimit=100, resetPeriod="MONTH")
    usage = stigg.v1.usage.report(usages=[{"customer_id": customer_id, "feature_id": feature_id, "value": 6}]).data[0]
    start = usage.timestamp - timedelta(days=90)
    history = stigg.v1.usage.history(feature_id, customer_id=customer_id, start_date=start,
                                     end_date=usage.timestamp + timedelta(minutes=1)).data
    points = history.series[0].points
    assert points[0].value == 0 and points[-1].value == 6
    assert [m.timestamp for m in history.markers] == [usage.usage_period_start]
