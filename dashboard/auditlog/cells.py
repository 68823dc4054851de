"""A row of the audit table as HTML, built here with the standard library's ``html.escape``
on every value rather than with template tags: for 50 rows of ~20 values each, the tags
took most of the page's time (bench/README.md, audit log). Every value from the row goes
through ``escape``; nothing else is marked safe."""
from __future__ import annotations

from functools import lru_cache
from html import escape
from urllib.parse import quote, urlencode

from django.urls import NoReverseMatch, reverse
from django.utils.safestring import SafeString, mark_safe

from ..models import AuditEntry
from ..templatetags.ui import when
from . import present
from .present import Change
from .query import ACTIONS

_HEAD = {"added": '<span class="tag">new</span> ', "removed": '<span class="tag">removed</span> ', "changed": ""}


@lru_cache(maxsize=4096)
def customer_url(customer_id: str) -> str | None:
    try:  # an id the customer route cannot hold (empty, a newline) is shown, not linked
        return reverse("customer", args=[customer_id]) if customer_id else None
    except NoReverseMatch:
        return None


def _field(kind: str, label: str, before: str, after: str) -> str:
    if kind == "added":
        return f'<li><span class="muted">{escape(label)}</span> {escape(after)}</li>'
    if kind == "removed":
        return f'<li><span class="muted">{escape(label)}</span> <s>{escape(before)}</s></li>'
    return f'<li><span class="muted">{escape(label)}</span> {escape(before)} → <strong>{escape(after)}</strong></li>'


def change_cell(change: Change) -> str:
    """Before → after: the fields that changed, then those that did not."""
    if change.kind == "none":
        return '<span class="muted">nothing recorded</span>'
    if change.kind == "value":
        field = change.fields[0]
        return f"{escape(field.before)} → {escape(field.after)}"
    if change.fields:
        items = "".join(_field(change.kind, f.label, f.before, f.after) for f in change.fields)
        inline = " inline" if change.kind != "changed" else ""  # a whole promotion: one paragraph, not ten lines
        html = f'{_HEAD[change.kind]}<ul class="fields{inline}">{items}</ul>'
    else:
        html = '<span class="muted">no field changed</span>'
    if change.same:
        same = "; ".join(f"{escape(f.label)} {escape(f.after)}" for f in change.same)
        html += f'<div class="muted small">unchanged: {same}</div>'
    return html


def answer_cell(entry: AuditEntry) -> str:
    """The outcome, Stigg's status, and its answer folded in a <details>."""
    answer = present.answer(entry)
    outcome = '<span class="granted">Done</span>' if entry.done else '<span class="denied">Failed</span>'
    status = f"HTTP {int(answer['status'])}" if answer["status"] else "no answer"
    html = f'{outcome}<div class="muted small">{status}</div>'
    if answer["text"]:
        more = f'<p class="muted small">… {answer["cut"]:,} more characters in the CSV</p>' if answer["cut"] else ""
        html += (f'<details><summary>Stigg&#x27;s answer</summary><pre class="answer">{escape(answer["text"])}</pre>'
                 f'{more}</details>')
    return html


def _batch(entry: AuditEntry) -> str:
    """A link to the bulk grant the row belongs to, if any."""
    if not entry.batch_id:
        return ""
    url = reverse("bulk-batch", args=[entry.batch_id])
    return f'<div class="small"><a href="{escape(url)}">bulk grant #{int(entry.batch_id)}</a></div>'


def _what_cell(entry: AuditEntry) -> str:
    if entry.action.startswith("bulk."):  # a step of a batch itself: the batch is what it is about
        return _batch(entry) or "—"
    what = present.what(entry)
    if what["kind"] == "promotion":
        return escape(what["feature"] or "—") + _batch(entry)
    capability = escape(what["capability"]) + (" (currency)" if what["is_currency"] else "")
    scope = f"scope {escape(what['scope'])}" if what["scope"] else "node-wide"
    return f'{escape(what["entity"] or "—")}<div class="muted small">{capability} · {scope}</div>'


def _customer_cell(entry: AuditEntry, here: str) -> str:
    url, name = customer_url(entry.customer_id), escape(entry.customer_id or "—")
    link = f'<a href="{escape(url)}">{name}</a>' if url else name
    only = escape(f"{here}?{urlencode({'customer': entry.customer_id}, quote_via=quote)}")
    return f'{link} <a class="muted small" href="{only}" title="Only this customer&#x27;s changes">filter</a>'


def _reason_cell(entry: AuditEntry) -> str:
    if not entry.ticket:
        return escape(entry.reason)
    url = present.ticket_url(entry.ticket)
    shown = url.split("://", 1)[1] if url else ""  # the scheme says nothing to a reader
    ticket = f'<a href="{escape(url)}" rel="noopener noreferrer nofollow" target="_blank">{escape(shown)}</a>' \
        if url else escape(entry.ticket)
    return f'{escape(entry.reason)}<div class="small">{ticket}</div>'


def row(entry: AuditEntry, here: str) -> SafeString:
    """One <tr> of the table; ``here``: the audit log's URL, for the one-click filters."""
    kind = "promotion" if entry.action in present.PROMOTION_ACTIONS or entry.action.startswith("bulk.") else "budget"
    user, only_user = escape(entry.username), escape(f"{here}?{urlencode({'user': entry.username}, quote_via=quote)}")
    return mark_safe(
        f'<tr data-audit-id="{int(entry.pk)}">'
        f'<td class="nowrap"><time datetime="{escape(entry.at.isoformat())}">{escape(when(entry.at))}</time></td>'
        f'<td><a href="{only_user}" title="Only changes by {user}">{user}</a></td>'
        f'<td><span class="action action-{kind}">{escape(ACTIONS.get(entry.action, entry.action))}</span></td>'
        f'<td>{_customer_cell(entry, here)}</td><td>{_what_cell(entry)}</td>'
        f'<td class="change">{change_cell(present.describe_change(entry.before, entry.after))}</td>'
        f'<td class="reason">{_reason_cell(entry)}</td><td>{answer_cell(entry)}</td></tr>')
