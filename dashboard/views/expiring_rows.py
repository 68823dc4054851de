"""A row of the expiring-promotions table as HTML, built with ``html.escape`` on every value
(as the audit log's and the governance tree's rows are): 50 rows of template tags, URL
reversals and includes took most of the page's time (bench/README.md). Every value from
the read model or the audit log goes through ``escape``; nothing else is marked safe."""
from __future__ import annotations

from html import escape
from typing import Any
from urllib.parse import quote

from django.middleware.csrf import get_token
from django.http import HttpRequest
from django.urls import reverse
from django.utils.safestring import SafeString, mark_safe

from ..models import AuditEntry
from ..templatetags.ui import day, num, until, when
from .cells import csrf_field


def grants_words(row: dict[str, Any]) -> str:
    """What a promotion grants, as the promotions table says it."""
    if row.get("enum_values"):
        return ", ".join(row["enum_values"])
    if row.get("unlimited"):
        return "unlimited"
    if row.get("usage_limit") is not None:
        return num(row["usage_limit"]) + (" (soft)" if row.get("soft_limit") else "")
    return "access"


def _granted(entry: AuditEntry | None) -> str:
    if entry is None:
        return '<span class="muted small">granted outside this dashboard</span>'
    ticket = f" · {escape(entry.ticket[:60])}" if entry.ticket else ""
    reason = entry.reason if len(entry.reason) <= 140 else entry.reason[:139] + "…"
    return (f'{escape(entry.username)} <span class="muted small">{escape(day(entry.at))}</span>'
            f'<div class="small">{escape(reason)}{ticket}</div>')


def _extend(row: dict[str, Any], token: str, csrf: str, here: str, periods: list[tuple[str, str]],
            max_reason: int) -> str:
    url = escape(f"{reverse('promotion-extend', args=[row['customer_id']])}?feature={quote(row['feature_id'], safe='')}")
    what = escape(f"{row['feature_name']} of {row['customer_name']}")
    options = "".join(f'<option value="{escape(v)}"{" selected" if v == "1 month" else ""}>{escape(w)}</option>'
                      for v, w in periods)
    return (f'<td><form method="post" action="{url}" class="inline-extend" hx-post="{url}" hx-target="#modal-body" '
            f'hx-swap="innerHTML" hx-disabled-elt="find button">'
            f'{csrf_field(csrf)}'
            f'<input type="hidden" name="token" value="{escape(token)}">'
            f'<input type="hidden" name="next" value="{escape(here)}">'
            f'<select name="period" aria-label="Extend {what} by">{options}</select>'
            f'<input type="text" name="reason" required maxlength="{max_reason}" placeholder="Reason" '
            f'aria-label="Why extend {what}">'
            f'<button type="submit" class="secondary">Extend</button></form></td>')


def row_html(request: HttpRequest, row: dict[str, Any], granted: AuditEntry | None, token: str, *, can_grant: bool,
             here: str, periods: list[tuple[str, str]], max_reason: int) -> SafeString:
    customer = escape(f"{reverse('customer', args=[row['customer_id']])}#promotions")
    plan = f'<div class="muted small">{escape(row["plan_name"])}</div>' if row.get("plan_name") else ""
    extend = _extend(row, token, get_token(request), here, periods, max_reason) if can_grant else ""
    return mark_safe(
        f'<tr data-customer-id="{escape(row["customer_id"])}" data-feature-id="{escape(row["feature_id"])}">'
        f'<td class="nowrap"><strong>{escape(until(row["end_date"]))}</strong>'
        f'<div class="muted small">{escape(when(row["end_date"]))}</div></td>'
        f'<td><a href="{customer}">{escape(row["customer_name"])}</a>{plan}</td>'
        f'<td>{escape(row["feature_name"])}</td>'
        f'<td>{escape(grants_words(row))}<div class="muted small">{escape(row["period"])} since '
        f'{escape(day(row["start_date"]))}</div></td>'
        f'<td>{_granted(granted)}</td>{extend}</tr>')
