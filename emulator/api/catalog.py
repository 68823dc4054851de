"""Catalog routes for products and features (stigg-api.md §3); plans and add-ons are in
packages.py, and the rules both share with subscriptions and promotions are in
domain/catalog.py.

Writable through the same REST calls Stigg has, so tests and the demo seed build
their own world over HTTP.
"""
from __future__ import annotations

import sqlite3
from typing import Any

from .. import clock, store
from ..domain.catalog import load_feature, require_feature
from ..http import (
    ApiError, Request, Response, bad_input, check_keys, created_at_filter, not_found, ok, opt_bool, opt_enum,
    opt_number, opt_str, opt_str_map, paginate, req_str, route,
)

FEATURE_TYPES = ("BOOLEAN", "NUMBER", "ENUM")
METER_TYPES = ("None", "FLUCTUATING", "INCREMENTAL")
FEATURE_STATUSES = ("NEW", "SUSPENDED", "ACTIVE")
AGGREGATIONS = ("SUM", "MAX", "MIN", "AVG", "COUNT", "UNIQUE")
OPERATIONS = (
    "EQUALS", "NOT_EQUALS", "GREATER_THAN", "GREATER_THAN_OR_EQUAL", "LESS_THAN", "LESS_THAN_OR_EQUAL",
    "IS_NULL", "IS_NOT_NULL", "CONTAINS", "STARTS_WITH", "ENDS_WITH", "IN",
)


def _now() -> str:
    return clock.iso(clock.now())  # type: ignore[return-value]


# --- products ------------------------------------------------------------------------


@route("POST", "/api/v1/products")
def create_product(req: Request) -> Response:
    body = req.json()
    where = "product"
    check_keys(body, {"id", "displayName", "description", "metadata", "multipleSubscriptions"}, where)
    product_id = req_str(body, "id", where)
    name = req_str(body, "displayName", where)
    opt_str(body, "description", where)
    opt_str_map(body, "metadata", where)
    opt_bool(body, "multipleSubscriptions", where)
    now = _now()
    doc = {
        "id": product_id, "displayName": name, "description": body.get("description"),
        "metadata": body.get("metadata") or {}, "multipleSubscriptions": bool(body.get("multipleSubscriptions")),
        "status": "PUBLISHED", "productSettings": None, "createdAt": now, "updatedAt": now,
    }
    with store.write() as c:
        if c.execute("SELECT 1 FROM products WHERE id=?", (product_id,)).fetchone():
            raise ApiError(409, "DuplicatedEntityNotAllowed", f"Product {product_id!r} already exists")
        c.execute("INSERT INTO products (id, doc) VALUES (?, ?)", (product_id, store.dumps(doc)))
    return ok(doc, 201)


@route("GET", "/api/v1/products")
def list_products(req: Request) -> Response:
    return paginate(req, "SELECT seq, doc FROM products WHERE 1=1", [], lambda r: store.loads(r["doc"]))


@route("GET", "/api/v1/products/{id}")
def get_product(req: Request) -> Response:
    row = store.conn().execute("SELECT doc FROM products WHERE id=?", (req.params["id"],)).fetchone()
    if not row:
        raise not_found("ProductNotFound", f"Product {req.params['id']!r} not found")
    return ok(store.loads(row["doc"]))


# --- features ------------------------------------------------------------------------


def _validate_meter(meter: Any, where: str) -> dict[str, Any]:
    if not isinstance(meter, dict):
        raise bad_input(f"{where}: meter must be an object")
    check_keys(meter, {"aggregation", "filters"}, f"{where}.meter")
    agg = meter.get("aggregation")
    if not isinstance(agg, dict):
        raise bad_input(f"{where}: meter.aggregation is required")
    check_keys(agg, {"function", "field"}, f"{where}.meter.aggregation")
    function = opt_enum(agg, "function", AGGREGATIONS, f"{where}.meter.aggregation")
    if function is None:
        raise bad_input(f"{where}: meter.aggregation.function is required")
    field = opt_str(agg, "field", f"{where}.meter.aggregation")
    if function != "COUNT" and not field:
        raise bad_input(f"{where}: meter aggregation {function} needs a field")
    filters = meter.get("filters")
    if not isinstance(filters, list):
        raise bad_input(f"{where}: meter.filters must be an array")
    out_filters = []
    for f in filters:
        if not isinstance(f, dict) or not isinstance(f.get("conditions"), list) or not f["conditions"]:
            raise bad_input(f"{where}: each meter filter needs a non-empty conditions array")
        check_keys(f, {"conditions"}, f"{where}.meter.filters[]")
        conditions = []
        for cond in f["conditions"]:
            cw = f"{where}.meter condition"
            if not isinstance(cond, dict):
                raise bad_input(f"{cw} must be an object")
            check_keys(cond, {"field", "operation", "value", "values"}, cw)
            req_str(cond, "field", cw)
            op = opt_enum(cond, "operation", OPERATIONS, cw)
            if op is None:
                raise bad_input(f"{cw}: operation is required")
            opt_str(cond, "value", cw)
            values = cond.get("values")
            if values is not None and (not isinstance(values, list) or not all(isinstance(v, str) for v in values)):
                raise bad_input(f"{cw}: values must be an array of strings")
            if op == "IN" and not values:
                raise bad_input(f"{cw}: IN needs values")
            if op not in ("IN", "IS_NULL", "IS_NOT_NULL") and cond.get("value") is None:
                raise bad_input(f"{cw}: {op} needs a value")
            conditions.append({"field": cond["field"], "operation": op, "value": cond.get("value"),
                               "values": values})
        out_filters.append({"conditions": conditions})
    return {"aggregation": {"function": function, "field": field}, "filters": out_filters}


def _validate_feature_fields(body: dict[str, Any], where: str, feature_type: str) -> None:
    opt_str(body, "displayName", where)
    opt_str(body, "description", where)
    opt_str(body, "featureUnits", where)
    opt_str(body, "featureUnitsPlural", where)
    opt_str_map(body, "metadata", where)
    enum_config = body.get("enumConfiguration")
    if enum_config is not None:
        if feature_type != "ENUM":
            raise bad_input(f"{where}: enumConfiguration only applies to ENUM features")
        if not isinstance(enum_config, list) or not all(
            isinstance(e, dict) and isinstance(e.get("value"), str) and isinstance(e.get("displayName"), str)
            for e in enum_config
        ):
            raise bad_input(f"{where}: enumConfiguration must be [{{value, displayName}}]")
    transform = body.get("unitTransformation")
    if transform is not None:
        if not isinstance(transform, dict):
            raise bad_input(f"{where}: unitTransformation must be an object")
        check_keys(transform, {"divide", "round", "featureUnits", "featureUnitsPlural"}, f"{where}.unitTransformation")
        divide = opt_number(transform, "divide", f"{where}.unitTransformation")
        if not divide or divide <= 0:
            raise bad_input(f"{where}: unitTransformation.divide must be a positive number")
        if opt_enum(transform, "round", ("UP", "DOWN"), f"{where}.unitTransformation") is None:
            raise bad_input(f"{where}: unitTransformation.round must be UP or DOWN")


FEATURE_CREATE_KEYS = {
    "id", "displayName", "featureType", "description", "enumConfiguration", "featureStatus", "featureUnits",
    "featureUnitsPlural", "metadata", "meter", "meterType", "unitTransformation",
}
FEATURE_UPDATE_KEYS = {
    "displayName", "description", "enumConfiguration", "featureUnits", "featureUnitsPlural", "metadata", "meter",
    "unitTransformation",
}


def _write_feature(c: sqlite3.Connection, doc: dict[str, Any]) -> None:
    c.execute("UPDATE features SET doc=? WHERE id=?", (store.dumps(doc), doc["id"]))


@route("POST", "/api/v1/features")
def create_feature(req: Request) -> Response:
    body = req.json()
    where = "feature"
    check_keys(body, FEATURE_CREATE_KEYS, where)
    feature_id = req_str(body, "id", where)
    req_str(body, "displayName", where)
    feature_type = opt_enum(body, "featureType", FEATURE_TYPES, where)
    if feature_type is None:
        raise bad_input(f"{where}: featureType is required (BOOLEAN, NUMBER or ENUM)")
    meter_type = opt_enum(body, "meterType", METER_TYPES, where) or "None"
    status = opt_enum(body, "featureStatus", FEATURE_STATUSES, where) or "ACTIVE"
    _validate_feature_fields(body, where, feature_type)
    if feature_type == "ENUM" and not body.get("enumConfiguration"):
        raise bad_input(f"{where}: an ENUM feature needs enumConfiguration")
    meter = _validate_meter(body["meter"], where) if body.get("meter") is not None else None
    if (meter is not None or meter_type != "None") and feature_type != "NUMBER":
        raise bad_input(f"{where}: only NUMBER features can be metered")
    if meter is not None and meter_type == "None":
        meter_type = "INCREMENTAL"  # raw-event features count up within their period
    now = _now()
    doc = {
        "id": feature_id, "displayName": body["displayName"], "description": body.get("description"),
        "featureType": feature_type, "featureStatus": status, "meterType": meter_type,
        "featureUnits": body.get("featureUnits"), "featureUnitsPlural": body.get("featureUnitsPlural"),
        "enumConfiguration": body.get("enumConfiguration"), "meter": meter,
        "unitTransformation": body.get("unitTransformation"), "metadata": body.get("metadata") or {},
        "createdAt": now, "updatedAt": now,
    }
    with store.write() as c:
        if load_feature(c, feature_id) is not None:
            raise ApiError(409, "DuplicatedEntityNotAllowed", f"Feature {feature_id!r} already exists")
        c.execute("INSERT INTO features (id, doc) VALUES (?, ?)", (feature_id, store.dumps(doc)))
    return ok(doc, 201)


@route("GET", "/api/v1/features")
def list_features(req: Request) -> Response:
    rows = store.conn().execute("SELECT seq, doc FROM features ORDER BY seq").fetchall()
    filters = {
        "id": req.arg_list("id") or req.arg_list("ids"),
        "featureType": req.arg_list("featureType"),
        "meterType": req.arg_list("meterType"),
        "featureStatus": req.arg_list("status"),
    }
    keep = []
    for row in rows:
        doc = store.loads(row["doc"])
        if all(values is None or doc[key] in values for key, values in filters.items()):
            keep.append(row["seq"])
    extra, params = created_at_filter(req, "json_extract(doc, '$.createdAt')")
    sql = "SELECT seq, doc FROM features WHERE seq IN (SELECT value FROM json_each(?))"
    if extra:
        sql += " AND " + extra
    return paginate(req, sql, [store.dumps(keep), *params], lambda r: store.loads(r["doc"]))


@route("GET", "/api/v1/features/{id}")
def get_feature(req: Request) -> Response:
    return ok(require_feature(store.conn(), req.params["id"]))


@route("PATCH", "/api/v1/features/{id}")
def update_feature(req: Request) -> Response:
    body = req.json()
    where = "feature update"
    check_keys(body, FEATURE_UPDATE_KEYS, where)
    with store.write() as c:
        doc = require_feature(c, req.params["id"])
        _validate_feature_fields(body, where, doc["featureType"])
        if "meter" in body:
            if body["meter"] is not None and doc["featureType"] != "NUMBER":
                raise bad_input(f"{where}: only NUMBER features can be metered")
            doc["meter"] = _validate_meter(body["meter"], where) if body["meter"] is not None else None
        for key in FEATURE_UPDATE_KEYS - {"meter"}:
            if key in body:
                doc[key] = body[key] if key != "metadata" else (body[key] or {})
        doc["updatedAt"] = _now()
        _write_feature(c, doc)
    return ok(doc)


def _feature_status(req: Request, archived: bool) -> Response:
    # Inferred: archiving suspends the feature (featureStatus has no ARCHIVED value).
    with store.write() as c:
        doc = require_feature(c, req.params["id"])
        doc["featureStatus"] = "SUSPENDED" if archived else "ACTIVE"
        doc["updatedAt"] = _now()
        _write_feature(c, doc)
    return ok(doc)


@route("POST", "/api/v1/features/{id}/archive")
def archive_feature(req: Request) -> Response:
    return _feature_status(req, True)


@route("POST", "/api/v1/features/{id}/unarchive")
def unarchive_feature(req: Request) -> Response:
    return _feature_status(req, False)
