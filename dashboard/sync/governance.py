"""Shaping a customer's governance hierarchy for the read model: every entity as a node
with its own budgets, and per capability what blocks it and when it reaches its limit —
computed here, once per write, by the rules pages and previews share (rules/governance.py).
Pure: no Redis, no HTTP."""
from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Sequence

from ..readmodel import BlockingRef, BudgetDoc, GovernanceWrite, NodeDoc, empty_governance, iso
from ..rules import governance as rules
from ..stigg import GovernanceNode
from ..codec import dump

NEAR = 0.8


def shape_governance(entities: Sequence[GovernanceNode], rows: Sequence[GovernanceNode],
                     now: datetime) -> GovernanceWrite:
    """``entities``: the tree-mode rows (one per entity, no budget); ``rows``: the hydrated
    rows (one per budget). An entity that appears only among the budgets is kept too."""
    gov = empty_governance(True)
    nodes: dict[str, rules.Node] = {}
    for n in (*entities, *rows):
        if n.entity_id not in nodes:
            nodes[n.entity_id] = rules.Node(n.entity_id, n.entity_type_id, n.display_name, n.parent_id)
    budgets = [_budget(r) for r in rows if r.feature_id is not None or r.currency_id is not None]
    facts_of: dict[str, list[rules.NodeFacts]] = {}
    for (eid, _), f in sorted(rules.compute_node_facts(nodes.values(), budgets, now).items()):
        facts_of.setdefault(eid, []).append(f)
    own = rules.index_budgets(budgets)
    children: dict[str, list[str]] = {}
    for node in nodes.values():
        parent = node.parent_id if node.parent_id in nodes else None
        children.setdefault(parent or "", []).append(node.entity_id)
    blocked: set[str] = set()
    for eid, node in nodes.items():
        path = rules.chain(nodes, eid)[1:][::-1]
        mine = sorted(own.get(eid, ()), key=lambda b: (b.is_scoped, b.capability, b.scope))
        budget_docs = [_budget_doc(b, now) for b in mine]
        blocking = [_blocking_ref(f) for f in facts_of.get(eid, ()) if f.blocking]
        if any(f.blocking.exhausted for f in facts_of.get(eid, ()) if f.blocking):
            blocked.add(eid)
        utils = [b["utilization"] for b in budget_docs if b["utilization"] is not None]
        usages = [b["usage"] for b in budget_docs if b["usage"] is not None]
        gov["nodes"][eid] = NodeDoc(
            id=eid, type=node.entity_type_id, name=node.display_name,
            parent=node.parent_id if node.parent_id in nodes else None, depth=len(path),
            children=len(children.get(eid, ())), path=path, budgets=budget_docs, blocking=blocking,
            utilization=max(utils) if utils else None, usage=max(usages) if usages else None)
    gov["children"] = {p: sorted(ids) for p, ids in children.items()}
    gov["summary"].update(
        entities=len(nodes), budgets=len(budgets), blocked=len(blocked),
        near=sum(1 for b in budgets if (rules.utilization(b.usage, b.limit) or 0) >= NEAR),
        over=sum(1 for b in budgets if (rules.utilization(b.usage, b.limit) or 0) >= 1),
        capabilities=sorted({b.capability for b in budgets}), types=sorted({n.entity_type_id for n in nodes.values()}),
        fingerprint=_fingerprint(entities, rows))
    return gov


def _fingerprint(entities: Sequence[GovernanceNode], rows: Sequence[GovernanceNode]) -> str:
    canonical = json.dumps([dump(entities), dump(rows)], sort_keys=True, separators=(",", ":"))
    return hashlib.blake2b(canonical.encode(), digest_size=12).hexdigest()


def _budget(row: GovernanceNode) -> rules.Budget:
    return rules.Budget(
        entity_id=row.entity_id, capability=rules.capability_key(row.feature_id, row.currency_id),
        scope=tuple(sorted(row.scope_entity_ids)), limit=row.usage_limit, usage=row.current_usage,
        cadence=row.cadence, period_start=row.usage_period_start, period_end=row.usage_period_end)


def _budget_doc(b: rules.Budget, now: datetime) -> BudgetDoc:
    ttl = rules.time_to_limit(b, now)
    return BudgetDoc(
        capability=b.capability, scope=list(b.scope), limit=b.limit, usage=b.usage,
        utilization=rules.utilization(b.usage, b.limit), cadence=b.cadence, period_end=iso(b.period_end),
        ttl={k: v for k, v in dump(ttl).items() if v is not None}, urgency=rules.urgency(ttl))


def _blocking_ref(facts: rules.NodeFacts) -> BlockingRef:
    assert facts.blocking is not None
    return BlockingRef(capability=facts.capability, entity_id=facts.blocking.blocking_entity_id,
                       scope=list(facts.blocking.budget.scope))
