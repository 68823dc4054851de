"""Customers (stigg-api.md §2): the stored document, how a new one is built, and the
resources a subscription brings into being. The bulk seeder builds its customer rows
with ``new_customer`` too, so both paths store the same document."""
from __future__ import annotations

import sqlite3
from typing import Any

from .. import store
from ..http import not_found

WRITABLE = {
    "name", "email", "billingId", "billingCurrency", "couponId", "defaultPaymentMethod", "integrations",
    "language", "timezone", "metadata", "passthrough",
}


def load(c: sqlite3.Connection, customer_id: str) -> dict[str, Any] | None:
    row = c.execute("SELECT doc FROM customers WHERE id=?", (customer_id,)).fetchone()
    return store.loads(row["doc"]) if row else None


def require(c: sqlite3.Connection, customer_id: str) -> dict[str, Any]:
    customer = load(c, customer_id)
    if customer is None:
        raise not_found("CustomerNotFound", f"Customer {customer_id!r} not found")
    return customer


def write(c: sqlite3.Connection, doc: dict[str, Any]) -> None:
    c.execute(
        "UPDATE customers SET name=?, email=?, archived_at=?, doc=? WHERE id=?",
        (doc.get("name"), doc.get("email"), doc.get("archivedAt"), store.dumps(doc), doc["id"]),
    )


def new_customer(body: dict[str, Any], now: str) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "id": body["id"], "name": None, "email": None, "billingId": None, "billingCurrency": None,
        "couponId": None, "defaultPaymentMethod": None, "integrations": [], "language": None,
        "timezone": None, "metadata": {}, "passthrough": None,
        "createdAt": now, "updatedAt": now, "archivedAt": None,
    }
    for key in WRITABLE:
        if key in body and body[key] is not None:
            doc[key] = body[key]
    return doc


def insert(c: sqlite3.Connection, doc: dict[str, Any]) -> None:
    c.execute(
        "INSERT INTO customers (id, name, email, created_at, archived_at, doc) VALUES (?, ?, ?, ?, ?, ?)",
        (doc["id"], doc.get("name"), doc.get("email"), doc["createdAt"], doc.get("archivedAt"), store.dumps(doc)),
    )


def ensure_resource(c: sqlite3.Connection, customer_id: str, resource_id: str, now: str) -> None:
    """Resources come into being when a subscription names one (Inferred)."""
    doc = {"id": resource_id, "createdAt": now, "updatedAt": now}
    c.execute(
        "INSERT OR IGNORE INTO resources (customer_id, id, doc) VALUES (?, ?, ?)",
        (customer_id, resource_id, store.dumps(doc)),
    )
