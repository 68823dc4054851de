"""Promotional entitlements: when a grant ends, what it would change, and what to warn about.

Pure: no I/O and no clock (``now`` is passed in), so the form's preview, the action that
sends the grant and the approval policy (issue 10) apply the same rules, and tests call
them with hand-built values. What the customer gets is always recomputed by
``provenance.explain_entitlement``, the one implementation of Stigg's generous rule
(stigg-api.md §5.4) that the pages already show as "comes from".

Semantics (§6, guarantees 14–17): a grant for a feature **replaces** the customer's record
for that feature (active or expired); it starts now and ends by its period; an expired
record stays listed and grants nothing.
"""
from __future__ import annotations

import calendar
import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Mapping, Sequence

from ..provenance import Provenance, explain_entitlement
from ..stigg import Entitlement, Feature, Package, Promotion, PromotionGrant, Subscription

# Stigg's period values (§6), with words for people.
PERIODS: dict[str, str] = {"1 week": "1 week", "1 month": "1 month", "6 month": "6 months", "1 year": "1 year",
                           "lifetime": "lifetime (no end date)", "custom": "until a date"}
RESET_PERIODS: dict[str, str] = {"MONTH": "monthly", "WEEK": "weekly", "DAY": "daily", "HOUR": "hourly",
                                 "YEAR": "yearly"}
# accordingTo anchors per reset period (§5.3); DAY and HOUR reset on UTC boundaries and take none.
RESET_ANCHORS: dict[str, tuple[str, ...]] = {
    "MONTH": ("SubscriptionStart", "StartOfTheMonth"),
    "WEEK": ("SubscriptionStart", "EverySunday", "EveryMonday", "EveryTuesday", "EveryWednesday", "EveryThursday",
             "EveryFriday", "EverySaturday"),
    "YEAR": ("SubscriptionStart",),
}
# "Unusually large": more than this many times what the plan (and add-ons) give.
LARGE_FACTOR = 10.0
ACTIVE = "Active"
_EPSILON = 1e-9


def add_months(when: datetime, months: int) -> datetime:
    """Calendar months later, clamped to the month's last day (Jan 31 + 1 month = Feb 28/29)."""
    index = when.month - 1 + months
    year, month = when.year + index // 12, index % 12 + 1
    return when.replace(year=year, month=month, day=min(when.day, calendar.monthrange(year, month)[1]))


def end_of(period: str, start: datetime, custom_end: datetime | None = None) -> datetime | None:
    """When a grant with this period, made at ``start``, ends (Inferred: calendar
    arithmetic in UTC, as §6 has it). None: lifetime."""
    if period == "1 week":
        return start + timedelta(days=7)
    if period == "1 month":
        return add_months(start, 1)
    if period == "6 month":
        return add_months(start, 6)
    if period == "1 year":
        return add_months(start, 12)
    if period == "lifetime":
        return None
    if period == "custom":
        return custom_end
    raise ValueError(f"unknown period {period!r}")


@dataclass(frozen=True)
class Grant:
    """One promotional entitlement as a person asks for it. Numbers only for NUMBER
    features, enum values only for ENUM features, a reset only for metered ones."""

    feature_id: str
    period: str  # a key of PERIODS
    end_date: datetime | None = None  # with period "custom"
    limit: float | None = None
    unlimited: bool = False
    soft_limit: bool = False
    reset_period: str | None = None
    reset_anchor: str | None = None
    enum_values: tuple[str, ...] = ()

    def request(self) -> PromotionGrant:
        """What the client sends to Stigg."""
        return PromotionGrant(
            feature_id=self.feature_id, period=self.period,
            custom_end_date=self.end_date if self.period == "custom" else None,
            # §6 types usageLimit as an integer: sent as one (the form takes whole numbers only)
            usage_limit=None if self.unlimited or self.limit is None else int(self.limit),
            has_unlimited_usage=self.unlimited or None,
            has_soft_limit=self.soft_limit or None, enum_values=self.enum_values or None,
            reset_period=self.reset_period, reset_anchor=self.reset_anchor if self.reset_period else None)

    def as_promotion(self, now: datetime) -> Promotion:
        """The record Stigg would hold once granted now (for the preview)."""
        return Promotion(id="(this grant)", feature_id=self.feature_id, status=ACTIVE, period=self.period,
                         start_date=now, end_date=end_of(self.period, now, self.end_date),
                         usage_limit=None if self.unlimited else self.limit, has_unlimited_usage=self.unlimited,
                         has_soft_limit=self.soft_limit, enum_values=self.enum_values or None,
                         reset_period=self.reset_period, created_at=now)

    def as_json(self, now: datetime) -> dict[str, Any]:
        """The audit log's "after" (and, for a promotion replaced or revoked, "before")."""
        end = end_of(self.period, now, self.end_date)
        return {"feature": self.feature_id, "limit": None if self.unlimited else self.limit,
                "unlimited": self.unlimited, "soft_limit": self.soft_limit, "reset_period": self.reset_period,
                "reset_anchor": self.reset_anchor, "enum_values": list(self.enum_values), "period": self.period,
                "end_date": end.isoformat() if end else None}


def grant_of(promotion: Promotion, period: str, end_date: datetime | None = None) -> Grant:
    """The same values as an existing promotion, for another period: an extension is a
    new grant that replaces the old one (Stigg has no "extend"; Inferred: its start date
    becomes the day it is extended)."""
    return Grant(feature_id=promotion.feature_id, period=period, end_date=end_date, limit=promotion.usage_limit,
                 unlimited=promotion.has_unlimited_usage, soft_limit=promotion.has_soft_limit,
                 reset_period=promotion.reset_period, reset_anchor=promotion.reset_anchor,
                 enum_values=tuple(promotion.enum_values or ()))


def promotion_json(promotion: Promotion) -> dict[str, Any]:
    """A promotion as the audit log keeps it (the same keys as Grant.as_json)."""
    return {"feature": promotion.feature_id, "limit": promotion.usage_limit,
            "unlimited": promotion.has_unlimited_usage, "soft_limit": promotion.has_soft_limit,
            "reset_period": promotion.reset_period, "enum_values": list(promotion.enum_values or ()),
            "period": promotion.period, "status": promotion.status,
            "end_date": promotion.end_date.isoformat() if promotion.end_date else None}


@dataclass(frozen=True)
class Caution:
    kind: str  # nothing | less | replaces | lifetime | large
    text: str


@dataclass(frozen=True)
class Preview:
    """What a grant would change for one customer and feature."""

    before: Provenance  # what the customer gets now
    after: Provenance  # ... once the grant is made
    plan: Provenance  # what the subscriptions alone give (no promotion)
    replaced: Promotion | None  # the record the grant replaces, if any
    ends: datetime | None
    usage: float | None  # current-period usage (metered features)
    warnings: tuple[Caution, ...] = field(default=())
    usage_after: float | None = None  # the usage counted against the limit once granted
    usage_note: str = ""  # why usage_after differs from usage, in words

    @property
    def utilization_before(self) -> float | None:
        return utilization(self.usage, self.before)

    @property
    def utilization_after(self) -> float | None:
        return utilization(self.usage_after, self.after)

    @property
    def takes_away(self) -> bool:
        return any(w.kind == "less" for w in self.warnings)

    @property
    def changes_nothing(self) -> bool:
        return any(w.kind == "nothing" for w in self.warnings)


def utilization(usage: float | None, effective: Provenance) -> float | None:
    """usage / limit of an effective value; None when unlimited, not granted or unmetered."""
    if usage is None or effective.unlimited or not effective.is_granted or effective.value is None:
        return None
    return 1.0 if effective.value <= 0 else usage / effective.value


def preview(grant: Grant, *, feature: Feature, reported: Entitlement | None, usage: float | None,
            subscriptions: Sequence[Subscription], packages: Mapping[str, Package],
            promotions: Sequence[Promotion], now: datetime) -> Preview:
    """Before and after, by the generous rule, and every warning a person should read
    before confirming."""
    fid = grant.feature_id
    before = explain_entitlement(fid, reported, subscriptions, packages, promotions)
    replaced = next((p for p in promotions if p.feature_id == fid), None)
    new = grant.as_promotion(now)
    kept = [p for p in promotions if p.feature_id != fid]
    after = explain_entitlement(fid, None, subscriptions, packages, [*kept, new])
    if before.inferred and _beats(before, after):
        # Stigg reports a value no source explains (a subscription override we cannot
        # see): it still applies after the grant, unless the grant beats it.
        after = before
    plan = explain_entitlement(fid, None, subscriptions, packages, ())
    warnings = _warnings(grant, feature, before, after, plan, replaced, new)
    usage_after, note = _usage_after(grant, after, new, usage)
    return Preview(before, after, plan, replaced, new.end_date, usage, tuple(warnings), usage_after, note)


def _usage_after(grant: Grant, after: Provenance, new: Promotion, usage: float | None) -> tuple[float | None, str]:
    """Usage is one counter, read over the winning source's period, and a promotion's
    periods are anchored at its start date (§5.3, §5.4; Inferred). So a winning grant that
    resets, counted from its start, begins its first period at 0; one that never resets
    counts all usage. Otherwise the current period's usage carries over."""
    wins = any(w.id == new.id for w in after.winners)
    if usage is None or not wins:
        return usage, ""
    if grant.reset_period and grant.reset_anchor in (None, "SubscriptionStart"):
        return 0.0, "Its first usage period starts with the grant, so usage counts from 0."
    if not grant.reset_period:
        return None, ("It never resets: usage then counts everything since the first usage ever recorded, "
                      "which the dashboard does not hold.")
    return usage, ""


def is_unusually_large(grant: Grant, plan: Provenance, factor: float = LARGE_FACTOR) -> bool:
    """More than ``factor`` × what the plan and add-ons give. Unlimited over a finite
    plan counts; with no plan number to compare (the plan gives nothing, or 0) nothing is
    "large" — early access to a feature outside the plan is the usual case."""
    if not plan.is_granted or plan.unlimited or plan.value is None or plan.value <= 0:
        return False
    if grant.unlimited:
        return True
    return grant.limit is not None and grant.limit > factor * plan.value + _EPSILON


def _warnings(grant: Grant, feature: Feature, before: Provenance, after: Provenance, plan: Provenance,
              replaced: Promotion | None, new: Promotion) -> list[Caution]:
    out: list[Caution] = []
    if _effective(before) == _effective(after):
        out.append(Caution("nothing", f"This grant changes nothing the customer gets now: {describe(before, feature)} "
                                      f"from the {before.label} is already as generous or more."))
    elif _beats(before, after) or set(before.enum_values) - set(after.enum_values) or (
            before.is_granted and not after.is_granted):
        # Replacing a bigger promotion with a smaller one takes something away.
        out.append(Caution("less", f"The customer gets less than now: {describe(before, feature)} → "
                                   f"{describe(after, feature)}."))
    if replaced is not None and replaced.status == ACTIVE:
        ends = f"until {replaced.end_date:%Y-%m-%d}" if replaced.end_date else "with no end date"
        out.append(Caution("replaces", f"It replaces the active promotion granting {describe_promotion(replaced, feature)}"
                                       f" {ends}: that grant ends now and is lost."))
    if grant.period == "lifetime":
        out.append(Caution("lifetime", "A lifetime grant never ends: it stays until somebody revokes it."))
    if is_unusually_large(grant, plan):
        out.append(Caution("large", f"This is more than {LARGE_FACTOR:g}× what the plan gives "
                                    f"({describe(plan, feature)})."))
    return out


def _effective(p: Provenance) -> tuple:
    """What the customer gets, for comparing before and after."""
    return (p.is_granted, p.unlimited, None if p.value is None else round(p.value, 9), frozenset(p.enum_values),
            p.reset_period, p.soft_limit)


def _beats(a: Provenance, b: Provenance) -> bool:
    if a.unlimited != b.unlimited:
        return a.unlimited
    return not a.unlimited and a.value is not None and (b.value is None or a.value > b.value + _EPSILON)


def describe(p: Provenance, feature: Feature) -> str:
    """An effective value in words: "5,000 API calls", "unlimited", "on", "gold, silver"."""
    if not p.is_granted:
        return "no access"
    return _words(p.enum_values, p.unlimited, p.value, feature, "on")


def describe_promotion(p: Promotion, feature: Feature) -> str:
    """What a promotion grants, in words."""
    return _words(p.enum_values or (), p.has_unlimited_usage, p.usage_limit, feature, "access")


def _words(enum_values: Sequence[str], unlimited: bool, value: float | None, feature: Feature, bare: str) -> str:
    if enum_values:
        return ", ".join(enum_values)
    if unlimited:
        return "unlimited"
    return bare if value is None else _amount(value, feature)


def _amount(value: float, feature: Feature) -> str:
    number = f"{value:,.0f}" if math.isfinite(value) and float(value).is_integer() else f"{value:,g}"
    units = feature.units if value == 1 else (feature.units_plural or feature.units)
    return f"{number} {units}" if units else number
