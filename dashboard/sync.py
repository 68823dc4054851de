"""Fetching from Stigg and writing the read model: the work the Celery tasks (and the
rebuild command, and the benchmark) run. Only the client speaks HTTP; only the read
model touches Redis; this module joins the two."""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from .read_model import Catalog, ReadModel, build_snapshot
from .stigg_client import (
    Customer, EnumOption, Feature, GovernanceNotEnabled, Package, PackageEntitlement, StiggClient, StiggRequestError,
    Subscription,
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


def refresh_customer(client: StiggClient, rm: ReadModel, customer_id: str, *, with_governance: bool | None = None,
                     with_promotions: bool | None = None, customer: Customer | None = None,
                     subscriptions: list[Subscription] | None = None) -> bool:
    """Fetch one customer and write it whole, atomically. Returns False when the
    customer is gone from Stigg (it is then removed from the read model).

    Requests are spent where they can change something:
    - ``with_governance`` / ``with_promotions`` None: ask for the governance tree or the
      promotions only if the customer had some last time, or is new to the read model.
      A discovery sweep passes True to find new hierarchies and promotions; an
      entitlement nothing else explains makes us ask for promotions anyway.
    - a sweep passes the ``customer`` and ``subscriptions`` it already listed for the
      whole page, saving two requests per customer.
    Raises the client's errors; the caller decides whether to retry."""
    global _governance_off_until
    cat = catalog(client, rm)
    fetched_at = now()
    if customer is None:
        try:
            customer = client.get_customer(customer_id)
        except StiggRequestError as exc:
            if exc.status == 404:
                rm.remove_customers([customer_id])
                return False
            raise
    if subscriptions is None:
        subscriptions = list(client.iter_subscriptions(customer_id))
    entitlements = client.customer_entitlements(customer_id)
    previous = rm.customer(customer_id)
    if with_governance is None:
        with_governance = previous is None or bool(previous.get("governance"))
    if with_promotions is None:
        with_promotions = previous is None or _has_promotions(previous)
    promotions = list(client.iter_promotions(customer_id)) if with_promotions else []
    # None tells the read model governance is off for this Stigg environment.
    governance: list[Any] | None = None
    if time.monotonic() >= _governance_off_until:
        governance = []  # asked for only when it may hold something; see the docstring
        if with_governance:
            try:
                governance = list(client.iter_governance(customer_id, feature_ids=_metered_feature_ids(cat)))
            except GovernanceNotEnabled:
                _governance_off_until = time.monotonic() + GOVERNANCE_RECHECK_SECONDS
                governance = None
    doc = build_snapshot(customer, subscriptions, entitlements, promotions, governance, cat.features, cat.packages,
                         fetched_at)
    if not with_promotions and _unexplained(doc):
        # A value the plan and add-ons cannot explain: most likely a promotion granted
        # since we last looked (its webhook lost). Ask, and shape the customer again.
        promotions = list(client.iter_promotions(customer_id))
        doc = build_snapshot(customer, subscriptions, entitlements, promotions, governance, cat.features,
                             cat.packages, fetched_at)
    rm.write_customer(doc)
    return True


def customer_message(customer: Customer) -> dict[str, Any]:
    """A listed customer as a JSON task argument (the page task needs no extra GET)."""
    return {"id": customer.id, "name": customer.name, "email": customer.email,
            "created_at": customer.created_at.isoformat(), "updated_at": customer.updated_at.isoformat(),
            "archived_at": customer.archived_at.isoformat() if customer.archived_at else None,
            "metadata": dict(customer.metadata)}


def customer_from_message(message: dict[str, Any]) -> Customer:
    def when(value: str | None) -> datetime | None:
        return datetime.fromisoformat(value) if value else None

    return Customer(id=message["id"], name=message["name"], email=message["email"],
                    created_at=when(message["created_at"]), updated_at=when(message["updated_at"]),  # type: ignore[arg-type]
                    archived_at=when(message["archived_at"]), metadata=message["metadata"])


def _has_promotions(doc: dict[str, Any]) -> bool:
    promotions = doc.get("promotions") or {}
    return bool(promotions.get("active") or promotions.get("expired"))


def _unexplained(doc: dict[str, Any]) -> bool:
    return any(e["provenance"]["label"] == "override"
               for group in doc["entitlements"].values() for e in group)
