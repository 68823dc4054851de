"""What an alert is about, read from the read model through its public near-limit reads:
one subject per metered entitlement or governance budget, its key, and its ``Reading``.

Assumptions, said here once:
- The near-limit rankings hold every metered entitlement and budget with a utilization
  (a limit and usage), so "rows of the customer at or above the clear level" is a near-limit
  query for that customer, and a subject absent from a query at level 0 has no utilization
  any more (no limit, no longer metered) or is gone: either way nothing to alert about.
- A row's ``ttl`` is the rules' TimeToLimit as stored when the customer was written: the
  urgency order ranks "exhausted" first, then "before_reset", then every other state, so
  the rows that run out before reset are the head of that order, read until the first row
  of a lower band.
- A row's numbers are as of ``fetched_at`` (when Stigg was read); the projection to the
  window's end counts from then.
"""
from __future__ import annotations

from datetime import datetime
from typing import Iterator
from urllib.parse import quote

from django.conf import settings

from ..readmodel import NearLimitQuery, NearLimitRow, ReadModel
from ..rules.alerts import Reading, Thresholds, projected_utilization

RUNOUT_STATES = ("exhausted", "before_reset")  # the urgency bands above every other state
BATCH = 200


def thresholds() -> Thresholds:
    return Thresholds(warning=settings.ALERT_WARNING_LEVEL, clear=settings.ALERT_CLEAR_LEVEL)


def _part(text: str) -> str:
    return quote(text, safe="")


def subject_key(kind: str, capability: str, entity_id: str | None = None, scope: tuple[str, ...] = ()) -> str:
    """One string per subject of a customer (the alert's unique constraint is on it)."""
    if kind == "entitlement":
        return f"e|{_part(capability)}"
    return f"b|{_part(entity_id or '')}|{_part(capability)}|{','.join(_part(s) for s in scope)}"


def key_of(row: NearLimitRow) -> str:
    return subject_key(row.kind, row.capability, row.entity_id, row.scope)


def reading_of(row: NearLimitRow) -> Reading:
    ttl = row.ttl or {}
    projected = projected_utilization(row.usage, row.limit, ttl.get("rate_per_hour"), row.fetched_at,
                                      row.period_end)
    return Reading(utilization=row.utilization, window_end=row.period_end,
                   runs_out=ttl.get("state") == "before_reset", projected=projected)


def runs_out_first(rows: Iterator[NearLimitRow]) -> Iterator[NearLimitRow]:
    """The head of an urgency-ordered read: exhausted, then projected to run out before
    reset; stops at the first row of a lower band (the rest are all lower)."""
    for row in rows:
        if (row.ttl or {}).get("state") not in RUNOUT_STATES:
            return
        yield row


def candidates(rm: ReadModel, clear: float, customer: str | None = None) -> dict[tuple[str, str], NearLimitRow]:
    """Every row that can open or keep an alert, of one customer or of the fleet, by
    (customer, subject): at or above the clear level, and every row that runs out before
    reset (whatever its utilization)."""
    found: dict[tuple[str, str], NearLimitRow] = {}
    for row in rm.iter_near_limit(NearLimitQuery(customer=customer, min_utilization=clear), BATCH):
        found[(row.customer_id, key_of(row))] = row
    urgent = rm.iter_near_limit(NearLimitQuery(customer=customer, min_utilization=0.0, order="urgency"), BATCH)
    for row in runs_out_first(urgent):
        found.setdefault((row.customer_id, key_of(row)), row)
    return found


def every_row(rm: ReadModel, customer: str) -> dict[str, NearLimitRow]:
    """All of a customer's rows with a utilization, by subject: read only for alerts that
    are about to close, to tell cleared from gone and to keep their last numbers."""
    return {key_of(row): row for row in rm.iter_near_limit(NearLimitQuery(customer=customer, min_utilization=0.0),
                                                           BATCH)}


def stale(row: NearLimitRow, now: datetime) -> bool:
    return row.period_end is not None and row.period_end <= now
