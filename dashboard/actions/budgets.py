"""Changing a governance budget, or adding one: validate → Stigg → audit row → refresh.

    change = BudgetChange(target, before, after, reason, ticket)
    validate(change, rm)          raises BudgetInputError(field, message): what to fix, in words
    result = change_budget(change, user=user, token=token)  -> ChangeResult (done, or why not)

A budget is (entity, capability, scope) within a customer: Stigg's assignment natural key
(stigg-api.md §9.3, guarantee 27), so a change is an upsert of that key. "before" is what
the read model holds; this module never reads Stigg, it only writes.

The audit row is written once Stigg has answered: "done" only when Stigg accepted the
change, "failed" when it refused or did not answer in time. The form's one-time token is
stored with the row (unique), so the same form submitted twice makes one change and one
row: the second submit finds the first row and reports it again.
"""
from __future__ import annotations

import json
import logging
import math
import re
import uuid
from dataclasses import dataclass
from typing import Any, Sequence

import redis
from django.conf import settings
from django.db import IntegrityError, transaction
from kombu.exceptions import OperationalError as BrokerUnavailable

from .. import tasks
from ..codec import dump
from ..models import AuditEntry
from ..readmodel import BudgetDoc, NodeDoc, ReadModel
from ..stigg import StiggClient, StiggRequestError, StiggUnavailable

log = logging.getLogger(__name__)

# Single-unit ISO-8601 durations, as Stigg takes them (guarantee 29): P1M, P30D, P1W, P1Y,
# PT1H, PT15M. Composites such as P1M10D are not cadences.
CADENCE = re.compile(r"P(?:([1-9]\d{0,3})([YMWD])|T([1-9]\d{0,3})([HM]))")
MAX_LIMIT = float(2**53 - 1)  # the largest whole number Stigg keeps exactly (§1)


class BudgetInputError(ValueError):
    """The change cannot be made as asked. ``field`` is the form field to show it at (None:
    the form as a whole); ``message`` says what to do, in words."""

    def __init__(self, field: str | None, message: str) -> None:
        super().__init__(message)
        self.field, self.message = field, message


def clean_cadence(text: str) -> str:
    cadence = (text or "").strip().upper()
    if not CADENCE.fullmatch(cadence):
        raise BudgetInputError("cadence", f"“{text}” is not a cadence. Use one unit of ISO-8601: P1M (a month), "
                                          "P30D (30 days), P1W, P1Y, PT1H (an hour) or PT15M (15 minutes); "
                                          "composites such as P1M10D are not allowed.")
    return cadence


def clean_limit(value: float | None) -> float | None:
    """A limit of 0 or more (None: unlimited but tracked)."""
    if value is None:
        return None
    if not math.isfinite(value) or value < 0:
        raise BudgetInputError("limit", "A limit is a number of 0 or more.")
    if value > MAX_LIMIT:
        raise BudgetInputError("limit", f"A limit can be at most {MAX_LIMIT:,.0f}.")
    return value


@dataclass(frozen=True)
class BudgetTarget:
    customer_id: str
    entity_id: str
    capability: str  # a feature id, or "$" + a currency id
    scope: tuple[str, ...] = ()  # sorted scope entity ids; () = node-wide

    @property
    def feature_id(self) -> str | None:
        return None if self.capability.startswith("$") else self.capability

    @property
    def currency_id(self) -> str | None:
        return self.capability[1:] if self.capability.startswith("$") else None


@dataclass(frozen=True)
class BudgetValues:
    limit: float | None  # None: unlimited but tracked
    cadence: str

    @classmethod
    def of(cls, budget: BudgetDoc) -> BudgetValues:
        return cls(budget["limit"], budget["cadence"] or "")

    def as_json(self, scope: Sequence[str]) -> dict[str, Any]:
        return {"limit": self.limit, "cadence": self.cadence, "scope": list(scope)}


@dataclass(frozen=True)
class BudgetChange:
    target: BudgetTarget
    before: BudgetValues | None  # None: the budget is being added
    after: BudgetValues
    reason: str
    ticket: str = ""

    @property
    def action(self) -> str:
        return AuditEntry.Action.BUDGET_ADD if self.before is None else AuditEntry.Action.BUDGET_CHANGE


@dataclass(frozen=True)
class ChangeResult:
    entry: AuditEntry
    message: str | None = None  # why it is not done, in words
    warning: str | None = None  # done, but the refresh could not be queued
    replayed: bool = False  # the same form again: nothing new was sent or recorded

    @property
    def done(self) -> bool:
        return self.entry.done


def find_budget(node: NodeDoc, capability: str, scope: Sequence[str]) -> BudgetDoc | None:
    want = sorted(scope)
    return next((b for b in node["budgets"] if b["capability"] == capability and b["scope"] == want), None)


def validate(change: BudgetChange, rm: ReadModel) -> None:
    """Everything the read model can tell before Stigg is asked; raises BudgetInputError."""
    t = change.target
    node = rm.governance_node(t.customer_id, t.entity_id)
    if node is None:
        raise BudgetInputError(None, f"No entity “{t.entity_id}” in this customer's governance hierarchy.")
    if t.capability in ("", "$"):
        raise BudgetInputError("capability", "Choose the feature or currency the budget is for.")
    known = {n["id"] for n in rm.governance_nodes(t.customer_id, list(t.scope))}
    unknown = [s for s in t.scope if s not in known]
    if unknown:
        raise BudgetInputError("scope", f"No entity {', '.join(f'“{s}”' for s in unknown)} in this customer's "
                                        "hierarchy; a scope names entities that exist.")
    existing = find_budget(node, t.capability, t.scope)
    if change.before is None and existing is not None:
        raise BudgetInputError(None, "This entity already has that budget for the same scope: change it instead.")
    if change.before is not None and existing is None:
        raise BudgetInputError(None, "This budget is no longer in the dashboard's data; it may have been removed "
                                     "in Stigg. Reload the governance page.")
    clean_limit(change.after.limit)
    if clean_cadence(change.after.cadence) != change.after.cadence:
        raise BudgetInputError("cadence", "Write the cadence in capitals, e.g. P1M.")
    if not change.reason.strip():
        raise BudgetInputError("reason", "Say why the budget changes: the audit log keeps it.")
    if change.before == change.after:
        raise BudgetInputError(None, "Nothing would change: the limit and the cadence are what they are now.")


def change_budget(change: BudgetChange, *, user: Any, token: uuid.UUID, client: StiggClient | None = None,
                  rm: ReadModel | None = None) -> ChangeResult:
    """Make the change in Stigg and record it. Raises BudgetInputError before asking Stigg
    when the change cannot be made; every answer of Stigg's becomes a recorded result."""
    rm = rm or tasks.read_model()
    earlier = _earlier(token, change.target)
    if earlier is not None:
        return earlier
    validate(change, rm)
    status, answer, done, unsure = _send(client or tasks.client(), change)
    entry = _record(change, user, token, status, answer, done)
    if entry is None:  # the same form, submitted twice at once: the other request recorded it
        return _earlier(token, change.target) or ChangeResult(AuditEntry.objects.get(idempotency_key=token))
    # Unsure (timed out, or an answer we could not read): Stigg may hold the change all
    # the same, so the dashboard looks again instead of guessing.
    warning = _refresh(rm, change.target.customer_id) if done or unsure else None
    return ChangeResult(entry, message=None if done else _why(entry), warning=warning)


def _earlier(token: uuid.UUID, target: BudgetTarget) -> ChangeResult | None:
    entry = AuditEntry.objects.filter(idempotency_key=token).first()
    if entry is None:
        return None
    if (entry.customer_id, entry.entity_id, entry.capability, tuple(entry.scope)) != (
            target.customer_id, target.entity_id, target.capability, target.scope):
        raise BudgetInputError(None, "This form was already used for another change. Open it again to make this one.")
    message = None if entry.done else f"This form was already submitted, and the change was not made. {_why(entry)}"
    return ChangeResult(entry, message=message, replayed=True)


def _send(client: StiggClient, change: BudgetChange) -> tuple[int | None, str, bool, bool]:
    """(status, Stigg's answer or the error, done, unsure whether Stigg applied it)."""
    t, after = change.target, change.after
    # Left out, Stigg keeps the cadence it holds: only a cadence the person changed is sent.
    unchanged = change.before is not None and change.before.cadence == after.cadence
    try:
        accepted = client.upsert_assignment(
            t.customer_id, t.entity_id, t.feature_id, after.limit, cadence=None if unchanged else after.cadence,
            scope_entity_ids=t.scope, currency_id=t.currency_id,
            # Somebody is waiting: one attempt, a short timeout; the form keeps the input.
            timeout=settings.STIGG_WRITE_TIMEOUT_SECONDS, attempts=1)
    except StiggUnavailable as exc:
        log.warning("Budget change for %s not made: %s", t.customer_id, exc)
        return exc.status, str(exc), False, True
    except StiggRequestError as exc:
        log.info("Budget change for %s refused: %s", t.customer_id, exc)
        return exc.status, str(exc), False, exc.status is None  # no status: a 2xx we could not read
    # Stigg answers a governance PUT with 200 (§1); the client hands back only 2xx bodies.
    return 200, json.dumps(dump(accepted)), True, False


def _record(change: BudgetChange, user: Any, token: uuid.UUID, status: int | None, answer: str,
            done: bool) -> AuditEntry | None:
    """The audit row, or None when a row with this token exists already."""
    t = change.target
    try:
        with transaction.atomic():
            return AuditEntry.objects.create(
                user=user, username=user.get_username(), customer_id=t.customer_id, action=change.action,
                entity_id=t.entity_id, capability=t.capability, scope=list(t.scope),
                before=change.before.as_json(t.scope) if change.before else None, after=change.after.as_json(t.scope),
                reason=change.reason.strip(), ticket=change.ticket.strip(), stigg_status=status, stigg_answer=answer,
                outcome=AuditEntry.Outcome.DONE if done else AuditEntry.Outcome.FAILED, idempotency_key=token)
    except IntegrityError:
        if AuditEntry.objects.filter(idempotency_key=token).exists():
            return None
        log.error("Budget change for %s (done=%s) could not be recorded: %s", t.customer_id, done, answer)
        raise


def _refresh(rm: ReadModel, customer_id: str) -> str | None:
    """Re-read the customer now and keep it in the hot tier a while; a warning when that fails."""
    try:
        rm.mark_changed(customer_id, ttl=settings.SYNC_HOT_CHANGED_SECONDS)
        tasks.queue_refresh(customer_id, "budget-change")
    except (BrokerUnavailable, OSError, redis.RedisError) as exc:
        log.warning("No refresh queued for %s after a budget change: %s", customer_id, exc)
        return "No refresh could be queued, so the new figures show after the next sync."
    return None


def _why(entry: AuditEntry) -> str:
    status = entry.stigg_status
    if status is None or status >= 500 or status in (408, 429):  # no answer, or not a refusal
        return (f"Stigg did not answer in time or is unavailable ({entry.stigg_answer}). It is not recorded as "
                "done; the change may still have reached Stigg, so the dashboard is reading this customer again. "
                "Check the current value before trying again.")
    return f"Stigg refused the change: {entry.stigg_answer}"
