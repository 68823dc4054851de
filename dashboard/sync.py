"""Fetching from Stigg and writing the read model: the work the Celery tasks (and the
rebuild command, and the benchmark) run. Only the client speaks HTTP; only the read
model touches Redis; this module joins the two."""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from .read_model import Catalog, ReadModel, UsageSeriesDoc, build_snapshot, iso
from .stigg import (
    AddonQuantity, Customer, EnumOption, Feature, GovernanceNode, GovernanceNotEnabled, Package, PackageEntitlement,
    Promotion, StiggClient, StiggRequestError, Subscription,
)

log = logging.getLogger(__name__)

# How long a worker trusts the catalog it loaded (the sweep refreshes it from Stigg).
CATALOG_MAX_AGE_SECONDS = 300.0
# After Stigg says governance is off, ask again only this often.
GOVERNANCE_RECHECK_SECONDS = 600.0


@dataclass
class TypedCatalog:
    features: dict[str, Feature]
    packages: dict[str, Package]
    loaded_at: float


_catalog: TypedCatalog | None = None
_governance_off_until = 0.0


def now() -> datetime:
    return datetime.now(timezone.utc)


def refresh_catalog(client: StiggClient, rm: ReadModel) -> TypedCatalog:
    """Features, plans and add-ons from Stigg into the read model (once per sweep)."""
    global _catalog
    features = list(client.iter_features())
    packages = list(client.iter_packages())
    rm.write_catalog(features, packages, now())
    _catalog = TypedCatalog({f.id: f for f in features}, {p.id: p for p in packages}, time.monotonic())
    return _catalog


def _typed(cat: Catalog) -> TypedCatalog:
    features = {
        fid: Feature(**{**f, "enum_options": tuple(EnumOption(**o) for o in f.get("enum_options") or ())})
        for fid, f in cat.features.items()
    }
    packages = {}
    for pid, p in cat.packages.items():
        ents = tuple(
            PackageEntitlement(**{**e, "enum_values": tuple(e["enum_values"]) if e.get("enum_values") is not None
                                  else None})
            for e in p.get("entitlements") or ()
        )
        packages[pid] = Package(**{**p, "entitlements": ents})
    return TypedCatalog(features, packages, time.monotonic())


def catalog(client: StiggClient, rm: ReadModel) -> TypedCatalog:
    """The catalog this worker uses: its own copy while fresh, else the read model's,
    else Stigg's."""
    global _catalog
    if _catalog is not None and time.monotonic() - _catalog.loaded_at < CATALOG_MAX_AGE_SECONDS:
        return _catalog
    stored = rm.catalog()
    if stored is not None and stored.fetched_at is not None \
            and (now() - stored.fetched_at).total_seconds() < CATALOG_MAX_AGE_SECONDS:
        _catalog = _typed(stored)
        return _catalog
    return refresh_catalog(client, rm)


def _metered_feature_ids(cat: TypedCatalog) -> list[str]:
    return sorted(f.id for f in cat.features.values() if f.metered)


PARTS = frozenset({"customer", "subscriptions", "entitlements", "promotions", "governance"})
# What each kind of Stigg webhook can change (the prefix of its type). Anything else,
# or a customer we hold no good document for, gets a full refresh.
WEBHOOK_PARTS: dict[str, frozenset[str]] = {
    "promotional_entitlement": frozenset({"entitlements", "promotions"}),
    "subscription": frozenset({"subscriptions", "entitlements"}),
    "trial": frozenset({"subscriptions", "entitlements"}),
    "customer": frozenset({"customer", "entitlements"}),
    "entitlements": frozenset({"entitlements", "governance"}),
    "entitlement": frozenset({"entitlements", "governance"}),
}
# A poll of the hot tier looks for usage: entitlements, and budgets if it has any.
POLL_PARTS = frozenset({"entitlements", "governance"})


def parts_for_webhook(event_type: str) -> frozenset[str]:
    return WEBHOOK_PARTS.get(event_type.split(".", 1)[0], PARTS)


def refresh_customer(client: StiggClient, rm: ReadModel, customer_id: str, *, parts: frozenset[str] = PARTS,
                     discover: bool = False, customer: Customer | None = None,
                     subscriptions: list[Subscription] | None = None) -> bool:
    """Fetch a customer and write it whole, atomically. Returns False when the customer
    is gone from Stigg (it is then removed from the read model).

    Requests are spent where they can change something:
    - ``parts`` names what to ask Stigg for; the rest is taken from the customer's last
      good document (a promotion webhook needs entitlements and promotions, 2 requests,
      not 5). Without a good document everything is fetched.
    - promotions and budgets are asked for only if the customer had some last time, or
      ``discover`` is set (a discovery sweep finds new ones); an entitlement nothing
      else explains makes us ask for promotions anyway.
    - a sweep passes the ``customer`` and ``subscriptions`` it already listed for the
      whole page, saving two requests per customer.
    Raises the client's errors; the caller decides whether to retry."""
    cat = catalog(client, rm)
    fetched_at = now()
    previous = rm.customer(customer_id)
    if previous is None or previous.get("fetched_at") is None:
        previous, parts = None, PARTS
    if customer is None:
        if "customer" in parts or previous is None:
            try:
                customer = client.get_customer(customer_id)
            except StiggRequestError as exc:
                if exc.status == 404:
                    rm.remove_customers([customer_id])
                    return False
                raise
        else:
            customer = _customer_from_profile(previous["profile"])
    if subscriptions is None:
        subscriptions = (list(client.iter_subscriptions(customer_id)) if "subscriptions" in parts or previous is None
                         else _subscriptions_from_doc(customer_id, previous))
    entitlements = client.customer_entitlements(customer_id)
    had_promotions = previous is None or _has_promotions(previous)
    asked_promotions = "promotions" in parts and (discover or had_promotions or parts != PARTS)
    if asked_promotions:
        promotions = list(client.iter_promotions(customer_id))
    else:
        promotions = _promotions_from_doc(previous) if previous is not None and "promotions" not in parts else []
    governance = _governance(client, rm, customer_id, cat, previous, parts, discover)
    doc = build_snapshot(customer, subscriptions, entitlements, promotions, governance, cat.features, cat.packages,
                         fetched_at)
    if not asked_promotions and _unexplained(doc):
        # A value the plan and add-ons cannot explain: most likely a promotion granted
        # since we last looked (its webhook lost). Ask, and shape the customer again.
        promotions = list(client.iter_promotions(customer_id))
        doc = build_snapshot(customer, subscriptions, entitlements, promotions, governance, cat.features,
                             cat.packages, fetched_at)
    if previous is not None and _unchanged(previous, doc):
        rm.touch_customer(previous, fetched_at)
    else:
        rm.write_customer(doc)
    return True


def _unchanged(previous: dict[str, Any], doc: dict[str, Any]) -> bool:
    """Same content (JSON values compare equal, 85 == 85.0), apart from when it was
    read; a previous error must be cleared by a real write."""
    if previous.get("error"):
        return False
    skip = ("fetched_at", "error", "error_at")
    return all(previous.get(k) == v for k, v in doc.items() if k not in skip) and len(previous) == len(doc)


def _governance(client: StiggClient, rm: ReadModel, customer_id: str, cat: TypedCatalog,
                previous: dict[str, Any] | None, parts: frozenset[str], discover: bool) -> list[GovernanceNode] | None:
    """The customer's budgets; None when governance is off for the Stigg environment."""
    global _governance_off_until
    if time.monotonic() < _governance_off_until:
        return None
    had = previous is None or bool(previous.get("governance"))
    if "governance" not in parts:
        return _governance_from_doc(previous) if previous is not None else []
    if not (discover or had):
        return []
    try:
        return list(client.iter_governance(customer_id, feature_ids=_metered_feature_ids(cat)))
    except GovernanceNotEnabled:
        _governance_off_until = time.monotonic() + GOVERNANCE_RECHECK_SECONDS
        return None


# --- the last good document back into typed values (for targeted refreshes) -------------


def _when(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _customer_from_profile(p: dict[str, Any]) -> Customer:
    return Customer(id=p["id"], name=p["name"], email=p["email"], created_at=_when(p["created_at"]),  # type: ignore[arg-type]
                    updated_at=_when(p["updated_at"]), archived_at=_when(p["archived_at"]),  # type: ignore[arg-type]
                    metadata=dict(p["metadata"]))


def _subscriptions_from_doc(customer_id: str, doc: dict[str, Any]) -> list[Subscription]:
    return [Subscription(id=s["id"], customer_id=customer_id, plan_id=s["plan_id"], status=s["status"],
                         resource_id=s["resource_id"], start_date=_when(s["start_date"]),  # type: ignore[arg-type]
                         end_date=_when(s["end_date"]), trial_end_date=_when(s["trial_end_date"]),
                         cancellation_date=_when(s["cancellation_date"]),
                         current_billing_period_end=_when(s["current_billing_period_end"]),
                         pricing_type=s["pricing_type"],
                         addons=tuple(AddonQuantity(a["id"], a["quantity"]) for a in s["addons"]))
            for s in doc["subscriptions"]]


def _promotions_from_doc(doc: dict[str, Any]) -> list[Promotion]:
    return [Promotion(id=p["id"], feature_id=p["feature_id"], status=p["status"], period=p["period"],
                      start_date=_when(p["start_date"]), end_date=_when(p["end_date"]),  # type: ignore[arg-type]
                      usage_limit=p["usage_limit"], has_unlimited_usage=p["unlimited"], has_soft_limit=p["soft_limit"],
                      enum_values=tuple(p["enum_values"]) or None, reset_period=p["reset_period"],
                      created_at=_when(p["start_date"]))  # type: ignore[arg-type]
            for group in ("active", "expired") for p in doc["promotions"][group]]


def _governance_from_doc(doc: dict[str, Any]) -> list[GovernanceNode] | None:
    if not doc.get("governance_enabled"):
        return None
    return [GovernanceNode(entity_id=n["entity_id"], entity_type_id=n["entity_type_id"],
                           display_name=n["display_name"], parent_id=n["parent_id"], feature_id=n["feature_id"],
                           currency_id=n["currency_id"], scope_entity_ids=tuple(n["scope"]), cadence=n["cadence"],
                           usage_limit=n["limit"], current_usage=n["usage"], utilization=n["utilization"],
                           usage_period_start=_when(n["period_start"]), usage_period_end=_when(n["period_end"]))
            for n in doc["governance"]]


def customer_message(customer: Customer) -> dict[str, Any]:
    """A listed customer as a JSON task argument (the page task needs no extra GET)."""
    return {"id": customer.id, "name": customer.name, "email": customer.email,
            "created_at": customer.created_at.isoformat(), "updated_at": customer.updated_at.isoformat(),
            "archived_at": customer.archived_at.isoformat() if customer.archived_at else None,
            "metadata": dict(customer.metadata)}


def customer_from_message(message: dict[str, Any]) -> Customer:
    return _customer_from_profile(message)  # the message has the profile's keys


def _has_promotions(doc: dict[str, Any]) -> bool:
    promotions = doc.get("promotions") or {}
    return bool(promotions.get("active") or promotions.get("expired"))


def _unexplained(doc: dict[str, Any]) -> bool:
    return any(e["provenance"]["label"] == "override"
               for group in doc["entitlements"].values() for e in group)


def refresh_usage_history(client: StiggClient, rm: ReadModel, customer_id: str, days: int) -> bool:
    """Fetch the last ``days`` days of usage for each metered feature of a customer (one
    request per feature) and store them whole. The customer page's charts read this.

    Fetched on demand (a page that shows the charts, "Refresh now"), not by the sweep:
    history changes slowly and costs a request per feature, so the sweep's share of the
    request rate is not spent on charts nobody opens. Returns False when the customer is not in the read
    model (nothing to chart). A feature Stigg refuses (e.g. deleted meanwhile) gets its
    error recorded and the others are still stored; Stigg being unavailable raises."""
    doc = rm.customer(customer_id)
    if doc is None:
        return False
    fetched_at = now()
    start = (fetched_at - timedelta(days=days)).replace(hour=0, minute=0, second=0, microsecond=0)
    features: dict[str, UsageSeriesDoc] = {}
    for ent in doc["entitlements"]["metered"]:
        fid = ent["feature_id"]
        try:
            history = client.usage_history(customer_id, fid, start)  # up to Stigg's own "now"
        except StiggRequestError as exc:
            if exc.status == 404 and "customer" in (exc.code or "").lower():
                return False
            log.warning("Usage history of %s / %s refused: %s", customer_id, fid, exc)
            features[fid] = {"feature_id": fid, "points": [], "resets": [], "error": str(exc)[:500]}
            continue
        # Without groupBy there is one series; several would be per-dimension splits: sum them.
        totals: dict[datetime, float] = {}
        for series in history.series:
            for p in series.points:
                totals[p.timestamp] = totals.get(p.timestamp, 0.0) + p.value
        features[fid] = {
            "feature_id": fid,
            "points": [(iso(t) or "", v) for t, v in sorted(totals.items())],
            "resets": sorted(iso(t) or "" for t in history.resets),
            "error": None,
        }
    rm.write_usage_history(customer_id, {"fetched_at": iso(fetched_at) or "", "start": iso(start) or "",
                                         "features": features})
    return True
