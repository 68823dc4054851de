"""Catalog routes for plans and add-ons (stigg-api.md §3): one set of handlers registered
for both kinds (they share the ``packages`` table), with their package entitlements.
Reading packages back, and the entitlement value rules, are in domain/catalog.py.
"""
from __future__ import annotations

import sqlite3
import uuid
from typing import Any

from .. import clock, store
from ..domain.catalog import (
    NOUN, PRICING_TYPES, load_package, parse_values, render_package, require_feature, require_package,
)
from ..http import (
    ApiError, Request, Response, bad_input, check_keys, created_at_filter, not_found, ok, opt_bool, opt_enum,
    opt_number, opt_str, opt_str_map, paginate, req_list, req_str, route,
)

PACKAGE_STATUSES = ("DRAFT", "PUBLISHED", "ARCHIVED")
WIDGETS = ("PAYWALL", "CUSTOMER_PORTAL", "CHECKOUT")


def _now() -> str:
    return clock.iso(clock.now())  # type: ignore[return-value]


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
