"""Customer routes (stigg-api.md §2): provision, list, retrieve, update, archive, resources."""
from __future__ import annotations

from typing import Any

from .. import clock, store
from ..domain.customers import WRITABLE, insert, load, new_customer, require, write
from ..http import (
    ApiError, Request, Response, bad_input, check_keys, created_at_filter, ok, opt_str,
    opt_str_map, paginate, req_str, route,
)
from ..webhooks import outbox

CURRENCY_CODE_LEN = 3


def _validate(body: dict[str, Any], where: str) -> None:
    for key in ("name", "email", "billingId", "language", "timezone"):
        opt_str(body, key, where)
    currency = opt_str(body, "billingCurrency", where)
    if currency is not None and (len(currency) != CURRENCY_CODE_LEN or not currency.islower()):
        raise bad_input(f"{where}: billingCurrency must be a lower-case ISO code such as usd")
    coupon = body.get("couponId")
    if coupon is not None and not isinstance(coupon, str):
        raise bad_input(f"{where}: couponId must be a string")
    opt_str_map(body, "metadata", where)
    for key in ("defaultPaymentMethod", "passthrough"):
        if body.get(key) is not None and not isinstance(body[key], dict):
            raise bad_input(f"{where}: {key} must be an object")
    integrations = body.get("integrations")
    if integrations is not None:
        if not isinstance(integrations, list) or not all(
            isinstance(i, dict) and isinstance(i.get("id"), str) and isinstance(i.get("vendorIdentifier"), str)
            for i in integrations
        ):
            raise bad_input(f"{where}: integrations must be objects with id and vendorIdentifier")


@route("POST", "/api/v1/customers")
def provision(req: Request) -> Response:
    body = req.json()
    where = "customer"
    check_keys(body, WRITABLE | {"id"}, where)
    customer_id = req_str(body, "id", where)
    _validate(body, where)
    now = clock.iso(clock.now())
    doc = new_customer(body, now)
    with store.write() as c:
        if load(c, customer_id) is not None:
            raise ApiError(409, "DuplicatedEntityNotAllowed", f"Customer {customer_id!r} already exists")
        insert(c, doc)
        outbox.emit(c, "customer.created", customer_id, doc)
    return ok(doc, 201)


@route("GET", "/api/v1/customers")
def list_customers(req: Request) -> Response:
    sql, params = "SELECT seq, doc FROM customers WHERE 1=1", []
    for key in ("email", "name"):
        value = req.arg(key)
        if value:
            sql += f" AND {key} = ?"
            params.append(value)
    extra, extra_params = created_at_filter(req)
    if extra:
        sql += " AND " + extra
        params += extra_params
    return paginate(req, sql, params, lambda row: store.loads(row["doc"]))


@route("GET", "/api/v1/customers/{id}")
def retrieve(req: Request) -> Response:
    return ok(require(store.conn(), req.params["id"]))


@route("PATCH", "/api/v1/customers/{id}")
def update(req: Request) -> Response:
    body = req.json()
    where = "customer update"
    check_keys(body, WRITABLE, where)
    _validate(body, where)
    with store.write() as c:
        doc = require(c, req.params["id"])
        for key in WRITABLE:
            if key in body:
                # metadata sent replaces the whole map; {} clears it (stigg-api.md §2)
                doc[key] = body[key] if body[key] is not None or key != "metadata" else {}
        doc["updatedAt"] = clock.iso(clock.now())
        write(c, doc)
        outbox.emit(c, "customer.updated", doc["id"], doc)
    return ok(doc)


def _set_archived(req: Request, archived: bool) -> Response:
    with store.write() as c:
        doc = require(c, req.params["id"])
        now = clock.iso(clock.now())
        doc["archivedAt"] = (doc.get("archivedAt") or now) if archived else None
        doc["updatedAt"] = now
        write(c, doc)
        outbox.emit(c, "customer.updated", doc["id"], doc)
    return ok(doc)


@route("POST", "/api/v1/customers/{id}/archive")
def archive(req: Request) -> Response:
    return _set_archived(req, True)


@route("POST", "/api/v1/customers/{id}/unarchive")
def unarchive(req: Request) -> Response:
    return _set_archived(req, False)


@route("GET", "/api/v1/customers/{id}/resources")
def list_resources(req: Request) -> Response:
    require(store.conn(), req.params["id"])
    return paginate(
        req, "SELECT seq, doc FROM resources WHERE customer_id = ?", [req.params["id"]],
        lambda row: store.loads(row["doc"]),
    )


