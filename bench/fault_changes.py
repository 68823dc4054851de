"""What the fault scenarios (bench/fault_scenarios.py) change in Stigg, and how they see
it arrive in the read model: a promotion granted with a limit no other customer has,
webhooks delivered as Stigg delivers them, and customers read again since a moment."""
from __future__ import annotations

import time
import uuid
from typing import Any, Callable
from urllib.parse import quote

import httpx

from bench.fault_load import World
from tests.full_stack import FullStack, wait_until


def grant(stack: FullStack, world: World, customer_id: str) -> int:
    """A promotion with a limit no other customer has, granted in the emulator (which sends
    its webhooks if a target is set). Returns the limit to look for."""
    world.next_limit += 1
    body = {"promotionalEntitlements": [{"featureId": world.metered_feature, "period": "1 month",
                                         "usageLimit": world.next_limit}]}
    for _ in range(30):  # Stigg's rate limit (a 429 storm) holds back this bench's writes too
        answer = stack.emulator.call("POST", f"/api/v1/customers/{quote(customer_id, safe='')}/promotional-entitlements",
                                     json=body)
        if answer.status_code != 429:
            break
        time.sleep(float(answer.headers.get("Retry-After", 1)))
    if not answer.is_success:
        raise RuntimeError(f"granting a promotion to {customer_id}: {answer.status_code} {answer.text[:200]}")
    return world.next_limit


def shows_grant(stack: FullStack, world: World, customer_id: str, limit: int) -> bool:
    doc = stack.rm.customer(customer_id)
    return bool(doc) and any(p["feature_id"] == world.metered_feature and p["usage_limit"] == limit
                             for p in doc["promotions"]["active"])


def wait_for_grants(stack: FullStack, world: World, limits: dict[str, int], since: float,
                    timeout: float) -> dict[str, float]:
    """Seconds from ``since`` until each customer's grant showed in the read model (those
    that did within ``timeout``)."""
    seen: dict[str, float] = {}

    def all_seen() -> bool:
        for cid, limit in limits.items():
            if cid not in seen and shows_grant(stack, world, cid, limit):
                seen[cid] = time.time() - since
        return len(seen) == len(limits)

    wait_until(all_seen, timeout, 0.5)
    return seen


def stale_count(stack: FullStack, world: World, since: float) -> int:
    """Customers of the fleet not read from Stigg since ``since`` (missing ones included)."""
    rm = stack.rm
    return len(rm.stale_customers(older_than=time.time() - since)) + max(0, len(world.customers) - rm.customer_count())


def wait_all_fresh(stack: FullStack, world: World, since: float, timeout: float) -> float | None:
    """Seconds from ``since`` until every customer was read again after it (None: not within ``timeout``)."""
    if wait_until(lambda: quiet(lambda: stale_count(stack, world, since) == 0), timeout, 1.0):
        return time.time() - since
    return None


def quiet(check: Callable[[], bool]) -> bool:
    try:
        return check()
    except Exception:  # the read model unreachable for a moment: not yet
        return False


def event(customer_id: str, kind: str = "promotional_entitlement.granted") -> dict[str, Any]:
    return {"messageId": f"bench-{uuid.uuid4()}", "type": kind,
            "createdAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "data": {"customerId": customer_id}}


def deliver_like_stigg(stack: FullStack, message: dict[str, Any], tries: int = 6, delay: float = 5.0) -> list[int]:
    """Deliver a webhook as Stigg does: again after a non-2xx answer or none, ``tries`` in
    all. Returns every answer's status (0: no answer)."""
    statuses = []
    for _ in range(tries):
        try:
            status = stack.deliver_webhook(message).status_code
        except httpx.HTTPError:
            status = 0
        statuses.append(status)
        if 200 <= status < 300:
            break
        time.sleep(delay)
    return statuses
