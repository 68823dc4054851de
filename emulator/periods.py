"""Calendar arithmetic for reset periods (§5.3) and governance cadences (§9.5).

Periods are half-open [start, end). Month and year steps are calendar steps from the
anchor, clamped to shorter months (a 31 Jan anchor gives 28/29 Feb, then 31 Mar), so
each boundary is computed from the anchor, never from the previous boundary.
"""
from __future__ import annotations

import calendar
import re
from datetime import datetime, timedelta, timezone

WEEKDAYS = {
    "EveryMonday": 0, "EveryTuesday": 1, "EveryWednesday": 2, "EveryThursday": 3, "EveryFriday": 4,
    "EverySaturday": 5, "EverySunday": 6,
}
CADENCE_RE = re.compile(r"^P(?:(\d+)([YMWD])|T(\d+)([HM]))$")


def add_months(anchor: datetime, months: int) -> datetime:
    total = anchor.month - 1 + months
    year, month = anchor.year + total // 12, total % 12 + 1
    day = min(anchor.day, calendar.monthrange(year, month)[1])
    return anchor.replace(year=year, month=month, day=day)


def _calendar_window(anchor: datetime, now: datetime, months: int) -> tuple[datetime, datetime]:
    """The window of ``months``-long calendar steps from ``anchor`` that contains now."""
    if now < anchor:
        # Before the anchor (a future-dated start): the first window.
        return anchor, add_months(anchor, months)
    k = ((now.year - anchor.year) * 12 + now.month - anchor.month) // months
    start = add_months(anchor, k * months)
    while start > now:
        k -= 1
        start = add_months(anchor, k * months)
    end = add_months(anchor, (k + 1) * months)
    while end <= now:
        k += 1
        start, end = end, add_months(anchor, (k + 1) * months)
    return start, end


def _fixed_window(anchor: datetime, now: datetime, step: timedelta) -> tuple[datetime, datetime]:
    k = (now - anchor) // step
    start = anchor + k * step
    return start, start + step


def reset_window(reset_period: str, according_to: str | None, anchor: datetime, now: datetime) -> tuple[datetime, datetime, datetime]:
    """(start, end, usagePeriodAnchor) of the reset period running at ``now``."""
    anchor = anchor.astimezone(timezone.utc)
    midnight_epoch = datetime(1970, 1, 5, tzinfo=timezone.utc)  # a Monday, 00:00 UTC
    if reset_period == "HOUR":
        start, end = _fixed_window(midnight_epoch, now, timedelta(hours=1))
        return start, end, start
    if reset_period == "DAY":
        start, end = _fixed_window(midnight_epoch, now, timedelta(days=1))
        return start, end, start
    if reset_period == "WEEK":
        if according_to in WEEKDAYS:
            first = midnight_epoch + timedelta(days=WEEKDAYS[according_to])
            start, end = _fixed_window(first, now, timedelta(weeks=1))
            return start, end, start
        start, end = _fixed_window(anchor, now, timedelta(weeks=1))
        return start, end, anchor
    if reset_period == "MONTH":
        if according_to == "StartOfTheMonth":
            first = datetime(now.year, now.month, 1, tzinfo=timezone.utc)
            return first, add_months(first, 1), first
        start, end = _calendar_window(anchor, now, 1)
        return start, end, anchor
    if reset_period == "YEAR":
        start, end = _calendar_window(anchor, now, 12)
        return start, end, anchor
    raise ValueError(f"unknown reset period {reset_period!r}")


def parse_cadence(cadence: str) -> tuple[int, str]:
    """'P1M' -> (1, 'M'), 'PT1H' -> (1, 'h'), 'PT5M' -> (5, 'm'). Raises ValueError for
    composites like P1M10D, zero lengths and anything else (guarantee 29)."""
    match = CADENCE_RE.match(cadence) if isinstance(cadence, str) else None
    if not match:
        raise ValueError(f"cadence must be a single-unit ISO-8601 duration such as P1M, P30D, P1W, P1Y, PT1H; got {cadence!r}")
    if match.group(1):
        count, unit = int(match.group(1)), match.group(2)
    else:
        count, unit = int(match.group(3)), match.group(4).lower()
    if count < 1:
        raise ValueError(f"cadence length must be at least 1; got {cadence!r}")
    return count, unit


def cadence_window(cadence: str, anchor: datetime, now: datetime) -> tuple[datetime, datetime]:
    count, unit = parse_cadence(cadence)
    anchor = anchor.astimezone(timezone.utc)
    if unit == "M":
        return _calendar_window(anchor, now, count)
    if unit == "Y":
        return _calendar_window(anchor, now, 12 * count)
    step = {"W": timedelta(weeks=count), "D": timedelta(days=count), "h": timedelta(hours=count),
            "m": timedelta(minutes=count)}[unit]
    if now < anchor:
        return anchor, anchor + step
    return _fixed_window(anchor, now, step)
