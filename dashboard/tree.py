"""The governance hierarchy as the governance page shows it: which budgets a node shows
under the filters, the value its siblings are ordered by, which nodes match, and the
rows of a tree with some nodes opened. Pure functions over the stored nodes (no Redis):
whole nodes (NodeDoc), or for whole-tree work the brief ones of the index (IndexNode),
whose rows get their lines from the whole nodes once the page's rows are known.

Ordering follows Stigg's console ("Order by: Usage / Utilization", §9.5): descending,
nodes without a value last, ties by entity id — ``rules.sibling_sort_key``."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Iterable, Mapping, Sequence

from .codec import load
from .readmodel import BlockingRef, BudgetDoc, IndexNode, NodeDoc
from .rules.governance import Budget, TimeToLimit, describe_time_to_limit, sibling_sort_key

ORDERS = ("utilization", "usage")
SCOPES = ("all", "node-wide", "scoped")


@dataclass(frozen=True)
class TreeFilter:
    order: str = "utilization"
    capability: str = ""
    entity_type: str = ""
    min_utilization: float | None = None
    scope: str = "all"
    search: str = ""

    @property
    def narrows_nodes(self) -> bool:
        """Filters that hide whole nodes (the rest only choose which budgets a node shows)."""
        return bool(self.entity_type or self.search or self.min_utilization is not None)


@dataclass(frozen=True)
class Blocking:
    """What stops an entity for one capability, with the figures of the budget that does."""

    capability: str
    entity_id: str  # whose budget blocks
    entity_name: str | None
    scope: list[str]
    limit: float
    usage: float | None
    headroom: float  # what the entity may still use (negative: overspent)
    own_headroom: float | None  # what its own node-wide budget has left, when it has a limited one
    ttl: dict[str, Any] | None  # the blocking budget's time to limit

    @property
    def exhausted(self) -> bool:
        return self.headroom <= 0

    @property
    def is_scoped(self) -> bool:
        return bool(self.scope)

    def is_own(self, entity_id: str) -> bool:
        return self.entity_id == entity_id and not self.scope


def _headroom(b: BudgetDoc) -> float | None:
    return Budget(entity_id="", capability=b["capability"], limit=b["limit"], usage=b["usage"]).headroom


def resolve_blocking(node: NodeDoc, ref: BlockingRef, docs: Mapping[str, NodeDoc]) -> Blocking | None:
    """The stored reference with the blocking budget's figures, read from its node (this
    node, or an ancestor in ``docs``); None when that node or budget is not at hand."""
    holder = node if ref["entity_id"] == node["id"] else docs.get(ref["entity_id"])
    budget = next((b for b in holder["budgets"] if b["capability"] == ref["capability"]
                   and b["scope"] == ref["scope"]), None) if holder else None
    headroom = _headroom(budget) if budget else None
    if budget is None or headroom is None:
        return None
    own = next((b for b in node["budgets"] if b["capability"] == ref["capability"] and not b["scope"]), None)
    return Blocking(capability=ref["capability"], entity_id=ref["entity_id"], entity_name=holder["name"],
                    scope=ref["scope"], limit=budget["limit"] or 0.0, usage=budget["usage"], headroom=headroom,
                    own_headroom=_headroom(own) if own else None, ttl=budget["ttl"])


def blockers_to_read(docs: Mapping[str, NodeDoc]) -> set[str]:
    """The nodes whose budgets block the given ones but are not among them (ancestors)."""
    return {ref["entity_id"] for d in docs.values() for ref in d["blocking"]} - set(docs)


@dataclass
class Line:
    """One row of a node: one of its own budgets, or (no budget of its own for that
    capability) what limits it from further up."""

    capability: str
    budget: BudgetDoc | None
    blocking: Blocking | None
    ttl_words: str
    blocking_url: str = ""  # set by the view
    cells: str = ""  # the line's cells as HTML, set by the view


Node = NodeDoc | IndexNode


@dataclass
class Row:
    node: Any  # NodeDoc once its lines are filled; IndexNode while only ordered
    depth: int
    lines: list[Line]
    opened: bool
    matched: bool = True  # False: shown only as the path to a match
    children_shown: int = 0
    extra: dict[str, Any] = field(default_factory=dict)
    html: str = ""  # the node's rows as HTML, set by the view


def shown_budgets(node: Node, f: TreeFilter) -> list[Any]:
    if not f.capability and f.scope == "all":  # no filter on budgets: the common case, no copy
        return node["budgets"]  # type: ignore[return-value]
    return [b for b in node["budgets"]
            if (not f.capability or b["capability"] == f.capability)
            and (f.scope == "all" or (f.scope == "scoped") == bool(b["scope"]))]


def sort_value(node: Node, f: TreeFilter) -> float | None:
    """The node's value for ordering: the highest of its shown budgets' utilization (or
    usage); None without one."""
    values = [b[f.order] for b in shown_budgets(node, f) if b[f.order] is not None]  # type: ignore[literal-required]
    return max(values) if values else None


def ordered(nodes: Iterable[Node], f: TreeFilter) -> list[Any]:
    return sorted(nodes, key=lambda n: sibling_sort_key(sort_value(n, f), n["id"]))


def matches(node: Node, f: TreeFilter) -> bool:
    if f.entity_type and node["type"] != f.entity_type:
        return False
    if f.search:
        needle = f.search.casefold()
        if needle not in node["id"].casefold() and needle not in (node["name"] or "").casefold():
            return False
    if f.min_utilization is not None:
        return any((b["utilization"] or 0) >= f.min_utilization for b in shown_budgets(node, f))
    return True


def lines(node: NodeDoc, f: TreeFilter, now: datetime, docs: Mapping[str, NodeDoc]) -> list[Line]:
    """The node's own budgets under the filter, each with what blocks the node for that
    capability; then each capability limited only from further up. ``docs``: the nodes
    at hand, its blockers among them (``blockers_to_read``)."""
    blocking = {ref["capability"]: resolve_blocking(node, ref, docs) for ref in node["blocking"]}
    out = [Line(b["capability"], b, blocking.get(b["capability"]) if not b["scope"] else None,
                _ttl_words(b["ttl"], now)) for b in shown_budgets(node, f)]
    own = {b["capability"] for b in node["budgets"] if not b["scope"]}
    for capability, block in sorted(blocking.items()):
        if block is None or capability in own or (f.capability and capability != f.capability) \
                or f.scope == "scoped":
            continue
        out.append(Line(capability, None, block, _ttl_words(block.ttl, now)))
    return out


def _ttl_words(ttl: Mapping[str, Any] | None, now: datetime) -> str:
    return describe_time_to_limit(load(TimeToLimit, ttl), now) if ttl else ""


def tree_rows(levels: Mapping[str, Sequence[Node]], roots: Sequence[Node], opened: set[str], f: TreeFilter,
              keep: set[str] | None = None, matched: set[str] | None = None) -> list[Row]:
    """Rows in pre-order, without their lines yet (``fill_lines``): ``roots`` ordered, and
    below every opened node its children (``levels[parent id]``) ordered. ``keep``: only
    these nodes are shown (a node filter is on: the matches and the paths to them)."""
    rows: list[Row] = []

    def walk(nodes: Sequence[Node], depth: int) -> None:
        for node in ordered(nodes, f):
            if keep is not None and node["id"] not in keep:
                continue
            is_open = node["id"] in opened and node["children"] > 0
            row = Row(node, depth, [], is_open, matched=matched is None or node["id"] in matched)
            rows.append(row)
            if is_open:
                children = levels.get(node["id"], ())
                row.children_shown = len(children) if keep is None else sum(1 for c in children if c["id"] in keep)
                walk(children, depth + 1)

    walk(roots, 0)
    return rows


def fill_lines(rows: Sequence[Row], docs: Mapping[str, NodeDoc], f: TreeFilter, now: datetime) -> list[Row]:
    """Each row's whole node and its lines; rows whose node is gone meanwhile are dropped."""
    out = []
    for row in rows:
        doc = docs.get(row.node["id"])
        if doc is not None:
            row.node, row.lines = doc, lines(doc, f, now, docs)
            out.append(row)
    return out


def filtered_tree(nodes: Sequence[Node], f: TreeFilter) -> tuple[set[str], set[str], dict[str, list[Any]]]:
    """For a node filter: the matching nodes, every node to keep (the matches and their
    ancestors, so each match shows where it sits) and every level, from the whole tree."""
    matched = {n["id"] for n in nodes if matches(n, f)}
    parent = {n["id"]: n["parent"] for n in nodes}
    keep: set[str] = set()
    for eid in matched:
        while eid is not None and eid not in keep:  # stops at a root, and at a cycle
            keep.add(eid)
            eid = parent.get(eid)
    levels: dict[str, list[Any]] = {}
    for n in nodes:
        levels.setdefault(n["parent"] or "", []).append(n)
    return matched, keep, levels


def ranked(nodes: Iterable[Node], f: TreeFilter) -> list[Any]:
    """Every node that matches, in the chosen order (the flat ranked view)."""
    return ordered((n for n in nodes if matches(n, f)), f)
