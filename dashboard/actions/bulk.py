"""Bulk grants (issue 10): the dry run, its confirmation, a lead's decision, and undo.

    batch = dry_run(rm, wanted, user=…, source=…, summary=…, reason=…, ticket=…, token=…)
    status = confirm(batch, ticked_row_ids, user=…)   "pending" (a lead decides) | "queued"
    approve(batch, user=lead, reason=…) · reject(batch, user=lead, reason=…) · expire_due(now)
    undo(batch, user=…, reason=…)                     queues the revokes

Every row is one single grant: its preview, warnings and approval reasons come from
actions/promotions.py and the rules (one implementation), computed from the read model
like the single grant's; nothing here asks Stigg. The job that sends the grants is
actions/bulk_run.py, started through dashboard/bulk_tasks.py. Raises BulkError (a
writes.InputError) with a message in words for a step that cannot be taken.
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Collection, Sequence

from django.db import IntegrityError, transaction

from ..codec import dump
from ..models import AuditEntry, BulkBatch, BulkRow
from ..readmodel import ReadModel
from ..rules import bulk as rules
from ..rules.approvals import Policy, approval_reasons, expires_at
from ..rules.bulk import Amount, RowError
from ..rules.promotions import describe
from ..stigg import Feature, Package
from . import promotions, writes
from .promotions import PromotionInputError

Status = BulkBatch.Status
State = BulkRow.State


class BulkError(writes.InputError):
    """A bulk step that cannot be taken (see writes.InputError)."""


@dataclass(frozen=True)
class Wanted:
    """One row as asked, before the read model is consulted: a CSV line, or a near-limit
    row with the batch's one choice. ``problem``: already known to be wrong (a CSV value)."""

    customer_id: str
    feature_id: str
    amount: Amount | None
    period: str
    end_date: datetime | None = None
    problem: str = ""


def now() -> datetime:
    return datetime.now(timezone.utc)


def dry_run(rm: ReadModel, wanted: Sequence[Wanted], *, user: Any, source: str, summary: str, reason: str,
            ticket: str, token: uuid.UUID, note: str = "") -> BulkBatch:
    """The batch as a dry run: one row per customer and feature with before → after, its
    warnings, and ticked unless it would change nothing or take something away. Nothing is
    sent. The same form sent twice makes one batch (its token)."""
    existing = BulkBatch.objects.filter(token=token).first()
    if existing is not None:
        return existing
    at, catalog, policy = now(), promotions.catalog_features(rm), Policy.from_settings()
    seen: dict[tuple[str, str], int] = {}
    rows = [_row(rm, w, position, seen, catalog, at, policy, reason, ticket) for position, w in enumerate(wanted, 1)]
    try:
        with transaction.atomic():
            batch = BulkBatch.objects.create(created_by=user, source=source, summary=summary, note=note,
                                             reason=reason.strip(), ticket=ticket.strip(), token=token)
            for row in rows:
                row.batch = batch
            BulkRow.objects.bulk_create(rows)
    except IntegrityError:  # the same form, sent twice at once
        return BulkBatch.objects.get(token=token)
    return batch


def _row(rm: ReadModel, w: Wanted, position: int, seen: dict[tuple[str, str], int],
         catalog: tuple[dict[str, Feature], dict[str, Package]], at: datetime, policy: Policy, reason: str,
         ticket: str) -> BulkRow:
    row = BulkRow(position=position, customer_id=w.customer_id, feature_id=w.feature_id, token=uuid.uuid4(),
                  undo_token=uuid.uuid4())
    try:
        if w.problem:
            raise RowError(w.problem)
        first = seen.setdefault((w.customer_id, w.feature_id), position)
        if first != position:
            raise RowError(f"The same customer and feature as row {first}: Stigg keeps one promotion per feature, "
                           "so only one of them can be granted.")
        doc = rm.customer(w.customer_id)
        if doc is None:
            raise RowError("There is no customer with this id in the dashboard's data (check the id; a new "
                           "customer shows after its first sync).")
        subject = promotions.subject_of(rm, doc, w.feature_id, catalog)
        row.customer_name = subject.customer_name
        feature = subject.feature
        if feature is None:
            raise RowError(f"There is no feature “{w.feature_id[:80]}” in the catalog.")
        row.feature_name = feature.display_name
        grant = rules.grant_for(w.amount, feature=feature, plan=promotions.plan_of(subject), period=w.period,
                                end_date=w.end_date, reset_period=promotions.reset_now(subject))
        promotions.validate(subject, grant, reason, ticket, at=at)
        preview = promotions.preview(subject, grant, at)
    except (RowError, PromotionInputError) as exc:
        row.state, row.message = State.BAD, str(exc) if isinstance(exc, RowError) else exc.message
        return row
    row.grant, row.grant_text = dump(grant), rules.grant_words(grant, feature, at)
    row.before, row.after = describe(preview.before, feature), describe(preview.after, feature)
    row.usage, row.utilization_before, row.utilization_after = (preview.usage, preview.utilization_before,
                                                                preview.utilization_after)
    # the preview's note on usage after the grant (it may count from 0) travels with its warnings
    row.warnings = [[c.kind, c.text] for c in preview.warnings] + ([["usage", preview.usage_note]]
                                                                   if preview.usage_note else [])
    row.why = list(approval_reasons(grant, preview.plan, at, policy))
    row.selected = rules.ticked_by_default(preview)
    return row


def needs_approval(rows: Sequence[BulkRow], policy: Policy | None = None) -> tuple[str, ...]:
    """Why these rows, granted together, wait for a lead (empty: they do not)."""
    return rules.batch_reasons((r.why for r in rows), len({r.customer_id for r in rows}),
                               policy or Policy.from_settings())


def confirm(batch: BulkBatch, ticked: Collection[int], *, user: Any) -> str:
    """Grant the ticked rows: the batch waits for a lead when the policy says so (one
    audit row), else its job is queued. Returns the new status, or "not-started" when the
    task queue could not be reached (the batch page offers to start it)."""
    if batch.created_by_id != user.pk:
        raise BulkError(None, f"Only {batch.created_by.get_username()}, who made this dry run, can confirm it. "
                              "Make your own from the same rows.")
    chosen = list(batch.rows.filter(state=State.PENDING, pk__in=list(ticked)))
    if not chosen:
        raise BulkError(None, "Tick at least one row to grant.")
    policy = Policy.from_settings()
    why = needs_approval(chosen, policy)
    at = now()
    status = Status.PENDING if why else Status.QUEUED
    with transaction.atomic():
        if not BulkBatch.objects.filter(pk=batch.pk, status=Status.DRAFT).update(
                status=status, why=list(why), confirmed_at=at,
                expires_at=expires_at(at, policy) if why else None):
            raise BulkError(None, "This batch was confirmed already.")
        batch.rows.filter(pk__in=[r.pk for r in chosen]).update(selected=True)
        batch.rows.filter(state=State.PENDING).exclude(pk__in=[r.pk for r in chosen]).update(
            selected=False, state=State.SKIPPED)
        batch.refresh_from_db()
        if why:
            _audit(batch, AuditEntry.Action.BULK_REQUEST, user, batch.reason)
    return status if why or start(batch) else "not-started"


def start(batch: BulkBatch) -> bool:
    """Queue the batch's job (again: a run is idempotent per row). False when the task
    queue is unreachable; the batch page then offers to start it."""
    from ..bulk_tasks import queue_run

    return queue_run(batch.pk)


def approve(batch: BulkBatch, *, user: Any, reason: str = "") -> bool:
    """A lead lets the batch run; it then runs as if its author had confirmed it now.
    False when its job could not be queued (the batch page offers to start it)."""
    if batch.created_by_id == user.pk:
        raise BulkError(None, "Nobody approves their own bulk grant: another lead has to.")
    at = now()
    if not BulkBatch.objects.filter(pk=batch.pk, status=Status.PENDING, expires_at__gt=at).update(
            status=Status.QUEUED, decided_by=user, decided_at=at, decision_reason=reason.strip()):
        raise BulkError(None, _not_pending(batch))
    batch.refresh_from_db()
    _audit(batch, AuditEntry.Action.BULK_APPROVE, user, reason.strip() or "(no reason given)")
    return start(batch)


def reject(batch: BulkBatch, *, user: Any, reason: str) -> None:
    if not reason.strip():
        raise BulkError("reason", "Say why it is rejected: the requester and the audit log see it.")
    at = now()
    if not BulkBatch.objects.filter(pk=batch.pk, status=Status.PENDING, expires_at__gt=at).update(
            status=Status.REJECTED, decided_by=user, decided_at=at, decision_reason=reason.strip()):
        raise BulkError(None, _not_pending(batch))
    batch.refresh_from_db()
    _audit(batch, AuditEntry.Action.BULK_REJECT, user, reason.strip())


def expire_due(at: datetime | None = None) -> int:
    """Batches nobody decided on in time lapse (one audit row each, in the author's name)."""
    at = at or now()
    expired = 0
    for batch in BulkBatch.objects.filter(status=Status.PENDING, expires_at__lte=at).select_related("created_by"):
        if BulkBatch.objects.filter(pk=batch.pk, status=Status.PENDING).update(status=Status.EXPIRED, decided_at=at):
            _audit(batch, AuditEntry.Action.BULK_EXPIRE, batch.created_by, "No lead decided in time.")
            expired += 1
    return expired


def undo(batch: BulkBatch, *, user: Any, reason: str) -> bool:
    """Revoke what the batch granted (the job: actions/bulk_run.py), where the promotion is
    still the one the batch granted; each revoke has its own audit row."""
    if not reason.strip():
        raise BulkError("reason", "Say why the batch is undone: the audit log keeps it with your name.")
    promotions.check_note(reason, "")
    if not batch.rows.filter(state=State.DONE).exists():
        raise BulkError(None, "This batch granted nothing, so there is nothing to undo.")
    with transaction.atomic():
        if not BulkBatch.objects.filter(pk=batch.pk, status=Status.FINISHED, undo_status=BulkBatch.Undo.NONE).update(
                undo_status=BulkBatch.Undo.QUEUED, undo_by=user, undo_reason=reason.strip(), undo_at=now()):
            raise BulkError(None, "This batch is being undone already, or has not finished granting.")
        batch.rows.filter(state=State.DONE).update(undo_state=BulkRow.UndoState.PENDING)
    from ..bulk_tasks import queue_undo

    return queue_undo(batch.pk)


def resume(batch: BulkBatch) -> bool:
    """Queue the batch's job again, grants or undo (after the task queue was unreachable,
    or a worker was lost): each row is sent once whatever runs twice."""
    from ..bulk_tasks import queue_run, queue_undo

    if batch.undo_status in (BulkBatch.Undo.QUEUED, BulkBatch.Undo.RUNNING):
        return queue_undo(batch.pk)
    if batch.status in (Status.QUEUED, Status.RUNNING):
        return queue_run(batch.pk)
    raise BulkError(None, "Nothing of this batch is waiting to run.")


def _not_pending(batch: BulkBatch) -> str:
    batch.refresh_from_db()
    if batch.status == Status.PENDING:
        return "This bulk grant has expired: nobody decided on it in time. Its author can make it again."
    return f"This bulk grant is already decided: {batch.get_status_display().lower()}."


def _audit(batch: BulkBatch, action: str, user: Any, reason: str) -> None:
    """One audit row per step of the batch itself (its grants have their own). Nothing is
    sent to Stigg by the step: "done" records that it happened."""
    rows = batch.rows.filter(selected=True)
    AuditEntry.objects.get_or_create(idempotency_key=uuid.uuid5(batch.token, action), defaults=dict(
        user=user, username=user.get_username(), customer_id="", action=action, batch=batch,
        after={"batch": batch.pk, "rows": rows.count(), "customers": rows.values("customer_id").distinct().count(),
               "why": batch.why},
        reason=reason, ticket=batch.ticket, outcome=AuditEntry.Outcome.DONE))
