"""A row of the alerts table as HTML, built with ``html.escape`` on every value (as the
tree's, the near-limit table's and the expiring list's rows are): 50 rows of template tags,
includes and per-row CSRF tags were two thirds of /alerts/'s time at 100,000 customers
(~63,000 open alerts; bench/bench_scale.py). Every value from the database goes through
``_e``; nothing else is marked safe."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.urls import reverse
from django.utils.safestring import SafeString, mark_safe

from ..alerts import present
from ..alerts.triage import SNOOZES
from ..models import Alert
from ..templatetags.budgets import budget_change_url
from ..templatetags.ui import age, pct, until, when
from .cells import e as _e, grant_link
from .tree_cells import bar


@dataclass(frozen=True)
class RowContext:
    """What every row of one page shares: the time, who may do what, the CSRF form field
    and where a triage form comes back to."""

    now: datetime
    can_grant: bool
    can_change_budget: bool
    can_triage: bool
    csrf_input: str  # <input type="hidden" name="csrfmiddlewaretoken" …>, already HTML
    back: str


def _level(a: Alert, now: datetime) -> str:
    cell = f'<span class="level level-{_e(a.level)}">{_e(a.get_level_display())}</span>'
    if a.worst_level != a.level:
        cell += f'<div class="muted small">was: {_e(a.get_worst_level_display().lower())}</div>'
    if a.acknowledged_at:
        who = a.acknowledged_by.get_username() if a.acknowledged_by else "someone"
        cell += f'<div class="muted small">acknowledged by {_e(who or "someone")}</div>'
    if a.snoozed(now):
        cell += f'<div class="muted small">snoozed until {_e(when(a.snoozed_until))}</div>'
    return f"<td>{cell}</td>"


def _customer(a: Alert) -> str:
    owner = f'<div class="muted small">{_e(a.account_owner)}</div>' if a.account_owner else ""
    return f'<td><a href="{_e(present.customer_path(a))}">{_e(present.customer(a))}</a>{owner}</td>'


def _utilization(a: Alert) -> str:
    opened = ""
    if a.opened_utilization is not None and a.opened_utilization != a.utilization:
        opened = f" · {_e(pct(a.opened_utilization))} when opened"
    return f'<td>{bar(a.utilization)}<div class="muted small">{_e(present.usage_limit(a))}{opened}</div></td>'


def _window(a: Alert) -> str:
    if not a.window_end:
        return '<td class="nowrap"><span class="muted">never resets</span></td>'
    return f'<td class="nowrap">{_e(until(a.window_end))}<div class="muted small">{_e(when(a.window_end))}</div></td>'


def _since(a: Alert) -> str:
    if a.state == Alert.State.CLOSED:
        why = _e(a.get_closed_why_display())
        return f'<td class="nowrap">{age(a.closed_at)}<div class="muted small">{why}</div></td>'
    worse = f'<div class="muted small">worse {age(a.escalated_at)}</div>' if a.escalated_at else ""
    return f'<td class="nowrap">{age(a.opened_at)}{worse}</td>'


def _action(a: Alert, what: str, c: RowContext) -> str:
    """"Grant promotion" (as dashboard/_grant_button.html) or "Change budget" (as
    dashboard/_budget_button.html), for those who may."""
    if a.kind == Alert.Kind.ENTITLEMENT:
        if not c.can_grant:
            return ""
        return grant_link(a.customer_id, a.capability, what)
    if not c.can_change_budget:
        return ""
    href = _e(budget_change_url(a.customer_id, a.entity_id, a.capability, a.scope))
    if not a.capability:
        return f'<a class="budget-button" href="{href}" aria-label="Add a budget to {_e(a.entity_id)}">Add a budget</a>'
    scoped = " (scoped)" if a.scope else ""
    return (f'<a class="budget-button" href="{href}" aria-label="Change the {_e(a.capability)} budget of '
            f'{_e(a.entity_id)}{scoped}">Change budget</a>')


def _triage(a: Alert, what: str, c: RowContext) -> str:
    """Acknowledge (while not acknowledged) and snooze, for those who may, on open alerts."""
    if not c.can_triage or a.state != Alert.State.OPEN:
        return ""
    back = f'{c.csrf_input}<input type="hidden" name="next" value="{_e(c.back)}">'
    acknowledge = "" if a.acknowledged_at else (
        f'<form method="post" action="{_e(reverse("alert-acknowledge", args=[a.pk]))}">{back}'
        f'<button type="submit" class="secondary small-button">Acknowledge</button></form>')
    options = "".join(f'<option value="{_e(value)}">{_e(words)}</option>' for value, words in SNOOZES.items()
                      if value != "reset" or a.window_end)
    label = _e(f"Snooze the {what} alert of {present.customer(a)} for")
    return (f'<div class="triage">{acknowledge}<form method="post" action="{_e(reverse("alert-snooze", args=[a.pk]))}">'
            f'{back}<select name="snooze" aria-label="{label}">{options}</select>'
            f'<button type="submit" class="secondary small-button">Snooze</button></form></div>')


def row_html(a: Alert, c: RowContext) -> SafeString:
    """One alert's table row: level, customer, what, utilization, time to limit, window,
    when opened (or closed), and what can be done."""
    what = present.what(a)
    kind = "budget" if a.kind == Alert.Kind.BUDGET else "entitlement"
    return mark_safe(
        f'<tr data-alert="{a.pk}" data-customer-id="{_e(a.customer_id)}" data-subject="{_e(a.subject)}">'
        f'{_level(a, c.now)}{_customer(a)}'
        f'<td class="what"><a href="{_e(present.page_path(a))}">{_e(what)}</a>'
        f'<div class="muted small">{kind}</div></td>'
        f'{_utilization(a)}<td class="small ttl">{_e(present.time_to_limit(a, c.now))}</td>{_window(a)}{_since(a)}'
        f'<td class="act">{_action(a, what, c)}{_triage(a, what, c)}</td></tr>')
