"""Alert evaluation: the read model's rows against the open alerts, each subject decided by
the pure rule (rules/alerts.py), the outcome written to the database. Never asks Stigg.

Idempotent and safe to run concurrently (a refresh's evaluation and the fleet pass): an
alert opens through an INSERT that skips a subject the one-open-per-subject constraint
already holds; every other write is conditional on the alert still being open (and, for an
escalation, on its worst level still being lower), so a run twice changes nothing twice.
An open alert whose numbers did not move is not written at all.

``Outcome.limits`` names the alerts this run put at "limit" (opened there, escalated to it,
or back at it from a milder level): the caller queues their immediate notices
(dashboard/alerts/notices.py), whose own claim keeps them to one per cool-down.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Iterable

from ..models import Alert
from ..readmodel import NearLimitRow, ReadModel
from ..rules.alerts import RANK, LEVELS, OpenAlert, Thresholds, decide
from . import subjects

log = logging.getLogger(__name__)

LIMIT = "limit"
# An open alert follows its customer's account owner too, so a reassigned customer's alerts
# move to the new owner's "My accounts" with its next evaluation.
LATEST = ("level", "utilization", "usage", "usage_limit", "ttl", "read_at", "account_owner")
BATCH = 500


@dataclass
class Outcome:
    opened: int = 0  # alerts it opened (or tried to: a concurrent run may have opened one first)
    escalated: int = 0
    closed: dict[str, int] = field(default_factory=dict)
    updated: int = 0
    read_rows: int = 0
    limits: list[tuple[str, str]] = field(default_factory=list)  # (customer, subject) now at "limit"

    def as_dict(self) -> dict[str, object]:
        return {"opened": self.opened, "escalated": self.escalated, "closed": self.closed, "updated": self.updated,
                "read_rows": self.read_rows, "reached_limit": len(self.limits)}


def evaluate_customer(rm: ReadModel, customer_id: str, now: datetime, thresholds: Thresholds) -> Outcome:
    """One customer's alerts, after a sync wrote it (or removed it)."""
    rows = subjects.candidates(rm, thresholds.clear, customer=customer_id)
    open_alerts = Alert.objects.filter(customer_id=customer_id, state=Alert.State.OPEN)
    return _evaluate(rm, rows, open_alerts, now, thresholds)


def evaluate_fleet(rm: ReadModel, now: datetime, thresholds: Thresholds) -> Outcome:
    """Every customer's alerts at once: the fleet's rows at or above the clear level or
    running out (two range reads of the rankings), against every open alert."""
    rows = subjects.candidates(rm, thresholds.clear)
    return _evaluate(rm, rows, Alert.objects.filter(state=Alert.State.OPEN), now, thresholds)


def _evaluate(rm: ReadModel, rows: dict[tuple[str, str], NearLimitRow], open_alerts: Iterable[Alert],
              now: datetime, thresholds: Thresholds) -> Outcome:
    out = Outcome(read_rows=len(rows))
    by_subject = {(a.customer_id, a.subject): a for a in open_alerts.iterator()}  # type: ignore[attr-defined]
    # An open alert whose subject is no candidate (below the clear level, not running out)
    # closes, unless its projection keeps it open: its customer's rows are read in full to
    # tell "cleared" from "gone", and for the projection and the last numbers.
    missing = {cid for cid, key in by_subject if (cid, key) not in rows}
    rest = {cid: subjects.every_row(rm, cid) for cid in sorted(missing)}
    writes = _Writes(now)
    for pair in sorted(set(rows) | set(by_subject)):
        alert = by_subject.get(pair)
        row = rows.get(pair) or rest.get(pair[0], {}).get(pair[1])
        decision = decide(_open(alert), subjects.reading_of(row) if row is not None else None, now, thresholds)
        reached = False
        if decision.close and alert is not None:
            writes.close(alert, row, decision.close)
            out.closed[decision.close] = out.closed.get(decision.close, 0) + 1
        if decision.opens and row is not None:
            writes.open(row, decision.level)  # type: ignore[arg-type]
            reached = decision.level == LIMIT
        elif decision.kept and alert is not None and row is not None:
            was = alert.level
            if decision.worse:
                escalated = _escalate(alert, row, decision.level, now)  # type: ignore[arg-type]
                out.escalated += escalated
                reached = bool(escalated) and decision.level == LIMIT
            elif _refresh(alert, row, decision.level):  # type: ignore[arg-type]
                writes.update(alert)
                reached = decision.level == LIMIT and was != LIMIT
        if reached:
            out.limits.append(pair)
    out.opened, out.updated = writes.flush()
    return out


class _Writes:
    """An evaluation's writes, a few statements per 500 alerts: closes first (a window
    that reset closes the old alert before the new one opens), then the latest numbers,
    then the opens, each an INSERT that skips a subject already open (the constraint: a
    concurrent evaluation opened it first)."""

    def __init__(self, now: datetime) -> None:
        self.now = now
        self.closing: dict[str, list[Alert]] = {}
        self.changed: list[Alert] = []
        self.updated = 0
        self.opening: list[Alert] = []

    def close(self, alert: Alert, row: NearLimitRow | None, why: str) -> None:
        if row is not None and _refresh(alert, row, alert.level):
            self.changed.append(alert)  # its last numbers (a reset's are usually the same)
        self.closing.setdefault(why, []).append(alert)

    def open(self, row: NearLimitRow, level: str) -> None:
        self.opening.append(Alert(
            customer_id=row.customer_id, customer_name=row.customer_name or "",
            kind=row.kind, subject=subjects.key_of(row), capability=row.capability,
            feature_name=row.feature_name or "", entity_id=row.entity_id or "", entity_name=row.entity_name or "",
            scope=list(row.scope), level=level, worst_level=level, opened_utilization=row.utilization,
            opened_usage=row.usage, opened_usage_limit=row.limit, window_end=row.period_end, opened_at=self.now,
            **_latest(row)))

    def flush(self) -> tuple[int, int]:
        """(alerts opened, open alerts whose numbers were updated)."""
        for why, alerts in self.closing.items():
            # Only alerts still open: one closed meanwhile keeps its own closing.
            for i in range(0, len(alerts), BATCH):
                Alert.objects.filter(pk__in=[a.pk for a in alerts[i:i + BATCH]], state=Alert.State.OPEN).update(
                    state=Alert.State.CLOSED, closed_at=self.now, closed_why=why)
        if self.changed:
            # Only the latest numbers: an alert closed meanwhile keeps its state and closing.
            Alert.objects.bulk_update(self.changed, LATEST, batch_size=BATCH)
        if self.opening:
            Alert.objects.bulk_create(self.opening, batch_size=BATCH, ignore_conflicts=True)
        return len(self.opening), self.updated

    def update(self, alert: Alert) -> None:
        """An open alert that stays open, with new numbers."""
        self.changed.append(alert)
        self.updated += 1


def _open(alert: Alert | None) -> OpenAlert | None:
    return OpenAlert(alert.level, alert.worst_level, alert.window_end) if alert is not None else None


def _latest(row: NearLimitRow) -> dict[str, object]:
    return {"utilization": row.utilization, "usage": row.usage, "usage_limit": row.limit, "ttl": row.ttl,
            "read_at": row.fetched_at, "account_owner": row.owner or ""}


def _escalate(alert: Alert, row: NearLimitRow, level: str, now: datetime) -> int:
    """Worse than ever: the level goes up, and an acknowledgement or a snooze no longer
    holds (what was acknowledged was the milder level): it is back on the open list."""
    milder = [lv for lv in LEVELS if RANK[lv] < RANK[level]]
    return Alert.objects.filter(pk=alert.pk, state=Alert.State.OPEN, worst_level__in=milder).update(
        level=level, worst_level=level, escalated_at=now, acknowledged_at=None, acknowledged_by=None,
        snoozed_until=None, snoozed_by=None, **_latest(row))


def _refresh(alert: Alert, row: NearLimitRow, level: str) -> bool:
    """Put the latest numbers on the alert object; True when any moved. A new read of the
    same numbers is no change (every poll reads again): ``read_at`` moves with the numbers."""
    latest = {"level": level, **_latest(row)}
    if all(getattr(alert, name) == value for name, value in latest.items() if name != "read_at"):
        return False
    for name, value in latest.items():
        setattr(alert, name, value)
    return True
