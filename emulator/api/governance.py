"""Governance, v1-beta (stigg-api.md §9): entity types, entities, assignments (budgets
that also carry the hierarchy), attribution of usage, the governance tree and the check
with dimensions.

Storage: ``entities.parent_id`` holds the hierarchy (one parent per entity); the entity
``doc`` is the wire Entity (it has no parentId). ``assignments.doc`` is the wire
Assignment without ``parentId``, which is read from the entity at render time so every
assignment of an entity shows its *current* parent. ``assignment_usage`` holds the
attributed usage per assignment and cadence window, so the tree never sums raw usage.
The ``*_doc``/``*_row`` helpers below are what a bulk seeder should use to write rows
that this module reads back unchanged.
"""
from __future__ import annotations

import bisect
import logging
import sqlite3
import uuid
from datetime import datetime
from typing import Any, Iterable

from .. import clock, periods, store
from ..http import (
    ApiError, Request, Response, bad_input, check_keys, decode_cursor, encode_cursor, not_found, ok,
    opt_number, page_limit, paginate, req_list, req_str, route,
)

log = logging.getLogger(__name__)

MAX_BATCH = 100
MAX_ATTRIBUTION_KEYS = 2
MAX_DEPTH = 4  # levels, a root being level 1 (guarantee 30)
SCOPE_SEPARATOR = "\x1f"  # never part of a sane id, so distinct scope sets never share a key
SORT_KEYS = ("utilization", "currentUsage", "usageLimit", "scopeSize", "id", "createdAt")
SCOPES = ("all", "nodeWide", "scoped")
ORDERS = ("asc", "desc")
# Inferred: a check without requestedUsage asks for one more unit, so a budget that is
# exactly spent denies (mirrors "may I use one more?").
DEFAULT_REQUESTED_USAGE = 1.0

ENTITY_TYPE_KEYS = {"id", "displayName", "attributionKeys", "description"}
ENTITY_KEYS = {"id", "entityTypeId", "displayName", "metadata"}
ASSIGNMENT_KEYS = {"entityId", "featureId", "currencyId", "scopeEntityIds", "usageLimit", "cadence", "parentId"}


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


# --- shared guards ---------------------------------------------------------------------


def _governance_on(req: Request) -> None:
    """Guarantee 24: every governance endpoint except the v1-beta check is gated."""
    state = getattr(req, "control", None) or store.get_control()
    if not state.get("governanceEnabled", True):
        raise ApiError(403, "GovernanceNotEnabled", "Governance is not enabled for this environment")


def _require_customer(c: sqlite3.Connection, customer_id: str) -> None:
    if c.execute("SELECT 1 FROM customers WHERE id=?", (customer_id,)).fetchone() is None:
        raise not_found("CustomerNotFound", f"Customer {customer_id!r} not found")


def _now() -> str:
    return clock.iso(clock.now())  # type: ignore[return-value]


def _batch(body: dict[str, Any], key: str, where: str) -> list[dict[str, Any]]:
    items = req_list(body, key, where, max_items=MAX_BATCH)
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise bad_input(f"{where}.{key}[{i}] must be an object")
    return items


# --- §9.1 entity types -------------------------------------------------------------------


@route("GET", "/api/v1-beta/entity-types")
def list_entity_types(req: Request) -> Response:
    _governance_on(req)
    return paginate(req, "SELECT seq, doc FROM entity_types WHERE 1=1", [], lambda row: store.loads(row["doc"]))


def _validate_entity_type(item: dict[str, Any], where: str) -> None:
    check_keys(item, ENTITY_TYPE_KEYS, where)
    req_str(item, "id", where)
    req_str(item, "displayName", where)
    keys = item.get("attributionKeys")
    if not isinstance(keys, list) or not all(isinstance(k, str) and k.strip() for k in keys):
        raise bad_input(f"{where}: attributionKeys is required and must be an array of non-empty strings")
    if len(keys) > MAX_ATTRIBUTION_KEYS:
        raise bad_input(f"{where}: an entity type has at most {MAX_ATTRIBUTION_KEYS} attributionKeys")
    if len(set(keys)) != len(keys):
        raise bad_input(f"{where}: attributionKeys must not repeat")
    if "description" in item and item["description"] is not None and not isinstance(item["description"], str):
        raise bad_input(f"{where}: description must be a string or null")


@route("PUT", "/api/v1-beta/entity-types")
def upsert_entity_types(req: Request) -> Response:
    _governance_on(req)
    body = req.json()
    check_keys(body, {"types"}, "entity types")
    items = _batch(body, "types", "entity types")
    for i, item in enumerate(items):
        _validate_entity_type(item, f"types[{i}]")
    now = _now()
    out = []
    with store.write() as c:
        for item in items:
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
            out.append(doc)
    return ok(out)


# --- §9.2 entities -------------------------------------------------------------------------


@route("GET", "/api/v1-beta/customers/{id}/entities")
def list_entities(req: Request) -> Response:
    _governance_on(req)
    customer_id = req.params["id"]
    _require_customer(store.conn(), customer_id)
    sql, params = "SELECT seq, doc FROM entities WHERE customer_id = ?", [customer_id]
    type_id = req.arg("entityTypeId")
    if type_id:
        sql += " AND entity_type_id = ?"
        params.append(type_id)
    if not req.arg_bool("includeArchived", False):
        sql += " AND archived_at IS NULL"
    return paginate(req, sql, params, lambda row: store.loads(row["doc"]))


@route("GET", "/api/v1-beta/customers/{id}/entities/{entityId}")
def retrieve_entity(req: Request) -> Response:
    _governance_on(req)
    c = store.conn()
    _require_customer(c, req.params["id"])
    row = c.execute("SELECT doc FROM entities WHERE customer_id=? AND id=?",
                    (req.params["id"], req.params["entityId"])).fetchone()
    if row is None:
        raise not_found("EntityNotFound", f"Entity {req.params['entityId']!r} not found")
    return ok(store.loads(row["doc"]))


def _validate_entity(item: dict[str, Any], where: str) -> None:
    if "parentId" in item:
        # Guarantee 26: the hierarchy rides on assignments, never on the entity.
        raise bad_input(f"{where}: parentId is not an entity field; set the parent with an assignment upsert")
    check_keys(item, ENTITY_KEYS, where)  # Inferred: any other unknown key is rejected too
    req_str(item, "id", where)
    if "entityTypeId" in item:
        req_str(item, "entityTypeId", where)
    name = item.get("displayName")
    if name is not None and not isinstance(name, str):
        raise bad_input(f"{where}: displayName must be a string or null")
    metadata = item.get("metadata")
    if metadata is not None and (not isinstance(metadata, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in metadata.items())):
        raise bad_input(f"{where}: metadata must be an object of string values")


@route("PUT", "/api/v1-beta/customers/{id}/entities")
def upsert_entities(req: Request) -> Response:
    _governance_on(req)
    customer_id = req.params["id"]
    body = req.json()
    check_keys(body, {"entities"}, "entities")
    items = _batch(body, "entities", "entities")
    for i, item in enumerate(items):
        _validate_entity(item, f"entities[{i}]")
    now = _now()
    out = []
    # One transaction: any rejected item raises before COMMIT, so nothing is written.
    with store.write() as c:
        _require_customer(c, customer_id)
        for i, item in enumerate(items):
            where = f"entities[{i}]"
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
            out.append(doc)
    return ok(out)


def _ids_body(req: Request) -> list[str]:
    body = req.json()
    check_keys(body, {"ids"}, "body")
    ids = req_list(body, "ids", "body", max_items=MAX_BATCH)  # Inferred: same 1–100 cap as upserts
    if not all(isinstance(i, str) and i for i in ids):
        raise bad_input("ids must be non-empty strings")
    return ids


def _set_archived(req: Request, archived: bool) -> Response:
    _governance_on(req)
    customer_id = req.params["id"]
    ids = _ids_body(req)
    now = _now()
    with store.write() as c:
        _require_customer(c, customer_id)
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
    return ok({"ids": ids})


@route("POST", "/api/v1-beta/customers/{id}/entities/archive")
def archive_entities(req: Request) -> Response:
    return _set_archived(req, True)


@route("POST", "/api/v1-beta/customers/{id}/entities/unarchive")
def unarchive_entities(req: Request) -> Response:
    return _set_archived(req, False)


# --- §9.3 assignments ----------------------------------------------------------------------

ASSIGNMENT_SELECT = (
    "SELECT seq, doc, (SELECT e.parent_id FROM entities e WHERE e.customer_id = assignments.customer_id "
    "AND e.id = assignments.entity_id) AS parent_id FROM assignments WHERE customer_id = ?"
)


@route("GET", "/api/v1-beta/customers/{id}/assignments")
def list_assignments(req: Request) -> Response:
    _governance_on(req)
    customer_id = req.params["id"]
    _require_customer(store.conn(), customer_id)
    feature_id, currency_id = req.arg("featureId") or None, req.arg("currencyId") or None
    if feature_id and currency_id:
        raise bad_input("featureId and currencyId are mutually exclusive")
    sql, params = ASSIGNMENT_SELECT, [customer_id]
    entity_id = req.arg("entityId")
    if entity_id:
        sql += " AND entity_id = ?"
        params.append(entity_id)
    if feature_id or currency_id:
        sql += " AND capability = ?"
        params.append(capability_key(feature_id, currency_id))
    return paginate(req, sql, params, lambda row: render_assignment(store.loads(row["doc"]), row["parent_id"]))


def _validate_assignment(item: dict[str, Any], where: str) -> None:
    check_keys(item, ASSIGNMENT_KEYS, where)
    req_str(item, "entityId", where)
    has_feature, has_currency = item.get("featureId") is not None, item.get("currencyId") is not None
    if has_feature == has_currency:
        raise bad_input(f"{where}: give exactly one of featureId or currencyId")
    req_str(item, "featureId" if has_feature else "currencyId", where)
    scope = item.get("scopeEntityIds", [])
    if scope is None:
        scope = []
    if not isinstance(scope, list) or not all(isinstance(s, str) and s for s in scope):
        raise bad_input(f"{where}: scopeEntityIds must be an array of entity ids")
    opt_number(item, "usageLimit", where, minimum=0)
    if "cadence" in item:
        try:
            periods.parse_cadence(item["cadence"])
        except ValueError as exc:
            raise bad_input(f"{where}: {exc}") from None
    parent = item.get("parentId")
    if parent is not None and (not isinstance(parent, str) or not parent):
        raise bad_input(f"{where}: parentId must be an entity id or null")


def _entity_row(c: sqlite3.Connection, customer_id: str, entity_id: str) -> sqlite3.Row | None:
    return c.execute("SELECT id, parent_id, archived_at FROM entities WHERE customer_id=? AND id=?",
                     (customer_id, entity_id)).fetchone()


def _ancestors(c: sqlite3.Connection, customer_id: str, entity_id: str) -> list[str]:
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


def _set_parent(c: sqlite3.Connection, customer_id: str, entity_id: str, parent_id: str | None, where: str) -> None:
    """Guarantee 30: move an entity under ``parent_id`` (None = make it a root)."""
    current = _entity_row(c, customer_id, entity_id)["parent_id"]
    if current == parent_id:
        return
    if parent_id is not None:
        parent = _entity_row(c, customer_id, parent_id)
        if parent is None or parent["archived_at"] is not None:
            raise bad_input(f"{where}: parent entity {parent_id!r} does not exist")  # Inferred: archived = gone
        chain = [parent_id, *_ancestors(c, customer_id, parent_id)]
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


@route("PUT", "/api/v1-beta/customers/{id}/assignments")
def upsert_assignments(req: Request) -> Response:
    _governance_on(req)
    customer_id = req.params["id"]
    body = req.json()
    check_keys(body, {"assignments"}, "assignments")
    items = _batch(body, "assignments", "assignments")
    for i, item in enumerate(items):
        _validate_assignment(item, f"assignments[{i}]")
    now = _now()
    docs = []
    # One transaction: an error on any item (including the 500 for moving a node with
    # children) rolls back every earlier write of the batch.
    with store.write() as c:
        _require_customer(c, customer_id)
        for i, item in enumerate(items):
            where = f"assignments[{i}]"
            entity_id = item["entityId"]
            entity = _entity_row(c, customer_id, entity_id)
            if entity is None or entity["archived_at"] is not None:
                raise bad_input(f"{where}: entity {entity_id!r} does not exist")  # Inferred status
            scope = sorted(set(item.get("scopeEntityIds") or []))
            for scope_id in scope:
                if _entity_row(c, customer_id, scope_id) is None:
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
                _set_parent(c, customer_id, entity_id, item["parentId"], where)
            docs.append(doc)
        # Render after the whole batch so every item shows the entity's final parent.
        out = [render_assignment(doc, _entity_row(c, customer_id, doc["entityId"])["parent_id"]) for doc in docs]
    return ok(out)


# --- §9.4 attribution ----------------------------------------------------------------------


def _dimension_text(value: Any) -> str:
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
                        (customer_id, _dimension_text(value))).fetchone()
        if row is None or row["entity_type_id"] not in keys[key]:
            continue
        chains.append([row["id"], *_ancestors(c, customer_id, row["id"])])
    return chains


def _applicable(c: sqlite3.Connection, customer_id: str, capability: str, resolved: set[str]) -> list[dict[str, Any]]:
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


def _window(doc: dict[str, Any], at: datetime) -> tuple[datetime, datetime]:
    return periods.cadence_window(doc["cadence"], clock.parse(doc["createdAt"]), at)


def _usage_in(c: sqlite3.Connection, assignment_id: str, start: datetime) -> float:
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
    for doc in _applicable(c, customer_id, capability_key(feature_id, None), resolved):
        try:
            start, _end = _window(doc, ts)
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
            "currentUsage": _usage_in(c, doc["id"], start), "usageUpdatedAt": updated,
        })
    return out


# --- §9.5 the governance tree ----------------------------------------------------------------


class _Desc:
    """Reverses the order of one sort component."""

    __slots__ = ("v",)

    def __init__(self, v: Any) -> None:
        self.v = v

    def __lt__(self, other: "_Desc") -> bool:
        return other.v < self.v

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Desc) and self.v == other.v


def _sort_raw(node: dict[str, Any], sort_by: str) -> Any:
    if sort_by == "id":
        return node["entityId"]
    if sort_by == "scopeSize":
        return len(node["scopeEntityIds"])
    if sort_by == "createdAt":
        return node["_createdAt"]
    return node[sort_by]


def _sort_key(raw: Any, entity_id: str, tie: str, desc: bool) -> tuple[Any, ...]:
    # Inferred: nulls last in both directions, ties by entityId ascending, then by
    # assignment id so hydrated rows of one entity have a stable order too.
    if raw is None:
        return (1, 0, entity_id, tie)
    if desc:
        raw = _Desc(raw) if isinstance(raw, str) else -raw
    return (0, raw, entity_id, tie)


def _tree_params(req: Request) -> dict[str, Any]:
    if req.arg("before"):
        raise bad_input("The governance tree pages forward only; use after")  # §9.5: next only
    params: dict[str, Any] = {"limit": page_limit(req)}
    for name, choices, default in (("sortBy", SORT_KEYS, "utilization"), ("order", ORDERS, "desc"),
                                   ("scope", SCOPES, "all")):
        value = req.arg(name) or default
        if value not in choices:
            raise bad_input(f"{name} must be one of {', '.join(choices)}; got {value!r}")
        params[name] = value
    params["minUtilization"] = req.arg_number("minUtilization")
    params["featureIds"] = req.arg_list("featureIds") or []
    params["currencyIds"] = req.arg_list("currencyIds") or []
    params["entityTypeIds"] = req.arg_list("entityTypeIds")
    params["search"] = (req.arg("entityIdSearch") or "").lower()
    return params


def _entity_filters(p: dict[str, Any]) -> tuple[str, list[Any]]:
    sql, args = "", []
    if p["entityTypeIds"] is not None:
        sql += f" AND e.entity_type_id IN ({','.join('?' * len(p['entityTypeIds']))})"
        args += p["entityTypeIds"]
    if p["search"]:
        # instr, not LIKE, so % and _ in the search text match literally.
        sql += " AND (instr(lower(e.id), ?) > 0 OR instr(lower(coalesce(e.display_name, '')), ?) > 0)"
        args += [p["search"], p["search"]]
    return sql, args


def _tree_nodes(c: sqlite3.Connection, customer_id: str, p: dict[str, Any]) -> list[dict[str, Any]]:
    where, args = _entity_filters(p)
    capabilities = [capability_key(f, None) for f in p["featureIds"]] + [capability_key(None, x) for x in p["currencyIds"]]
    if not capabilities:
        # Tree mode (guarantee 35): one row per live entity, no configuration.
        if p["scope"] == "scoped":
            return []
        rows = c.execute(
            "SELECT e.id, e.entity_type_id, e.display_name, e.parent_id, json_extract(e.doc, '$.createdAt') AS created_at "
            f"FROM entities e WHERE e.customer_id = ? AND e.archived_at IS NULL{where}", [customer_id, *args])
        return [{
            "entityId": r["id"], "entityTypeId": r["entity_type_id"], "displayName": r["display_name"],
            "parentId": r["parent_id"], "scopeEntityIds": [], "cadence": None, "usageLimit": None,
            "currentUsage": None, "utilization": None, "usagePeriodStart": None, "usagePeriodEnd": None,
            "_createdAt": r["created_at"], "_tie": "",
        } for r in rows]
    # Hydrated mode (Inferred): one row per matching assignment of a live entity.
    if p["scope"] == "nodeWide":
        where += " AND a.scope_key = ''"
    elif p["scope"] == "scoped":
        where += " AND a.scope_key != ''"
    latest = "(SELECT {col} FROM assignment_usage u WHERE u.assignment_id = a.id ORDER BY u.window_start DESC LIMIT 1)"
    rows = c.execute(
        "SELECT a.id, a.entity_id, a.capability, a.scope_key, "
        "json_extract(a.doc, '$.usageLimit') AS usage_limit, json_extract(a.doc, '$.cadence') AS cadence, "
        "json_extract(a.doc, '$.createdAt') AS created_at, e.entity_type_id, e.display_name, e.parent_id, "
        f"{latest.format(col='window_start')} AS last_window, {latest.format(col='usage')} AS last_usage "
        "FROM assignments a JOIN entities e ON e.customer_id = a.customer_id AND e.id = a.entity_id "
        f"WHERE a.customer_id = ? AND a.capability IN ({','.join('?' * len(capabilities))}) "
        f"AND e.archived_at IS NULL{where}",
        [customer_id, *capabilities, *args]).fetchall()
    now = clock.now()
    # Assignments written together share cadence and createdAt, so windows repeat a lot;
    # computing each once keeps a large tree fast. Period text is rendered per page only.
    windows: dict[tuple[str, str], tuple[datetime, datetime, str] | None] = {}
    nodes = []
    for r in rows:
        wkey = (r["cadence"], r["created_at"])
        if wkey not in windows:
            try:
                start, end = periods.cadence_window(r["cadence"], clock.parse(r["created_at"]), now)
                windows[wkey] = (start, end, window_key(start))
            except (ValueError, TypeError):
                windows[wkey] = None  # per the SDK: null period when a stored cadence can't be parsed
        window = windows[wkey]
        usage = 0.0
        if window is not None and r["last_window"] is not None:
            # The newest window is nearly always the current one; otherwise look it up.
            usage = float(r["last_usage"]) if r["last_window"] == window[2] else _usage_in(c, r["id"], window[0])
        kind, _, cap_id = r["capability"].partition(":")
        nodes.append({
            "entityId": r["entity_id"], "entityTypeId": r["entity_type_id"], "displayName": r["display_name"],
            "parentId": r["parent_id"],
            "scopeEntityIds": r["scope_key"].split(SCOPE_SEPARATOR) if r["scope_key"] else [],
            ("featureId" if kind == "feature" else "currencyId"): cap_id,
            "cadence": r["cadence"], "usageLimit": r["usage_limit"], "currentUsage": usage,
            "utilization": utilization(r["usage_limit"], usage),
            "usagePeriodStart": window[0] if window else None, "usagePeriodEnd": window[1] if window else None,
            "_createdAt": r["created_at"], "_tie": r["id"],
        })
    return nodes


def _render_node(node: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in node.items() if not k.startswith("_")}
    for key in ("usagePeriodStart", "usagePeriodEnd"):
        if isinstance(out[key], datetime):
            out[key] = clock.iso(out[key])
    return out


@route("GET", "/api/v1-beta/customers/{id}/governance")
def governance_tree(req: Request) -> Response:
    _governance_on(req)
    customer_id = req.params["id"]
    p = _tree_params(req)
    c = store.conn()
    _require_customer(c, customer_id)
    nodes = _tree_nodes(c, customer_id, p)
    if p["minUtilization"] is not None:
        # Inferred: rows without a utilization never pass a minimum.
        nodes = [n for n in nodes if n["utilization"] is not None and n["utilization"] >= p["minUtilization"]]
    desc = p["order"] == "desc"
    keyed = sorted(((_sort_key(_sort_raw(n, p["sortBy"]), n["entityId"], n["_tie"], desc), n) for n in nodes),
                   key=lambda kn: kn[0])
    keys = [k for k, _ in keyed]
    start = 0
    after = req.arg("after")
    if after:
        cursor = decode_cursor(after, "after")
        if (not isinstance(cursor, dict) or cursor.get("s") != p["sortBy"] or cursor.get("o") != p["order"]
                or not isinstance(cursor.get("e"), str) or not isinstance(cursor.get("t"), str)):
            raise bad_input("after is not a cursor for this sortBy and order")
        try:
            start = bisect.bisect_right(keys, _sort_key(cursor.get("v"), cursor["e"], cursor["t"], desc))
        except (TypeError, AttributeError):  # a hand-made cursor whose value has the wrong type
            raise bad_input("after is not a cursor for this sortBy and order") from None
    page = keyed[start:start + p["limit"]]
    more = start + p["limit"] < len(keyed)
    next_cursor = None
    if page and more:
        last = page[-1][1]
        next_cursor = encode_cursor({"s": p["sortBy"], "o": p["order"], "v": _sort_raw(last, p["sortBy"]),
                                     "e": last["entityId"], "t": last["_tie"]})
    data = [_render_node(n) for _, n in page]
    return Response(200, {"data": data, "pagination": {"next": next_cursor}})


# --- §9.6 the check with dimensions ------------------------------------------------------------


def _chains(c: sqlite3.Connection, customer_id: str, capability: str, dims: dict[str, str],
            requested: float) -> list[list[dict[str, Any]]]:
    """One chain per resolved dimension, leaf → root, one node per applicable budget.
    Inferred: an entity of the chain with no applicable budget still shows, as one node
    with a null limit and zero usage, so the chain mirrors the hierarchy."""
    entity_chains = resolve_dimensions(c, customer_id, dims)
    resolved = {e for chain in entity_chains for e in chain}
    by_entity: dict[str, list[dict[str, Any]]] = {}
    for doc in _applicable(c, customer_id, capability, resolved):
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
                    usage = _usage_in(c, doc["id"], _window(doc, now)[0])
                except ValueError:
                    usage = 0.0
                limit = doc["usageLimit"]
                nodes.append({"entityId": entity_id, "usageLimit": limit, "currentUsage": usage,
                              "isGranted": limit is None or usage + requested <= limit,
                              "scopeEntityIds": doc["scopeEntityIds"]})
        out.append(nodes)
    return out


@route("GET", "/api/v1-beta/customers/{id}/entitlements/check")
def check(req: Request) -> Response:
    """Not gated by the governance switch (guarantee 24)."""
    customer_id = req.params["id"]
    feature_id, currency_id = req.arg("featureId") or None, req.arg("currencyId") or None
    if (feature_id is None) == (currency_id is None):
        raise bad_input("Give exactly one of featureId or currencyId")
    requested_usage = req.arg_number("requestedUsage")
    if requested_usage is not None and requested_usage < 0:
        raise bad_input("requestedUsage must not be negative")
    requested_values = req.arg_list("requestedValues")
    resource_id = req.arg("resourceId") or None
    dims = req.arg_object("dimensions")
    c = store.conn()
    if feature_id is not None:
        from ..domain.entitlements import evaluate_feature  # written alongside; imported late on purpose

        result = dict(evaluate_feature(c, customer_id, feature_id, resource_id=resource_id,
                                       requested_usage=requested_usage, requested_values=requested_values))
    else:
        # Inferred: the emulator models no credit pools, so a currency is never funded and
        # the base entitlement fails with NoActiveSubscription (§9.6).
        result = {"type": "CREDIT", "isGranted": False, "accessDeniedReason": "NoActiveSubscription",
                  "currency": {"currencyId": currency_id, "displayName": currency_id}, "currentUsage": 0,
                  "usageLimit": 0, "usageUpdatedAt": _now()}
    if not dims:
        return ok(result)  # guarantee 32: chains only when dimensions are sent
    if not store.get_control(c).get("governanceEnabled", True):
        result["chains"] = []  # Inferred: governance off → nothing to consult
        return ok(result)
    requested = requested_usage if requested_usage is not None else DEFAULT_REQUESTED_USAGE
    chains = _chains(c, customer_id, capability_key(feature_id, currency_id), dims, requested)
    result["chains"] = chains
    if result.get("isGranted"):
        # Governance is consulted only once the base entitlement passes; any failing
        # node of any chain denies (guarantee 32).
        failing = [n for chain in chains for n in chain if not n["isGranted"]]
        if failing:
            result["isGranted"] = False
            spent = any(n["currentUsage"] >= n["usageLimit"] for n in failing)
            result["accessDeniedReason"] = "BudgetExceeded" if spent else "RequestedUsageExceedingLimit"
    return ok(result)
