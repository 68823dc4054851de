"""Writes that build a customer's governance hierarchy (stigg-api.md §9.1–9.3): upserting
entity types, entities and assignments, archiving entities, and moving an entity under
a parent (the hierarchy rides on assignments). Each function writes one item inside
the caller's write transaction and raises the item's error, so a batch whose item is
rejected rolls back whole.
"""
from __future__ import annotations

import sqlite3
import uuid
from typing import Any

from .. import store
from ..http import ApiError, bad_input
from .governance import (
    ASSIGNMENT_INSERT, ENTITY_INSERT, ancestors, assignment_doc, assignment_row, capability_key, entity_doc, entity_row,
    entity_type_doc, find_entity, scope_key,
)

MAX_DEPTH = 4  # levels, a root being level 1 (guarantee 30)


def upsert_entity_type(c: sqlite3.Connection, item: dict[str, Any], now: str) -> dict[str, Any]:
    row = c.execute("SELECT doc FROM entity_types WHERE id=?", (item["id"],)).fetchone()
    old = store.loads(row["doc"]) if row else None
    description = old["description"] if old else None
    if "description" in item:
        description = item["description"] or None  # "" and null both clear it
    doc = entity_type_doc(item["id"], item["displayName"], item["attributionKeys"], description,
                          old["createdAt"] if old else now, now)
    if old:
        c.execute("UPDATE entity_types SET doc=? WHERE id=?", (store.dumps(doc), doc["id"]))
    else:
        c.execute("INSERT INTO entity_types (id, doc) VALUES (?, ?)", (doc["id"], store.dumps(doc)))
    return doc


def upsert_entity(c: sqlite3.Connection, customer_id: str, item: dict[str, Any], where: str, now: str) -> dict[str, Any]:
    row = c.execute("SELECT doc, parent_id FROM entities WHERE customer_id=? AND id=?",
                    (customer_id, item["id"])).fetchone()
    old = store.loads(row["doc"]) if row else None
    type_id = item.get("entityTypeId") or (old["entityTypeId"] if old else None)
    if type_id is None:
        raise bad_input(f"{where}: entityTypeId is required when creating entity {item['id']!r}")
    if "entityTypeId" in item and c.execute(
            "SELECT 1 FROM entity_types WHERE id=?", (type_id,)).fetchone() is None:
        raise bad_input(f"{where}: entity type {type_id!r} does not exist")  # Inferred status
    name = old["displayName"] if old else None
    if "displayName" in item:
        name = item["displayName"] or None  # "" and null both clear it
    metadata = dict(old["metadata"]) if old else {}
    for key, value in (item.get("metadata") or {}).items():
        if value == "":
            metadata.pop(key, None)
        else:
            metadata[key] = value
    doc = entity_doc(item["id"], type_id, name, metadata, old["createdAt"] if old else now, now,
                     old["archivedAt"] if old else None)
    if old:
        c.execute("UPDATE entities SET entity_type_id=?, display_name=?, doc=? WHERE customer_id=? AND id=?",
                  (type_id, name, store.dumps(doc), customer_id, doc["id"]))
    else:
        c.execute(ENTITY_INSERT, entity_row(customer_id, doc, None))
    return doc


def set_archived(c: sqlite3.Connection, customer_id: str, ids: list[str], archived: bool, now: str) -> None:
    docs = []
    for entity_id in ids:
        row = c.execute("SELECT doc FROM entities WHERE customer_id=? AND id=?", (customer_id, entity_id)).fetchone()
        if row is None:
            raise bad_input(f"Entity {entity_id!r} does not exist")  # Inferred: 400, a body id
        docs.append(store.loads(row["doc"]))
    for doc in docs:
        if archived == (doc["archivedAt"] is not None):
            continue  # already in the asked state: idempotent
        doc["archivedAt"] = now if archived else None
        doc["updatedAt"] = now
        c.execute("UPDATE entities SET archived_at=?, doc=? WHERE customer_id=? AND id=?",
                  (doc["archivedAt"], store.dumps(doc), customer_id, doc["id"]))
        if archived:
            # Guarantee 36: not leaf-gated; archiving a parent orphans its children.
            # Inferred: they become roots (and unarchiving does not re-attach them).
            c.execute("UPDATE entities SET parent_id=NULL WHERE customer_id=? AND parent_id=?",
                      (customer_id, doc["id"]))


def set_parent(c: sqlite3.Connection, customer_id: str, entity_id: str, parent_id: str | None, where: str) -> None:
    """Guarantee 30: move an entity under ``parent_id`` (None = make it a root)."""
    current = find_entity(c, customer_id, entity_id)["parent_id"]
    if current == parent_id:
        return
    if parent_id is not None:
        parent = find_entity(c, customer_id, parent_id)
        if parent is None or parent["archived_at"] is not None:
            raise bad_input(f"{where}: parent entity {parent_id!r} does not exist")  # Inferred: archived = gone
        chain = [parent_id, *ancestors(c, customer_id, parent_id)]
        if entity_id in chain:
            raise bad_input(f"{where}: parent {parent_id!r} would make a cycle")
    has_children = c.execute(
        "SELECT 1 FROM entities WHERE customer_id=? AND parent_id=? AND archived_at IS NULL LIMIT 1",
        (customer_id, entity_id)).fetchone() is not None
    if has_children:
        # Documented live behaviour: reparenting is leaf-only and the service answers an
        # opaque 500. Inferred: any change of parent of a node with children, including
        # placing a childful root under a parent; x-should-retry stops the SDK retrying.
        raise ApiError(500, "InternalServerError", f"{where}: entity {entity_id!r} has children and cannot be moved",
                       headers={"x-should-retry": "false"})
    if parent_id is not None and len(chain) + 1 > MAX_DEPTH:
        raise bad_input(f"{where}: placing {entity_id!r} under {parent_id!r} makes the tree deeper than {MAX_DEPTH}")
    c.execute("UPDATE entities SET parent_id=? WHERE customer_id=? AND id=?", (parent_id, customer_id, entity_id))


def upsert_assignment(c: sqlite3.Connection, customer_id: str, item: dict[str, Any], where: str,
                      now: str) -> dict[str, Any]:
    entity_id = item["entityId"]
    entity = find_entity(c, customer_id, entity_id)
    if entity is None or entity["archived_at"] is not None:
        raise bad_input(f"{where}: entity {entity_id!r} does not exist")  # Inferred status
    scope = sorted(set(item.get("scopeEntityIds") or []))
    for scope_id in scope:
        if find_entity(c, customer_id, scope_id) is None:
            # Inferred: a scope naming an unknown entity could never match.
            raise bad_input(f"{where}: scope entity {scope_id!r} does not exist")
    feature_id, currency_id = item.get("featureId"), item.get("currencyId")
    capability = capability_key(feature_id, currency_id)
    row = c.execute(
        "SELECT doc FROM assignments WHERE customer_id=? AND entity_id=? AND capability=? AND scope_key=?",
        (customer_id, entity_id, capability, scope_key(scope))).fetchone()
    old = store.loads(row["doc"]) if row else None
    if old is None and "usageLimit" not in item:
        raise bad_input(f"{where}: usageLimit is required when creating an assignment (null = unlimited)")
    if old is None and item.get("cadence") is None:
        raise bad_input(f"{where}: cadence is required when creating an assignment")
    usage_limit = item["usageLimit"] if "usageLimit" in item else old["usageLimit"]
    cadence = item.get("cadence") or old["cadence"]
    doc = assignment_doc(old["id"] if old else str(uuid.uuid4()), entity_id, feature_id, currency_id, scope,
                         usage_limit, cadence, old["createdAt"] if old else now, now)
    if old:
        c.execute("UPDATE assignments SET doc=? WHERE id=?", (store.dumps(doc), doc["id"]))
    else:
        c.execute(ASSIGNMENT_INSERT, assignment_row(customer_id, doc))
    if "parentId" in item:  # tri-state: absent leaves the parent untouched
        set_parent(c, customer_id, entity_id, item["parentId"], where)
    return doc
