"""How the governance tree reads: each node's rows as HTML, built once in Python.

A 2,000-node tree shows a hundred or more lines at a time; the same markup written as
template logic, or with ``format_html`` per cell, cost most of the page's time
(bench/bench_governance.py). So rows are plain f-strings in which every value that is
not our own markup goes through ``_e`` (cells.py: html.escape, quotes included), and the
result is marked safe once; the template prints it."""
from __future__ import annotations

from django.utils.safestring import SafeString, mark_safe

from ..templatetags.budgets import budget_change_url
from ..templatetags.ui import bar_width, capability_words, dom_id, level, level_words, num, pct, period_words, until
from ..tree import Line, Row
from .cells import e as _e

_LEAF = '<span class="toggle leaf" aria-hidden="true">·</span>'
_NO_FIGURES = '<td class="num muted">—</td><td class="muted">—</td><td class="muted">—</td>'
_BLOCKED = '<strong class="error-text">Blocked</strong>'


def bar(value: float | None, soft: bool = False) -> str:
    """The utilization bar of dashboard/_bar.html, for a row built in Python (the tree, the
    near-limit table)."""
    if value is None:
        return '<span class="muted">tracked, no limit</span>'
    words = level_words(value)
    strong = f' <strong class="words">{_e(words)}</strong>' if words else ""
    tag = ' <span class="tag" title="Usage may go over this limit">soft limit</span>' if soft else ""
    return (f'<div class="util util-{level(value)}"><div class="bar" aria-hidden="true"><span class="w-'
            f'{bar_width(value)}"></span></div><span class="util-text">{_e(pct(value))}{strong}{tag}</span></div>')


def line_cells(line: Line, customer_id: str, entity_id: str, can_change: bool) -> str:
    """Every cell of a line after the entity's: budget, usage / limit, utilization,
    window, time to limit, what blocks it; with "Change budget" / "Add a budget" and
    "raise it" links for those who may change budgets."""
    b = line.budget
    scope = ("scoped to " + ", ".join(b["scope"]) if b["scope"] else "node-wide") if b else "no budget of its own"
    action = ""
    if can_change:
        href = budget_change_url(customer_id, entity_id, line.capability, b["scope"]) if b \
            else budget_change_url(customer_id, entity_id)
        action = f' · <a class="budget-button" href="{_e(href)}">{"Change budget" if b else "Add a budget"}</a>'
    cells = [f'<td>{_e(capability_words(line.capability))}<div class="muted small">{_e(scope)}{action}</div></td>']
    if b is not None:
        limit = "unlimited" if b["limit"] is None else num(b["limit"])
        resets = f'<div class="muted small">resets {_e(until(b["period_end"]))}</div>' if b["period_end"] else ""
        cells += [f'<td class="num">{_e(num(b["usage"]))} / {_e(limit)}</td>', f"<td>{bar(b['utilization'])}</td>",
                  f"<td>{_e(period_words(b['cadence']))}{resets}</td>"]
    else:
        cells.append(_NO_FIGURES)
    raise_it = ""
    if can_change and line.blocking and not line.blocking.is_own(entity_id):
        href = budget_change_url(customer_id, line.blocking.entity_id, line.capability, line.blocking.scope)
        raise_it = f' · <a class="budget-button" href="{_e(href)}">raise it</a>'
    cells += [f"<td>{_e(line.ttl_words)}</td>", f"<td>{blocking(line, entity_id)}{raise_it}</td>"]
    return "".join(cells)


def blocking(line: Line, entity_id: str) -> str:
    """What blocks the entity for the line's capability, naming and linking the node."""
    b = line.blocking
    if b is None:
        scoped = line.budget is not None and line.budget["scope"]
        return f'<span class="muted">{"applies with its scope" if scoped else "nothing limits it"}</span>'
    if b.is_own(entity_id):
        return f"{_BLOCKED} by its own budget" if b.exhausted else f"its own budget: {_e(num(b.headroom))} left"
    verb = f"{_BLOCKED} by" if b.exhausted else "Limited by"
    state = f"{_e(num(b.usage))} of {_e(num(b.limit))} used" if b.exhausted else f"{_e(num(b.headroom))} left"
    own = (f'<div class="muted small">its own budget still has {_e(num(b.own_headroom))} left</div>'
           if b.own_headroom is not None and b.own_headroom > 0 else "")
    scoped = " (scoped)" if b.is_scoped else ""
    return (f'{verb} <a href="{_e(line.blocking_url)}">{_e(b.entity_name or b.entity_id)}</a>{scoped}: '
            f"{state}{own}")


def row_html(row: Row, ranked: bool, focus: str, capability: str) -> SafeString:
    """One node: a <tbody> with a row per line (its entity cell spanning them), carrying
    ``data-entity-id`` on the body and on every row."""
    node, eid = row.node, row.node["id"]
    classes = f"tnode depth-{row.depth}" + ("" if row.matched else " context") + (" focus" if eid == focus else "")
    if ranked:
        toggle = _LEAF if node["parent"] else ""
    elif node["children"] and row.opened:
        toggle = f'<a class="toggle" href="{_e(row.extra["close_url"])}" aria-expanded="true" title="Close">▾</a>'
    elif node["children"]:
        toggle = (f'<a class="toggle" href="{_e(row.extra["open_url"])}" hx-get="{_e(row.extra["children_url"])}" '
                  f'hx-target="closest tbody" hx-swap="outerHTML" aria-expanded="false" '
                  f'title="Open: {node["children"]} below">▸</a>')
    else:
        toggle = _LEAF
    below = f' <span class="muted small">{_e(num(node["children"]))} below</span>' if node["children"] else ""
    under = f'<div class="muted small">under {_e(node["parent"])}</div>' if ranked and node["parent"] else ""
    entity = (f'<th scope="row" rowspan="{len(row.lines) or 1}" class="entity"><span class="indent">{toggle} '
              f'<a href="{_e(row.extra["url"])}">{_e(node["name"] or eid)}</a> <span class="tag">{_e(node["type"])}'
              f"</span>{below}{under}</span></th>")
    empty = (f'<td colspan="6" class="muted">No budget here or above'
             f'{" for " + _e(capability_words(capability)) if capability else ""}.</td>')
    attr = _e(eid)
    rows = "".join(f'<tr data-entity-id="{attr}">{entity if i == 0 else ""}{cells}</tr>'
                   for i, cells in enumerate([line.cells for line in row.lines] or [empty]))
    return mark_safe(f'<tbody class="{classes}" id="{dom_id(eid)}" data-entity-id="{attr}">{rows}</tbody>')
