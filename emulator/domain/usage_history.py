"""Usage history (stigg-api.md §7, GET /api/v1/usage/{customerId}/history/{featureId}):
daily points of in-period usage, reset points and markers where each reset period
starts, optionally one series per value of a dimension."""
from __future__ import annotations

import math
import sqlite3
from datetime import datetime, timedelta
from typing import Any

from .. import clock, periods
from .entitlements import period_origin
from .governance import dimension_text
from .measurements import Measured, history_rows
from .metering import entitlement

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


def _group(rows: list[Measured], key: str) -> dict[str, list[Measured]]:
    """Inferred: measurements without the groupBy dimension join no series."""
    groups: dict[str, list[Measured]] = {}
    for row in rows:
        if row.dims.get(key) is not None:
            groups.setdefault(dimension_text(row.dims[key]), []).append(row)
    return groups


def history(c: sqlite3.Connection, customer_id: str, feature: dict[str, Any], resource_id: str | None,
            start: datetime, end: datetime, group_by: str | None) -> dict[str, Any]:
    """The history body for [start, end]: one series (or one per ``group_by`` value) and the
    period-reset markers."""
    feature_id = feature["id"]
    ent = entitlement(c, customer_id, feature_id, resource_id)
    origin = period_origin(c, customer_id, feature_id, resource_id)
    rows = history_rows(c, customer_id, feature_id, resource_id, end)
    times = _point_times(start, end)
    if group_by:
        series = [{"tags": [{"key": group_by, "value": value}], "points": _series(feature, ent, group_rows, times, origin)}
                  for value, group_rows in sorted(_group(rows, group_by).items())]
    else:
        series = [{"tags": [], "points": _series(feature, ent, rows, times, origin)}]
    return {"series": series, "markers": _markers(ent, start, end, origin)}
