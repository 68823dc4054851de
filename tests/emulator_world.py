"""Build a small catalog and customers in a running emulator, over its REST API.

Every id gets a unique suffix, so tests sharing one emulator (one per module) never
collide."""
from __future__ import annotations

import itertools
from typing import Any

from .servers import Emulator

_counter = itertools.count(1)


def uid(prefix: str) -> str:
    return f"{prefix}-{next(_counter)}"


def feature(emu: Emulator, feature_type: str = "NUMBER", *, metered: bool = True, **extra: Any) -> str:
    feature_id = uid(f"feat-{feature_type.lower()}")
    body: dict[str, Any] = {"id": feature_id, "displayName": feature_id.title(), "featureType": feature_type}
    if feature_type == "NUMBER" and metered and "meter" not in extra:
        body["meterType"] = "INCREMENTAL"
    if feature_type == "ENUM":
        body["enumConfiguration"] = [{"value": v, "displayName": v.upper()} for v in ("a", "b", "c")]
    body.update(extra)
    emu.data("POST", "/api/v1/features", json=body)
    return feature_id


def product(emu: Emulator, **extra: Any) -> str:
    product_id = uid("prod")
    emu.data("POST", "/api/v1/products", json={"id": product_id, "displayName": product_id, **extra})
    return product_id


def plan(emu: Emulator, product_id: str, entitlements: list[dict[str, Any]], *, publish: bool = True,
         **extra: Any) -> str:
    return _package(emu, "plans", product_id, entitlements, publish, extra)


def addon(emu: Emulator, product_id: str, entitlements: list[dict[str, Any]], *, publish: bool = True,
          **extra: Any) -> str:
    return _package(emu, "addons", product_id, entitlements, publish, extra)


def _package(emu: Emulator, kind: str, product_id: str, entitlements: list[dict[str, Any]], publish: bool,
             extra: dict[str, Any]) -> str:
    package_id = uid(kind[:-1])
    emu.data("POST", f"/api/v1/{kind}", json={"id": package_id, "displayName": package_id, "productId": product_id,
                                             **extra})
    if entitlements:
        items = [{"type": "FEATURE", **e} for e in entitlements]
        emu.data("POST", f"/api/v1/{kind}/{package_id}/entitlements", json={"entitlements": items})
    if publish:
        emu.data("POST", f"/api/v1/{kind}/{package_id}/publish", json={})
    return package_id


def customer(emu: Emulator, **extra: Any) -> str:
    customer_id = uid("cust")
    emu.data("POST", "/api/v1/customers", json={"id": customer_id, **extra})
    return customer_id


def subscribe(emu: Emulator, customer_id: str, plan_id: str, **extra: Any) -> dict[str, Any]:
    return emu.data("POST", "/api/v1/subscriptions", json={"customerId": customer_id, "planId": plan_id, **extra})


def report_usage(emu: Emulator, customer_id: str, feature_id: str, value: float, **extra: Any) -> None:
    """Usage goes through POST /api/v1/usage, which another module implements."""
    emu.data("POST", "/api/v1/usage", json={"usages": [{"customerId": customer_id, "featureId": feature_id,
                                                         "value": value, **extra}]})


def check(emu: Emulator, customer_id: str, feature_id: str, **params: Any) -> dict[str, Any]:
    return emu.data("GET", f"/api/v1/customers/{customer_id}/entitlements/check",
                    params={"featureId": feature_id, **params})


def entitlement(emu: Emulator, customer_id: str, feature_id: str, **params: Any) -> dict[str, Any] | None:
    data = emu.data("GET", f"/api/v1/customers/{customer_id}/entitlements", params=params)
    return next((e for e in data["entitlements"] if e["feature"]["id"] == feature_id), None)


def grant(emu: Emulator, customer_id: str, feature_id: str, period: str = "1 month", **values: Any) -> dict[str, Any]:
    body = {"featureId": feature_id, "period": period, **values}
    return emu.data("POST", f"/api/v1/customers/{customer_id}/promotional-entitlements",
                    json={"promotionalEntitlements": [body]})[0]


def snapshot(emu: Emulator, customer_id: str) -> tuple[Any, Any, Any]:
    """What a rejected write must leave untouched: subscriptions, promotions, entitlements."""
    subs = emu.data("GET", "/api/v1/subscriptions", params={"customerId": customer_id, "limit": 100})
    promos = emu.data("GET", f"/api/v1/customers/{customer_id}/promotional-entitlements", params={"limit": 100})
    ents = emu.data("GET", f"/api/v1/customers/{customer_id}/entitlements")
    return subs, promos, ents


def now(emu: Emulator) -> str:
    return emu.data("GET", "/_emulator/state")["now"]


def measure(emu: Emulator, customer_id: str, feature_id: str, num: float | None = None, *, text: str | None = None,
            ts: str | None = None, resource_id: str = "") -> None:
    """Write one measurement row straight into the emulator's storage. The usage and
    event endpoints belong to another module; this keeps entitlement tests independent
    of them while still exercising the real aggregation over the real table."""
    import sqlite3

    conn = sqlite3.connect(emu.db_path, timeout=30)
    try:
        conn.execute("INSERT INTO measurements (customer_id, resource_id, feature_id, ts, num, str) "
                     "VALUES (?, ?, ?, ?, ?, ?)", (customer_id, resource_id, feature_id, ts or now(emu), num, text))
        conn.commit()
    finally:
        conn.close()
