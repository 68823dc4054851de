"""Governance rules (stigg-api.md §9): the stored documents of entity types, entities
and assignments (budgets), the hierarchy's ancestors, attribution of usage to budgets
(§9.4) and the check with dimensions (§9.6).

Storage: ``entities.parent_id`` holds the hierarchy (one parent per entity); the entity
``doc`` is the wire Entity (it has no parentId). ``assignments.doc`` is the wire
Assignment without ``parentId``, which is read from the entity at render time so every
assignment of an entity shows its *current* parent. ``assignment_usage`` holds the
attributed usage per assignment and cadence window, so the tree never sums raw usage.
The ``*_doc``/``*_row`` helpers below are what a bulk seeder should use to write rows
that the routes read back unchanged.

Writes that shape the hierarchy are in hierarchy.py; the governance tree query is in
governance_tree.py.
"""
from __future__ import annotations

import logging
import sqlite3
from datetime import datetime
from typing import Any, Iterable

from .. import clock, periods, store
from .entitlements import evaluate_feature

log = logging.getLogger(__name__)

SCOPE_SEPARATOR = "\x1f"  # never part of a sane id, so distinct scope sets never share a key
# Inferred: a check without requestedUsage asks for one more unit, so a budget that is
# exactly spent denies (mirrors "may I use one more?").
DEFAULT_REQUESTED_USAGE = 1.0


# --- documents and rows shared with the bulk seeder ----------------------------------


def capability_key(feature_id: str | None, currency_id: str | None) -> str:
    return f"feature:{feature_id}" if feature_id is not None else f"currency:{currency_id}"


def scope_key(scope_entity_ids: Iterable[str]) -> str:
    """The scope part of the natural key: order-insensitive, duplicates ignored."""
    return SCOPE_SEPARATOR.join(sorted(set(scope_entity_ids)))


def window_key(start: datetime) -> str:
    """``assignment_usage.window_start``: the window start as clock.iso text."""
    return clock.iso(start)  # type: ignore[return-value]


def entity_type_doc(type_id: str, display_name: str, attribution_keys: list[str], description: str | None,
                    created_at: str, updated_at: str) -> dict[str, Any]:
    return {"id": type_id, "displayName": display_name, "description": description,
            "attributionKeys": list(attribution_keys), "createdAt": created_at, "updatedAt": updated_at}


def entity_doc(entity_id: str, entity_type_id: str, display_name: str | None, metadata: dict[str, str],
               created_at: str, updated_at: str, archived_at: str | None = None) -> dict[str, Any]:
    return {"id": entity_id, "entityTypeId": entity_type_id, "displayName": display_name,
            "metadata": dict(metadata), "createdAt": created_at, "updatedAt": updated_at, "archivedAt": archived_at}


ENTITY_INSERT = ("INSERT INTO entities (customer_id, id, entity_type_id, display_name, parent_id, archived_at, doc) "
                 "VALUES (?, ?, ?, ?, ?, ?, ?)")


def entity_row(customer_id: str, doc: dict[str, Any], parent_id: str | None) -> tuple[Any, ...]:
    """Parameters for ENTITY_INSERT."""
    return (customer_id, doc["id"], doc["entityTypeId"], doc["displayName"], parent_id, doc["archivedAt"],
            store.dumps(doc))


def assignment_doc(assignment_id: str, entity_id: str, feature_id: str | None, currency_id: str | None,
                   scope_entity_ids: Iterable[str], usage_limit: float | None, cadence: str,
                   created_at: str, updated_at: str) -> dict[str, Any]:
    doc: dict[str, Any] = {"id": assignment_id, "entityId": entity_id}
    if feature_id is not None:
        doc["featureId"] = feature_id
    else:
        doc["currencyId"] = currency_id
    doc.update({"scopeEntityIds": sorted(set(scope_entity_ids)), "usageLimit": usage_limit, "cadence": cadence,
                "createdAt": created_at, "updatedAt": updated_at})
    return doc


ASSIGNMENT_INSERT = ("INSERT INTO assignments (id, customer_id, entity_id, capability, scope_key, doc) "
                     "VALUES (?, ?, ?, ?, ?, ?)")


def assignment_row(customer_id: str, doc: dict[str, Any]) -> tuple[Any, ...]:
    """Parameters for ASSIGNMENT_INSERT."""
    return (doc["id"], customer_id, doc["entityId"], capability_key(doc.get("featureId"), doc.get("currencyId")),
            scope_key(doc["scopeEntityIds"]), store.dumps(doc))


def render_assignment(doc: dict[str, Any], parent_id: str | None) -> dict[str, Any]:
    return {**doc, "parentId": parent_id}


def utilization(usage_limit: float | None, current_usage: float | None) -> float | None:
    """Guarantee 34: usage/limit, 1 when the limit is 0, null without a limit."""
    if usage_limit is None or current_usage is None:
        return None
    if usage_limit == 0:
        return 1.0
    return current_usage / usage_limit


# --- the hierarchy ---------------------------------------------------------------------


def find_entity(c: sqlite3.Connection, customer_id: str, entity_id: str) -> sqlite3.Row | None:
    """The entity's id, parent_id and archived_at, or None when it does not exist."""
    return c.execute("SELECT id, parent_id, archived_at FROM entities WHERE customer_id=? AND id=?",
                     (customer_id, entity_id)).fetchone()


def ancestors(c: sqlite3.Connection, customer_id: str, entity_id: str) -> list[str]:
    """Parent, grandparent, … of an entity (bounded, in case stored data has a loop)."""
    out: list[str] = []
    seen = {entity_id}
    current = entity_id
    for _ in range(64):
        row = c.execute("SELECT parent_id FROM entities WHERE customer_id=? AND id=?", (customer_id, current)).fetchone()
        if row is None or row["parent_id"] is None or row["parent_id"] in seen:
            break
        current = row["parent_id"]
        seen.add(current)
        out.append(current)
    return out


# --- §9.4 attribution ----------------------------------------------------------------------


def dimension_text(value: Any) -> str:
    """A dimension value as text: booleans as JSON writes them, whole floats without '.0'.
    Attribution (the entity id a value names) and meters (conditions, unique values,
    history groups) read dimension values the same way."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def resolve_dimensions(c: sqlite3.Connection, customer_id: str, dims: dict[str, Any]) -> list[list[str]]:
    """One chain (leaf first, then every ancestor) per dimension that names a live entity
    of a type carrying that attribution key (§9.4 steps 1–2)."""
    if not dims:
        return []
    keys: dict[str, set[str]] = {}
    for row in c.execute("SELECT doc FROM entity_types"):
        doc = store.loads(row["doc"])
        for key in doc["attributionKeys"]:
            keys.setdefault(key, set()).add(doc["id"])
    chains = []
    for key, value in dims.items():
        if key not in keys:
            continue
        row = c.execute("SELECT id, entity_type_id FROM entities WHERE customer_id=? AND id=? AND archived_at IS NULL",
                        (customer_id, dimension_text(value))).fetchone()
        if row is None or row["entity_type_id"] not in keys[key]:
            continue
        chains.append([row["id"], *ancestors(c, customer_id, row["id"])])
    return chains


def applicable(c: sqlite3.Connection, customer_id: str, capability: str, resolved: set[str]) -> list[dict[str, Any]]:
    """Assignments of the capability on resolved entities whose scope is inside the set
    (guarantee 33)."""
    if not resolved:
        return []
    marks = ",".join("?" * len(resolved))
    rows = c.execute(
        f"SELECT doc FROM assignments WHERE customer_id=? AND capability=? AND entity_id IN ({marks}) ORDER BY seq",
        [customer_id, capability, *resolved]).fetchall()
    docs = [store.loads(r["doc"]) for r in rows]
    return [d for d in docs if set(d["scopeEntityIds"]) <= resolved]


def window(doc: dict[str, Any], at: datetime) -> tuple[datetime, datetime]:
    """The budget's cadence window that contains ``at``; ValueError for a bad cadence."""
    return periods.cadence_window(doc["cadence"], clock.parse(doc["createdAt"]), at)


def usage_in(c: sqlite3.Connection, assignment_id: str, start: datetime) -> float:
    """A budget's attributed usage in the window that starts at ``start``."""
    row = c.execute("SELECT usage FROM assignment_usage WHERE assignment_id=? AND window_start=?",
                    (assignment_id, window_key(start))).fetchone()
    return float(row["usage"]) if row else 0.0


def attribute(c: sqlite3.Connection, customer_id: str, feature_id: str, dimensions: dict[str, Any], value: float,
              ts: datetime) -> list[dict[str, Any]]:
    """Add attributed usage to every applicable budget (guarantee 31: the entity and every
    ancestor). Runs inside the caller's write transaction; returns the v2 usage response
    ``entities`` items for the assignments it touched."""
    if not dimensions or not store.get_control(c).get("governanceEnabled", True):
        return []
    resolved = {entity for chain in resolve_dimensions(c, customer_id, dimensions) for entity in chain}
    out = []
    for doc in applicable(c, customer_id, capability_key(feature_id, None), resolved):
        try:
            start, _end = window(doc, ts)
        except ValueError:
            log.warning("assignment %s has an unreadable cadence %r", doc["id"], doc["cadence"])
            continue
        updated = clock.iso(clock.now())
        c.execute(
            "INSERT INTO assignment_usage (assignment_id, window_start, usage, updated_at) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (assignment_id, window_start) DO UPDATE SET usage = usage + excluded.usage, "
            "updated_at = excluded.updated_at",
            (doc["id"], window_key(start), float(value), updated))
        out.append({
            "customerId": customer_id, "resourceId": None, "entityId": doc["entityId"], "entitlementId": doc["id"],
            "featureId": feature_id, "scopeEntityIds": doc["scopeEntityIds"],
            "currentUsage": usage_in(c, doc["id"], start), "usageUpdatedAt": updated,
        })
    return out


# --- §9.6 the check with dimensions ------------------------------------------------------------


def chains(c: sqlite3.Connection, customer_id: str, capability: str, dims: dict[str, str],
            requested: float) -> list[list[dict[str, Any]]]:
    """One chain per resolved dimension, leaf → root, one node per applicable budget.
    Inferred: an entity of the chain with no applicable budget still shows, as one node
    with a null limit and zero usage, so the chain mirrors the hierarchy."""
    entity_chains = resolve_dimensions(c, customer_id, dims)
    resolved = {e for chain in entity_chains for e in chain}
    by_entity: dict[str, list[dict[str, Any]]] = {}
    for doc in applicable(c, customer_id, capability, resolved):
        by_entity.setdefault(doc["entityId"], []).append(doc)
    now = clock.now()
    out = []
    for chain in entity_chains:
        nodes = []
        for entity_id in chain:
            budgets = by_entity.get(entity_id)
            if not budgets:
                nodes.append({"entityId": entity_id, "usageLimit": None, "currentUsage": 0.0, "isGranted": True,
                              "scopeEntityIds": []})
                continue
            for doc in budgets:
                try:
                    usage = usage_in(c, doc["id"], window(doc, now)[0])
                except ValueError:
                    usage = 0.0
                limit = doc["usageLimit"]
                nodes.append({"entityId": entity_id, "usageLimit": limit, "currentUsage": usage,
                              "isGranted": limit is None or usage + requested <= limit,
                              "scopeEntityIds": doc["scopeEntityIds"]})
        out.append(nodes)
    return out


def check(c: sqlite3.Connection, customer_id: str, feature_id: str | None, currency_id: str | None, *,
          requested_usage: float | None, requested_values: list[str] | None, resource_id: str | None,
          dims: dict[str, str]) -> dict[str, Any]:
    """The v1-beta check: the base entitlement, then, when dimensions are sent, every
    chain of budgets they resolve to."""
    if feature_id is not None:
        result = dict(evaluate_feature(c, customer_id, feature_id, resource_id=resource_id,
                                       requested_usage=requested_usage, requested_values=requested_values))
    else:
        # Inferred: the emulator models no credit pools, so a currency is never funded and
        # the base entitlement fails with NoActiveSubscription (§9.6).
        result = {"type": "CREDIT", "isGranted": False, "accessDeniedReason": "NoActiveSubscription",
                  "currency": {"currencyId": currency_id, "displayName": currency_id}, "currentUsage": 0,
                  "usageLimit": 0, "usageUpdatedAt": clock.iso(clock.now())}
    if not dims:
        return result  # guarantee 32: chains only when dimensions are sent
    if not store.get_control(c).get("governanceEnabled", True):
        result["chains"] = []  # Inferred: governance off → nothing to consult
        return result
    requested = requested_usage if requested_usage is not None else DEFAULT_REQUESTED_USAGE
    found = chains(c, customer_id, capability_key(feature_id, currency_id), dims, requested)
    result["chains"] = found
    if result.get("isGranted"):
        # Governance is consulted only once the base entitlement passes; any failing
        # node of any chain denies (guarantee 32).
        failing = [n for chain in found for n in chain if not n["isGranted"]]
        if failing:
            result["isGranted"] = False
            spent = any(n["currentUsage"] >= n["usageLimit"] for n in failing)
            result["accessDeniedReason"] = "BudgetExceeded" if spent else "RequestedUsageExceedingLimit"
    return result
