"""Governance routes, v1-beta (stigg-api.md §9): entity types, entities, assignments
(budgets that also carry the hierarchy), the governance tree and the check with
dimensions. The rules behind them are domain/governance.py (documents, attribution,
the check), domain/hierarchy.py (the writes) and domain/governance_tree.py (the tree).
"""
from __future__ import annotations

import bisect
import sqlite3
from typing import Any

from .. import clock, periods, store
from ..domain import governance_tree as tree
from ..domain.governance import capability_key, check as check_with_dimensions, find_entity, render_assignment
from ..domain.hierarchy import set_archived, upsert_assignment, upsert_entity, upsert_entity_type
from ..http import (
    ApiError, Request, Response, bad_input, check_keys, decode_cursor, encode_cursor, not_found, ok,
    opt_number, page_limit, paginate, req_list, req_str, route,
)

MAX_BATCH = 100
MAX_ATTRIBUTION_KEYS = 2

ENTITY_TYPE_KEYS = {"id", "displayName", "attributionKeys", "description"}
ENTITY_KEYS = {"id", "entityTypeId", "displayName", "metadata"}
ASSIGNMENT_KEYS = {"entityId", "featureId", "currencyId", "scopeEntityIds", "usageLimit", "cadence", "parentId"}


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
    with store.write() as c:
        out = [upsert_entity_type(c, item, now) for item in items]
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
    # One transaction: any rejected item raises before COMMIT, so nothing is written.
    with store.write() as c:
        _require_customer(c, customer_id)
        out = [upsert_entity(c, customer_id, item, f"entities[{i}]", now) for i, item in enumerate(items)]
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
        set_archived(c, customer_id, ids, archived, now)
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
    # One transaction: an error on any item (including the 500 for moving a node with
    # children) rolls back every earlier write of the batch.
    with store.write() as c:
        _require_customer(c, customer_id)
        docs = [upsert_assignment(c, customer_id, item, f"assignments[{i}]", now) for i, item in enumerate(items)]
        # Render after the whole batch so every item shows the entity's final parent.
        out = [render_assignment(doc, find_entity(c, customer_id, doc["entityId"])["parent_id"]) for doc in docs]
    return ok(out)


# --- §9.5 the governance tree ----------------------------------------------------------------


def _tree_params(req: Request) -> dict[str, Any]:
    if req.arg("before"):
        raise bad_input("The governance tree pages forward only; use after")  # §9.5: next only
    params: dict[str, Any] = {"limit": page_limit(req)}
    for name, choices, default in (("sortBy", tree.SORT_KEYS, "utilization"), ("order", tree.ORDERS, "desc"),
                                   ("scope", tree.SCOPES, "all")):
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


@route("GET", "/api/v1-beta/customers/{id}/governance")
def governance_tree(req: Request) -> Response:
    _governance_on(req)
    customer_id = req.params["id"]
    p = _tree_params(req)
    c = store.conn()
    _require_customer(c, customer_id)
    keyed = tree.ranked(c, customer_id, p)
    desc = p["order"] == "desc"
    keys = [k for k, _ in keyed]
    start = 0
    after = req.arg("after")
    if after:
        cursor = decode_cursor(after, "after")
        if (not isinstance(cursor, dict) or cursor.get("s") != p["sortBy"] or cursor.get("o") != p["order"]
                or not isinstance(cursor.get("e"), str) or not isinstance(cursor.get("t"), str)):
            raise bad_input("after is not a cursor for this sortBy and order")
        try:
            start = bisect.bisect_right(keys, tree.sort_key(cursor.get("v"), cursor["e"], cursor["t"], desc))
        except (TypeError, AttributeError):  # a hand-made cursor whose value has the wrong type
            raise bad_input("after is not a cursor for this sortBy and order") from None
    page = keyed[start:start + p["limit"]]
    more = start + p["limit"] < len(keyed)
    next_cursor = None
    if page and more:
        last = page[-1][1]
        next_cursor = encode_cursor({"s": p["sortBy"], "o": p["order"], "v": tree.sort_raw(last, p["sortBy"]),
                                     "e": last["entityId"], "t": last["_tie"]})
    data = [tree.render_node(n) for _, n in page]
    return Response(200, {"data": data, "pagination": {"next": next_cursor}})


# --- §9.6 the check with dimensions ------------------------------------------------------------


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
    return ok(check_with_dimensions(store.conn(), customer_id, feature_id, currency_id, requested_usage=requested_usage,
                                    requested_values=requested_values, resource_id=resource_id, dims=dims))
