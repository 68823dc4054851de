"""One customer's governance hierarchy: the tree (levels load on expand) or a ranked list,
ordered by usage or utilization, filtered, with what blocks each node and when it reaches
its limit; and a sunburst of the whole hierarchy."""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any
from urllib.parse import quote, urlencode

from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.views.decorators.http import require_GET

from .. import charts, tasks
from ..forms import PAGE_SIZE, GovernanceFilter
from ..readmodel import ReadModel
from ..tree import Row, TreeFilter, blockers_to_read, fill_lines, filtered_tree, lines, ranked, tree_rows
from .common import customer_missing, frame, page_login_required, render_page
from .tree_cells import line_cells, row_html

CHANGE_BUDGET = "dashboard.change_budget"
# A node filter opens every path to a match; past this many rows the page says so and
# suggests the ranked list (which pages) instead of sending a page nobody can read.
MAX_TREE_ROWS = 500


@page_login_required
@require_GET
def governance(request: HttpRequest, customer_id: str) -> HttpResponse:
    rm = tasks.read_model()
    doc = rm.customer(customer_id)
    if doc is None:
        return customer_missing(request, rm, customer_id)
    summary = doc["governance"]
    form = GovernanceFilter(request.GET, summary["capabilities"], summary["types"])
    form.is_valid()  # invalid fields fall back to defaults; their errors are shown
    chosen = form.values()
    f = _tree_filter(chosen)
    context: dict[str, Any] = {**frame(rm), "doc": doc, "profile": doc["profile"], "summary": summary,
                               "form": form, "chosen": chosen, "query": _query(chosen, form.opened)}
    chart_only = bool(request.htmx) and request.htmx.target == "sunburst"  # its own request, lazily
    if summary["entities"] and not chart_only:
        context.update(_ranked(rm, customer_id, summary["fingerprint"], f, chosen["offset"])
                       if chosen["view"] == "ranked"
                       else _tree(rm, customer_id, summary["fingerprint"], f, set(form.opened), chosen["node"]))
        _links(context["rows"], customer_id, context["query"], request.user.has_perm(CHANGE_BUDGET), chosen,
               context.get("focus", ""))
    if request.GET.get("chart") == "sunburst" and summary["entities"]:
        base = _node_base(customer_id, context["query"])
        context["sunburst"] = charts.hierarchy_sunburst(
            rm.governance_index(customer_id, summary["fingerprint"]), lambda eid: base + quote(eid, safe=""))
    return render_page(request, "dashboard/governance.html", context, frozenset({"governance-body", "sunburst"}))


@page_login_required
@require_GET
def governance_children(request: HttpRequest, customer_id: str) -> HttpResponse:
    """One level of the tree, below ``parent`` (htmx expand): the parent's row, now
    open, followed by its children in order."""
    rm = tasks.read_model()
    parent = rm.governance_node(customer_id, request.GET.get("parent", ""))
    doc = rm.customer(customer_id) if parent is not None else None
    if parent is None or doc is None:
        return customer_missing(request, rm, customer_id)
    form = GovernanceFilter(request.GET, doc["governance"]["capabilities"], doc["governance"]["types"])
    form.is_valid()
    chosen = form.values()
    f, now = _tree_filter(chosen), datetime.now(timezone.utc)
    opened = {*form.opened, parent["id"]}
    depth = min(int(request.GET["depth"]), 50) if request.GET.get("depth", "").isdigit() else 0
    children = rm.governance_level(customer_id, parent["id"])
    docs = _with_blockers(rm, customer_id, {n["id"]: n for n in (parent, *children)})
    rows = [Row(parent, depth, lines(parent, f, now, docs), True, children_shown=parent["children"])]
    rows += fill_lines(tree_rows({}, children, set(), f), docs, f, now)
    for row in rows[1:]:
        row.depth = depth + 1
    query = _query(chosen, sorted(opened))
    context = {"doc": doc, "rows": _links(rows, customer_id, query, request.user.has_perm(CHANGE_BUDGET), chosen),
               "query": query, "chosen": chosen}
    return render_page(request, "dashboard/governance.html#tree-rows", context)


def _tree_filter(chosen: dict[str, Any]) -> TreeFilter:
    return TreeFilter(order=chosen["order"], capability=chosen["capability"], entity_type=chosen["entity_type"],
                      min_utilization=chosen["min_utilization"], scope=chosen["scope"], search=chosen["search"])


def _tree(rm: ReadModel, customer_id: str, fingerprint: str, f: TreeFilter, opened: set[str],
          focus: str) -> dict[str, Any]:
    now = datetime.now(timezone.utc)
    if f.narrows_nodes:
        matched, keep, levels = filtered_tree(rm.governance_index(customer_id, fingerprint), f)
        rows = tree_rows(levels, levels.get("", []), keep, f, keep=keep, matched=matched)[:MAX_TREE_ROWS]
        docs = _with_blockers(rm, customer_id, {n["id"]: n for n in rm.governance_nodes(
            customer_id, [r.node["id"] for r in rows])})
        return {"rows": fill_lines(rows, docs, f, now), "rows_cut": len(keep) > MAX_TREE_ROWS,
                "matches": len(matched)}
    focused = rm.governance_node(customer_id, focus) if focus else None
    if focused is not None:
        opened |= set(focused["path"])
    levels = rm.governance_levels(customer_id, sorted(opened))
    roots = rm.governance_level(customer_id)
    docs = _with_blockers(rm, customer_id, {n["id"]: n for n in roots} | {
        n["id"]: n for level in levels.values() for n in level})
    return {"rows": fill_lines(tree_rows(levels, roots, opened, f), docs, f, now),
            "focus": focused["id"] if focused else ""}


def _ranked(rm: ReadModel, customer_id: str, fingerprint: str, f: TreeFilter, offset: int) -> dict[str, Any]:
    now = datetime.now(timezone.utc)
    nodes = ranked(rm.governance_index(customer_id, fingerprint), f)
    page = nodes[offset:offset + PAGE_SIZE]
    docs = _with_blockers(rm, customer_id, {n["id"]: n for n in rm.governance_nodes(
        customer_id, [n["id"] for n in page])})
    return {"rows": fill_lines([Row(n, 0, [], False) for n in page], docs, f, now), "total": len(nodes),
            "offset": offset, "next_offset": offset + PAGE_SIZE if offset + PAGE_SIZE < len(nodes) else None,
            "prev_offset": max(0, offset - PAGE_SIZE) if offset else None, "first": offset + 1 if page else 0,
            "last": offset + len(page)}


def _with_blockers(rm: ReadModel, customer_id: str, docs: dict[str, Any]) -> dict[str, Any]:
    """The nodes at hand, and the ancestors whose budgets block them (one read)."""
    return docs | {n["id"]: n for n in rm.governance_nodes(customer_id, sorted(blockers_to_read(docs)))}


def _query(chosen: dict[str, Any], opened: list[str] | set[str]) -> dict[str, Any]:
    """The page's query as links keep it (defaults left out); ``open`` repeats."""
    query: dict[str, Any] = {k: v for k, v in {
        "view": chosen["view"] if chosen["view"] != "tree" else "",
        "order": chosen["order"] if chosen["order"] != "utilization" else "",
        "capability": chosen["capability"], "entity_type": chosen["entity_type"],
        "min_utilization": "" if chosen["min_utilization"] is None else chosen["min_utilization"],
        "scope": chosen["scope"] if chosen["scope"] != "all" else "", "q": chosen["search"]}.items() if v != ""}
    if opened:
        query["open"] = sorted(opened)
    return query


def _links(rows: list[Row], customer_id: str, query: dict[str, Any], can_change: bool, chosen: dict[str, Any],
           focus: str = "") -> list[Row]:
    """Every link a row needs — the node itself, what blocks it, opening (plain link;
    htmx loads the level alone) and closing — and the row's HTML (tree_cells.py)."""
    page = reverse("customer-governance", args=[customer_id])
    children = reverse("governance-children", args=[customer_id])
    opened = set(query.get("open", ()))
    # The page's own parameters, encoded once; each row adds its own (a 150-row search
    # encoded the same query 450 times).
    rest = urlencode({k: v for k, v in query.items() if k != "open"}, doseq=True)
    rest_amp = rest + "&" if rest else ""

    def with_open(ids: set[str]) -> str:
        return f"{page}?{rest_amp}{urlencode({'open': sorted(ids)}, doseq=True)}" if ids else f"{page}?{rest}"

    node_base = _node_base(customer_id, query)
    for row in rows:
        eid = row.node["id"]
        row.extra = {
            "url": node_base + quote(eid, safe=""),
            "open_url": with_open(opened | {eid}),
            "close_url": with_open(opened - {eid}),
            "children_url": f"{children}?{rest_amp}{urlencode({'parent': eid, 'depth': row.depth})}",
        }
        for line in row.lines:
            if line.blocking:
                line.blocking_url = node_base + quote(line.blocking.entity_id, safe="")
            line.cells = line_cells(line, customer_id, eid, can_change)
        row.html = row_html(row, chosen["view"] == "ranked", focus, chosen["capability"])
    return rows


def _node_base(customer_id: str, query: dict[str, Any]) -> str:
    """A node's link, but for its encoded id: the tree with the page's order and filters."""
    page = reverse("customer-governance", args=[customer_id])
    kept = urlencode({k: v for k, v in query.items() if k not in ("open", "view")})
    return f"{page}?{kept}&node=" if kept else f"{page}?node="
