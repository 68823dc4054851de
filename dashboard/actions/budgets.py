"""Changing a governance budget, or adding one: validate → Stigg → audit row → refresh.

    change = BudgetChange(target, before, after, reason, ticket)
    validate(change, rm)          raises BudgetInputError(field, message): what to fix, in words
    result = change_budget(change, user=user, token=token)  -> ChangeResult (done, or why not)

A budget is (entity, capability, scope) within a customer: Stigg's assignment natural key
(stigg-api.md §9.3, guarantee 27), so a change is an upsert of that key. "before" is what
the read model holds; this module never reads Stigg, it only writes.

Recording, idempotency and the refresh afterwards are writes.py's, shared with promotions.
"""
from __future__ import annotations

import math
import re
import uuid
from dataclasses import dataclass
from typing import Any, Sequence

from .. import tasks
from ..models import AuditEntry
from ..readmodel import BudgetDoc, NodeDoc, ReadModel
from ..stigg import StiggClient
from . import writes

# Single-unit ISO-8601 durations, as Stigg takes them (guarantee 29): P1M, P30D, P1W, P1Y,
# PT1H, PT15M. Composites such as P1M10D are not cadences.
CADENCE = re.compile(r"P(?:([1-9]\d{0,3})([YMWD])|T([1-9]\d{0,3})([HM]))")
MAX_LIMIT = float(writes.MAX_LIMIT)


class BudgetInputError(writes.InputError):
    """A budget change that cannot be made as asked (see writes.InputError)."""


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


ChangeResult = writes.WriteResult


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
    same = _same(change.target)
    earlier = _once(writes.replay, token, same)
    if earlier is not None:
        return earlier
    validate(change, rm)
    twin = _once(writes.claim, rm, token, same)
    if twin is not None:
        return twin
    sent = _send(client or tasks.client(), change)
    t = change.target
    entry = writes.record(token, user, sent, customer_id=t.customer_id, action=change.action, entity_id=t.entity_id,
                          capability=t.capability, scope=list(t.scope),
                          before=change.before.as_json(t.scope) if change.before else None,
                          after=change.after.as_json(t.scope), reason=change.reason.strip(),
                          ticket=change.ticket.strip())
    if entry is None:  # the same form, submitted twice at once: the other request recorded it
        return writes.replay(token, lambda _: True) or ChangeResult(AuditEntry.objects.get(idempotency_key=token))
    # Unsure (timed out, or an answer we could not read): Stigg may hold the change all
    # the same, so the dashboard looks again instead of guessing.
    warning = writes.refresh(rm, t.customer_id, "budget-change") if sent.done or sent.unsure else None
    return ChangeResult(entry, message=None if sent.done else writes.why(entry), warning=warning)


def _same(target: BudgetTarget):
    """Whether a recorded row is a change of this budget (a form's token is for one budget)."""
    def same(entry: AuditEntry) -> bool:
        return (entry.customer_id, entry.entity_id, entry.capability, tuple(entry.scope)) == (
            target.customer_id, target.entity_id, target.capability, target.scope)
    return same


def _once(step, *args: Any) -> ChangeResult | None:
    """A writes step (replay, claim), its refusal said as a BudgetInputError."""
    try:
        return step(*args)
    except writes.InputError as exc:
        raise BudgetInputError(exc.field, exc.message) from None


def _send(client: StiggClient, change: BudgetChange) -> writes.Sent:
    t, after = change.target, change.after
    # Left out, Stigg keeps the cadence it holds: only a cadence the person changed is sent.
    unchanged = change.before is not None and change.before.cadence == after.cadence
    # Stigg answers a governance PUT with 200 (§1).
    return writes.send(lambda: client.upsert_assignment(
        t.customer_id, t.entity_id, t.feature_id, after.limit, cadence=None if unchanged else after.cadence,
        scope_entity_ids=t.scope, currency_id=t.currency_id, **writes.write_timeout()),
        ok_status=200, what="Budget change", customer_id=t.customer_id)
