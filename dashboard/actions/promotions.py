"""Granting, extending and revoking promotional entitlements: validate → Stigg → audit row → refresh.

    subject = subject_of(rm, doc, feature_id)              what the read model knows of one customer and feature
    validate(subject, grant, reason, ticket, at=now())     raises PromotionInputError(field, message)
    result = grant(subject, grant, reason, ticket, user=user, token=token)     -> WriteResult
    result = extend(subject, period, end_date, reason, ticket, user=…, token=…)
    result = revoke(subject, reason, ticket, user=…, token=…)

Everything is checked against the read model before Stigg is asked, so a bad input sends
nothing. The audit row says "done" only when Stigg accepted the write (writes.py); the
form's one-time token makes a repeated submit one write and one row.
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from .. import tasks
from ..codec import load_all
from ..models import AuditEntry
from ..provenance import Provenance, explain_entitlement
from ..readmodel import ReadModel, parse_time
from ..rules import promotions as rules
from ..rules.promotions import Grant, Preview
from ..stigg import Entitlement, Feature, Package, Promotion, StiggClient, Subscription
from . import writes

MAX_LIMIT = writes.MAX_LIMIT
MAX_REASON = 2000
MAX_TICKET = 200


class PromotionInputError(writes.InputError):
    """A grant, extension or revoke that cannot be made as asked (see writes.InputError)."""


@dataclass(frozen=True)
class Subject:
    """One customer and one feature, as the read model has them."""

    customer_id: str
    customer_name: str
    archived: bool
    feature: Feature | None  # None: the catalog has no such feature
    feature_id: str
    subscriptions: tuple[Subscription, ...]
    packages: dict[str, Package]
    promotions: tuple[Promotion, ...]
    entitlement: dict[str, Any] | None  # the customer page's row for the feature, if any

    @property
    def promotion(self) -> Promotion | None:
        """The customer's record for this feature (one at most, §6), active or expired."""
        return next((p for p in self.promotions if p.feature_id == self.feature_id), None)

    @property
    def active_promotion(self) -> Promotion | None:
        p = self.promotion
        return p if p is not None and p.status == rules.ACTIVE else None

    @property
    def usage(self) -> float | None:
        return self.entitlement["usage"] if self.entitlement else None

    def reported(self) -> Entitlement | None:
        """Stigg's effective value as the last sync read it (for override detection)."""
        e = self.entitlement
        if e is None:
            return None
        return Entitlement(e["feature_id"], e["feature_name"], e["feature_type"], e["is_granted"],
                           e["access_denied_reason"], e["usage"], e["limit"] if e["limit"] is not None else e["value"],
                           e["unlimited"], e["reset_period"], None, None, None, None)


def reset_now(subject: Subject) -> str:
    """The reset period a new grant starts from: the one the customer has today (a
    promotion without one would stop usage from ever resetting, §5.4), else monthly."""
    return (subject.entitlement or {}).get("reset_period") or "MONTH"


def catalog_features(rm: ReadModel) -> tuple[dict[str, Feature], dict[str, Package]]:
    cat = rm.catalog()
    if cat is None:
        return {}, {}
    return ({f.id: f for f in load_all(Feature, cat.features.values())},
            {p.id: p for p in load_all(Package, cat.packages.values())})


def subject_of(rm: ReadModel, doc: dict[str, Any], feature_id: str,
               catalog: tuple[dict[str, Feature], dict[str, Package]] | None = None) -> Subject:
    features, packages = catalog or catalog_features(rm)
    stigg = doc.get("stigg") or {}
    groups = doc["entitlements"]
    row = next((e for group in ("metered", "configuration", "boolean") for e in groups[group]
                if e["feature_id"] == feature_id), None)
    return Subject(doc["id"], doc["profile"]["name"] or doc["id"], bool(doc["profile"]["archived_at"]),
                   features.get(feature_id), feature_id, tuple(load_all(Subscription, stigg.get("subscriptions", []))),
                   packages, tuple(load_all(Promotion, stigg.get("promotions", []))), row)


def now() -> datetime:
    return datetime.now(timezone.utc)


def preview(subject: Subject, grant: Grant, at: datetime | None = None) -> Preview:
    assert subject.feature is not None
    return rules.preview(grant, feature=subject.feature, reported=subject.reported(), usage=subject.usage,
                         subscriptions=subject.subscriptions, packages=subject.packages,
                         promotions=subject.promotions, now=at or now())


def plan_of(subject: Subject) -> Provenance:
    """What the subscriptions alone give the customer for the feature (no promotion): the
    preview's ``plan``, before there is a grant to preview."""
    return explain_entitlement(subject.feature_id, None, subject.subscriptions, subject.packages, ())


def validate(subject: Subject, grant: Grant, reason: str, ticket: str, *, at: datetime | None = None) -> None:
    """Everything that can be told before Stigg is asked; raises PromotionInputError."""
    feature = _require_feature(subject)
    check_note(reason, ticket)
    if grant.feature_id != feature.id:
        raise PromotionInputError("feature", "The feature changed while the form was open; open it again.")
    kind = feature.feature_type
    if kind == "NUMBER":
        if not grant.unlimited and grant.limit is None:
            raise PromotionInputError("limit", "Give a limit, or tick Unlimited.")
        if grant.limit is not None and not grant.unlimited:
            check_limit(grant.limit)
    elif grant.limit is not None or grant.unlimited or grant.soft_limit:
        raise PromotionInputError("limit", f"{feature.display_name} is {_kind_words(kind)}: it takes no limit.")
    if grant.reset_period is not None:
        if not feature.metered:
            raise PromotionInputError("reset_period", f"{feature.display_name} is not metered: it has no reset period.")
        if grant.reset_period not in rules.RESET_PERIODS:
            raise PromotionInputError("reset_period", "Choose a reset period from the list.")
        if grant.reset_anchor and grant.reset_anchor not in rules.RESET_ANCHORS.get(grant.reset_period, ()):
            raise PromotionInputError("reset_anchor", "That anchor does not go with this reset period.")
    if kind == "ENUM":
        allowed = {o.value for o in feature.enum_options}
        unknown = [v for v in grant.enum_values if v not in allowed]
        if unknown:
            raise PromotionInputError("enum_values", f"{', '.join(repr(v) for v in unknown[:5])} "
                                                     f"{'is' if len(unknown) == 1 else 'are'} not a value of "
                                                     f"{feature.display_name}.")
        if not grant.enum_values:
            raise PromotionInputError("enum_values", "Choose at least one value to grant.")
    elif grant.enum_values:
        raise PromotionInputError("enum_values", f"{feature.display_name} has no values to choose from.")
    check_period(grant.period, grant.end_date, at or now())


def check_note(reason: str, ticket: str) -> None:
    if not reason.strip():
        raise PromotionInputError("reason", "Say why: the audit log keeps it with your name.")
    if len(reason) > MAX_REASON:
        raise PromotionInputError("reason", f"A reason is at most {MAX_REASON:,} characters.")
    if len(ticket) > MAX_TICKET:
        raise PromotionInputError("ticket", f"A ticket link is at most {MAX_TICKET} characters.")


def check_limit(limit: float) -> None:
    if limit != limit or limit < 0 or not float(limit).is_integer():
        raise PromotionInputError("limit", "A limit is a whole number of 0 or more.")
    if limit > MAX_LIMIT:
        raise PromotionInputError("limit", f"A limit can be at most {MAX_LIMIT:,}.")


def check_period(period: str, end_date: datetime | None, at: datetime) -> None:
    if period not in rules.PERIODS:
        raise PromotionInputError("period", "Choose how long the promotion lasts.")
    if period == "custom":
        if end_date is None:
            raise PromotionInputError("end_date", "Give the end date of a custom period.")
        if end_date <= at:
            raise PromotionInputError("end_date", "The end date is in the past: choose a later date.")
        if end_date.year > 9999 - 1:
            raise PromotionInputError("end_date", "Choose an end date before the year 9998.")


def grant(subject: Subject, values: Grant, reason: str, ticket: str = "", *, user: Any, token: uuid.UUID,
          client: StiggClient | None = None, rm: ReadModel | None = None,
          action: str = AuditEntry.Action.PROMOTION_GRANT, batch: Any = None, refresh: bool = True
          ) -> writes.WriteResult:
    """Grant (or, with ``action`` extend, re-grant) in Stigg and record it. ``batch``: the
    bulk grant it belongs to (its audit row says so); ``refresh`` False: the caller reads
    the customer back itself (a bulk job, within its own share of the request rate)."""
    rm = rm or tasks.read_model()
    at = now()
    same = _same(subject, action, values.as_json(at))
    replay = _once(writes.replay, token, same)
    if replay is not None:
        return replay
    validate(subject, values, reason, ticket, at=at)
    twin = _once(writes.claim, rm, token, same)
    if twin is not None:
        return twin
    old = subject.promotion
    client = client or tasks.client()
    sent = writes.send(lambda: client.grant_promotions(subject.customer_id, [values.request()],
                                                       **writes.write_timeout()),
                       ok_status=200, what="Promotion grant", customer_id=subject.customer_id)
    return _finish(subject, sent, action, reason, ticket, user, token, rm,
                   before=rules.promotion_json(old) if old else None, after=values.as_json(at), batch=batch,
                   refresh=refresh)


def extend(subject: Subject, period: str, end_date: datetime | None, reason: str, ticket: str = "", *, user: Any,
           token: uuid.UUID, client: StiggClient | None = None, rm: ReadModel | None = None) -> writes.WriteResult:
    """The same values for another period, counted from now (Stigg has no "extend": a new
    grant replaces the record). A custom end date must be later than the current one."""
    action = AuditEntry.Action.PROMOTION_EXTEND
    # A replay first: once extended, the promotion already runs that long.
    custom = end_date.isoformat() if period == "custom" and end_date else None

    def same(entry: AuditEntry) -> bool:
        after = entry.after or {}
        return (entry.customer_id, entry.capability, entry.action, after.get("period")) == (
            subject.customer_id, subject.feature_id, action, period) and (
            custom is None or after.get("end_date") == custom)
    replay = _once(writes.replay, token, same)
    if replay is not None:
        return replay
    return grant(subject, extension(subject, period, end_date), reason, ticket, user=user, token=token,
                 client=client, rm=rm, action=action)


def extension(subject: Subject, period: str, end_date: datetime | None) -> Grant:
    """The grant that extends the customer's promotion; raises PromotionInputError when
    there is nothing to extend or the new end is not later."""
    current = subject.promotion
    if current is None:
        raise PromotionInputError(None, "This customer has no promotion for that feature to extend.")
    at = now()
    check_period(period, end_date, at)
    new_end = rules.end_of(period, at, end_date)
    if current.status == rules.ACTIVE and current.end_date is None:
        raise PromotionInputError("period", "This promotion has no end date: there is nothing to extend.")
    if new_end is not None and current.end_date is not None and new_end <= current.end_date:
        raise PromotionInputError("period", f"It already runs until {current.end_date:%Y-%m-%d}: choose a period "
                                            "that ends later.")
    return rules.grant_of(current, period, end_date)


def revoke(subject: Subject, reason: str, ticket: str = "", *, user: Any, token: uuid.UUID,
           client: StiggClient | None = None, rm: ReadModel | None = None, batch: Any = None,
           refresh: bool = True) -> writes.WriteResult:
    """Revoke the customer's promotion for the feature (``batch``, ``refresh``: as grant)."""
    rm = rm or tasks.read_model()
    same = _same(subject, AuditEntry.Action.PROMOTION_REVOKE, None)
    replay = _once(writes.replay, token, same)
    if replay is not None:
        return replay
    check_note(reason, ticket)
    current = subject.promotion
    if current is None:
        raise PromotionInputError(None, "This customer has no promotion for that feature (it may have been revoked "
                                        "already); reload the customer page.")
    twin = _once(writes.claim, rm, token, same)
    if twin is not None:
        return twin
    client = client or tasks.client()
    sent = writes.send(lambda: client.revoke_promotion(subject.customer_id, subject.feature_id,
                                                       **writes.write_timeout()),
                       ok_status=200, what="Promotion revoke", customer_id=subject.customer_id)
    return _finish(subject, sent, AuditEntry.Action.PROMOTION_REVOKE, reason, ticket, user, token, rm,
                   before=rules.promotion_json(current), after=None, batch=batch, refresh=refresh)


def pending_change(subject: Subject, fetched_at: str | None) -> AuditEntry | None:
    """The last write for this feature, when it was made after the figures were read."""
    latest = AuditEntry.objects.filter(customer_id=subject.customer_id, capability=subject.feature_id,
                                       action__startswith="promotion.").first()
    fetched = parse_time(fetched_at)
    return latest if latest is not None and latest.done and (fetched is None or latest.at > fetched) else None


def _require_feature(subject: Subject) -> Feature:
    if subject.feature is None:
        raise PromotionInputError("feature", f"There is no feature “{subject.feature_id}” in the catalog.")
    if subject.archived:
        raise PromotionInputError(None, "This customer is archived in Stigg: unarchive it before granting.")
    return subject.feature


def _kind_words(kind: str) -> str:
    return {"BOOLEAN": "on or off", "ENUM": "a choice of values"}.get(kind, "a number")


# What makes two grants the same write: everything but an end date counted from "now".
_GRANT_KEYS = ("feature", "limit", "unlimited", "soft_limit", "reset_period", "reset_anchor", "enum_values", "period")


def _same(subject: Subject, action: str, after: dict[str, Any] | None):
    """Whether a recorded row is the write a form asks for now: a token reused for another
    customer, feature, action or other values is refused (writes.replay)."""
    def key(values: dict[str, Any] | None) -> tuple:
        if values is None:
            return ()
        custom = values.get("period") == "custom"
        return tuple(values.get(k) for k in _GRANT_KEYS) + ((values.get("end_date"),) if custom else ())

    def same(entry: AuditEntry) -> bool:
        return (entry.customer_id, entry.capability, entry.action, key(entry.after)) == (
            subject.customer_id, subject.feature_id, action, key(after))
    return same


def _once(step: Any, *args: Any) -> writes.WriteResult | None:
    """A writes step (replay, claim), its refusal said as a PromotionInputError."""
    try:
        return step(*args)
    except writes.InputError as exc:
        raise PromotionInputError(exc.field, exc.message) from None


def _finish(subject: Subject, sent: writes.Sent, action: str, reason: str, ticket: str, user: Any,
            token: uuid.UUID, rm: ReadModel, *, before: dict | None, after: dict | None, batch: Any = None,
            refresh: bool = True) -> writes.WriteResult:
    entry = writes.record(token, user, sent, customer_id=subject.customer_id, action=action,
                          capability=subject.feature_id, before=before, after=after, reason=reason.strip(),
                          ticket=ticket.strip(), batch=batch)
    if entry is None:  # the same form, submitted twice at once: the other request recorded it
        return writes.replay(token, lambda _: True) or writes.WriteResult(AuditEntry.objects.get(idempotency_key=token))
    # Unsure (a timeout): Stigg may hold the grant all the same, so the dashboard looks again.
    warning = writes.refresh(rm, subject.customer_id, "promotion") \
        if refresh and (sent.done or sent.unsure) else None
    return writes.WriteResult(entry, message=None if sent.done else writes.why(entry), warning=warning)
