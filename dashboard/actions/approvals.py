"""Grants that need approval: request → approve (the grant runs) | reject | expire.

    req = request(subject, grant, reason, ticket, why, user=user, token=token)   one per form token
    result = approve(req, user=lead, reason="…")      -> WriteResult of the grant (raises ApprovalError)
    reject(req, user=lead, reason="…")
    expire_due(now)                                    requests nobody decided on in time

An approval runs the grant exactly as if its requester had submitted it then (the same
validation, the same write, its audit row in the requester's name), after checking that
the approver is somebody else. Each step leaves an audit row of its own.
"""
from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

from django.db import IntegrityError, transaction

from .. import tasks
from ..codec import dump, load
from ..models import AuditEntry, GrantRequest
from ..readmodel import ReadModel
from ..rules.approvals import Policy, expires_at
from ..rules.promotions import Grant
from ..stigg import StiggClient
from . import promotions, writes

Status = GrantRequest.Status
ORPHANED_APPROVING_SECONDS = 600  # an approval whose worker died mid-grant goes back to pending


class ApprovalError(writes.InputError):
    """An approval step that cannot be taken (see writes.InputError)."""


def now() -> datetime:
    return datetime.now(timezone.utc)


def request(subject: promotions.Subject, grant: Grant, reason: str, ticket: str, why: tuple[str, ...], *, user: Any,
            token: uuid.UUID, policy: Policy | None = None) -> GrantRequest:
    """Hold a grant for approval; the same form sent twice finds the first request."""
    existing = GrantRequest.objects.filter(token=token).first()
    if existing is not None:
        return existing
    at = now()
    promotions.validate(subject, grant, reason, ticket, at=at)
    try:
        with transaction.atomic():
            req = GrantRequest.objects.create(
                requested_at=at, requested_by=user, customer_id=subject.customer_id,
                customer_name=subject.customer_name, feature_id=subject.feature_id,
                feature_name=subject.feature.display_name if subject.feature else subject.feature_id,
                grant=dump(grant), reason=reason.strip(), ticket=ticket.strip(), why=list(why),
                expires_at=expires_at(at, policy or Policy.from_settings()), token=token, grant_token=uuid.uuid4())
            _audit(req, AuditEntry.Action.GRANT_REQUEST, user, token, req.reason)
    except IntegrityError:
        return GrantRequest.objects.get(token=token)
    return req


def approve(req: GrantRequest, *, user: Any, reason: str = "", client: StiggClient | None = None,
            rm: ReadModel | None = None) -> writes.WriteResult:
    """Run the held grant. Raises ApprovalError when it cannot be approved (own request,
    decided already, expired, the customer or feature gone, the grant no longer valid)."""
    if req.requested_by_id == user.pk:
        raise ApprovalError(None, "Nobody approves their own request: another lead has to.")
    at = now()
    _claim(req, at)  # pending -> approving, or ApprovalError
    rm = rm or tasks.read_model()
    try:
        doc = rm.customer(req.customer_id)
        if doc is None:
            raise ApprovalError(None, "This customer is no longer in the dashboard's data.")
        subject = promotions.subject_of(rm, doc, req.feature_id)
        result = promotions.grant(subject, load(Grant, req.grant), req.reason, req.ticket, user=req.requested_by,
                                  token=req.grant_token, client=client, rm=rm)
    except writes.InputError as exc:
        _release(req, exc.message)
        raise ApprovalError(exc.field, f"Not granted: {exc.message}") from None
    except BaseException:
        _release(req, "The approval was interrupted before Stigg answered.")
        raise
    if not result.done:
        _release(req, result.message or "Stigg did not grant it.")
        return result
    GrantRequest.objects.filter(pk=req.pk).update(status=Status.GRANTED, decided_by=user, decided_at=at,
                                                  decision_reason=reason.strip(), last_error="")
    _audit(req, AuditEntry.Action.GRANT_APPROVE, user, uuid.uuid5(req.token, "approve"), reason.strip())
    return result


def reject(req: GrantRequest, *, user: Any, reason: str) -> None:
    if not reason.strip():
        raise ApprovalError("reason", "Say why it is rejected: the requester and the audit log see it.")
    at = now()
    updated = GrantRequest.objects.filter(pk=req.pk, status=Status.PENDING, expires_at__gt=at).update(
        status=Status.REJECTED, decided_by=user, decided_at=at, decision_reason=reason.strip())
    if not updated:
        raise ApprovalError(None, _not_pending(req))
    _audit(req, AuditEntry.Action.GRANT_REJECT, user, uuid.uuid5(req.token, "reject"), reason.strip())


def expire_due(at: datetime | None = None) -> int:
    """Mark every request nobody decided on in time as expired (one audit row each, in the
    requester's name); put back approvals orphaned mid-grant. Returns how many expired."""
    at = at or now()
    GrantRequest.objects.filter(status=Status.APPROVING,
                                decided_at__lt=at - timedelta(seconds=ORPHANED_APPROVING_SECONDS)).update(
        status=Status.PENDING, decided_by=None, decided_at=None)
    expired = 0
    for req in GrantRequest.objects.filter(status=Status.PENDING, expires_at__lte=at):
        if GrantRequest.objects.filter(pk=req.pk, status=Status.PENDING).update(status=Status.EXPIRED, decided_at=at):
            _audit(req, AuditEntry.Action.GRANT_EXPIRE, req.requested_by, uuid.uuid5(req.token, "expire"),
                   "No lead decided in time.")
            expired += 1
    return expired


def _claim(req: GrantRequest, at: datetime) -> None:
    """Pending -> approving, for one approver only (a conditional update: two leads at once
    cannot both send the grant)."""
    if not GrantRequest.objects.filter(pk=req.pk, status=Status.PENDING, expires_at__gt=at).update(
            status=Status.APPROVING, decided_at=at):
        raise ApprovalError(None, _not_pending(req))


def _release(req: GrantRequest, error: str) -> None:
    """Back to pending after a failed attempt, with a new grant token: the next approval
    sends the grant again instead of replaying this failure."""
    GrantRequest.objects.filter(pk=req.pk, status=Status.APPROVING).update(
        status=Status.PENDING, decided_at=None, last_error=error[:2000], grant_token=uuid.uuid4())


def _not_pending(req: GrantRequest) -> str:
    req.refresh_from_db()
    if req.status == Status.PENDING:
        return "This request has expired: nobody decided on it in time. The requester can ask again."
    return f"This request is already decided: {req.get_status_display().lower()}."


def _audit(req: GrantRequest, action: str, user: Any, key: uuid.UUID, reason: str) -> None:
    """One audit row per step. Nothing is sent to Stigg by the step itself: "done" records
    that the step happened (the grant an approval sends has its own row)."""
    AuditEntry.objects.get_or_create(idempotency_key=key, defaults=dict(
        user=user, username=user.get_username(), customer_id=req.customer_id, action=action,
        capability=req.feature_id, after={**req.grant, "request": req.pk, "why": req.why},
        reason=reason or "(no reason given)", ticket=req.ticket, outcome=AuditEntry.Outcome.DONE))
