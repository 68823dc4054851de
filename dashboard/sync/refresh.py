"""Fetching from Stigg and writing the read model: the work the Celery tasks (and the
rebuild command, and the benchmark) run. Only the client speaks HTTP; only the read
model touches Redis; this module joins the two."""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from ..readmodel import Catalog, GovernanceWrite, ReadModel, UsageSeriesDoc, empty_governance, iso
from ..readmodel.syncstate import hot_threshold
from ..rules.governance import capability_key
from ..codec import dump, load, load_all
from .governance import shape_governance
from .shaping import build_snapshot
from ..stigg import (
    Customer, EntityType, Feature, GovernanceNotEnabled, Package,
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
    currencies: frozenset[str] = frozenset()


def _typed_catalog(features: list[Feature], packages: list[Package]) -> TypedCatalog:
    # Every currency a plan or add-on grants credits in: the governance sync asks the
    # hierarchy for budgets in these (currencyIds), as it does for metered features.
    currencies = frozenset(c.currency_id for p in packages for c in p.credits)
    return TypedCatalog({f.id: f for f in features}, {p.id: p for p in packages}, time.monotonic(), currencies)


_catalog: TypedCatalog | None = None
_governance_off_until = 0.0


def now() -> datetime:
    return datetime.now(timezone.utc)


def refresh_catalog(client: StiggClient, rm: ReadModel) -> TypedCatalog:
    """Features, plans and add-ons, and governance's entity types, from Stigg into the
    read model (once per sweep). Governance switched off is an answer, not a failure: the
    catalog is stored all the same, saying so."""
    global _catalog
    features = list(client.iter_features())
    packages = list(client.iter_packages())
    entity_types = _entity_types(client)
    rm.write_catalog(dump(features), dump(packages), now(),
                     entity_types=None if entity_types is None else dump(entity_types))
    _catalog = _typed_catalog(features, packages)
    return _catalog


def _entity_types(client: StiggClient) -> list[EntityType] | None:
    """The environment's entity types; None when governance is not enabled. Either answer
    also tells this worker's customer refreshes whether to ask for hierarchies."""
    global _governance_off_until
    try:
        types = list(client.iter_entity_types())
    except GovernanceNotEnabled:
        _governance_off_until = time.monotonic() + GOVERNANCE_RECHECK_SECONDS
        return None
    _governance_off_until = 0.0  # on (again): no need to wait out the recheck
    return types


def _typed(cat: Catalog) -> TypedCatalog:
    return _typed_catalog(load_all(Feature, cat.features.values()), load_all(Package, cat.packages.values()))


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
            customer = load(Customer, previous["stigg"]["customer"])
    if subscriptions is None:
        subscriptions = (list(client.iter_subscriptions(customer_id)) if "subscriptions" in parts or previous is None
                         else load_all(Subscription, previous["stigg"]["subscriptions"]))
    entitlements = client.customer_entitlements(customer_id)
    had_promotions = previous is None or _has_promotions(previous)
    asked_promotions = "promotions" in parts and (discover or had_promotions or parts != PARTS)
    if asked_promotions:
        promotions = list(client.iter_promotions(customer_id))
    else:
        promotions = (load_all(Promotion, previous["stigg"]["promotions"])
                      if previous is not None and "promotions" not in parts else [])
    governance = _governance(client, rm, customer_id, cat, previous, parts, discover, fetched_at)
    summary = governance["summary"] if governance is not None else (
        previous["governance"] if previous is not None else empty_governance(False)["summary"])
    doc = build_snapshot(customer, subscriptions, entitlements, promotions, summary, cat.features, cat.packages,
                         fetched_at)
    if not asked_promotions and _unexplained(doc):
        # A value the plan and add-ons cannot explain: most likely a promotion granted
        # since we last looked (its webhook lost). Ask, and shape the customer again.
        promotions = list(client.iter_promotions(customer_id))
        doc = build_snapshot(customer, subscriptions, entitlements, promotions, summary, cat.features,
                             cat.packages, fetched_at)
    if previous is not None and _unchanged(previous, doc):
        # The same answers, the hierarchy's included (its fingerprint is in the summary).
        rm.touch_customer(previous, fetched_at)
    else:
        rm.write_customer(doc, governance)
    return True


def _unchanged(previous: dict[str, Any], doc: dict[str, Any]) -> bool:
    """Same content (JSON values compare equal, 85 == 85.0), apart from when it was
    read; a previous error must be cleared by a real write."""
    if previous.get("error"):
        return False
    skip = ("fetched_at", "error", "error_at")
    return all(previous.get(k) == v for k, v in doc.items() if k not in skip) and len(previous) == len(doc)


def _governance(client: StiggClient, rm: ReadModel, customer_id: str, cat: TypedCatalog,
                previous: dict[str, Any] | None, parts: frozenset[str], discover: bool,
                fetched_at: datetime) -> GovernanceWrite | None:
    """The customer's whole hierarchy, shaped; None to keep the stored one (not asked for,
    or a hot-tier poll found nothing changed near a limit).

    Asked only of customers that had a hierarchy last time, unless ``discover`` is set.
    The whole hierarchy is every entity (tree mode, so entities without a budget appear)
    and every budget of every metered feature and currency (hydrated mode)."""
    global _governance_off_until
    if time.monotonic() < _governance_off_until:
        return empty_governance(False)
    summary = previous["governance"] if previous is not None else None
    if "governance" not in parts:
        return None
    if summary is not None and not (discover or summary["entities"]):
        return None  # it had none: a discovery sweep asks again
    features, currencies = _metered_feature_ids(cat), sorted(cat.currencies)
    try:
        if summary is not None and summary["budgets"] and parts == POLL_PARTS \
                and not _changed_near_limit(client, rm, customer_id, features, currencies):
            return None
        entities = list(client.iter_governance(customer_id))
        rows = list(client.iter_governance(customer_id, feature_ids=features, currency_ids=currencies)) \
            if entities and (features or currencies) else []
    except GovernanceNotEnabled:
        _governance_off_until = time.monotonic() + GOVERNANCE_RECHECK_SECONDS
        return empty_governance(False)
    return shape_governance(entities, rows, fetched_at)


def _changed_near_limit(client: StiggClient, rm: ReadModel, customer_id: str, features: list[str],
                        currencies: list[str]) -> bool:
    """A hot-tier poll asks Stigg only for the budgets at or above the hot threshold
    (minUtilization: one page, not the whole hierarchy) and compares their usage with
    what is stored; anything new, gone or moved there means the whole hierarchy is read
    again (time to limit and what blocks depend on all of it)."""
    threshold = hot_threshold()
    rows = client.iter_governance(customer_id, feature_ids=features, currency_ids=currencies,
                                  min_utilization=threshold)
    seen = {(r.entity_id, capability_key(r.feature_id, r.currency_id), tuple(sorted(r.scope_entity_ids))):
            r.current_usage for r in rows if r.feature_id is not None or r.currency_id is not None}
    return seen != rm.budgets_at_or_above(customer_id, threshold)


def customer_message(customer: Customer) -> dict[str, Any]:
    """A listed customer as a JSON task argument (the page task needs no extra GET)."""
    return dump(customer)  # type: ignore[no-any-return]


def customer_from_message(message: dict[str, Any]) -> Customer:
    return load(Customer, message)


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
