"""What every write to Stigg shares, whatever it changes (budgets, promotions):

    sent = send(lambda: client.some_write(...), ok_status=200)   Stigg's answer, never raises
    entry = record(token, user, outcome=sent, **audit_fields)     the audit row (None: a twin exists)
    warning = refresh(rm, customer_id, "promotion")               read the customer back now
    why(entry)                                                    why it is not done, in words

The audit row is written once Stigg has answered: "done" only when Stigg accepted the
write, "failed" when it refused or did not answer in time. The form's one-time token is
stored with the row (unique), so the same form submitted twice makes one write and one
row: the second submit finds the first row (``earlier``) and reports it again."""
from __future__ import annotations

import json
import logging
import time
import uuid
from dataclasses import dataclass
from typing import Any, Callable

import redis
from django.conf import settings
from django.db import IntegrityError, transaction
from kombu.exceptions import OperationalError as BrokerUnavailable

from .. import tasks
from ..codec import dump
from ..models import AuditEntry
from ..readmodel import ReadModel
from ..stigg import StiggRequestError, StiggUnavailable

log = logging.getLogger(__name__)
MAX_LIMIT = 2**53 - 1  # the largest whole number Stigg keeps exactly (§1)
# How long a twin request waits for the first one's audit row beyond the write timeout.
TWIN_WAIT_EXTRA_SECONDS = 3.0


class InputError(ValueError):
    """The write cannot be made as asked. ``field`` is the form field to show it at (None:
    the form as a whole); ``message`` says what to do, in words."""

    def __init__(self, field: str | None, message: str) -> None:
        super().__init__(message)
        self.field, self.message = field, message


@dataclass(frozen=True)
class WriteResult:
    entry: AuditEntry
    message: str | None = None  # why it is not done, in words
    warning: str | None = None  # done, but the refresh could not be queued
    replayed: bool = False  # the same form again: nothing new was sent or recorded

    @property
    def done(self) -> bool:
        return self.entry.done


@dataclass(frozen=True)
class Sent:
    """Stigg's answer to one write."""

    status: int | None  # HTTP status; None when no answer came (or one we could not read)
    answer: str  # what Stigg answered (JSON of what it accepted), or the error in words
    done: bool  # Stigg accepted it
    unsure: bool  # Stigg may have applied it all the same (a timeout, an unreadable 2xx)
    value: Any = None  # what the client returned, when done


def send(call: Callable[[], Any], *, ok_status: int, what: str, customer_id: str) -> Sent:
    """Run one write against Stigg; every outcome becomes a Sent, nothing raises."""
    try:
        accepted = call()
    except StiggUnavailable as exc:
        log.warning("%s for %s not made: %s", what, customer_id, exc)
        return Sent(exc.status, str(exc), False, True)
    except StiggRequestError as exc:
        log.info("%s for %s refused: %s", what, customer_id, exc)
        return Sent(exc.status, str(exc), False, exc.status is None)  # no status: a 2xx we could not read
    # The client hands back only 2xx bodies; the status is the one Stigg answers such a write with.
    return Sent(ok_status, json.dumps(dump(accepted)), True, False, accepted)


def write_timeout() -> dict[str, Any]:
    """Somebody is waiting: one attempt, a short timeout; the form keeps the input."""
    return {"timeout": settings.STIGG_WRITE_TIMEOUT_SECONDS, "attempts": 1}


def earlier(token: uuid.UUID) -> AuditEntry | None:
    return AuditEntry.objects.filter(idempotency_key=token).first()


def replay(token: uuid.UUID, same: Callable[[AuditEntry], bool]) -> WriteResult | None:
    """What a form's token already did, if anything; ``same`` says whether the recorded
    row is the write this form asks for now (a form reused for another is refused)."""
    entry = earlier(token)
    if entry is None:
        return None
    if not same(entry):
        raise InputError(None, "This form was already used for another change. Open it again to make this one.")
    message = None if entry.done else f"This form was already submitted, and the change was not made. {why(entry)}"
    return WriteResult(entry, message=message, replayed=True)


def claim(rm: ReadModel, token: uuid.UUID, same: Callable[[AuditEntry], bool]) -> WriteResult | None:
    """Just before sending (after ``replay`` and validation): None once this request holds
    the token's claim. Two requests with one token at once (a double click, a retried
    request) send one write: the second waits for the first one's row and reports it."""
    wait = settings.STIGG_WRITE_TIMEOUT_SECONDS + TWIN_WAIT_EXTRA_SECONDS
    try:
        if rm.claim_write(str(token), ttl=wait + 60):
            return None
    except (OSError, redis.RedisError) as exc:  # no claim to be had: the unique token still holds the row
        log.warning("No write claim for %s: %s", token, exc)
        return None
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        time.sleep(0.1)
        replayed = replay(token, same)
        if replayed is not None:
            return replayed
    raise InputError(None, "This form is being sent already (a double click?). Reload the page in a moment to "
                           "see what Stigg answered.")


def record(token: uuid.UUID, user: Any, sent: Sent, **fields: Any) -> AuditEntry | None:
    """The audit row, or None when a row with this token exists already (the same form,
    submitted twice at once: the other request recorded it)."""
    try:
        with transaction.atomic():
            return AuditEntry.objects.create(
                user=user, username=user.get_username(), stigg_status=sent.status, stigg_answer=sent.answer,
                outcome=AuditEntry.Outcome.DONE if sent.done else AuditEntry.Outcome.FAILED, idempotency_key=token,
                **fields)
    except IntegrityError:
        if AuditEntry.objects.filter(idempotency_key=token).exists():
            return None
        log.error("%s for %s (done=%s) could not be recorded: %s", fields.get("action"), fields.get("customer_id"),
                  sent.done, sent.answer)
        raise


def refresh(rm: ReadModel, customer_id: str, reason: str) -> str | None:
    """Re-read the customer now and keep it in the hot tier a while; a warning when that fails."""
    try:
        rm.mark_changed(customer_id, ttl=settings.SYNC_HOT_CHANGED_SECONDS)
        tasks.queue_refresh(customer_id, reason)
    except (BrokerUnavailable, OSError, redis.RedisError) as exc:
        log.warning("No refresh queued for %s after a %s: %s", customer_id, reason, exc)
        return "No refresh could be queued, so the new figures show after the next sync."
    return None


def unsure(entry: AuditEntry) -> bool:
    """A write that failed without a refusal (no answer, a 5xx, 408, 429): Stigg may have
    made it all the same."""
    status = entry.stigg_status
    return not entry.done and (status is None or status >= 500 or status in (408, 429))


def why(entry: AuditEntry) -> str:
    if unsure(entry):
        return (f"Stigg did not answer in time or is unavailable ({entry.stigg_answer}). It is not recorded as "
                "done; the change may still have reached Stigg, so the dashboard is reading this customer again. "
                "Check the current value before trying again.")
    return f"Stigg refused the change: {entry.stigg_answer}"
