"""A row of the near-limit table as HTML, built with ``html.escape`` on every value (as the
tree's, the audit log's and the expiring list's rows are): 50 rows of template tags and
includes were most of the page's time (bench/README.md). Every value from the read model
goes through ``escape``; nothing else is marked safe."""
from __future__ import annotations

import json
from typing import Any

from django.utils.safestring import SafeString, mark_safe

from ..templatetags.ui import age
from .cells import e as _e, grant_link
from .tree_cells import bar


def _what(r: dict[str, Any], can_grant: bool) -> str:
    row = r["row"]
    if row.kind == "budget":
        currency = " (currency)" if r["is_currency"] else ""
        scope = f" · scope {_e(', '.join(row.scope))}" if row.scope else ""
        return (f'<td><a href="{_e(r["link"])}">{_e(row.entity_name or row.entity_id)}</a> '
                f'<span class="muted small">{_e(row.entity_type or "")}</span>'
                f'<div class="muted small">{_e(r["capability"])}{currency}{scope}</div></td>')
    grant = grant_link(row.customer_id, row.capability, row.feature_name or row.capability) if can_grant else ""
    return (f'<td><a href="{_e(r["link"])}">{_e(row.feature_name or row.capability)}</a>'
            f'<div class="muted small">{_e(row.capability)}</div>{grant}</td>')


def _tick(row: Any) -> str:
    """The bulk grant's checkbox (views/bulk_select.py): entitlements only, a budget cannot
    get a promotion. Its value names the customer and feature as a JSON array."""
    if row.kind != "entitlement":
        return '<td class="tick"></td>'
    value = _e(json.dumps([row.customer_id, row.capability]))
    label = _e(f"Select {row.feature_name or row.capability} of {row.customer_name or row.customer_id}")
    return f'<td class="tick"><input type="checkbox" name="row" value="{value}" aria-label="{label}"></td>'


def row_html(r: dict[str, Any], can_grant: bool) -> SafeString:
    """One table row of ``views.nearlimit._row``'s values; with a checkbox first for those
    who may grant."""
    row = r["row"]
    entity = f' data-entity-id="{_e(row.entity_id)}"' if row.entity_id is not None else ""
    kind = "Budget" if row.kind == "budget" else "Entitlement"
    return mark_safe(
        f'<tr data-kind="{_e(row.kind)}"{entity}>{_tick(row) if can_grant else ""}'
        f'<td><span class="kind kind-{_e(row.kind)}">{kind}</span></td>'
        f'<td><a href="{_e(r["customer_url"])}">{_e(row.customer_name or row.customer_id)}</a>'
        f'<div class="muted small">{_e(row.customer_id)}</div></td>'
        f'{_what(r, can_grant)}<td class="num">{_e(r["usage_limit"])}</td>'
        f'<td>{bar(row.utilization, row.soft_limit)}</td><td>{_e(r["time_to_limit"])}</td>'
        f'<td class="nowrap">{_e(r["period_end"])}<div class="muted small">{_e(r["period"])}</div></td>'
        f'<td>{age(row.fetched_at, "never synced")}</td></tr>')
