"""Metering (stigg-api.md §7, §8): what a usage report or a raw event adds to the
measurements, with idempotency, meters matching events, attribution to governance
budgets (§9.4) and the usage_exceeded webhook when usage crosses a limit upwards.

Every report or matched event becomes rows in ``measurements`` (measurements.py); the
entitlements turn those rows into ``currentUsage``. The routes write a whole call in
one write transaction, so a rejected call changes nothing.
"""
from __future__ import annotations

import json
import math
import sqlite3
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from .. import clock, store
from ..http import ApiError
from ..webhooks import outbox
from . import catalog, customers
from .entitlements import evaluate_feature
from .governance import attribute, dimension_text
from .measurements import insert_measurement, usage_in_period

DEDUPE_WINDOW = timedelta(days=7)
UNATTRIBUTED = ("MAX", "MIN", "AVG", "UNIQUE")  # §9.4: only COUNT and SUM meters are attributed


# --- shared by usage reports and events ------------------------------------------------


def entitlement(c: sqlite3.Connection, customer_id: str, feature_id: str, resource_id: str | None) -> dict[str, Any]:
    """The wire entitlement; without one (no subscription, unknown resource) usage is
    still counted, over all time, so SET and the response stay meaningful (Inferred)."""
    ent = evaluate_feature(c, customer_id, feature_id, resource_id=resource_id)
    if ent.get("currentUsage") is None:
        feature = catalog.require_feature(c, feature_id)
        ent = {**ent, "currentUsage": usage_in_period(c, customer_id, resource_id, feature, None, None)}
    return ent


def _attribute(c: sqlite3.Connection, customer_id: str, feature_id: str, dims: dict[str, Any], value: float,
               ts: datetime) -> list[dict[str, Any]]:
    if not dims:
        return []  # §9.4.3: without dimensions usage reaches no entity
    return attribute(c, customer_id, feature_id, dims, value, ts)


def _current(ent: dict[str, Any]) -> float:
    return float(ent.get("currentUsage") or 0)


def _maybe_exceeded(c: sqlite3.Connection, customer_id: str, resource_id: str | None, feature_id: str,
                    before: dict[str, Any], after: dict[str, Any]) -> None:
    """entitlement.usage_exceeded when usage crosses the limit upwards (ingest never gates)."""
    limit = after.get("usageLimit")
    if limit is None or after.get("hasUnlimitedUsage"):
        return
    if _current(before) <= limit < _current(after):
        outbox.emit(c, "entitlement.usage_exceeded", customer_id, {
            "featureId": feature_id, "resourceId": resource_id, "currentUsage": _current(after),
            "usageLimit": limit,
        })


def _webhooks_on(c: sqlite3.Connection) -> bool:
    return bool(store.get_control(c)["webhook"].get("url"))


def _seen(c: sqlite3.Connection, table_sql: str, params: tuple[Any, ...], now: datetime) -> bool:
    row = c.execute(table_sql, params).fetchone()
    return row is not None and clock.parse(row["seen_at"]) > now - DEDUPE_WINDOW


# --- usage reports (POST /api/v1/usage and /api/v2/usage) ---------------------------------


@dataclass
class UsageReport:
    customer_id: str
    feature_id: str
    value: float
    behavior: str
    resource_id: str | None
    ts: datetime
    dims: dict[str, Any]
    key: str | None


def check_reportable(c: sqlite3.Connection, report: UsageReport, where: str) -> None:
    customers.require(c, report.customer_id)
    feature = catalog.require_feature(c, report.feature_id)
    if feature.get("meter") is not None:
        raise ApiError(400, "CannotReportUsageForEntitlementWithMeterError",
                       f"{where}: feature {report.feature_id!r} is metered by raw events; report events instead")
    if feature.get("featureType") != "NUMBER" or feature.get("meterType") not in ("FLUCTUATING", "INCREMENTAL"):
        raise ApiError(400, "MeteringNotAvailableForFeatureType",
                       f"{where}: feature {report.feature_id!r} is not metered")


def _usage_id(report: UsageReport, seen_at: str | None) -> str:
    """Keyed reports get an id derived from (customer, key, first sighting), so a
    repeat answers with the id of the report it repeats."""
    if report.key is None or seen_at is None:
        return str(uuid.uuid4())
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"stigg-usage:{report.customer_id}:{report.key}:{seen_at}"))


def _claim_key(c: sqlite3.Connection, report: UsageReport, now: datetime) -> tuple[bool, str | None]:
    """(is_repeat, seen_at). Guarantee 19 (Inferred scope: customer + key, 7 days)."""
    if report.key is None:
        return False, None
    row = c.execute("SELECT seen_at FROM usage_keys WHERE customer_id=? AND key=?",
                    (report.customer_id, report.key)).fetchone()
    if row is not None and clock.parse(row["seen_at"]) > now - DEDUPE_WINDOW:
        return True, row["seen_at"]
    seen_at = clock.iso(now)
    c.execute("INSERT OR REPLACE INTO usage_keys (customer_id, key, seen_at) VALUES (?, ?, ?)",
              (report.customer_id, report.key, seen_at))
    return False, seen_at


def apply(c: sqlite3.Connection, report: UsageReport, now: datetime, entities: list[dict[str, Any]]) -> dict[str, Any]:
    repeat, seen_at = _claim_key(c, report, now)
    before = entitlement(c, report.customer_id, report.feature_id, report.resource_id)
    after = before
    if not repeat:
        # SET: Stigg works out the delta from the current in-period usage (guarantee 18).
        delta = report.value - _current(before) if report.behavior == "SET" else report.value
        insert_measurement(c, report.customer_id, report.resource_id, report.feature_id, report.ts, delta, None,
                            report.dims)
        attributed = _attribute(c, report.customer_id, report.feature_id, report.dims, delta, report.ts)
        # attribute() does not know the resource; the report does.
        entities.extend({**item, "resourceId": report.resource_id} for item in attributed)
        after = entitlement(c, report.customer_id, report.feature_id, report.resource_id)
        _maybe_exceeded(c, report.customer_id, report.resource_id, report.feature_id, before, after)
    return {
        "id": _usage_id(report, seen_at), "customerId": report.customer_id, "featureId": report.feature_id,
        "resourceId": report.resource_id, "value": report.value, "timestamp": clock.iso(report.ts),
        "createdAt": clock.iso(now), "currentUsage": after.get("currentUsage"),
        "usagePeriodStart": after.get("usagePeriodStart"), "usagePeriodEnd": after.get("usagePeriodEnd"),
        "nextResetDate": after.get("usagePeriodEnd"), "credit": None,
    }


def latest_per_entitlement(entities: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each item carries an absolute currentUsage, so the last one per entitlement wins."""
    latest: dict[Any, dict[str, Any]] = {}
    for entity in entities:
        latest[(entity.get("entitlementId"), entity.get("customerId"), entity.get("resourceId"))] = entity
    return list(latest.values())


# --- raw events (POST /api/v1/events) -------------------------------------------------------


@dataclass
class Event:
    customer_id: str
    event_name: str
    key: str
    resource_id: str | None
    ts: datetime
    timestamp_sent: bool
    dims: dict[str, Any]
    doc: dict[str, Any] = field(default_factory=dict)

    def identity(self) -> str:
        # §8.1 dedupe identity; Inferred: an omitted timestamp keys as '' so retries dedupe.
        ts = self.ts.isoformat() if self.timestamp_sent else ""
        return json.dumps([ts, self.customer_id, self.resource_id or "", self.event_name, self.key])


def _number(value: Any) -> float | None:
    """Inferred: numeric strings count as numbers for meter fields and comparisons."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        return float(value) if math.isfinite(value) else None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _condition_holds(cond: dict[str, Any], event: Event) -> bool:
    """One meter condition. Field ``eventName`` is the event's name; any other field
    is ``dimensions[field]`` (Inferred). A missing field satisfies only IS_NULL and
    NOT_EQUALS (Inferred). Ordering operations compare numbers only (Inferred)."""
    op, expected = cond["operation"], cond.get("value")
    actual = event.event_name if cond["field"] == "eventName" else event.dims.get(cond["field"])
    if op == "IS_NULL":
        return actual is None
    if op == "IS_NOT_NULL":
        return actual is not None
    if actual is None:
        return op == "NOT_EQUALS"
    text = dimension_text(actual)
    if op in ("EQUALS", "NOT_EQUALS"):
        a, b = _number(actual), _number(expected)
        equal = text == expected or (a is not None and b is not None and a == b)
        return equal if op == "EQUALS" else not equal
    if op == "IN":
        return text in (cond.get("values") or [])
    if op == "CONTAINS":
        return expected in text
    if op == "STARTS_WITH":
        return text.startswith(expected)
    if op == "ENDS_WITH":
        return text.endswith(expected)
    a, b = _number(actual), _number(expected)
    if a is None or b is None:
        return False
    return {"GREATER_THAN": a > b, "GREATER_THAN_OR_EQUAL": a >= b, "LESS_THAN": a < b,
            "LESS_THAN_OR_EQUAL": a <= b}.get(op, False)


def meter_matches(meter: dict[str, Any], event: Event) -> bool:
    """Conditions ANDed within a filter, filters ORed (§8.2). Inferred: a meter with
    no filters matches no event, since it could otherwise swallow every event."""
    return any(all(_condition_holds(cond, event) for cond in f["conditions"]) for f in meter.get("filters") or [])


def _contribution(meter: dict[str, Any], event: Event) -> tuple[float | None, str | None] | None:
    """(num, str) for the measurement row, or None when the event lacks the field."""
    function, field_name = meter["aggregation"]["function"], meter["aggregation"].get("field")
    if function == "COUNT":
        return 1.0, None
    raw = event.dims.get(field_name) if field_name else None
    if raw is None:
        return None
    if function == "UNIQUE":
        return None, dimension_text(raw)
    number = _number(raw)
    return None if number is None else (number, None)


def _metered_features(c: sqlite3.Connection) -> list[dict[str, Any]]:
    rows = c.execute("SELECT doc FROM features WHERE json_extract(doc, '$.meter') IS NOT NULL ORDER BY seq")
    return [store.loads(row["doc"]) for row in rows]


def _feed(c: sqlite3.Connection, events: list[Event], features: list[dict[str, Any]]) -> None:
    """Write one measurement per (event, matching feature); COUNT and SUM are attributed."""
    known: dict[str, bool] = {}
    rows = []
    for event in events:
        if event.customer_id not in known:
            known[event.customer_id] = c.execute("SELECT 1 FROM customers WHERE id=?",
                                                 (event.customer_id,)).fetchone() is not None
        if not known[event.customer_id]:
            continue  # Inferred: stored but feeds no usage
        for feature in features:
            if meter_matches(feature["meter"], event):
                contribution = _contribution(feature["meter"], event)
                if contribution is not None:
                    rows.append((event, feature, contribution))
    watch = _webhooks_on(c)
    groups = {(e.customer_id, e.resource_id, f["id"]) for e, f, _ in rows} if watch else set()
    before = {g: entitlement(c, g[0], g[2], g[1]) for g in groups}
    for event, feature, (num, text) in rows:
        insert_measurement(c, event.customer_id, event.resource_id, feature["id"], event.ts, num, text, event.dims)
        if feature["meter"]["aggregation"]["function"] not in UNATTRIBUTED and num is not None:
            _attribute(c, event.customer_id, feature["id"], event.dims, num, event.ts)
    for group in groups:
        _maybe_exceeded(c, group[0], group[1], group[2], before[group], entitlement(c, group[0], group[2], group[1]))


def _fresh_events(c: sqlite3.Connection, events: list[Event], now: datetime) -> list[Event]:
    """Drop events whose identity was seen within 7 days, in the table or earlier in
    this batch (guarantee 21), and record the rest."""
    fresh = []
    for event in events:
        key = event.identity()
        if _seen(c, "SELECT seen_at FROM event_keys WHERE key=?", (key,), now):
            continue
        c.execute("INSERT OR REPLACE INTO event_keys (key, seen_at) VALUES (?, ?)", (key, clock.iso(now)))
        fresh.append(event)
    return fresh


def record_events(c: sqlite3.Connection, events: list[Event], now: datetime) -> None:
    """Store the events not seen before and feed them to the meters, inside the caller's
    write transaction."""
    fresh = _fresh_events(c, events, now)
    for event in fresh:
        c.execute("INSERT INTO events (customer_id, event_name, ts, doc) VALUES (?, ?, ?, ?)",
                  (event.customer_id, event.event_name, clock.iso(event.ts), store.dumps(event.doc)))
    _feed(c, fresh, _metered_features(c))
