"""How one line of the governance tree reads: its cells as escaped HTML, built once in
Python. A 2,000-node tree shows a hundred such lines at a time, and the same cells written
as template logic cost most of the page's time (bench/bench_governance.py)."""
from __future__ import annotations

from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe

from ..templatetags.budgets import budget_change_url
from ..templatetags.ui import bar_width, capability_words, level, level_words, num, pct, period_words, until
from ..tree import Line

_DASH = mark_safe('<td class="num muted">—</td><td class="muted">—</td><td class="muted">—</td>')


def bar(value: float | None) -> SafeString:
    """The utilization bar of dashboard/_bar.html, for a line of the tree."""
    if value is None:
        return mark_safe('<span class="muted">tracked, no limit</span>')
    words = level_words(value)
    return format_html('<div class="util util-{}"><div class="bar" aria-hidden="true"><span style="width: {}%">'
                       '</span></div><span class="util-text">{}{}</span></div>', level(value), bar_width(value),
                       pct(value), format_html(' <strong class="words">{}</strong>', words) if words else "")


def line_cells(line: Line, customer_id: str, entity_id: str, can_change: bool) -> SafeString:
    """Every cell of a line after the entity's: budget, usage / limit, utilization,
    window, time to limit, what blocks it; with "Change budget" / "Add a budget" and
    "raise it" links for those who may change budgets."""
    b = line.budget
    scope = ("scoped to " + ", ".join(b["scope"]) if b["scope"] else "node-wide") if b else "no budget of its own"
    action = ""
    if can_change:
        href = budget_change_url(customer_id, entity_id, line.capability, b["scope"]) if b \
            else budget_change_url(customer_id, entity_id)
        action = format_html(' · <a class="budget-button" href="{}">{}</a>', href,
                             "Change budget" if b else "Add a budget")
    cells = [format_html('<td>{}<div class="muted small">{}{}</div></td>', capability_words(line.capability), scope,
                         action)]
    if b is not None:
        limit = "unlimited" if b["limit"] is None else num(b["limit"])
        resets = format_html('<div class="muted small">resets {}</div>', until(b["period_end"])) \
            if b["period_end"] else ""
        cells += [format_html('<td class="num">{} / {}</td>', num(b["usage"]), limit),
                  format_html("<td>{}</td>", bar(b["utilization"])),
                  format_html("<td>{}{}</td>", period_words(b["cadence"]), resets)]
    else:
        cells.append(_DASH)
    raise_it = ""
    if can_change and line.blocking and not line.blocking.is_own(entity_id):
        raise_it = format_html(' · <a class="budget-button" href="{}">raise it</a>', budget_change_url(
            customer_id, line.blocking.entity_id, line.capability, line.blocking.scope))
    cells += [format_html("<td>{}</td>", line.ttl_words),
              format_html("<td>{}{}</td>", blocking(line, entity_id), raise_it)]
    return mark_safe("".join(cells))


def blocking(line: Line, entity_id: str) -> SafeString:
    """What blocks the entity for the line's capability, naming and linking the node."""
    b = line.blocking
    if b is None:
        scoped = line.budget is not None and line.budget["scope"]
        return format_html('<span class="muted">{}</span>', "applies with its scope" if scoped
                           else "nothing limits it")
    if b.is_own(entity_id):
        if b.exhausted:
            return mark_safe('<strong class="error-text">Blocked</strong> by its own budget')
        return format_html("its own budget: {} left", num(b.headroom))
    verb = mark_safe('<strong class="error-text">Blocked</strong> by') if b.exhausted else "Limited by"
    state = format_html("{} of {} used", num(b.usage), num(b.limit)) if b.exhausted \
        else format_html("{} left", num(b.headroom))
    own = format_html('<div class="muted small">its own budget still has {} left</div>', num(b.own_headroom)) \
        if b.own_headroom is not None and b.own_headroom > 0 else ""
    return format_html('{} <a href="{}">{}</a>{}: {}{}', verb, line.blocking_url, b.entity_name or b.entity_id,
                       " (scoped)" if b.is_scoped else "", state, own)
