"""Small presentation filters: utilization as words, bars and levels; numbers; ages.

Colour is never the only signal: every level has words ("Over limit", "Near limit")
that templates print next to the bar."""
from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Any

from django import template
from django.utils.html import format_html

register = template.Library()

NEAR = 0.8
OVER = 1.0


@register.filter
def pct(value: float | None) -> str:
    if value is None:
        return "—"
    shown = value * 100
    return f"{shown:.0f} %" if shown >= 10 or shown == 0 else f"{shown:.1f} %"


@register.filter
def bar_width(value: float | None) -> str:
    """A utilization bar's width in whole percent, 0–100 (an over-limit bar is full), for
    its class ``w-<n>`` (app.css): a style attribute would need the Content-Security-Policy
    to allow inline styles. A bar with anything used shows at least 1 %."""
    if value is None or value <= 0:
        return "0"
    return str(max(1, min(100, round(value * 100))))


@register.filter
def level(value: float | None) -> str:
    if value is None:
        return "none"
    if value >= OVER:
        return "over"
    if value >= NEAR:
        return "near"
    return "ok"


@register.filter
def level_words(value: float | None) -> str:
    return {"over": "Over limit", "near": "Near limit"}.get(level(value), "")


@register.filter
def num(value: Any) -> str:
    """1234567 → 1,234,567; 12.5 → 12.5; None → —."""
    if value is None or value == "":
        return "—"
    try:
        f = float(value)
    except (TypeError, ValueError):
        return str(value)
    if f.is_integer():
        return f"{int(f):,}"
    return f"{f:,.2f}".rstrip("0").rstrip(".")


def _as_datetime(value: Any) -> datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return None
    if not isinstance(value, datetime):
        return None
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def age_text(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds < 60:
        return f"{seconds} s ago"
    if seconds < 3600:
        return f"{seconds // 60} min ago"
    if seconds < 86400 * 2:
        return f"{seconds // 3600} h {seconds % 3600 // 60} min ago"
    return f"{seconds // 86400} days ago"


@register.filter
def when(value: Any) -> str:
    """A date/time in UTC, as people read it: 2026-11-21 14:05 UTC."""
    dt = _as_datetime(value)
    return dt.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M UTC") if dt else "—"


@register.filter
def day(value: Any) -> str:
    dt = _as_datetime(value)
    return dt.astimezone(timezone.utc).strftime("%Y-%m-%d") if dt else "—"


@register.simple_tag
def age(value: Any, never: str = "never") -> str:
    """<time> showing how long ago; app.js keeps the words current while the page is open."""
    dt = _as_datetime(value)
    if dt is None:
        return format_html('<span class="age age-never">{}</span>', never)
    seconds = (datetime.now(timezone.utc) - dt).total_seconds()
    return format_html('<time class="age" datetime="{}" title="{}">{}</time>',
                       dt.isoformat(), when(dt), age_text(seconds))


_PERIODS = {"YEAR": "yearly", "MONTH": "monthly", "WEEK": "weekly", "DAY": "daily", "HOUR": "hourly"}
_DURATION_UNITS = {"Y": ("yearly", "years"), "M": ("monthly", "months"), "W": ("weekly", "weeks"),
                   "D": ("daily", "days"), "TH": ("hourly", "hours"), "TM": ("every minute", "minutes")}


@register.filter
def period_words(value: str | None) -> str:
    """Reset periods (MONTH) and governance cadences (single-unit ISO-8601: P1M, P30D,
    PT1H) in words: monthly, every 30 days, hourly."""
    if not value:
        return "no reset"
    upper = value.upper()
    if upper in _PERIODS:
        return _PERIODS[upper]
    match = re.fullmatch(r"P(T?)(\d+)([YMWDH])", upper)
    unit = _DURATION_UNITS.get(match.group(1) + match.group(3)) if match else None
    if unit is None:
        return value
    count = int(match.group(2))
    return unit[0] if count == 1 else f"every {count} {unit[1]}"


@register.filter
def status_words(value: str | None) -> str:
    if not value:
        return "no subscription"
    return value.replace("_", " ").lower()


DENIED_WORDS = {
    "FeatureNotFound": "feature not found",
    "CustomerNotFound": "customer not found",
    "CustomerIsArchived": "customer is archived",
    "CustomerResourceNotFound": "resource not found",
    "NoActiveSubscription": "no active subscription",
    "NoFeatureEntitlementInSubscription": "not included in the plan",
    "RequestedUsageExceedingLimit": "usage limit reached",
    "RequestedValuesMismatch": "value not included",
    "BudgetExceeded": "budget exceeded",
    "FeatureTypeMismatch": "feature type mismatch",
    "Revoked": "revoked",
    "InsufficientCredits": "not enough credits",
    "EntitlementNotFound": "no entitlement",
    "Unknown": "unknown reason",
}


@register.filter
def denied_words(value: str | None) -> str:
    if not value:
        return ""
    return DENIED_WORDS.get(value, value)


@register.filter
def urlencode_dict(value: dict) -> str:
    from urllib.parse import urlencode

    return urlencode(value, doseq=True)


@register.filter
def dom_id(value: str) -> str:
    """A stable HTML id for an entity id, which may hold any character."""
    import hashlib

    return "n-" + hashlib.blake2b(str(value).encode(), digest_size=8).hexdigest()


@register.filter
def capability_words(value: str | None) -> str:
    """A budget's capability: the feature id, or a currency ("$credits" → "credits (currency)")."""
    if not value:
        return "—"
    return f"{value[1:]} (currency)" if value.startswith("$") else value


@register.filter
def until(value: Any) -> str:
    """How far away a time is, for a window's end: "in 9 days", "in 5 h", "ended"."""
    dt = _as_datetime(value)
    if dt is None:
        return ""
    seconds = (dt - datetime.now(timezone.utc)).total_seconds()
    if seconds <= 0:
        return "ended"
    if seconds < 3600:
        return f"in {max(1, int(seconds // 60))} min"
    if seconds < 86400 * 2:
        return f"in {int(seconds // 3600)} h"
    return f"in {int(seconds // 86400)} days"
