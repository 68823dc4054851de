"""Where each effective entitlement value comes from.

Stigg's REST answer (``GET /customers/{id}/entitlements``, stigg-api.md §5.1) gives the
effective value but never says which source won. This module recomputes it from the
customer's subscriptions, the catalog's plan and add-on entitlements and the promotional
entitlements, applying the generous rule of §5.4, and names the winner. It is pure: no
I/O, no clock, so the read model can call it while shaping a customer snapshot and tests
can call it with hand-built values.

Assumptions (all Inferred unless the spec says "read"):

- Only subscriptions with status ACTIVE or IN_TRIAL count (§4). A trial is just an
  active subscription of its plan, so "trial" is reported as the plan source.
- Parent plans: a plan entitlement with behavior ``Override`` replaces the parent's value;
  ``Increment`` adds its limit to the parent's (§3). A feature the child does not mention
  is inherited unchanged. Parent chains are followed root first; a cycle or a missing
  parent ends the chain (the catalog may be stale, and provenance must never crash a sync).
- Subscription total = plan value + Σ(add-on value × quantity) (§5.4). Add-on entitlements
  always add, whatever their ``behavior`` says.
- Several active subscriptions (other products, resources) are separate sources; the most
  generous subscription total is taken, like any other source.
- Only ``Active`` promotions grant; ``Expired`` and ``Paused`` grant nothing (§6).
- Unlimited beats any number; a larger limit beats a smaller one. On a tie the
  subscription is named the winner, since a promotion that only equals the plan changes
  nothing the customer gets.
- ``hasSoftLimit`` and ``resetPeriod`` come from the winning source (§5.4).
- Subscription-level overrides (``subscriptionEntitlements``) are not returned by the
  subscriptions list API (§4), so we cannot see them. When the value Stigg reports cannot
  be produced by plan, add-ons or promotions, the winner is reported as ``override`` with a
  source carrying Stigg's value: the most likely explanation, but still a guess.
- ENUM: REST entitlements carry no enum values (§5.1), so the effective values are the
  union of ``enumValues`` over every granting source, in first-seen order.
- Configuration NUMBER values (meterType None) travel in ``usageLimit`` like limits, so
  they follow the same rule.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Mapping, Sequence

from .stigg import Entitlement, Package, PackageEntitlement, Promotion, Subscription

ACTIVE_SUBSCRIPTION_STATUSES = frozenset({"ACTIVE", "IN_TRIAL"})
ACTIVE_PROMOTION_STATUS = "Active"
# Limits are JSON numbers; compare with a tolerance so 0.1 + 0.2 style sums still match.
_EPSILON = 1e-9


@dataclass(frozen=True)
class Source:
    """One contribution to an entitlement: a plan, an add-on, a promotion or an override."""

    kind: str  # "plan" | "addon" | "promotion" | "override"
    id: str
    name: str
    is_granted: bool
    value: float | None  # the contribution (add-ons: already × quantity); None = no number
    unlimited: bool
    soft_limit: bool
    reset_period: str | None
    enum_values: tuple[str, ...] = ()
    quantity: int = 1  # add-ons only
    subscription_id: str | None = None


@dataclass(frozen=True)
class Provenance:
    """Where a customer's effective value for one feature comes from."""

    feature_id: str
    sources: tuple[Source, ...]  # every source that mentions the feature
    winners: tuple[Source, ...]  # the source(s) that produce the effective value
    label: str  # "plan" | "add-on" | "plan + add-on" | "promotion" | "override" | "none", or for enum
    # values put together from several kinds, those kinds joined: "plan + promotion"
    value: float | None  # the effective number we computed (or Stigg's, for an override)
    unlimited: bool
    is_granted: bool
    soft_limit: bool
    reset_period: str | None
    enum_values: tuple[str, ...]
    inferred: bool  # True when the label is a guess (override) rather than recomputed


@dataclass(frozen=True)
class _Total:
    """A subscription's total for one feature: plan (resolved) plus its add-ons."""

    subscription_id: str
    plan: Source | None
    addons: tuple[Source, ...]

    @property
    def parts(self) -> tuple[Source, ...]:
        return ((self.plan,) if self.plan else ()) + self.addons

    @property
    def is_granted(self) -> bool:
        return any(p.is_granted for p in self.parts)

    @property
    def unlimited(self) -> bool:
        return any(p.unlimited for p in self.parts if p.is_granted)

    @property
    def value(self) -> float | None:
        numbers = [p.value for p in self.parts if p.is_granted and p.value is not None]
        return sum(numbers) if numbers else None


def resolve_plan_entitlement(
    plan_id: str, feature_id: str, packages: Mapping[str, Package]
) -> PackageEntitlement | None:
    """The plan's own value for a feature after parent inheritance (Increment/Override)."""
    chain: list[Package] = []
    seen: set[str] = set()
    current: str | None = plan_id
    while current and current not in seen and current in packages:
        seen.add(current)
        chain.append(packages[current])
        current = packages[current].parent_plan_id
    resolved: PackageEntitlement | None = None
    for plan in reversed(chain):  # root first, so each child applies on top of its parent
        own = _find(plan.entitlements, feature_id)
        if own is None:
            continue
        if resolved is None or own.behavior != "Increment":
            resolved = own
            continue
        resolved = PackageEntitlement(
            feature_id=feature_id,
            behavior="Increment",
            is_granted=resolved.is_granted or own.is_granted,
            usage_limit=_add(resolved.usage_limit, own.usage_limit),
            has_unlimited_usage=resolved.has_unlimited_usage or own.has_unlimited_usage,
            # The child states its own soft-limit flag and reset period; an unset period is inherited.
            has_soft_limit=own.has_soft_limit,
            enum_values=_union((resolved.enum_values or (), own.enum_values or ())) or None,
            reset_period=own.reset_period or resolved.reset_period,
        )
    return resolved


def explain_entitlement(
    feature_id: str,
    reported: Entitlement | None,
    subscriptions: Sequence[Subscription],
    packages: Mapping[str, Package],
    promotions: Sequence[Promotion],
) -> Provenance:
    """Recompute one feature's effective value from its sources and name the winner.

    ``reported`` is Stigg's effective entitlement (None when Stigg listed nothing for the
    feature); it is used only to detect an override the sources cannot explain.
    """
    totals = _subscription_totals(feature_id, subscriptions, packages)
    promos = tuple(_promotion_source(p) for p in promotions
                   if p.feature_id == feature_id and p.status == ACTIVE_PROMOTION_STATUS)
    sources = tuple(s for t in totals for s in t.parts) + promos
    enum_values = _union(s.enum_values for s in sources if s.is_granted)

    # Candidates in tie-break order: subscriptions first, then promotions (see module doc).
    candidates: list[tuple[tuple[Source, ...], bool, bool, float | None]] = [
        (t.parts, t.is_granted, t.unlimited, t.value) for t in totals
    ] + [((p,), p.is_granted, p.unlimited, p.value) for p in promos]
    best: tuple[tuple[Source, ...], bool, bool, float | None] | None = None
    for cand in candidates:
        if not cand[1]:
            continue
        if best is None or _more_generous(cand, best):
            best = cand

    if best is None:
        computed = Provenance(feature_id, sources, (), "none", None, False, False, False, None,
                              enum_values, False)
    else:
        parts, _, unlimited, value = best
        winners = tuple(p for p in parts if p.is_granted)
        if unlimited:
            # Only the unlimited part(s) explain an unlimited value.
            winners = tuple(p for p in winners if p.unlimited)
        if enum_values:
            # The values are a union: every source that adds a value nobody else grants
            # produced part of what the customer gets (a promotion adding "dedicated"
            # support to a plan's "priority" makes it "plan + promotion").
            winners = _enum_contributors(sources) or winners
        lead = winners[0] if winners else parts[0]
        computed = Provenance(
            feature_id=feature_id, sources=sources, winners=winners, label=_label(winners),
            value=None if unlimited else value, unlimited=unlimited, is_granted=True,
            soft_limit=lead.soft_limit, reset_period=lead.reset_period, enum_values=enum_values,
            inferred=False,
        )
    if reported is None or _explains(computed, reported):
        return computed
    return _override(computed, reported)


def explain_all(
    reported: Iterable[Entitlement],
    subscriptions: Sequence[Subscription],
    packages: Mapping[str, Package],
    promotions: Sequence[Promotion],
) -> dict[str, Provenance]:
    """Provenance for every feature Stigg reported, keyed by feature id."""
    return {e.feature_id: explain_entitlement(e.feature_id, e, subscriptions, packages, promotions)
            for e in reported}


# --- helpers ---------------------------------------------------------------------------------


def _find(entitlements: Iterable[PackageEntitlement], feature_id: str) -> PackageEntitlement | None:
    return next((e for e in entitlements if e.feature_id == feature_id), None)


def _add(a: float | None, b: float | None) -> float | None:
    if a is None:
        return b
    if b is None:
        return a
    return a + b


def _union(groups: Iterable[Iterable[str]]) -> tuple[str, ...]:
    out: dict[str, None] = {}
    for group in groups:
        for value in group:
            out.setdefault(value, None)
    return tuple(out)


def _subscription_totals(
    feature_id: str, subscriptions: Sequence[Subscription], packages: Mapping[str, Package]
) -> list[_Total]:
    totals: list[_Total] = []
    for sub in subscriptions:
        if sub.status not in ACTIVE_SUBSCRIPTION_STATUSES:
            continue
        plan_source: Source | None = None
        own = resolve_plan_entitlement(sub.plan_id, feature_id, packages)
        if own is not None:
            plan = packages.get(sub.plan_id)
            plan_source = _package_source("plan", sub.plan_id, plan.display_name if plan else sub.plan_id,
                                          own, 1, sub.id)
        addons: list[Source] = []
        for aq in sub.addons:
            addon = packages.get(aq.addon_id)
            ent = _find(addon.entitlements, feature_id) if addon else None
            if addon is None or ent is None or aq.quantity <= 0:
                continue
            addons.append(_package_source("addon", addon.id, addon.display_name, ent, aq.quantity, sub.id))
        if plan_source or addons:
            totals.append(_Total(sub.id, plan_source, tuple(addons)))
    return totals


def _package_source(kind: str, pid: str, name: str, ent: PackageEntitlement, quantity: int,
                    subscription_id: str) -> Source:
    value = ent.usage_limit * quantity if ent.usage_limit is not None else None
    return Source(kind=kind, id=pid, name=name, is_granted=ent.is_granted, value=value,
                  unlimited=ent.has_unlimited_usage, soft_limit=ent.has_soft_limit,
                  reset_period=ent.reset_period, enum_values=tuple(ent.enum_values or ()),
                  quantity=quantity, subscription_id=subscription_id)


def _promotion_source(p: Promotion) -> Source:
    # A promotion record exists only to grant; Stigg has no "denied" promotion (§6).
    return Source(kind="promotion", id=p.id, name=f"promotion ({p.period})", is_granted=True, value=p.usage_limit,
                  unlimited=p.has_unlimited_usage, soft_limit=p.has_soft_limit,
                  reset_period=p.reset_period, enum_values=tuple(p.enum_values or ()))


def _more_generous(a: tuple, b: tuple) -> bool:
    """Strictly more generous: ties keep the earlier candidate (the subscription)."""
    _, _, a_unl, a_val = a
    _, _, b_unl, b_val = b
    if a_unl != b_unl:
        return a_unl
    if a_unl:
        return False
    if a_val is None:
        return False
    return b_val is None or a_val > b_val + _EPSILON


def _enum_contributors(sources: Sequence[Source]) -> tuple[Source, ...]:
    """Granting sources holding an enum value no other granting source holds."""
    granting = [s for s in sources if s.is_granted]
    out = []
    for s in granting:
        others = {v for o in granting if o is not s for v in o.enum_values}
        if set(s.enum_values) - others:
            out.append(s)
    return tuple(out)


_LABEL_ORDER = {"plan": 0, "addon": 1, "promotion": 2}
_LABEL_WORDS = {"plan": "plan", "addon": "add-on", "promotion": "promotion"}


def _label(winners: Sequence[Source]) -> str:
    kinds = {w.kind for w in winners}
    if not kinds:
        return "none"
    if "override" in kinds:
        return "override"  # always alone
    if kinds == {"plan", "addon"}:
        # An add-on that contributes nothing (0 or no number) did not raise the plan limit.
        raised = any(w.kind == "addon" and (w.unlimited or (w.value or 0) > 0 or w.enum_values) for w in winners)
        return "plan + add-on" if raised else "plan"
    # One kind, or enum values put together from several (plan + promotion).
    return " + ".join(_LABEL_WORDS[k] for k in sorted(kinds, key=_LABEL_ORDER.__getitem__))


def _explains(computed: Provenance, reported: Entitlement) -> bool:
    """Does our recomputation produce what Stigg reports?"""
    if not reported.is_granted:
        # A denial carries its own reason (archived, no subscription, usage over limit...):
        # the page shows that reason as the "why not", and the sources as what would apply.
        return True
    if not computed.is_granted:
        return False
    if reported.has_unlimited_usage != computed.unlimited:
        return False
    if reported.has_unlimited_usage or reported.usage_limit is None:
        # Boolean and ENUM entitlements have no number to compare.
        return True
    return computed.value is not None and abs(reported.usage_limit - computed.value) <= _EPSILON


def _override(computed: Provenance, reported: Entitlement) -> Provenance:
    """Stigg's value is not explained by plan, add-ons or promotions: Inferred override."""
    lead = computed.winners[0] if computed.winners else None
    source = Source(kind="override", id="subscription", name="subscription override",
                    is_granted=reported.is_granted, value=reported.usage_limit,
                    unlimited=reported.has_unlimited_usage,
                    soft_limit=lead.soft_limit if lead else False,
                    reset_period=reported.reset_period)
    return Provenance(
        feature_id=computed.feature_id, sources=computed.sources + (source,), winners=(source,),
        label="override", value=reported.usage_limit, unlimited=reported.has_unlimited_usage,
        is_granted=reported.is_granted, soft_limit=source.soft_limit,
        reset_period=reported.reset_period, enum_values=computed.enum_values, inferred=True,
    )
