"""Usage and event routes (stigg-api.md §7, §8): usage reports (v1, v2), raw events,
usage history and credit estimates. Requests are parsed and validated here; what they
add to usage is domain/metering.py, and the history is domain/usage_history.py.
"""
from __future__ import annotations

import json
import math
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Iterable

from .. import clock, store
from ..domain import catalog, customers, metering
from ..domain.metering import Event, UsageReport
from ..domain.usage_history import history
from ..http import (
    Request, Response, bad_input, check_keys, dimensions, ok, opt_datetime, opt_enum, opt_str, req_list, req_str,
    route,
)

MAX_USAGES = 100
MAX_EVENTS = 1000
MAX_EVENT_BYTES = 1024 * 1024  # Inferred: "1 MB" is 2^20 bytes of the event's JSON
MAX_FRACTIONAL = 2 ** 35
MAX_WHOLE = 2 ** 53 - 1
MAX_HISTORY_DAYS = 1000  # Inferred: a bound so one call cannot ask for unbounded points
FIVE_PLACES = Decimal("0.00001")
USAGE_KEYS = {"customerId", "featureId", "value", "updateBehavior", "resourceId", "createdAt", "dimensions",
              "idempotencyKey"}
EVENT_KEYS = {"customerId", "eventName", "idempotencyKey", "dimensions", "resourceId", "timestamp"}


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


# --- POST /api/v1/usage and /api/v2/usage ----------------------------------------------


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
            metering.check_reportable(c, report, f"usages[{i}]")
        out = [metering.apply(c, report, now, entities) for report in reports]
        governance_on = bool(store.get_control(c).get("governanceEnabled"))
    return out, metering.latest_per_entitlement(entities), governance_on


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
        metering.record_events(c, events, now)
    return ok({}, 202)


# --- estimates -------------------------------------------------------------------------


def _estimate(req: Request, required: Iterable[str], feature_key: str | None) -> Response:
    """Inferred: no credits are emulated, so every estimate is empty with a warning."""
    body = req.json()
    for key in required:
        req_str(body, key, "estimate")
    warning = "FEATURE_NOT_CREDIT_BASED"
    if feature_key is not None:
        if catalog.load_feature(store.conn(), body[feature_key]) is None:
            warning = "FEATURE_NOT_FOUND"
    return ok({"estimates": [], "warnings": [warning]})


@route("POST", "/api/v1/usage/estimate")
def estimate_usage(req: Request) -> Response:
    return _estimate(req, ("customerId", "featureId"), "featureId")


@route("POST", "/api/v1/events/estimate")
def estimate_event(req: Request) -> Response:
    return _estimate(req, ("customerId", "eventName"), None)


# --- GET /api/v1/usage/{customerId}/history/{featureId} ---------------------------------


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


@route("GET", "/api/v1/usage/{customerId}/history/{featureId}")
def usage_history(req: Request) -> Response:
    c = store.conn()
    customer_id, feature_id = req.params["customerId"], req.params["featureId"]
    customers.require(c, customer_id)
    feature = catalog.require_feature(c, feature_id)
    start, end = _history_range(req)
    return ok(history(c, customer_id, feature, req.arg("resourceId") or None, start, end, req.arg("groupBy")))
