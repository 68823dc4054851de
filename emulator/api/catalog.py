"""Catalog routes: products, features, plans, add-ons and their package entitlements (§3).
The rules they share with subscriptions and promotions are in domain/catalog.py.

Writable through the same REST calls Stigg has, so tests and the demo seed build
their own world over HTTP.
"""
from __future__ import annotations

import sqlite3
import uuid
from typing import Any

from .. import clock, store
from ..domain.catalog import (
    NOUN, PRICING_TYPES, load_feature, load_package, parse_values, render_package, require_feature, require_package,
)
from ..http import (
    ApiError, Request, Response, bad_input, check_keys, created_at_filter, not_found, ok, opt_bool,
    opt_enum, opt_number, opt_str, opt_str_map, paginate, req_list, req_str, route,
)

FEATURE_TYPES = ("BOOLEAN", "NUMBER", "ENUM")
METER_TYPES = ("None", "FLUCTUATING", "INCREMENTAL")
FEATURE_STATUSES = ("NEW", "SUSPENDED", "ACTIVE")
AGGREGATIONS = ("SUM", "MAX", "MIN", "AVG", "COUNT", "UNIQUE")
OPERATIONS = (
    "EQUALS", "NOT_EQUALS", "GREATER_THAN", "GREATER_THAN_OR_EQUAL", "LESS_THAN", "LESS_THAN_OR_EQUAL",
    "IS_NULL", "IS_NOT_NULL", "CONTAINS", "STARTS_WITH", "ENDS_WITH", "IN",
)
PACKAGE_STATUSES = ("DRAFT", "PUBLISHED", "ARCHIVED")
WIDGETS = ("PAYWALL", "CUSTOMER_PORTAL", "CHECKOUT")


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


# --- plans and add-ons ---------------------------------------------------------------

PACKAGE_KEYS = {
    "plan": {"id", "displayName", "productId", "billingId", "defaultTrialConfig", "description", "metadata",
             "parentPlanId", "pricingType", "status", "compatibleAddonIds"},
    "addon": {"id", "displayName", "productId", "billingId", "description", "maxQuantity", "metadata",
              "pricingType", "status", "dependencies"},
}


def _validate_package(c: sqlite3.Connection, kind: str, body: dict[str, Any], where: str) -> None:
    opt_str(body, "description", where)
    opt_str(body, "billingId", where)
    opt_str_map(body, "metadata", where)
    opt_enum(body, "pricingType", PRICING_TYPES, where)
    opt_enum(body, "status", PACKAGE_STATUSES, where)
    if kind == "plan":
        parent = opt_str(body, "parentPlanId", where)
        if parent is not None and load_package(c, "plan", parent) is None:
            raise bad_input(f"{where}: parent plan {parent!r} does not exist")
        trial = body.get("defaultTrialConfig")
        if trial is not None:
            if not isinstance(trial, dict):
                raise bad_input(f"{where}: defaultTrialConfig must be an object")
            check_keys(trial, {"duration", "units", "budget", "trialEndBehavior"}, f"{where}.defaultTrialConfig")
            if not opt_number(trial, "duration", f"{where}.defaultTrialConfig", minimum=1):
                raise bad_input(f"{where}: defaultTrialConfig.duration must be at least 1")
            if opt_enum(trial, "units", ("DAY", "MONTH"), f"{where}.defaultTrialConfig") is None:
                raise bad_input(f"{where}: defaultTrialConfig.units must be DAY or MONTH")
            opt_enum(trial, "trialEndBehavior", ("CONVERT_TO_PAID", "CANCEL_SUBSCRIPTION"), f"{where}.defaultTrialConfig")
        addons = body.get("compatibleAddonIds")
        if addons is not None and (not isinstance(addons, list) or not all(isinstance(a, str) for a in addons)):
            raise bad_input(f"{where}: compatibleAddonIds must be an array of strings")
    else:
        opt_number(body, "maxQuantity", where, minimum=1)
        deps = body.get("dependencies")
        if deps is not None and (not isinstance(deps, list) or not all(isinstance(a, str) for a in deps)):
            raise bad_input(f"{where}: dependencies must be an array of strings")


def _create_package(req: Request, kind: str) -> Response:
    body = req.json()
    where = kind
    check_keys(body, PACKAGE_KEYS[kind], where)
    package_id = req_str(body, "id", where)
    req_str(body, "displayName", where)
    product_id = req_str(body, "productId", where)
    now = _now()
    with store.write() as c:
        _validate_package(c, kind, body, where)
        if not c.execute("SELECT 1 FROM products WHERE id=?", (product_id,)).fetchone():
            raise bad_input(f"{where}: product {product_id!r} does not exist")
        if c.execute("SELECT 1 FROM packages WHERE id=?", (package_id,)).fetchone():
            raise ApiError(409, "DuplicatedEntityNotAllowed", f"{NOUN[kind]} {package_id!r} already exists")
        doc: dict[str, Any] = {
            "id": package_id, "displayName": body["displayName"], "description": body.get("description"),
            "productId": product_id, "status": body.get("status") or "DRAFT", "pricingType": body.get("pricingType"),
            "billingId": body.get("billingId"), "metadata": body.get("metadata") or {}, "versionNumber": 1,
            "isLatest": True, "createdAt": now, "updatedAt": now,
        }
        if kind == "plan":
            doc.update(parentPlanId=body.get("parentPlanId"), defaultTrialConfig=body.get("defaultTrialConfig"),
                       compatibleAddonIds=body.get("compatibleAddonIds") or [])
        else:
            doc.update(maxQuantity=body.get("maxQuantity"), dependencies=body.get("dependencies") or [])
        c.execute(
            "INSERT INTO packages (id, kind, product_id, status, doc) VALUES (?, ?, ?, ?, ?)",
            (package_id, kind, product_id, doc["status"], store.dumps(doc)),
        )
        return ok(render_package(c, doc), 201)


def _write_package(c: sqlite3.Connection, doc: dict[str, Any]) -> None:
    doc["updatedAt"] = _now()
    c.execute("UPDATE packages SET status=?, doc=? WHERE id=?", (doc["status"], store.dumps(doc), doc["id"]))


def _list_packages(req: Request, kind: str) -> Response:
    sql, params = "SELECT seq, doc FROM packages WHERE kind = ?", [kind]
    product = req.arg("productId")
    if product:
        sql += " AND product_id = ?"
        params.append(product)
    statuses = req.arg_list("status")
    if statuses:
        sql += f" AND status IN ({','.join('?' * len(statuses))})"
        params += statuses
    extra, extra_params = created_at_filter(req, "json_extract(doc, '$.createdAt')")
    if extra:
        sql += " AND " + extra
        params += extra_params
    c = store.conn()
    return paginate(req, sql, params, lambda r: render_package(c, store.loads(r["doc"])))


def _update_package(req: Request, kind: str) -> Response:
    body = req.json()
    where = f"{kind} update"
    allowed = PACKAGE_KEYS[kind] - {"id", "productId", "status"}
    check_keys(body, allowed, where)
    with store.write() as c:
        doc = require_package(c, kind, req.params["id"])
        _validate_package(c, kind, body, where)
        if kind == "plan" and body.get("parentPlanId") == doc["id"]:
            raise bad_input(f"{where}: a plan cannot be its own parent")
        for key in allowed:
            if key in body:
                doc[key] = body[key] if key != "metadata" else (body[key] or {})
        _write_package(c, doc)
        return ok(render_package(c, doc))


def _set_status(req: Request, kind: str, status: str) -> dict[str, Any]:
    with store.write() as c:
        doc = require_package(c, kind, req.params["id"])
        if status == "DRAFT" and doc["status"] == "PUBLISHED":
            doc["versionNumber"] += 1  # Inferred: a draft is the next version being edited
        doc["status"] = status
        _write_package(c, doc)
        return render_package(c, doc)


def _publish(req: Request, kind: str) -> Response:
    body = req.json_or_empty()
    check_keys(body, {"migrationType"}, "publish")
    opt_enum(body, "migrationType", ("NEW_CUSTOMERS", "ALL_CUSTOMERS"), "publish")
    _set_status(req, kind, "PUBLISHED")
    return ok({"taskId": str(uuid.uuid4())})


def _remove_draft(req: Request, kind: str) -> Response:
    with store.write() as c:
        doc = require_package(c, kind, req.params["id"])
        if doc["status"] != "DRAFT":
            raise bad_input(f"{NOUN[kind]} {doc['id']!r} has no draft")
        if doc["versionNumber"] > 1:
            doc["versionNumber"] -= 1
            doc["status"] = "PUBLISHED"
            _write_package(c, doc)
        else:
            c.execute("DELETE FROM packages WHERE id=?", (doc["id"],))
            c.execute("DELETE FROM package_entitlements WHERE package_id=?", (doc["id"],))
    return ok({"id": doc["id"]})


ENTITLEMENT_KEYS = {
    "id", "type", "behavior", "description", "displayNameOverride", "enumValues", "hasSoftLimit",
    "hasUnlimitedUsage", "hiddenFromWidgets", "isCustom", "isGranted", "monthlyResetPeriodConfiguration",
    "weeklyResetPeriodConfiguration", "yearlyResetPeriodConfiguration", "order", "resetPeriod", "usageLimit",
}


def _package_entitlement(c: sqlite3.Connection, item: Any, where: str, existing: dict | None) -> dict[str, Any]:
    if not isinstance(item, dict):
        raise bad_input(f"{where} must be an object")
    check_keys(item, ENTITLEMENT_KEYS, where)
    if existing is None:
        if item.get("type") == "CREDIT":
            raise bad_input(f"{where}: CREDIT entitlements are not emulated")
        if item.get("type") != "FEATURE":
            raise bad_input(f"{where}: type must be FEATURE")
        feature = require_feature(c, req_str(item, "id", where), status=400)
    else:
        feature = require_feature(c, existing["id"], status=400)
    values = parse_values(item, where, feature)
    behavior = opt_enum(item, "behavior", ("Increment", "Override"), where)
    widgets = item.get("hiddenFromWidgets")
    if widgets is not None and (not isinstance(widgets, list) or any(w not in WIDGETS for w in widgets)):
        raise bad_input(f"{where}: hiddenFromWidgets must list PAYWALL, CUSTOMER_PORTAL or CHECKOUT")
    for key in ("description", "displayNameOverride"):
        opt_str(item, key, where)
    opt_bool(item, "isCustom", where)
    opt_bool(item, "isGranted", where)
    opt_number(item, "order", where)
    now = _now()
    doc = dict(existing) if existing else {
        "id": feature["id"], "type": "FEATURE", "behavior": "Increment", "isGranted": True, "usageLimit": None,
        "hasUnlimitedUsage": None, "hasSoftLimit": None, "enumValues": None, "resetPeriod": None,
        "resetPeriodConfiguration": None, "description": None, "displayNameOverride": None,
        "hiddenFromWidgets": [], "isCustom": None, "order": None, "createdAt": now,
    }
    for key in ("usageLimit", "hasUnlimitedUsage", "hasSoftLimit", "enumValues"):
        if key in item:
            doc[key] = values[key]
    if "resetPeriod" in item:
        doc["resetPeriod"], doc["resetPeriodConfiguration"] = values["resetPeriod"], values["resetPeriodConfiguration"]
    for key in ("description", "displayNameOverride", "hiddenFromWidgets", "isCustom", "isGranted", "order"):
        if key in item and item[key] is not None:
            doc[key] = item[key]
    if behavior:
        doc["behavior"] = behavior
    if feature["featureType"] == "NUMBER" and doc["usageLimit"] is None and not doc["hasUnlimitedUsage"] \
            and doc["isGranted"]:
        raise bad_input(f"{where}: a NUMBER entitlement needs usageLimit or hasUnlimitedUsage")
    doc["updatedAt"] = now
    return doc


def _create_entitlements(req: Request, kind: str, id_param: str) -> Response:
    body = req.json()
    check_keys(body, {"entitlements"}, "entitlements")
    items = req_list(body, "entitlements", "entitlements", max_items=100)
    with store.write() as c:
        package = require_package(c, kind, req.params[id_param])
        out = []
        for i, item in enumerate(items):
            doc = _package_entitlement(c, item, f"entitlements[{i}]", None)
            if c.execute("SELECT 1 FROM package_entitlements WHERE package_id=? AND feature_id=?",
                         (package["id"], doc["id"])).fetchone():
                raise ApiError(409, "DuplicatedEntityNotAllowed",
                               f"{NOUN[kind]} {package['id']!r} already has an entitlement for {doc['id']!r}")
            c.execute("INSERT INTO package_entitlements (package_id, feature_id, doc) VALUES (?, ?, ?)",
                      (package["id"], doc["id"], store.dumps(doc)))
            out.append(doc)
        _write_package(c, package)
    return ok(out, 201)


def _list_entitlements(req: Request, kind: str, id_param: str) -> Response:
    c = store.conn()
    package = require_package(c, kind, req.params[id_param])
    return paginate(req, "SELECT seq, doc FROM package_entitlements WHERE package_id = ?", [package["id"]],
                    lambda r: store.loads(r["doc"]))


def _existing_entitlement(c: sqlite3.Connection, kind: str, req: Request, id_param: str) -> dict[str, Any]:
    package = require_package(c, kind, req.params[id_param])
    row = c.execute("SELECT doc FROM package_entitlements WHERE package_id=? AND feature_id=?",
                    (package["id"], req.params["id"])).fetchone()
    if not row:
        raise not_found("EntitlementNotFound",
                        f"{NOUN[kind]} {package['id']!r} has no entitlement for {req.params['id']!r}")
    return store.loads(row["doc"])


def _update_entitlement(req: Request, kind: str, id_param: str) -> Response:
    body = req.json()
    body.pop("type", None)
    with store.write() as c:
        existing = _existing_entitlement(c, kind, req, id_param)
        doc = _package_entitlement(c, {k: v for k, v in body.items() if k != "id"}, "entitlement update", existing)
        c.execute("UPDATE package_entitlements SET doc=? WHERE package_id=? AND feature_id=?",
                  (store.dumps(doc), req.params[id_param], doc["id"]))
    return ok(doc)


def _delete_entitlement(req: Request, kind: str, id_param: str) -> Response:
    with store.write() as c:
        doc = _existing_entitlement(c, kind, req, id_param)
        c.execute("DELETE FROM package_entitlements WHERE package_id=? AND feature_id=?",
                  (req.params[id_param], doc["id"]))
    return ok(doc)


def _register(kind: str, base: str, id_param: str) -> None:
    route("POST", base)(lambda req: _create_package(req, kind))
    route("GET", base)(lambda req: _list_packages(req, kind))
    route("GET", base + "/{id}")(lambda req: ok(render_package(store.conn(), require_package(store.conn(), kind, req.params["id"]))))
    route("PATCH", base + "/{id}")(lambda req: _update_package(req, kind))
    route("POST", base + "/{id}/publish")(lambda req: _publish(req, kind))
    route("POST", base + "/{id}/draft")(lambda req: ok(_set_status(req, kind, "DRAFT")))
    route("DELETE", base + "/{id}/draft")(lambda req: _remove_draft(req, kind))
    route("POST", base + "/{id}/archive")(lambda req: ok(_set_status(req, kind, "ARCHIVED")))
    ents = base + "/{" + id_param + "}/entitlements"
    route("POST", ents)(lambda req: _create_entitlements(req, kind, id_param))
    route("GET", ents)(lambda req: _list_entitlements(req, kind, id_param))
    route("PATCH", ents + "/{id}")(lambda req: _update_entitlement(req, kind, id_param))
    route("DELETE", ents + "/{id}")(lambda req: _delete_entitlement(req, kind, id_param))


_register("plan", "/api/v1/plans", "planId")
_register("addon", "/api/v1/addons", "addonId")
