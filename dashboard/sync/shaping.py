"""Shaping Stigg's answers into the documents the read model stores: one customer's
profile, subscriptions, entitlements grouped by shape with where each value comes from,
promotions and budgets. Pure: no Redis, no HTTP."""
from __future__ import annotations

from datetime import datetime
from typing import Mapping, Sequence

from ..provenance import Provenance, explain_entitlement
from ..readmodel import CustomerDocument, EntitlementDoc, GovernanceSummary, iso
from ..readmodel.documents import EntitlementGroups, PromotionDoc, PromotionGroups, ProvenanceDoc, SubscriptionDoc
from ..readmodel.values import epoch
from ..codec import dump
from ..stigg import (
    Customer, CustomerEntitlements, Entitlement, Feature, Package, Promotion, Subscription,
)

ACTIVE_STATUSES = ("ACTIVE", "IN_TRIAL")


def utilization(usage: float | None, limit: float | None, unlimited: bool) -> float | None:
    """usage / limit, or None when there is no finite positive limit.

    Inferred: a limit of 0 yields None rather than infinity, so one blocked feature does not
    dominate every ranking; the page still shows "0 of 0" from the document."""
    if unlimited or usage is None or limit is None or limit <= 0:
        return None
    return usage / limit


def _shape(feature: Feature | None, ent: Entitlement) -> str:
    feature_type = feature.feature_type if feature else ent.feature_type
    if feature_type == "BOOLEAN":
        return "boolean"
    if feature_type == "ENUM":
        return "configuration"
    if feature is not None:
        return "metered" if feature.metered else "configuration"
    # Inferred: a feature missing from the catalog is metered when Stigg reports usage.
    return "metered" if ent.current_usage is not None else "configuration"


def _provenance_doc(p: Provenance) -> ProvenanceDoc:
    winners = {id(w) for w in p.winners}
    return {
        "label": p.label,
        "inferred": p.inferred,
        "sources": [{
            "kind": s.kind, "id": s.id, "name": s.name, "is_granted": s.is_granted, "value": s.value,
            "unlimited": s.unlimited, "quantity": s.quantity, "enum_values": list(s.enum_values),
            "wins": id(s) in winners,
        } for s in p.sources],
    }


def _entitlement_doc(ent: Entitlement, feature: Feature | None, prov: Provenance) -> EntitlementDoc:
    shape = _shape(feature, ent)
    limit = None if ent.has_unlimited_usage else ent.usage_limit
    usage = ent.current_usage if shape == "metered" else None
    options = {o.value: o.display_name for o in feature.enum_options} if feature else {}
    return {
        "feature_id": ent.feature_id,
        "feature_name": feature.display_name if feature else ent.feature_name,
        "feature_type": feature.feature_type if feature else ent.feature_type,
        "shape": shape,
        "is_granted": ent.is_granted,
        "access_denied_reason": ent.access_denied_reason,
        "value": limit,
        "enum_values": list(prov.enum_values),
        "enum_display": [options.get(v, v) for v in prov.enum_values],
        "usage": usage,
        "limit": limit,
        "unlimited": ent.has_unlimited_usage,
        # The REST entitlement has no soft-limit flag: it comes from the winning source (§5.4).
        "soft_limit": prov.soft_limit,
        "utilization": utilization(usage, limit, ent.has_unlimited_usage) if shape == "metered" else None,
        "reset_period": ent.reset_period or prov.reset_period,
        "period_start": iso(ent.usage_period_start),
        "period_end": iso(ent.usage_period_end),
        "valid_until": iso(ent.valid_until),
        "units": (feature.units_plural or feature.units) if feature else None,
        "provenance": _provenance_doc(prov),
    }


def _primary_subscription(subs: Sequence[Subscription]) -> Subscription | None:
    """The subscription a list row shows: an active one first, else the most recent."""
    if not subs:
        return None
    return sorted(subs, key=lambda s: (s.status in ACTIVE_STATUSES, epoch(s.start_date)), reverse=True)[0]


def build_snapshot(
    customer: Customer,
    subscriptions: Sequence[Subscription],
    entitlements: CustomerEntitlements,
    promotions: Sequence[Promotion],
    governance: GovernanceSummary,
    features: Mapping[str, Feature],
    packages: Mapping[str, Package],
    fetched_at: datetime,
) -> CustomerDocument:
    """Shape one customer's Stigg data into the document pages read. ``governance`` is
    the summary of its hierarchy (the hierarchy itself is shaped by governance.py and
    stored apart)."""
    names = {f.id: f.display_name for f in features.values()}
    subs_docs: list[SubscriptionDoc] = []
    for s in subscriptions:
        plan = packages.get(s.plan_id)
        subs_docs.append({
            "id": s.id, "plan_id": s.plan_id, "plan_name": plan.display_name if plan else s.plan_id,
            "status": s.status, "active": s.status in ACTIVE_STATUSES, "resource_id": s.resource_id,
            "pricing_type": s.pricing_type, "start_date": iso(s.start_date) or "",
            "end_date": iso(s.end_date), "trial_end_date": iso(s.trial_end_date),
            "cancellation_date": iso(s.cancellation_date),
            "current_billing_period_end": iso(s.current_billing_period_end),
            "addons": [{"id": a.addon_id, "name": packages[a.addon_id].display_name if a.addon_id in packages
                        else a.addon_id, "quantity": a.quantity} for a in s.addons],
        })
    groups: EntitlementGroups = {"boolean": [], "configuration": [], "metered": []}
    for ent in entitlements.entitlements:
        prov = explain_entitlement(ent.feature_id, ent, subscriptions, packages, promotions)
        doc = _entitlement_doc(ent, features.get(ent.feature_id), prov)
        groups[doc["shape"]].append(doc)  # type: ignore[literal-required]
    for group in groups.values():
        group.sort(key=lambda d: d["feature_name"].casefold())
    promo_groups: PromotionGroups = {"active": [], "expired": []}
    for p in promotions:
        pdoc: PromotionDoc = {
            "id": p.id, "feature_id": p.feature_id, "feature_name": names.get(p.feature_id, p.feature_id),
            "status": p.status, "period": p.period, "start_date": iso(p.start_date) or "",
            "end_date": iso(p.end_date), "usage_limit": p.usage_limit, "unlimited": p.has_unlimited_usage,
            "soft_limit": p.has_soft_limit, "enum_values": list(p.enum_values or ()),
            "reset_period": p.reset_period,
        }
        # Paused promotions grant nothing (§6); they are listed with the expired ones.
        promo_groups["active" if p.status == "Active" else "expired"].append(pdoc)
    utils = [d["utilization"] for d in groups["metered"] if d["utilization"] is not None]
    primary = _primary_subscription(subscriptions)
    primary_plan = packages.get(primary.plan_id) if primary else None
    return {
        "id": customer.id,
        "profile": {
            "id": customer.id, "name": customer.name, "email": customer.email,
            "created_at": iso(customer.created_at), "updated_at": iso(customer.updated_at),
            "archived_at": iso(customer.archived_at), "metadata": dict(customer.metadata),
        },
        "subscriptions": subs_docs,
        "plan_id": primary.plan_id if primary else None,
        "plan_name": (primary_plan.display_name if primary_plan else primary.plan_id) if primary else None,
        "status": primary.status if primary else None,
        "access_denied_reason": entitlements.access_denied_reason,
        "entitlements": groups,
        "promotions": promo_groups,
        "governance_enabled": governance["enabled"],
        "governance": governance,
        "highest_utilization": max(utils) if utils else None,
        "stigg": {"customer": dump(customer), "subscriptions": dump(subscriptions), "promotions": dump(promotions)},
        "fetched_at": iso(fetched_at),
        "error": None,
        "error_at": None,
    }
