"""Customers for the near-limit tests, written as a refresh writes them, and a reference
answer computed from the very documents written (no Redis): what the near-limit reads
must return, row for row, in order."""
from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from dashboard.readmodel import NearLimitQuery, ReadModel
from dashboard.readmodel import parse_time
from dashboard.readmodel.nearlimit import budget_member, entitlement_member
from dashboard.readmodel.rankings import entitlement_time_to_limit
from dashboard.rules import governance as rules
from dashboard.stigg import Customer, CustomerEntitlements, GovernanceNode, Subscription
from dashboard.sync import build_snapshot
from dashboard.sync.governance import shape_governance

from .test_read_model import FEATURES, PACKAGES, T0, ent


def budget(entity: str, usage: float | None, limit: float | None, *, type_: str = "team", parent: str | None = None,
           feature: str | None = "api", currency: str | None = None, scope: tuple[str, ...] = (),
           name: str | None = None, elapsed: float = 0.5, cadence: str = "P1M") -> GovernanceNode:
    """A hydrated budget row; ``elapsed``: how much of its 30-day window is behind T0."""
    start = T0 - timedelta(days=30 * elapsed)
    util = usage / limit if usage is not None and limit else None
    return GovernanceNode(entity, type_, name if name is not None else entity.title(), parent, feature, currency,
                          scope, cadence, limit, usage, util, start, start + timedelta(days=30))


def customer_snapshot(cid: str, *, name: str | None = None, plan: str = "pro", owner: str | None = None,
                      api: float | None = None, storage: float | None = None, budgets: tuple = (),
                      fetched_at: datetime = T0, owner_key: str = "accountOwner", status: str = "ACTIVE",
                      promotions: tuple = ()):
    metadata = {owner_key: owner} if owner is not None else {}
    customer = Customer(cid, name if name is not None else f"Customer {cid}", f"ops@{len(cid)}.example", T0, T0,
                        None, metadata)
    subs = [Subscription(f"sub-{cid}", cid, plan, status, None, T0 - timedelta(days=40), None, None, None,
                         T0 + timedelta(days=10), "PAID", ())]
    ents = [ent("sso", None)]
    if api is not None:
        ents.append(ent("api", 1000 if plan == "pro" else 100, api))
    if storage is not None:
        ents.append(ent("storage", 50, storage))
    if fetched_at != T0:  # usage periods of 30 days, 20 of them behind the time of the read
        shift = fetched_at - T0
        ents = [replace(e, usage_period_start=e.usage_period_start + shift,
                        usage_period_end=e.usage_period_end + shift if e.usage_period_end else None) for e in ents]
    governance = shape_governance([], list(budgets), fetched_at)
    return build_snapshot(customer, subs, CustomerEntitlements(None, tuple(ents)), list(promotions),
                          governance["summary"],
                          FEATURES, PACKAGES, fetched_at), governance


def expected(written: dict[str, tuple[dict, Any]], q: NearLimitQuery, owner_key: str = "accountOwner") -> list[tuple]:
    """(kind, customer, entity or feature, scope) of every row the query must return, in
    order: highest first; on a tie budgets first, then by ranking member (bytes)."""
    rows = []
    for cid, (doc, gov) in written.items():
        owner = (doc["profile"]["metadata"].get(owner_key) or "").strip()
        if q.customer is not None and cid != q.customer:
            continue
        if (q.plan is not None and doc["plan_id"] != q.plan) or (q.owner is not None and owner != q.owner):
            continue
        if q.entity_type is None:
            for e in doc["entitlements"]["metered"]:
                if e["utilization"] is None or e["utilization"] < q.min_utilization:
                    continue
                if q.capability is not None and e["feature_id"] != q.capability:
                    continue
                urgency = rules.urgency(entitlement_time_to_limit(e, parse_time(doc["fetched_at"])))
                score = {"utilization": e["utilization"], "usage": e["usage"], "urgency": urgency}[q.order]
                rows.append((-score, 1, entitlement_member(cid, e["feature_id"]),
                             ("entitlement", cid, e["feature_id"], ())))
        for node in (gov["nodes"].values() if gov else ()):
            if q.entity_type is not None and node["type"] != q.entity_type:
                continue
            for b in node["budgets"]:
                if b["utilization"] is None or b["utilization"] < q.min_utilization:
                    continue
                if q.capability is not None and b["capability"] != q.capability:
                    continue
                score = {"utilization": b["utilization"], "usage": b["usage"], "urgency": b["urgency"]}[q.order]
                member = budget_member(cid, node["id"], b["capability"], b["scope"], node["type"])
                rows.append((-score, 0, member, ("budget", cid, node["id"], tuple(b["scope"]))))
    rows.sort(key=lambda r: (r[0], r[1], r[2].encode()))
    return [r[3] for r in rows]


def found(rows) -> list[tuple]:
    return [(r.kind, r.customer_id, r.entity_id if r.kind == "budget" else r.capability, r.scope) for r in rows]


def write_all(rm: ReadModel, snapshots: dict[str, tuple[dict, Any]]) -> None:
    for doc, gov in snapshots.values():
        assert rm.write_customer(doc, gov)
