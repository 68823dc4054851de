"""Governance hierarchies: each customer's entities as nodes with a children index, and the
fleet-wide budget rankings.

Per customer (ids percent-encoded, see keys.py):

    gov:{id}:nodes      hash   entity id -> NodeDoc (packed.pack_node): the entity, its own budgets, and per
                               capability what blocks it and its time to limit (computed by
                               sync when written)
    gov:{id}:children   hash   parent id ("" for the roots) -> JSON list of child entity ids
    gov:{id}:index      string packed JSON: every node in a few fields, with its budgets' capability,
                               scope, utilization and usage: what ranking, filtering and the
                               sunburst need of the whole tree, and the customer page's budgets
                               nearest their limits, parsed in a few milliseconds;
                               also what a rewrite reads to remove exactly its old ranking members

and for the fleet, ``rank:budgets:{utilization|usage|urgency}`` (negated scores) with
members that also carry the near-limit facets (nearlimit.py; a row is read back from the
node it names).

A page reads one level of a 2,000-node tree with two commands (the level's ids, then
those nodes) without parsing the rest. The whole hierarchy is written whole, in the
customer's transaction (customers.py), so a reader never sees half of it.
"""
from __future__ import annotations

import json
import threading
from collections import OrderedDict
from typing import Any, Sequence, TypedDict

from .base import Store
from .documents import GovernanceSummary
from .keys import Keys
from .nearlimit import budget_member, split_budget_member
from .nearlimit_bounds import queue_bounds
from .nearlimit_near import queue_near
from .nearlimit_rare import queue_rare
from .packed import pack, pack_node, unpack, unpack_node
from .values import BudgetRank, as_str, parse_time, to_json

ROOT = ""  # the children index's key for entities without a parent
INDEX_CACHE_SIZE = 16  # parsed indexes of the hierarchies last read, per process
_index_cache: OrderedDict[tuple[str, str, str], list[IndexNode]] = OrderedDict()
_index_lock = threading.Lock()
BUDGET_ORDERS = ("utilization", "usage", "urgency")


class BudgetDoc(TypedDict):
    capability: str  # the feature id, or "$" + the currency id
    scope: list[str]  # sorted scope entity ids; [] = node-wide
    limit: float | None  # None: unlimited but tracked
    usage: float | None
    utilization: float | None
    cadence: str | None
    period_end: str | None  # when the current window resets
    ttl: dict[str, Any] | None  # the rules' TimeToLimit, as sync's codec stores it (None fields left out)
    urgency: float


class BlockingRef(TypedDict):
    """What stops an entity for one capability: the budget with the least headroom on its
    chain (its own, a scoped one, or an ancestor's), named by its node, capability and
    scope; readers take its figures from that node (``tree.resolve_blocking``)."""

    capability: str
    entity_id: str
    scope: list[str]


class NodeDoc(TypedDict):
    id: str
    type: str
    name: str | None
    parent: str | None
    depth: int  # 0 for a root
    children: int
    path: list[str]  # ancestor ids, root first (links and breadcrumbs)
    budgets: list[BudgetDoc]  # the entity's own budgets, node-wide first
    blocking: list[BlockingRef]  # one per capability with a finite limit on its chain
    utilization: float | None  # the highest of its own budgets (ordering siblings)
    usage: float | None  # the highest of its own budgets' usage


class IndexBudget(TypedDict):
    capability: str
    scope: list[str]
    utilization: float | None
    usage: float | None


class IndexNode(TypedDict):
    """A node in brief (``gov:{id}:index``): the NodeDoc fields a whole-tree read needs."""

    id: str
    type: str
    name: str | None
    parent: str | None
    children: int
    budgets: list[IndexBudget]


class GovernanceWrite(TypedDict):
    """One customer's whole hierarchy, shaped by sync, written whole."""

    summary: GovernanceSummary
    nodes: dict[str, NodeDoc]
    children: dict[str, list[str]]  # parent id (ROOT for roots) -> child ids


def empty_governance(enabled: bool) -> GovernanceWrite:
    return {"summary": {"enabled": enabled, "entities": 0, "budgets": 0, "near": 0, "over": 0, "blocked": 0,
                        "capabilities": [], "types": [], "fingerprint": ""},
            "nodes": {}, "children": {}}


def fleet_member(customer_id: str, node: NodeDoc, budget: BudgetDoc) -> str:
    return budget_member(customer_id, node["id"], budget["capability"], budget["scope"], node["type"])


def queue_governance(pipe: Any, keys: Keys, customer_id: str, gov: GovernanceWrite, old_members: set[str]) -> None:
    """Queue (inside MULTI) the commands that replace the customer's hierarchy and its
    place in the fleet rankings. ``old_members`` were read under WATCH (``members_of``)."""
    cid = customer_id
    pipe.delete(keys.gov_nodes(cid), keys.gov_children(cid), keys.gov_index(cid))
    if gov["nodes"]:
        pipe.hset(keys.gov_nodes(cid), mapping={eid: pack_node(doc) for eid, doc in gov["nodes"].items()})
        pipe.set(keys.gov_index(cid), pack(
            [[n["id"], n["type"], n["name"], n["parent"], n["children"],
              [[b["capability"], b["scope"], b["utilization"], b["usage"]] for b in n["budgets"]]]
             for n in gov["nodes"].values()]))
    if gov["children"]:
        pipe.hset(keys.gov_children(cid), mapping={p: to_json(ids) for p, ids in gov["children"].items()})
    scores: dict[str, dict[str, float]] = {order: {} for order in BUDGET_ORDERS}
    own: list[float] = []
    for node in gov["nodes"].values():
        for b in node["budgets"]:
            member = fleet_member(cid, node, b)
            if b["utilization"] is not None:
                scores["utilization"][member] = -b["utilization"]
                own.append(b["utilization"])
            if b["usage"] is not None:
                scores["usage"][member] = -b["usage"]
            scores["urgency"][member] = -b["urgency"]
    members = set(scores["urgency"])  # every budget has an urgency
    # Out of a ranking: the budgets gone, and those that lost their score in it (a limit
    # removed: no utilization; no usage reported) — else their old score would stay ranked.
    unranked = {order: (old_members - members) | (old_members & members - set(scores[order]))
                for order in BUDGET_ORDERS}
    queue_bounds(pipe, keys, "b", scores["usage"], unranked["usage"])
    for order in BUDGET_ORDERS:
        if unranked[order]:
            pipe.zrem(keys.rank_budgets(order), *unranked[order])
    for order, mapping in scores.items():
        if mapping:
            pipe.zadd(keys.rank_budgets(order), mapping)
    queue_rare(pipe, keys, "b", old_members - members, members - old_members)
    queue_near(pipe, keys, "budgets", scores, old_members | members)
    if own:
        pipe.zadd(keys.budget_utilization(), {cid: max(own)})
    else:
        pipe.zrem(keys.budget_utilization(), cid)


def queue_forget_governance(pipe: Any, keys: Keys, customer_id: str, old_members: set[str]) -> None:
    cid = customer_id
    pipe.delete(keys.gov_nodes(cid), keys.gov_children(cid), keys.gov_index(cid))
    queue_bounds(pipe, keys, "b", {}, old_members)
    if old_members:
        for order in BUDGET_ORDERS:
            pipe.zrem(keys.rank_budgets(order), *old_members)
    queue_rare(pipe, keys, "b", old_members, ())
    queue_near(pipe, keys, "budgets", {}, old_members)
    pipe.zrem(keys.budget_utilization(), cid)


def members_of(pipe: Any, keys: Keys, customer_id: str) -> set[str]:
    """The customer's members of the fleet rankings, as its stored index lists them."""
    raw = pipe.get(keys.gov_index(customer_id))
    return {budget_member(customer_id, eid, c, scope, type_)
            for eid, type_, _, _, _, budgets in (unpack(raw) if raw else ()) for c, scope, _, _ in budgets}


class Governance(Store):
    """Reads of the hierarchies and the fleet budget rankings."""

    def governance_level(self, customer_id: str, parent_id: str | None = None) -> list[NodeDoc]:
        """The children of ``parent_id`` (None: the roots), unordered: two commands, one level."""
        raw = self.r.hget(self.keys.gov_children(customer_id), parent_id or ROOT)
        return self.governance_nodes(customer_id, json.loads(raw) if raw else [])

    def governance_nodes(self, customer_id: str, entity_ids: Sequence[str]) -> list[NodeDoc]:
        if not entity_ids:
            return []
        return [unpack_node(raw) for raw in self.r.hmget(self.keys.gov_nodes(customer_id), list(entity_ids))
                if raw is not None]

    def governance_node(self, customer_id: str, entity_id: str) -> NodeDoc | None:
        raw = self.r.hget(self.keys.gov_nodes(customer_id), entity_id)
        return unpack_node(raw) if raw else None

    def governance_levels(self, customer_id: str, parent_ids: Sequence[str]) -> dict[str, list[NodeDoc]]:
        """Several levels at once (a tree opened down to a node): two round trips."""
        if not parent_ids:
            return {}
        raw = self.r.hmget(self.keys.gov_children(customer_id), list(parent_ids))
        children = {p: json.loads(r) if r else [] for p, r in zip(parent_ids, raw)}
        nodes = {n["id"]: n for n in self.governance_nodes(customer_id, sorted({c for ids in children.values()
                                                                               for c in ids}))}
        return {p: [nodes[c] for c in ids if c in nodes] for p, ids in children.items()}

    def governance_index(self, customer_id: str, fingerprint: str = "") -> list[IndexNode]:
        """Every node of the hierarchy in brief (ranking, filters, the sunburst): the
        fields of a NodeDoc those need, its budgets with capability, scope, utilization
        and usage only. Read-only for the caller.

        With the hierarchy's ``fingerprint`` (its summary's: equal fingerprints, equal
        answers from Stigg, equal index), a page polling a large hierarchy reuses the
        index this process parsed instead of reading and parsing it again."""
        key = (self.prefix, customer_id, fingerprint)
        if fingerprint:
            with _index_lock:
                if key in _index_cache:
                    _index_cache.move_to_end(key)
                    return _index_cache[key]
        index = self._read_index(customer_id)
        if fingerprint:
            with _index_lock:
                _index_cache[key] = index
                while len(_index_cache) > INDEX_CACHE_SIZE:
                    _index_cache.popitem(last=False)
        return index

    def _read_index(self, customer_id: str) -> list[IndexNode]:
        raw = self.r.get(self.keys.gov_index(customer_id))
        return [{"id": eid, "type": type_, "name": name, "parent": parent, "children": children,
                 "budgets": [{"capability": c, "scope": scope, "utilization": u, "usage": usage}
                             for c, scope, u, usage in budgets]}
                for eid, type_, name, parent, children, budgets in (unpack(raw) if raw else ())]

    def nearest_budgets(self, customer_id: str, n: int = 10, fingerprint: str = "") -> list[tuple[NodeDoc, BudgetDoc]]:
        """The customer's ``n`` budgets of highest utilization, with their nodes (found in
        the hierarchy's index, then only those nodes read)."""
        ranked = sorted(((b["utilization"], node["id"], b["capability"], tuple(b["scope"]))
                         for node in self.governance_index(customer_id, fingerprint) for b in node["budgets"]
                         if b["utilization"] is not None), key=lambda t: (-t[0], t[1:]))[:n]
        nodes = {d["id"]: d for d in self.governance_nodes(customer_id, sorted({t[1] for t in ranked}))}
        out = []
        for _, eid, capability, scope in ranked:
            b = next((b for b in nodes[eid]["budgets"] if b["capability"] == capability
                      and tuple(b["scope"]) == scope), None) if eid in nodes else None
            if b is not None:
                out.append((nodes[eid], b))
        return out

    def budgets_at_or_above(self, customer_id: str, threshold: float) -> dict[tuple[str, str, tuple[str, ...]], float | None]:
        """(entity, capability, scope) -> usage of the customer's budgets at or above
        ``threshold`` utilization (what a hot-tier poll compares Stigg's answer with)."""
        return {(node["id"], b["capability"], tuple(b["scope"])): b["usage"]
                for node in self.governance_index(customer_id) for b in node["budgets"]
                if b["utilization"] is not None and b["utilization"] >= threshold}

    def top_budgets(self, n: int = 20, by: str = "utilization", offset: int = 0) -> list[BudgetRank]:
        """The fleet's budgets in ``by`` order (highest first), read back from their nodes."""
        members = [as_str(m) for m in self.r.zrange(self.keys.rank_budgets(by), offset, offset + n - 1)]
        if not members:
            return []
        parsed = [split_budget_member(m)[:4] for m in members]
        pipe = self.r.pipeline(transaction=False)
        for cid, eid, _, _ in parsed:
            pipe.hget(self.keys.gov_nodes(cid), eid)
        nodes = pipe.execute()
        cids = sorted({p[0] for p in parsed})
        names = {cid: json.loads(raw)["name"] if raw else None
                 for cid, raw in zip(cids, self.r.hmget(self.keys.rows(), cids))}
        out = []
        for (cid, eid, capability, scope), raw in zip(parsed, nodes):
            if raw is None:
                continue  # rewritten between the two reads
            node: NodeDoc = unpack_node(raw)
            b = next((b for b in node["budgets"] if b["capability"] == capability and tuple(b["scope"]) == scope),
                     None)
            if b is None:
                continue
            out.append(BudgetRank(
                customer_id=cid, customer_name=names[cid], entity_id=eid, entity_name=node["name"],
                feature_id=None if capability.startswith("$") else capability,
                currency_id=capability[1:] if capability.startswith("$") else None, scope=scope, cadence=b["cadence"],
                limit=b["limit"], usage=b["usage"], utilization=b["utilization"],
                period_end=parse_time(b["period_end"])))
        return out
