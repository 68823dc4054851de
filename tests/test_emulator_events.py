"""Raw events and meters over real HTTP: POST /api/v1/events (stigg-api.md §8,
guarantees 21–23). Usage is read back through the usage history endpoint, which needs
no subscription, and through the entitlement check where a limit matters."""
from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from stigg import BadRequestError

from . import emulator_world as w

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")




def _cond(field: str, operation: str, value: str | None = None, values: list[str] | None = None) -> dict[str, Any]:
    cond: dict[str, Any] = {"field": field, "operation": operation}
    if value is not None:
        cond["value"] = value
    if values is not None:
        cond["values"] = values
    return cond


def _meter_feature(emulator: Any, function: str = "COUNT", field: str | None = None,
                   filters: list[list[dict[str, Any]]] | None = None, **fields: Any) -> tuple[str, str]:
    """A raw-event feature and the event name its default filter matches."""
    event_name = w.uid("evt")
    aggregation: dict[str, Any] = {"function": function}
    if field:
        aggregation["field"] = field
    conditions = filters if filters is not None else [[_cond("eventName", "EQUALS", event_name)]]
    body = {"id": w.uid("feat"), "displayName": "Metered", "featureType": "NUMBER", "meterType": "INCREMENTAL",
            "meter": {"aggregation": aggregation, "filters": [{"conditions": c} for c in conditions]}, **fields}
    emulator.data("POST", "/api/v1/features", json=body)
    return body["id"], event_name


def _event(customer_id: str, event_name: str, **fields: Any) -> dict[str, Any]:
    return {"customerId": customer_id, "eventName": event_name, "idempotencyKey": uuid.uuid4().hex, **fields}


def _send(emulator: Any, *events: dict[str, Any]) -> Any:
    return emulator.call("POST", "/api/v1/events", json={"events": list(events)})


SDK_NAMES = {"customerId": "customer_id", "eventName": "event_name", "idempotencyKey": "idempotency_key",
             "resourceId": "resource_id"}


def _report(stigg_client: Any, *events: dict[str, Any]) -> Any:
    """The same events through the official client (its parameters are snake_case)."""
    return stigg_client.v1.events.report(events=[{SDK_NAMES.get(k, k): v for k, v in e.items()} for e in events])


def _usage(emulator: Any, customer_id: str, feature_id: str, **query: str) -> float:
    start = (datetime.now(timezone.utc) - timedelta(days=400)).isoformat()
    end = (datetime.now(timezone.utc) + timedelta(days=400)).isoformat()
    data = emulator.data("GET", f"/api/v1/usage/{customer_id}/history/{feature_id}",
                         params={"startDate": start, "endDate": end, **query})
    return data["series"][0]["points"][-1]["value"] if data["series"] else 0


def _subscribed(emulator: Any, feature_id: str, usage_limit: int) -> str:
    customer_id = w.customer(emulator)
    product_id, plan_id = w.uid("prod"), w.uid("plan")
    emulator.data("POST", "/api/v1/products", json={"id": product_id, "displayName": "Product"})
    emulator.data("POST", "/api/v1/plans", json={"id": plan_id, "displayName": "Plan", "productId": product_id})
    emulator.data("POST", f"/api/v1/plans/{plan_id}/entitlements",
                  json={"entitlements": [{"type": "FEATURE", "id": feature_id, "usageLimit": usage_limit}]})
    emulator.data("POST", f"/api/v1/plans/{plan_id}/publish")
    emulator.data("POST", "/api/v1/subscriptions", json={"customerId": customer_id, "planId": plan_id})
    return customer_id


def _assert_rejected(resp: Any, status: int = 400) -> None:
    assert resp.status_code == status, resp.text
    assert set(resp.json()) >= {"code", "message"}


# --- guarantee 22: accepted, and fed to every matching meter ----------------------------


def test_it_accepts_events_with_202_and_empty_data(emulator, stigg):
    """Guarantee 22: POST /api/v1/events → 202 {"data": {}}."""
    feature_id, name = _meter_feature(emulator)
    customer_id = w.customer(emulator)
    resp = stigg.v1.events.report(events=[{"customer_id": customer_id, "event_name": name, "idempotency_key": "a"}])
    assert resp.data == {}
    raw = _send(emulator, _event(customer_id, name))
    assert raw.status_code == 202 and raw.json() == {"data": {}}
    assert _usage(emulator, customer_id, feature_id) == 2


def test_it_feeds_every_feature_whose_meter_matches(emulator, stigg):
    """Guarantee 22: one event feeds every matching feature, and only those."""
    name = w.uid("evt")
    on_name = [[_cond("eventName", "EQUALS", name)]]
    calls, _ = _meter_feature(emulator, "COUNT", filters=on_name)
    tokens, _ = _meter_feature(emulator, "SUM", "tokens", filters=on_name)
    other, _ = _meter_feature(emulator, "COUNT")
    customer_id = w.customer(emulator)
    stigg.v1.events.report(events=[
        {"customer_id": customer_id, "event_name": name, "idempotency_key": "1", "dimensions": {"tokens": 30}},
        {"customer_id": customer_id, "event_name": name, "idempotency_key": "2", "dimensions": {"tokens": 12}},
    ])
    assert _usage(emulator, customer_id, calls) == 2
    assert _usage(emulator, customer_id, tokens) == 42
    assert _usage(emulator, customer_id, other) == 0


@pytest.mark.parametrize("function,expected", [
    ("COUNT", 5), ("SUM", 17.5), ("MAX", 8), ("MIN", 0.5), ("AVG", 17.5 / 4), ("UNIQUE", 3),
])
def test_it_aggregates_by_the_meter_function(emulator, function, expected, stigg):
    """§8.2: SUM/MAX/MIN/AVG over the numeric field (events without it skipped), COUNT of
    events, UNIQUE distinct values (Inferred: values compared as text)."""
    feature_id, name = _meter_feature(emulator, function, None if function == "COUNT" else "n")
    customer_id = w.customer(emulator)
    values = [4, 8, 5, 0.5]
    events = [_event(customer_id, name, dimensions={"n": v}) for v in values]
    events.append(_event(customer_id, name, dimensions={"other": 1}))  # no field: counted by COUNT only
    if function == "UNIQUE":
        events = [_event(customer_id, name, dimensions={"n": v}) for v in ("a", "b", "a", "c", "b")]
    _report(stigg, *events)
    assert _usage(emulator, customer_id, feature_id) == pytest.approx(expected)


def test_it_applies_the_unit_transformation(emulator, stigg):
    """§8.2: unitTransformation divides, then rounds UP or DOWN."""
    up, name = _meter_feature(emulator, "SUM", "bytes", unitTransformation={"divide": 1000, "round": "UP"})
    down, _ = _meter_feature(emulator, "SUM", "bytes", filters=[[_cond("eventName", "EQUALS", name)]],
                             unitTransformation={"divide": 1000, "round": "DOWN"})
    customer_id = w.customer(emulator)
    _report(stigg, _event(customer_id, name, dimensions={"bytes": 1500}),
          _event(customer_id, name, dimensions={"bytes": 1200}))
    assert _usage(emulator, customer_id, up) == 3
    assert _usage(emulator, customer_id, down) == 2


# --- §8.2 filters ------------------------------------------------------------------------


@pytest.mark.parametrize("condition,matching,other", [
    (_cond("plan", "EQUALS", "pro"), {"plan": "pro"}, {"plan": "free"}),
    (_cond("plan", "NOT_EQUALS", "pro"), {"plan": "free"}, {"plan": "pro"}),
    (_cond("size", "GREATER_THAN", "10"), {"size": 11}, {"size": 10}),
    (_cond("size", "GREATER_THAN_OR_EQUAL", "10"), {"size": 10}, {"size": 9.5}),
    (_cond("size", "LESS_THAN", "10"), {"size": "9"}, {"size": 10}),
    (_cond("size", "LESS_THAN_OR_EQUAL", "10"), {"size": 10}, {"size": 11}),
    (_cond("plan", "IS_NULL"), {}, {"plan": "pro"}),
    (_cond("plan", "IS_NOT_NULL"), {"plan": "x"}, {}),
    (_cond("path", "CONTAINS", "/api/"), {"path": "/v1/api/users"}, {"path": "/v1/users"}),
    (_cond("path", "STARTS_WITH", "/v1"), {"path": "/v1/users"}, {"path": "/v2/v1"}),
    (_cond("path", "ENDS_WITH", ".json"), {"path": "a.json"}, {"path": "a.json.gz"}),
    (_cond("region", "IN", values=["eu", "us"]), {"region": "us"}, {"region": "apac"}),
    (_cond("beta", "EQUALS", "true"), {"beta": True}, {"beta": False}),
])
def test_it_applies_each_filter_operation(emulator, condition, matching, other, stigg):
    """§8.2 operations on dimensions[field] (Inferred: ordering compares numbers, also
    numeric strings; booleans read as true/false)."""
    name = w.uid("evt")
    feature_id, _ = _meter_feature(emulator, filters=[[_cond("eventName", "EQUALS", name), condition]])
    customer_id = w.customer(emulator)
    _report(stigg, _event(customer_id, name, dimensions=matching), _event(customer_id, name, dimensions=other))
    assert _usage(emulator, customer_id, feature_id) == 1


def test_it_ands_conditions_and_ors_filters(emulator, stigg):
    """§8.2: conditions within a filter are ANDed, filters are ORed."""
    feature_id, _ = _meter_feature(emulator, filters=[
        [_cond("eventName", "EQUALS", "read"), _cond("tier", "EQUALS", "gold")],
        [_cond("eventName", "EQUALS", "write")],
    ])
    customer_id = w.customer(emulator)
    _send(emulator,
          _event(customer_id, "read", dimensions={"tier": "gold"}),   # filter 1
          _event(customer_id, "read", dimensions={"tier": "basic"}),  # neither
          _event(customer_id, "write"),                               # filter 2
          _event(customer_id, "delete", dimensions={"tier": "gold"}))  # neither
    assert _usage(emulator, customer_id, feature_id) == 2


# --- guarantee 21: dedupe and limits --------------------------------------------------------


def test_it_counts_equal_events_once(emulator, stigg):
    """Guarantee 21: equal (customerId, resourceId, eventName, idempotencyKey, timestamp)
    count once, within one call and across calls."""
    feature_id, name = _meter_feature(emulator)
    customer_id = w.customer(emulator)
    event = {"customer_id": customer_id, "event_name": name, "idempotency_key": "dup",
             "timestamp": "2026-11-20T10:00:00.000Z"}
    stigg.v1.events.report(events=[event, event])
    stigg.v1.events.report(events=[event])
    assert _usage(emulator, customer_id, feature_id) == 1


def test_it_counts_events_differing_in_any_identity_field(emulator, stigg):
    """Guarantee 21: a different timestamp or resourceId is a different event."""
    feature_id, name = _meter_feature(emulator)
    customer_id = w.customer(emulator)
    base = {"customerId": customer_id, "eventName": name, "idempotencyKey": "k", "timestamp": "2026-11-20T10:00:00Z"}
    _report(stigg, base, {**base, "timestamp": "2026-11-20T10:00:01Z"}, {**base, "resourceId": "site-1"})
    assert _usage(emulator, customer_id, feature_id) == 2
    assert _usage(emulator, customer_id, feature_id, resourceId="site-1") == 1


def test_it_dedupes_retries_without_a_timestamp(emulator, stigg):
    """Guarantee 21, Inferred: an omitted timestamp keys as '' so plain retries dedupe."""
    feature_id, name = _meter_feature(emulator)
    customer_id = w.customer(emulator)
    event = {"customerId": customer_id, "eventName": name, "idempotencyKey": "retry"}
    _report(stigg, event)
    _report(stigg, event)
    assert _usage(emulator, customer_id, feature_id) == 1


def test_it_rejects_more_than_1000_events(emulator, stigg):
    """Guarantee 21: over 1000 events per call → 400 and none is stored; 1000 is fine."""
    feature_id, name = _meter_feature(emulator)
    customer_id = w.customer(emulator)
    events = [_event(customer_id, name) for _ in range(1001)]
    _assert_rejected(_send(emulator, *events))
    assert _usage(emulator, customer_id, feature_id) == 0
    assert _send(emulator, *events[:1000]).status_code == 202
    assert _usage(emulator, customer_id, feature_id) == 1000


def test_it_rejects_an_event_over_1_mb(emulator, stigg):
    """Guarantee 21: an event over 1 MB → 400 (Inferred: 1 MB = 2^20 bytes of JSON), and
    the small event beside it is not stored either."""
    feature_id, name = _meter_feature(emulator)
    customer_id = w.customer(emulator)
    with pytest.raises(BadRequestError):
        stigg.v1.events.report(events=[
            {"customer_id": customer_id, "event_name": name, "idempotency_key": "small"},
            {"customer_id": customer_id, "event_name": name, "idempotency_key": "big",
             "dimensions": {"blob": "x" * (1024 * 1024)}},
        ])
    assert _usage(emulator, customer_id, feature_id) == 0


@pytest.mark.parametrize("body", [
    b"{oops",
    b'{"events": []}',
    b'{"events": "many"}',
    b'{"events": [{"customerId": "c", "eventName": "e"}]}',
    b'{"events": [{"customerId": "c", "idempotencyKey": "k"}]}',
    b'{"events": [{"eventName": "e", "idempotencyKey": "k"}]}',
    b'{"events": [{"customerId": "c", "eventName": "e", "idempotencyKey": 7}]}',
    b'{"events": [{"customerId": "c", "eventName": "e", "idempotencyKey": "k", "dimensions": [1]}]}',
    b'{"events": [{"customerId": "c", "eventName": "e", "idempotencyKey": "k", "dimensions": {"a": null}}]}',
    b'{"events": [{"customerId": "c", "eventName": "e", "idempotencyKey": "k", "timestamp": "noon"}]}',
    b'{"events": [{"customerId": "c", "eventName": "e", "idempotencyKey": "k", "featureId": "f"}]}',
    b'{"events": [5]}',
])
def test_it_rejects_bad_events_with_400(emulator, body):
    """Bad input → 400 JSON {code, message}, never a 500."""
    _assert_rejected(emulator.call("POST", "/api/v1/events", content=body,
                                   headers={"Content-Type": "application/json"}))


# --- unknown customers and guarantee 23 --------------------------------------------------------


def test_it_stores_events_of_unknown_customers_without_usage(emulator, stigg):
    """§8.1, Inferred: an unknown customer's events are accepted (202) but feed nothing,
    even once the customer exists."""
    feature_id, name = _meter_feature(emulator)
    customer_id = w.uid("later")
    assert _report(stigg, _event(customer_id, name)).data == {}
    emulator.data("POST", "/api/v1/customers", json={"id": customer_id})
    assert _usage(emulator, customer_id, feature_id) == 0


def test_it_lets_event_usage_go_past_the_limit(emulator, stigg):
    """Guarantee 23: ingest never gates; usage passes usageLimit and the check denies."""
    feature_id, name = _meter_feature(emulator)
    customer_id = _subscribed(emulator, feature_id, usage_limit=2)
    _report(stigg, *[_event(customer_id, name) for _ in range(3)])
    check = stigg.v1.customers.check_entitlement(customer_id, feature_id=feature_id, requested_usage=1).data
    assert check.current_usage == 3 and check.usage_limit == 2
    assert check.access_denied_reason == "RequestedUsageExceedingLimit"


def test_it_dates_usage_by_the_event_timestamp(emulator):
    """§8.2: events count in the period their timestamp falls in; an old event is
    outside a daily history window that starts after it."""
    feature_id, name = _meter_feature(emulator)
    customer_id = w.customer(emulator)
    old = (datetime.now(timezone.utc) - timedelta(days=30)).isoformat()
    _send(emulator, _event(customer_id, name, timestamp=old), _event(customer_id, name))
    start = (datetime.now(timezone.utc) - timedelta(days=60)).isoformat()
    points = emulator.data("GET", f"/api/v1/usage/{customer_id}/history/{feature_id}",
                           params={"startDate": start})["series"][0]["points"]
    assert points[0]["value"] == 0 and points[40]["value"] == 1 and points[-1]["value"] == 2


def _tree_usage(emulator: Any, customer_id: str, feature_id: str) -> dict[str, float]:
    rows = emulator.data("GET", f"/api/v1-beta/customers/{customer_id}/governance", params={"featureIds": feature_id})
    return {row["entityId"]: row["currentUsage"] for row in rows}


@pytest.mark.parametrize("function,expected", [("COUNT", 2), ("SUM", 7), ("MAX", 0)])
def test_it_attributes_count_and_sum_meters_only(emulator, function, expected, stigg):
    """§9.4 (Inferred): COUNT attributes 1 per event, SUM the field value; other
    aggregations are not attributed."""
    feature_id, name = _meter_feature(emulator, function, None if function == "COUNT" else "n")
    customer_id = w.customer(emulator)
    emulator.data("PUT", "/api/v1-beta/entity-types",
                  json={"types": [{"id": "team", "displayName": "Team", "attributionKeys": ["teamId"]}]})
    emulator.data("PUT", f"/api/v1-beta/customers/{customer_id}/entities",
                  json={"entities": [{"id": "t1", "entityTypeId": "team"}]})
    emulator.data("PUT", f"/api/v1-beta/customers/{customer_id}/assignments", json={"assignments": [
        {"entityId": "t1", "featureId": feature_id, "usageLimit": 100, "cadence": "P1M"}]})
    _report(stigg, _event(customer_id, name, dimensions={"teamId": "t1", "n": 3}),
          _event(customer_id, name, dimensions={"teamId": "t1", "n": 4}))
    assert _tree_usage(emulator, customer_id, feature_id)["t1"] == expected


def test_it_emits_usage_exceeded_when_events_cross_the_limit(emulator):
    """§10 (Inferred data shape): a batch of events that takes usage past the limit
    queues one entitlement.usage_exceeded; later events past it queue no more."""
    feature_id, name = _meter_feature(emulator)
    customer_id = _subscribed(emulator, feature_id, usage_limit=2)
    emulator.data("PUT", "/_emulator/webhook", json={"url": "http://127.0.0.1:9/hook", "retryDelaySeconds": 3600})
    try:
        _send(emulator, _event(customer_id, name), _event(customer_id, name), _event(customer_id, name))
        _send(emulator, _event(customer_id, name))
        outbox = emulator.data("GET", "/_emulator/webhooks")
    finally:
        emulator.data("PUT", "/_emulator/webhook", json={"url": None})
    exceeded = [m["message"]["data"] for m in outbox if m["message"]["type"] == "entitlement.usage_exceeded"
                and m["message"]["data"]["customerId"] == customer_id]
    assert [(d["featureId"], d["currentUsage"], d["usageLimit"]) for d in exceeded] == [(feature_id, 3, 2)]
