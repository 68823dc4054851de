"""Usage reports, raw events, usage history and credit estimates (stigg-api.md §7, §8).

Every report or matched event becomes rows in ``measurements``; the entitlements
module turns those rows into ``currentUsage``. A whole call is validated and written
in one write transaction, so a rejected call changes nothing.

The dimensions of each measurement live in ``measurement_dimensions`` (one row per
measurement that had any); history ``groupBy`` reads them.
"""
from __future__ import annotations

import json
import logging
import math
import sqlite3
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Iterable

from .. import clock, periods, store
from ..http import (
    ApiError, Request, Response, bad_input, check_keys, dimensions, ok, opt_datetime, opt_enum, opt_str,
    req_list, req_str, route,
)
from ..webhooks import outbox

log = logging.getLogger(__name__)

MAX_USAGES = 100
MAX_EVENTS = 1000
MAX_EVENT_BYTES = 1024 * 1024  # Inferred: "1 MB" is 2^20 bytes of the event's JSON
DEDUPE_WINDOW = timedelta(days=7)
MAX_FRACTIONAL = 2 ** 35
MAX_WHOLE = 2 ** 53 - 1
MAX_HISTORY_DAYS = 1000  # Inferred: a bound so one call cannot ask for unbounded points
FIVE_PLACES = Decimal("0.00001")
USAGE_KEYS = {"customerId", "featureId", "value", "updateBehavior", "resourceId", "createdAt", "dimensions",
              "idempotencyKey"}
EVENT_KEYS = {"customerId", "eventName", "idempotencyKey", "dimensions", "resourceId", "timestamp"}
UNATTRIBUTED = ("MAX", "MIN", "AVG", "UNIQUE")  # §9.4: only COUNT and SUM meters are attributed

# --- numbers ---------------------------------------------------------------------------


def usage_value(raw: Any, where: str) -> float:
    """§1 Numbers: fractions rounded half away from zero to 5 places and below 2^35 in
    magnitude; whole numbers up to ±(2^53−1). Anything else is a 400, never a 500."""
    if isinstance(raw, bool) or not isinstance(raw, (int, float)):
        raise bad_input(f"{where}: value is required and must be a number")
    if isinstance(raw, float) and not math.isfinite(raw):
        raise bad_input(f"{where}: value must be a finite number")
    if isinstance(raw, int) or raw.is_integer():
        if abs(raw) > MAX_WHOLE:
            raise bad_input(f"{where}: a whole value must be within ±{MAX_WHOLE}")
        return float(raw)
    if abs(raw) >= MAX_FRACTIONAL:
        raise bad_input(f"{where}: a fractional value must be below {MAX_FRACTIONAL} in magnitude")
    # ROUND_HALF_UP in decimal rounds half away from zero; str() keeps the sent digits.
    return float(Decimal(str(raw)).quantize(FIVE_PLACES, rounding=ROUND_HALF_UP))


def _text(value: Any) -> str:
    """A dimension value as text: booleans as JSON does, whole floats without '.0'."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


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


# --- collaborators, imported lazily (entitlements and governance import this package) ---


def _entitlement(c: sqlite3.Connection, customer_id: str, feature_id: str, resource_id: str | None) -> dict[str, Any]:
    """The wire entitlement; without one (no subscription, unknown resource) usage is
    still counted, over all time, so SET and the response stay meaningful (Inferred)."""
    from ..domain import catalog
    from ..domain.entitlements import evaluate_feature
    from ..domain.measurements import usage_in_period

    ent = evaluate_feature(c, customer_id, feature_id, resource_id=resource_id)
    if ent.get("currentUsage") is None:
        feature = catalog.require_feature(c, feature_id)
        ent = {**ent, "currentUsage": usage_in_period(c, customer_id, resource_id, feature, None, None)}
    return ent


def _attribute(c: sqlite3.Connection, customer_id: str, feature_id: str, dims: dict[str, Any], value: float,
               ts: datetime) -> list[dict[str, Any]]:
    if not dims:
        return []  # §9.4.3: without dimensions usage reaches no entity
    from ..domain.governance import attribute

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


def _insert_measurement(c: sqlite3.Connection, customer_id: str, resource_id: str | None, feature_id: str,
                        ts: datetime, num: float | None, text: str | None, dims: dict[str, Any]) -> None:
    cur = c.execute("INSERT INTO measurements (customer_id, resource_id, feature_id, ts, num, str) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    (customer_id, resource_id or "", feature_id, clock.iso(ts), num, text))
    if dims:
        c.execute("INSERT INTO measurement_dimensions (measurement_seq, dimensions) VALUES (?, ?)",
                  (cur.lastrowid, store.dumps(dims)))


def _seen(c: sqlite3.Connection, table_sql: str, params: tuple[Any, ...], now: datetime) -> bool:
    row = c.execute(table_sql, params).fetchone()
    return row is not None and clock.parse(row["seen_at"]) > now - DEDUPE_WINDOW


# --- POST /api/v1/usage and /api/v2/usage ----------------------------------------------


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


def _parse_usage(item: Any, where: str, now: datetime) -> UsageReport:
    if not isinstance(item, dict):
        raise bad_input(f"{where} must be an object")
    check_keys(item, USAGE_KEYS, where)
    return UsageReport(
        customer_id=req_str(item, "customerId", where),
        feature_id=req_str(item, "featureId", where),
        value=usage_value(item.get("value"), where),
        behavior=opt_enum(item, "updateBehavior", ("DELTA", "SET"), where) or "DELTA",
        resource_id=opt_str(item, "resourceId", where) or None,
        # Inferred: createdAt dates the measurement (it may be back-dated); default now.
        ts=opt_datetime(item, "createdAt", where) or now,
        dims=dimensions(item, "dimensions", where),
        key=opt_str(item, "idempotencyKey", where) or None,
    )


def _check_reportable(c: sqlite3.Connection, report: UsageReport, where: str) -> None:
    from ..domain import catalog, customers

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


def _apply(c: sqlite3.Connection, report: UsageReport, now: datetime, entities: list[dict[str, Any]]) -> dict[str, Any]:
    repeat, seen_at = _claim_key(c, report, now)
    before = _entitlement(c, report.customer_id, report.feature_id, report.resource_id)
    after = before
    if not repeat:
        # SET: Stigg works out the delta from the current in-period usage (guarantee 18).
        delta = report.value - _current(before) if report.behavior == "SET" else report.value
        _insert_measurement(c, report.customer_id, report.resource_id, report.feature_id, report.ts, delta, None,
                            report.dims)
        attributed = _attribute(c, report.customer_id, report.feature_id, report.dims, delta, report.ts)
        # attribute() does not know the resource; the report does.
        entities.extend({**item, "resourceId": report.resource_id} for item in attributed)
        after = _entitlement(c, report.customer_id, report.feature_id, report.resource_id)
        _maybe_exceeded(c, report.customer_id, report.resource_id, report.feature_id, before, after)
    return {
        "id": _usage_id(report, seen_at), "customerId": report.customer_id, "featureId": report.feature_id,
        "resourceId": report.resource_id, "value": report.value, "timestamp": clock.iso(report.ts),
        "createdAt": clock.iso(now), "currentUsage": after.get("currentUsage"),
        "usagePeriodStart": after.get("usagePeriodStart"), "usagePeriodEnd": after.get("usagePeriodEnd"),
        "nextResetDate": after.get("usagePeriodEnd"), "credit": None,
    }


def _report_usage(req: Request) -> tuple[list[dict[str, Any]], list[dict[str, Any]], bool]:
    body = req.json()
    check_keys(body, {"usages"}, "usage")
    items = req_list(body, "usages", "usage", max_items=MAX_USAGES)
    now = clock.now()
    reports = [_parse_usage(item, f"usages[{i}]", now) for i, item in enumerate(items)]
    entities: list[dict[str, Any]] = []
    with store.write() as c:
        # Check the whole batch before writing anything (the rollback would undo it
        # anyway, but this keeps webhooks and attribution out of a failing call).
        for i, report in enumerate(reports):
            _check_reportable(c, report, f"usages[{i}]")
        out = [_apply(c, report, now, entities) for report in reports]
        governance_on = bool(store.get_control(c).get("governanceEnabled"))
    return out, _latest_per_entitlement(entities), governance_on


def _latest_per_entitlement(entities: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each item carries an absolute currentUsage, so the last one per entitlement wins."""
    latest: dict[Any, dict[str, Any]] = {}
    for entity in entities:
        latest[(entity.get("entitlementId"), entity.get("customerId"), entity.get("resourceId"))] = entity
    return list(latest.values())


@route("POST", "/api/v1/usage")
def report_usage_v1(req: Request) -> Response:
    usages, _, _ = _report_usage(req)
    return ok(usages, 201)


@route("POST", "/api/v2/usage")
def report_usage_v2(req: Request) -> Response:
    usages, entities, governance_on = _report_usage(req)
    data: dict[str, Any] = {"usages": usages}
    if governance_on:
        data["entities"] = entities
    # Inferred: 201 like v1 (the SDK accepts any 2xx).
    return ok(data, 201)


# --- POST /api/v1/events ---------------------------------------------------------------


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


def _parse_event(item: Any, where: str, now: datetime) -> Event:
    if not isinstance(item, dict):
        raise bad_input(f"{where} must be an object")
    if len(json.dumps(item, separators=(",", ":"), ensure_ascii=False).encode()) > MAX_EVENT_BYTES:
        raise bad_input(f"{where} is over 1 MB")
    check_keys(item, EVENT_KEYS, where)
    ts = opt_datetime(item, "timestamp", where)
    return Event(
        customer_id=req_str(item, "customerId", where),
        event_name=req_str(item, "eventName", where),
        key=req_str(item, "idempotencyKey", where),
        resource_id=opt_str(item, "resourceId", where) or None,
        ts=ts or now,
        timestamp_sent=ts is not None,
        dims=dimensions(item, "dimensions", where),
        doc=item,
    )


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
    text = _text(actual)
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
        return None, _text(raw)
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
    before = {g: _entitlement(c, g[0], g[2], g[1]) for g in groups}
    for event, feature, (num, text) in rows:
        _insert_measurement(c, event.customer_id, event.resource_id, feature["id"], event.ts, num, text, event.dims)
        if feature["meter"]["aggregation"]["function"] not in UNATTRIBUTED and num is not None:
            _attribute(c, event.customer_id, feature["id"], event.dims, num, event.ts)
    for group in groups:
        _maybe_exceeded(c, group[0], group[1], group[2], before[group], _entitlement(c, group[0], group[2], group[1]))


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


@route("POST", "/api/v1/events")
def report_events(req: Request) -> Response:
    """202 {"data": {}} (guarantee 22). Inferred: aggregated at once; the control
    setting eventAggregationDelaySeconds is not honoured yet."""
    body = req.json()
    check_keys(body, {"events"}, "events")
    items = req_list(body, "events", "events", max_items=MAX_EVENTS)
    now = clock.now()
    events = [_parse_event(item, f"events[{i}]", now) for i, item in enumerate(items)]
    with store.write() as c:
        fresh = _fresh_events(c, events, now)
        for event in fresh:
            c.execute("INSERT INTO events (customer_id, event_name, ts, doc) VALUES (?, ?, ?, ?)",
                      (event.customer_id, event.event_name, clock.iso(event.ts), store.dumps(event.doc)))
        _feed(c, fresh, _metered_features(c))
    return ok({}, 202)


# --- estimates -------------------------------------------------------------------------


def _estimate(req: Request, required: Iterable[str], feature_key: str | None) -> Response:
    """Inferred: no credits are emulated, so every estimate is empty with a warning."""
    body = req.json()
    for key in required:
        req_str(body, key, "estimate")
    warning = "FEATURE_NOT_CREDIT_BASED"
    if feature_key is not None:
        from ..domain.catalog import load_feature

        if load_feature(store.conn(), body[feature_key]) is None:
            warning = "FEATURE_NOT_FOUND"
    return ok({"estimates": [], "warnings": [warning]})


@route("POST", "/api/v1/usage/estimate")
def estimate_usage(req: Request) -> Response:
    return _estimate(req, ("customerId", "featureId"), "featureId")


@route("POST", "/api/v1/events/estimate")
def estimate_event(req: Request) -> Response:
    return _estimate(req, ("customerId", "eventName"), None)


# --- GET /api/v1/usage/{customerId}/history/{featureId} ---------------------------------


def _aggregate(feature: dict[str, Any], rows: list[Measured]) -> float:
    """Usage of the rows by the feature's meter function (calculated usage sums the
    deltas), then unitTransformation (divide, round UP/DOWN)."""
    meter = feature.get("meter")
    function = meter["aggregation"]["function"] if meter else "SUM"
    nums = [row.num for row in rows if row.num is not None]
    if function == "UNIQUE":
        value = float(len({row.text for row in rows if row.text is not None}))
    elif function == "COUNT":
        value = float(len(rows))
    elif not nums:
        value = 0.0
    else:
        value = {"SUM": sum(nums), "MAX": max(nums), "MIN": min(nums), "AVG": sum(nums) / len(nums)}[function]
    transform = feature.get("unitTransformation")
    if transform and transform.get("divide"):
        value = value / transform["divide"]
        value = math.ceil(value) if transform.get("round") == "UP" else math.floor(value)
    return float(value)


def _period_start(ent: dict[str, Any], at: datetime, origin: datetime | None = None) -> datetime | None:
    """Start of the reset period running at ``at``, None when usage never resets.
    ``origin``: where the winning source's periods begin (its subscription's or
    promotion's start)."""
    reset = ent.get("resetPeriod")
    anchor = ent.get("usagePeriodAnchor") or ent.get("usagePeriodStart")
    if not reset or not anchor:
        return None
    try:
        return periods.reset_window(reset, None, _anchor_at_or_before(reset, clock.parse(anchor), at, origin), at)[0]
    except ValueError:
        return None


def _anchor_at_or_before(reset: str, anchor: datetime, at: datetime, origin: datetime | None) -> datetime:
    """The entitlement's anchor is the start of its current period's grid; for a
    calendar-month reset that is the 1st of this month, later than the subscription's
    start. History asks about earlier instants, which belong to earlier periods of the
    same grid: step the anchor back by whole periods until it is not after ``at``, but
    never before ``origin`` (no period runs before its source began; usage then counts
    into the first period). HOUR and DAY are on a fixed grid already."""
    months = {"MONTH": 1, "YEAR": 12}.get(reset)
    if at >= anchor or (months is None and reset != "WEEK"):
        return anchor
    k, moved = 0, anchor
    while moved > at:
        k += 1
        moved = periods.add_months(anchor, -months * k) if months else anchor - timedelta(weeks=k)
    return origin if origin is not None and moved < origin else moved


def _history_range(req: Request) -> tuple[datetime, datetime]:
    start = opt_datetime({"startDate": req.arg("startDate")}, "startDate", "history")
    if start is None:
        raise bad_input("history: startDate is required")
    end = opt_datetime({"endDate": req.arg("endDate")}, "endDate", "history") or clock.now()
    if end < start:
        raise bad_input("history: endDate must not be before startDate")
    if end - start > timedelta(days=MAX_HISTORY_DAYS):
        raise bad_input(f"history: the range may span at most {MAX_HISTORY_DAYS} days")
    return start, end


def _point_times(start: datetime, end: datetime) -> list[datetime]:
    """One point a day from startDate, plus endDate itself so the last point is the
    usage at the end of the range (Inferred)."""
    times, at = [], start
    while at < end:
        times.append(at)
        at += timedelta(days=1)
    times.append(end)
    return times


def _series(feature: dict[str, Any], ent: dict[str, Any], rows: list[Measured],
            times: list[datetime], origin: datetime | None) -> list[dict[str, Any]]:
    points, previous = [], None
    for at in times:
        period_start = _period_start(ent, at, origin)
        in_period = [r for r in rows if r.ts <= at and (period_start is None or r.ts >= period_start)]
        is_reset = period_start is not None and (
            (previous is None and period_start == at) or (previous is not None and previous < period_start <= at))
        points.append({"timestamp": clock.iso(at), "value": _aggregate(feature, in_period), "isResetPoint": is_reset})
        previous = at
    return points


def _markers(ent: dict[str, Any], start: datetime, end: datetime, origin: datetime | None) -> list[dict[str, Any]]:
    """PERIODIC_RESET at each period start inside [startDate, endDate]."""
    markers, at = [], end
    while True:
        period_start = _period_start(ent, at, origin)
        # Before the anchor every instant maps to the first window, which starts after it.
        if period_start is None or period_start < start or period_start > at:
            break
        markers.append({"timestamp": clock.iso(period_start), "type": "PERIODIC_RESET"})
        at = period_start - timedelta(microseconds=1)
    return list(reversed(markers))


@dataclass
class Measured:
    ts: datetime
    num: float | None
    text: str | None
    dims: dict[str, Any]


def _history_rows(c: sqlite3.Connection, customer_id: str, feature_id: str, resource_id: str | None,
                  end: datetime) -> list[Measured]:
    rows = c.execute(
        "SELECT m.ts, m.num, m.str, d.dimensions FROM measurements m "
        "LEFT JOIN measurement_dimensions d ON d.measurement_seq = m.seq "
        "WHERE m.customer_id=? AND m.feature_id=? AND m.resource_id=? AND m.ts <= ? ORDER BY m.ts",
        (customer_id, feature_id, resource_id or "", clock.iso(end)),
    ).fetchall()
    return [Measured(clock.parse(r["ts"]), r["num"], r["str"], store.loads(r["dimensions"]) or {}) for r in rows]


def _group(rows: list[Measured], key: str) -> dict[str, list[Measured]]:
    """Inferred: measurements without the groupBy dimension join no series."""
    groups: dict[str, list[Measured]] = {}
    for row in rows:
        if row.dims.get(key) is not None:
            groups.setdefault(_text(row.dims[key]), []).append(row)
    return groups


@route("GET", "/api/v1/usage/{customerId}/history/{featureId}")
def usage_history(req: Request) -> Response:
    from ..domain import catalog, customers
    from ..domain.entitlements import period_origin

    c = store.conn()
    customer_id, feature_id = req.params["customerId"], req.params["featureId"]
    customers.require(c, customer_id)
    feature = catalog.require_feature(c, feature_id)
    start, end = _history_range(req)
    resource_id = req.arg("resourceId") or None
    ent = _entitlement(c, customer_id, feature_id, resource_id)
    origin = period_origin(c, customer_id, feature_id, resource_id)
    rows = _history_rows(c, customer_id, feature_id, resource_id, end)
    times = _point_times(start, end)
    group_by = req.arg("groupBy")
    if group_by:
        series = [{"tags": [{"key": group_by, "value": value}], "points": _series(feature, ent, group_rows, times, origin)}
                  for value, group_rows in sorted(_group(rows, group_by).items())]
    else:
        series = [{"tags": [], "points": _series(feature, ent, rows, times, origin)}]
    return ok({"series": series, "markers": _markers(ent, start, end, origin)})
