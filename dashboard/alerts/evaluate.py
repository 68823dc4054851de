"""Alert evaluation: the read model's rows against the open alerts, each subject decided by
the pure rule (rules/alerts.py), the outcome written to the database. Never asks Stigg.

Idempotent and safe to run concurrently (a refresh's evaluation and the fleet pass): an
alert opens through an INSERT that the one-open-per-subject constraint refuses a second
time; every other write is conditional on the alert still being open (and, for an
escalation, on its worst level still being lower), so a run twice changes nothing twice.
An open alert whose numbers did not move is not written at all.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Iterable

from django.db import IntegrityError, transaction

from ..models import Alert
from ..readmodel import NearLimitRow, ReadModel
from ..rules.alerts import RANK, LEVELS, OpenAlert, Thresholds, decide
from . import subjects

log = logging.getLogger(__name__)

LATEST = ("level", "utilization", "usage", "usage_limit", "ttl", "read_at")


@dataclass
class Outcome:
    opened: int = 0
    escalated: int = 0
    closed: dict[str, int] = field(default_factory=dict)
    updated: int = 0
    read_rows: int = 0

    def as_dict(self) -> dict[str, object]:
        return {"opened": self.opened, "escalated": self.escalated, "closed": self.closed, "updated": self.updated,
                "read_rows": self.read_rows}


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
    # Open alerts whose subject is no candidate are about to close: their customer's rows
    # are read in full to tell "cleared" (and its last numbers) from "gone".
    missing = {cid for cid, key in by_subject if (cid, key) not in rows}
    rest = {cid: subjects.every_row(rm, cid) for cid in sorted(missing)}
    changed: list[Alert] = []
    for pair in sorted(set(rows) | set(by_subject)):
        alert = by_subject.get(pair)
        row = rows.get(pair) or rest.get(pair[0], {}).get(pair[1])
        decision = decide(_open(alert), subjects.reading_of(row) if row is not None else None, now, thresholds)
        if decision.close and alert is not None:
            _close(alert, row, decision.close, now)
            out.closed[decision.close] = out.closed.get(decision.close, 0) + 1
        if decision.opens and row is not None:
            out.opened += _open_alert(row, decision.level, now)  # type: ignore[arg-type]
        elif decision.kept and alert is not None and row is not None:
            if decision.worse:
                out.escalated += _escalate(alert, row, decision.level, now)  # type: ignore[arg-type]
            elif _refresh(alert, row, decision.level):  # type: ignore[arg-type]
                changed.append(alert)
    if changed:
        # Only the latest numbers: an alert closed meanwhile keeps its state and closing.
        Alert.objects.bulk_update(changed, LATEST, batch_size=500)
        out.updated = len(changed)
    return out


def _open(alert: Alert | None) -> OpenAlert | None:
    return OpenAlert(alert.level, alert.worst_level, alert.window_end) if alert is not None else None


def _latest(row: NearLimitRow) -> dict[str, object]:
    return {"utilization": row.utilization, "usage": row.usage, "usage_limit": row.limit, "ttl": row.ttl,
            "read_at": row.fetched_at}


def _open_alert(row: NearLimitRow, level: str, now: datetime) -> int:
    try:
        with transaction.atomic():
            Alert.objects.create(
                customer_id=row.customer_id, customer_name=row.customer_name or "", account_owner=row.owner or "",
                kind=row.kind, subject=subjects.key_of(row), capability=row.capability,
                feature_name=row.feature_name or "", entity_id=row.entity_id or "", entity_name=row.entity_name or "",
                scope=list(row.scope), level=level, worst_level=level, opened_utilization=row.utilization,
                opened_usage=row.usage, opened_usage_limit=row.limit, window_end=row.period_end, opened_at=now,
                **_latest(row))
    except IntegrityError:
        return 0  # another evaluation opened it first: one open alert per subject
    return 1


def _close(alert: Alert, row: NearLimitRow | None, why: str, now: datetime) -> None:
    latest = _latest(row) if row is not None else {}
    Alert.objects.filter(pk=alert.pk, state=Alert.State.OPEN).update(
        state=Alert.State.CLOSED, closed_at=now, closed_why=why, **latest)


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
