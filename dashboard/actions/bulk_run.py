"""The bulk grant's job: each ticked row granted in Stigg as a single grant, then read
back; and "Undo this batch", each row's promotion revoked if it is still the batch's.

    finished = run(batch_id, client=…, rm=…, deadline=…)        grant the rows still waiting
    finished = run_undo(batch_id, client=…, rm=…, deadline=…)   revoke what the batch granted

Both stop at ``deadline`` (time.monotonic()) and return False, so a Celery task holds a
worker for one slice at a time (dashboard/bulk_tasks.py queues the next).

Idempotent per row: a row's grant (and revoke) carries the row's one-time token through
actions/writes.py, so a job run twice (a retried or redelivered task, a second worker, a
crash after Stigg answered) sends each row once and records one audit row; the second run
finds the first one's row and reports it. Every grant has its audit row, tied to the
batch, and says "done" only when Stigg accepted it.

``client`` is the job's own (tasks.bulk_client): held to BULK_GRANT_RATE requests a
second, the read-back of each customer included, so the sweep, the hot tier and webhooks
keep their share of the request rate.
"""
from __future__ import annotations

import json
import logging
import time
from datetime import datetime, timezone
from typing import Any

from .. import tasks
from ..codec import load
from ..models import AuditEntry, BulkBatch, BulkRow
from ..readmodel import ReadModel
from ..rules import bulk as rules
from ..rules.promotions import Grant
from ..stigg import Feature, Package, StiggClient
from . import promotions, writes
from .promotions import PromotionInputError

log = logging.getLogger(__name__)
Status = BulkBatch.Status
State = BulkRow.State
UndoState = BulkRow.UndoState
Catalog = tuple[dict[str, Feature], dict[str, Package]]


def now() -> datetime:
    return datetime.now(timezone.utc)


def run(batch_id: int, *, client: StiggClient, rm: ReadModel, deadline: float) -> bool:
    """Grant every ticked row still waiting, in order. True once the batch is finished."""
    batch = BulkBatch.objects.select_related("created_by").filter(pk=batch_id).first()
    if batch is None or batch.status not in (Status.QUEUED, Status.RUNNING):
        return True  # gone, not approved, or finished already: nothing to do
    BulkBatch.objects.filter(pk=batch.pk, status=Status.QUEUED).update(status=Status.RUNNING, started_at=now())
    catalog = promotions.catalog_features(rm)
    granted: list[str] = []
    try:
        for row in batch.rows.filter(state=State.PENDING, selected=True).order_by("position"):
            if time.monotonic() >= deadline:
                return False
            if grant_row(batch, row, client=client, rm=rm, catalog=catalog):
                granted.append(row.customer_id)
    finally:
        tasks.queue_alert_evaluation(sorted(set(granted)))  # a raised limit may close alerts
    BulkBatch.objects.filter(pk=batch.pk, status=Status.RUNNING).update(status=Status.FINISHED, finished_at=now())
    return True


def grant_row(batch: BulkBatch, row: BulkRow, *, client: StiggClient, rm: ReadModel,
              catalog: Catalog | None = None) -> bool:
    """Send one row's grant, as the batch's author, against the read model as it is now
    (the same validation as a single grant), and record the outcome on the row. True
    when Stigg granted it (now, or in an earlier run of the job)."""
    doc = rm.customer(row.customer_id)
    if doc is None:
        return _grant_outcome(row, State.FAILED, "Not sent: this customer is no longer in the dashboard's data.")
    subject = promotions.subject_of(rm, doc, row.feature_id, catalog)
    try:
        result = promotions.grant(subject, load(Grant, row.grant), batch.reason, batch.ticket,
                                  user=batch.created_by, token=row.token, client=client, rm=rm, batch=batch,
                                  refresh=False)
    except PromotionInputError as exc:  # the read model moved on since the dry run: nothing was sent
        return _grant_outcome(row, State.FAILED, f"Not sent: {exc.message}")
    if result.done or (writes.unsure(result.entry) and not result.replayed):  # a timeout may have granted it
        _read_back(client, rm, row.customer_id)
    if not result.done:
        return _grant_outcome(row, State.FAILED, result.message or "Stigg did not grant it.")
    return _grant_outcome(row, State.DONE, "", granted_id(result.entry, row.feature_id))


def _grant_outcome(row: BulkRow, state: str, message: str, granted: str = "") -> bool:
    row.state, row.message, row.granted_promotion_id = state, message, granted
    row.save(update_fields=["state", "message", "granted_promotion_id"])
    return state == State.DONE


def granted_id(entry: AuditEntry, feature_id: str) -> str:
    """The id of the promotion Stigg made, from its answer as the audit row keeps it (a
    grant replaces the customer's record for the feature with a new one, with a new id)."""
    try:
        accepted = json.loads(entry.stigg_answer)
        return next(str(p["id"]) for p in accepted if p.get("feature_id") == feature_id)
    except (ValueError, TypeError, KeyError, AttributeError, StopIteration):
        log.warning("No promotion id in Stigg's answer of audit row %s", entry.pk)
        return ""


def _read_back(client: StiggClient, rm: ReadModel, customer_id: str) -> None:
    """The customer read again now, within the job's share; if that cannot be done here (a
    refresh already running may have read before the grant, Stigg busy), a refresh is
    queued as after a single grant."""
    if tasks.read_back(client, customer_id) not in ("refreshed", "removed"):
        writes.refresh(rm, customer_id, "promotion")


def run_undo(batch_id: int, *, client: StiggClient, rm: ReadModel, deadline: float) -> bool:
    """Revoke what the batch granted, row by row. True once every row is done."""
    batch = BulkBatch.objects.select_related("undo_by").filter(pk=batch_id).first()
    if batch is None or batch.undo_status not in (BulkBatch.Undo.QUEUED, BulkBatch.Undo.RUNNING):
        return True
    BulkBatch.objects.filter(pk=batch.pk, undo_status=BulkBatch.Undo.QUEUED).update(undo_status=BulkBatch.Undo.RUNNING)
    catalog = promotions.catalog_features(rm)
    revoked: list[str] = []
    try:
        for row in batch.rows.filter(undo_state=UndoState.PENDING).order_by("position"):
            if time.monotonic() >= deadline:
                return False
            if revoke_row(batch, row, client=client, rm=rm, catalog=catalog):
                revoked.append(row.customer_id)
    finally:
        tasks.queue_alert_evaluation(sorted(set(revoked)))
    BulkBatch.objects.filter(pk=batch.pk, undo_status=BulkBatch.Undo.RUNNING).update(
        undo_status=BulkBatch.Undo.FINISHED, undo_finished_at=now())
    return True


def revoke_row(batch: BulkBatch, row: BulkRow, *, client: StiggClient, rm: ReadModel,
               catalog: Catalog | None = None) -> bool:
    """Revoke one row's promotion if the read model still shows the one the batch granted
    (rules.bulk.undo_skip); otherwise leave it, saying why. True when revoked."""
    doc = rm.customer(row.customer_id)
    if doc is None:
        return _undo_outcome(row, UndoState.SKIPPED, "This customer is no longer in the dashboard's data.")
    subject = promotions.subject_of(rm, doc, row.feature_id, catalog)
    if writes.earlier(row.undo_token) is None:  # (a revoke recorded by an earlier run is reported again below)
        skip = rules.undo_skip(row.granted_promotion_id, subject.promotion)
        if skip:
            return _undo_outcome(row, UndoState.SKIPPED, skip)
    try:
        result = promotions.revoke(subject, batch.undo_reason, batch.ticket, user=batch.undo_by,
                                   token=row.undo_token, client=client, rm=rm, batch=batch, refresh=False)
    except PromotionInputError as exc:
        return _undo_outcome(row, UndoState.SKIPPED, exc.message)
    if result.done or (writes.unsure(result.entry) and not result.replayed):
        _read_back(client, rm, row.customer_id)
    if not result.done:
        return _undo_outcome(row, UndoState.FAILED, result.message or "Stigg did not revoke it.")
    return _undo_outcome(row, UndoState.DONE, "")


def _undo_outcome(row: BulkRow, state: str, message: str) -> bool:
    row.undo_state, row.undo_message = state, message
    row.save(update_fields=["undo_state", "undo_message"])
    return state == UndoState.DONE


def progress(batch: BulkBatch) -> dict[str, Any]:
    """How far the job is: rows by state (or by undo state while undoing), for the bar."""
    field = "undo_state" if batch.undo_status else "state"
    counts: dict[str, int] = {}
    for value in batch.rows.exclude(**{field: ""}).values_list(field, flat=True):
        counts[value] = counts.get(value, 0) + 1
    if batch.undo_status:
        total = sum(counts.values())
        left = counts.get(UndoState.PENDING, 0)
    else:
        total = sum(n for state, n in counts.items() if state in (State.PENDING, State.DONE, State.FAILED))
        left = counts.get(State.PENDING, 0)
    return {"total": total, "done": total - left, "counts": counts,
            "percent": round(100 * (total - left) / total) if total else 100}
