"""Bulk grants (issue 10): the rules a batch adds to the single grant's, pure.

Each row of a batch is one single grant: its preview, its warnings and its approval
reasons are rules.promotions' and rules.approvals' (one implementation). What a batch adds:

- how much each row gets when one choice is made for many rows (``Amount``): raise the
  limit to a number, add a percentage of what the plan gives, or unlimited;
- which rows the dry run ticks: not those that would change nothing, nor those that would
  take something away;
- when the batch as a whole needs a lead: any ticked row that would on its own (lifetime,
  longer than the policy's days, more than its multiple of the plan), or more ticked
  customers than the policy's batch size. The whole batch then waits: one decision, not
  one per row;
- what "Undo this batch" may revoke: only a promotion that is still the one the batch
  granted.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Iterable

from ..provenance import Provenance
from ..stigg import Feature, Promotion
from .approvals import Policy, batch_reason
from .promotions import ACTIVE, PERIODS, Grant, Preview, describe_promotion

AMOUNTS = {"to": "Raise the limit to", "percent": "Add a percentage of the plan's limit", "unlimited": "Unlimited"}


class RowError(ValueError):
    """A row that cannot be granted as asked; the message says why, in words."""


@dataclass(frozen=True)
class Amount:
    """What every row of a batch chosen on the near-limit view gets: ``mode`` "to" (the
    limit becomes ``limit``), "percent" (the plan's limit plus ``percent`` % of it) or
    "unlimited"."""

    mode: str
    limit: float | None = None
    percent: float | None = None

    def words(self) -> str:
        if self.mode == "unlimited":
            return "unlimited"
        if self.mode == "percent":
            return f"the plan's limit + {self.percent:g} %"
        return f"a limit of {self.limit:,.0f}"


def limit_for(amount: Amount, plan: Provenance) -> tuple[float | None, bool]:
    """(limit, unlimited) of one row. A percentage needs a number from the plan: a plan
    that gives nothing, 0 or unlimited has none (raises RowError). Rounded up to a whole
    number: Stigg's limits are whole."""
    if amount.mode == "unlimited":
        return None, True
    if amount.mode == "to":
        return amount.limit, False
    if amount.mode != "percent" or amount.percent is None:
        raise RowError("Choose how much to grant.")
    if not plan.is_granted or plan.unlimited or plan.value is None or plan.value <= 0:
        shown = "unlimited" if plan.is_granted and plan.unlimited else "no limit to add to"
        raise RowError(f"The plan gives {shown}: a percentage of it is not a limit. Give a number instead.")
    return float(math.ceil(plan.value * (1 + amount.percent / 100) - 1e-9)), False


def grant_for(amount: Amount | None, *, feature: Feature, plan: Provenance, period: str,
              end_date: datetime | None = None, reset_period: str | None = None) -> Grant:
    """The single grant one row makes. ``amount`` None: no limit was given, right only for
    an on/off feature, which the grant turns on for the period. Features that take a
    choice of values are granted one by one, from the customer page (a batch has no way to
    choose their values). ``reset_period``: for metered features only."""
    name = feature.display_name or feature.id
    if feature.feature_type == "ENUM":
        raise RowError(f"{name} takes a choice of values: grant it from the customer page.")
    if feature.feature_type != "NUMBER":
        if amount is not None:
            raise RowError(f"{name} is on or off: it takes no limit. Leave the limit empty.")
        return Grant(feature_id=feature.id, period=period, end_date=end_date)
    if amount is None:
        raise RowError(f"{name} is a number: give a limit (a whole number) or “unlimited”.")
    limit, unlimited = limit_for(amount, plan)
    return Grant(feature_id=feature.id, period=period, end_date=end_date, limit=limit, unlimited=unlimited,
                 reset_period=reset_period if feature.metered else None)


def grant_words(grant: Grant, feature: Feature, now: datetime) -> str:
    """What a row grants, in words: "5,000 API calls for 1 month", "on until 2027-03-31"."""
    what = "on" if feature.feature_type == "BOOLEAN" else describe_promotion(grant.as_promotion(now), feature)
    if grant.period == "custom" and grant.end_date is not None:
        return f"{what} until {grant.end_date - timedelta(microseconds=1):%Y-%m-%d}"
    return f"{what}, {PERIODS[grant.period]}" if grant.period == "lifetime" else f"{what} for {PERIODS[grant.period]}"


def ticked_by_default(preview: Preview) -> bool:
    """A row the dry run ticks: one that gives the customer something. A grant that changes
    nothing, or takes something away (it would replace a bigger promotion), is left for a
    person to tick on purpose."""
    return not preview.changes_nothing and not preview.takes_away


def batch_reasons(row_reasons: Iterable[Iterable[str]], customers: int, policy: Policy) -> tuple[str, ...]:
    """Why a batch needs a lead, in words (empty: it does not): every reason of a ticked
    row (rules.approvals.approval_reasons of its grant alone), once, and its size."""
    seen: dict[str, None] = {}
    for reasons in row_reasons:
        for reason in reasons:
            seen.setdefault(f"a row {reason.removeprefix('it ')}" if reason.startswith("it ") else reason, None)
    size = batch_reason(customers, policy)
    if size:
        seen.setdefault(size, None)
    return tuple(seen)


def undo_skip(granted_id: str, current: Promotion | None) -> str | None:
    """Why "Undo this batch" leaves a row as it is (None: revoke it). Only the promotion the
    batch granted is revoked: one replaced since (by somebody, or another batch), revoked
    already or ended is not the batch's to take away."""
    if current is None:
        return "It has no promotion for this feature any more (revoked or removed since)."
    if not granted_id:
        return "Stigg's answer to the grant did not say which promotion it made, so it is left as it is."
    if current.id != granted_id:
        return "Its promotion was replaced since the batch granted it; that newer grant stays."
    if current.status != ACTIVE:
        return "The promotion the batch granted has already ended."
    return None
