"""Near-limit rows: the members a near-limit read found (nearlimit.py), read back as the
rows pages and the CSV show — from the budgets' nodes, the entitlements' ranking rows and
the customer list's rows, in one round trip per batch."""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Iterator
from urllib.parse import unquote

from .keys import part
from .nearlimit import NearLimitIndex, NearLimitQuery, split_budget_member, split_entitlement_member
from .packed import unpack_node
from .rankings import entitlement_rows, queue_entitlement_rows
from .values import as_str, parse_time


@dataclass(frozen=True)
class NearLimitRow:
    kind: str  # "budget" | "entitlement"
    customer_id: str
    customer_name: str | None
    entity_id: str | None  # budgets only
    entity_name: str | None
    entity_type: str | None
    capability: str  # the feature id, or "$" + the currency id
    feature_name: str | None  # entitlements: the catalog's name of the feature
    scope: tuple[str, ...]
    usage: float | None
    limit: float | None
    utilization: float
    soft_limit: bool
    period: str | None  # a budget's cadence (P1M), an entitlement's reset period (MONTH)
    period_end: datetime | None
    ttl: dict[str, Any] | None  # the rules' TimeToLimit as stored (codec), None when unknown
    fetched_at: datetime | None  # when Stigg was last read for this customer
    plan_id: str | None
    owner: str | None


@dataclass(frozen=True)
class NearLimitPage:
    rows: list[NearLimitRow]
    offset: int
    limit: int
    total: int | None  # None: not counted (see nearlimit.py)
    next_offset: int | None
    prev_offset: int | None


class NearLimit(NearLimitIndex):
    def near_limit_page(self, query: NearLimitQuery, offset: int = 0, limit: int = 50) -> NearLimitPage:
        offset, limit = max(0, offset), max(1, min(limit, 500))
        found = self.near_limit_members(query, offset, limit)
        return NearLimitPage(
            rows=self.near_limit_rows_of(found.items), offset=offset, limit=limit, total=found.total,
            next_offset=offset + limit if found.has_more else None,
            prev_offset=max(0, offset - limit) if offset > 0 else None)

    def iter_near_limit(self, query: NearLimitQuery, batch: int = 500) -> Iterator[NearLimitRow]:
        """Every matching row in order, read ``batch`` members at a time (the CSV)."""
        for members in self.iter_near_limit_members(query, batch):
            yield from self.near_limit_rows_of(members)

    def near_limit_rows_of(self, items: list[str]) -> list[NearLimitRow]:
        """Rows of members prefixed "b" / "e", in their order; a row rewritten since the
        members were read (its node or entitlement gone) is left out."""
        budgets = {m: split_budget_member(m[1:]) for m in items if m[0] == "b"}
        entitlements = {m: split_entitlement_member(m[1:]) for m in items if m[0] == "e"}
        entities: dict[str, set[str]] = {}
        for cid, eid, *_ in budgets.values():
            entities.setdefault(cid, set()).add(eid)
        cids = sorted(set(entities) | {cid for cid, _ in entitlements.values()})
        pipe = self.r.pipeline(transaction=True)  # one cut: nodes, rows and scores of the same writes
        node_ids = {cid: sorted(eids) for cid, eids in entities.items()}
        for cid, eids in node_ids.items():
            pipe.hmget(self.keys.gov_nodes(cid), eids)
        ent_members = [m[1:] for m in entitlements]
        if ent_members:
            queue_entitlement_rows(pipe, self.keys, ent_members)
        if cids:
            pipe.hmget(self.keys.rows(), cids)
            pipe.hmget(self.keys.near_facets(), [part(c) for c in cids])
        replies = pipe.execute()
        nodes: dict[tuple[str, str], dict] = {}
        for cid, raws in zip(node_ids, replies):
            for eid, raw in zip(node_ids[cid], raws):
                if raw is not None:
                    nodes[(cid, eid)] = unpack_node(raw)
        rest = replies[len(node_ids):]
        ent_rows = entitlement_rows(ent_members, rest[:3]) if ent_members else {}
        rest = rest[3:] if ent_members else rest
        customers: dict[str, tuple[dict | None, list[str]]] = {}
        if cids:
            for cid, row, facets in zip(cids, rest[0], rest[1]):
                customers[cid] = (json.loads(row) if row else None, as_str(facets).split("|") if facets else ["", ""])
        out = []
        for m in items:
            row = (self._budget_row(budgets[m], nodes, customers) if m[0] == "b"
                   else self._entitlement_row(ent_rows.get(m[1:]), customers))
            if row is not None:
                out.append(row)
        return out

    @staticmethod
    def _customer(cid: str, customers: dict) -> dict[str, Any]:
        row, facets = customers.get(cid, (None, ["", ""]))
        return {"customer_name": row["name"] if row else None,
                "fetched_at": parse_time(row["fetched_at"]) if row else None,
                "plan_id": unquote(facets[0]) or None, "owner": unquote(facets[1]) or None}

    def _budget_row(self, parsed: tuple, nodes: dict, customers: dict) -> NearLimitRow | None:
        cid, eid, capability, scope, entity_type = parsed
        node = nodes.get((cid, eid))
        b = next((b for b in node["budgets"] if b["capability"] == capability and tuple(b["scope"]) == scope),
                 None) if node else None
        if b is None or b["utilization"] is None:
            return None
        return NearLimitRow(
            kind="budget", customer_id=cid, entity_id=eid, entity_name=node["name"], entity_type=node["type"],
            capability=capability, feature_name=None, scope=scope, usage=b["usage"], limit=b["limit"],
            utilization=b["utilization"], soft_limit=False, period=b["cadence"],
            period_end=parse_time(b["period_end"]), ttl=b["ttl"], **self._customer(cid, customers))

    def _entitlement_row(self, d: dict | None, customers: dict) -> NearLimitRow | None:
        if d is None:
            return None
        cid = d["customer_id"]
        return NearLimitRow(
            kind="entitlement", customer_id=cid, entity_id=None, entity_name=None, entity_type=None,
            capability=d["feature_id"], feature_name=d["feature_name"], scope=(), usage=d["usage"], limit=d["limit"],
            utilization=d["utilization"], soft_limit=d["soft_limit"], period=d.get("reset_period"),
            period_end=parse_time(d["period_end"]), ttl=d.get("ttl"), **self._customer(cid, customers))
