"""Alerts (`/alerts/`): entitlements and budgets that crossed a level (rules/alerts.py),
newest first, filtered by `state` (open, acknowledged, snoozed, closed) and `customer`; "My
accounts" (``mine``) on by default for a user who owns accounts: only theirs, and with it
off theirs first, then the rest (the alert's ``account_owner``, copied from the read
model, against the user's owner name: rules/my_accounts.py); each
links to its node or entitlements with its "Grant promotion" / "Change budget" action.
Acknowledge and snooze are POSTs for people with `dashboard.acknowledge_alert` (customer
success and leads; viewers read only)."""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any
from urllib.parse import quote, urlencode

from django.contrib import messages
from django.contrib.auth.decorators import permission_required
from django.db.models import Case, IntegerField, Q, QuerySet, Value, When
from django.http import HttpRequest, HttpResponse
from django.middleware.csrf import get_token
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_POST

from .. import tasks
from ..alerts import triage
from ..alerts.present import what
from ..models import Alert
from ..rules.my_accounts import MyAccounts
from ..templatetags import ui
from .alert_cells import RowContext, row_html
from .cells import csrf_field
from .common import frame, my_accounts_of, page_login_required, render_page
from .customer import GRANT_PROMOTION
from .governance import CHANGE_BUDGET

ACKNOWLEDGE = "dashboard.acknowledge_alert"
STATES = ("open", "acknowledged", "snoozed", "closed")
PAGE_SIZE = 50
MAX_CUSTOMER = 1000
# Counted up to here (and past it only as far as the page asked for): the list says
# "10,000+". At 100,000 customers ~63,000 alerts are open, and counting them all cost the
# page ~5 ms of its ~17 (SQLite; bench_scale.py).
COUNT_CAP = 10_000


def needs_attention(now: datetime) -> Q:
    """Open, neither acknowledged nor snoozed: the open list, and the nav's count."""
    return Q(state=Alert.State.OPEN, acknowledged_at__isnull=True) & (
        Q(snoozed_until__isnull=True) | Q(snoozed_until__lte=now))


def in_state(state: str, now: datetime) -> Q:
    if state == "open":
        return needs_attention(now)
    if state == "snoozed":
        return Q(state=Alert.State.OPEN, snoozed_until__gt=now)
    if state == "acknowledged":  # and not snoozed: a snoozed one is listed with the snoozed
        return Q(state=Alert.State.OPEN, acknowledged_at__isnull=False) & (
            Q(snoozed_until__isnull=True) | Q(snoozed_until__lte=now))
    return Q(state=Alert.State.CLOSED)


def ordered(alerts: QuerySet[Alert], mine: MyAccounts) -> QuerySet[Alert]:
    """Newest first; with My accounts on, only the user's accounts' alerts; with it off,
    theirs first (a user who owns accounts), then the rest."""
    if mine.on:
        return alerts.filter(account_owner=mine.owner).order_by("-opened_at", "-id")
    if mine.available:
        theirs = Case(When(account_owner=mine.owner, then=Value(0)), default=Value(1), output_field=IntegerField())
        return alerts.order_by(theirs, "-opened_at", "-id")
    return alerts.order_by("-opened_at", "-id")


def counted(found: QuerySet[Alert], page: int, cap: int = COUNT_CAP) -> tuple[int, bool, int]:
    """(how many alerts ``found`` holds, whether that is exact, the page to show): counted
    up to ``cap``, or up to the asked page's end when it lies further; past that the count
    is a floor ("10,000+") and there is a next page. A page past the end shows the last."""
    limit = max(cap, page * PAGE_SIZE) + 1
    n = found.order_by()[:limit].count()  # unordered: read from the attention index alone
    if n == limit:
        return limit - 1, False, page
    return n, True, min(page, max(1, -(-n // PAGE_SIZE)))


def _filters(query: Any) -> tuple[str, str | None, int, list[str]]:
    """(state, customer, page, what could not be used, in words)."""
    problems = []
    state = query.get("state", "open")
    if state not in STATES:
        problems.append("“state” is open, acknowledged, snoozed or closed; showing open alerts.")
        state = "open"
    customer = query.get("customer") or None
    if customer is not None and ("\x00" in customer or len(customer) > MAX_CUSTOMER):
        problems.append("That customer id cannot be one; showing every customer.")
        customer = None
    try:
        page = max(1, min(int(query.get("page", 1)), 10_000))
    except ValueError:
        page = 1
    return state, customer, page, problems


def _url(state: str, customer: str | None, mine: dict[str, str], page: int = 1) -> str:
    params = {"state": state} if state != "open" else {}
    if customer:
        params["customer"] = customer
    params.update(mine)
    if page > 1:
        params["page"] = str(page)
    return reverse("alerts") + (f"?{urlencode(params, quote_via=quote)}" if params else "")


def _cells(request: HttpRequest, now: datetime) -> RowContext:
    can_triage = request.user.has_perm(ACKNOWLEDGE)
    csrf = csrf_field(get_token(request)) if can_triage else ""
    return RowContext(now=now, can_grant=request.user.has_perm(GRANT_PROMOTION),
                      can_change_budget=request.user.has_perm(CHANGE_BUDGET), can_triage=can_triage,
                      csrf_input=csrf, back=request.get_full_path())


@page_login_required
@require_GET
def alerts(request: HttpRequest) -> HttpResponse:
    now = datetime.now(timezone.utc)
    state, customer, page, problems = _filters(request.GET)
    mine = my_accounts_of(request)
    scope = Alert.objects.filter(customer_id=customer) if customer else Alert.objects.all()
    found = ordered(scope.filter(in_state(state, now)), mine)
    total, exact, page = counted(found, page)
    cells = _cells(request, now)
    shown = found.select_related("acknowledged_by")[(page - 1) * PAGE_SIZE:page * PAGE_SIZE]
    context = {**frame(tasks.read_model()), "rows": [row_html(a, cells) for a in shown], "total": total,
               "exact": exact, "state": state, "customer": customer, "problems": problems,
               "tabs": [(s, _url(s, customer, mine.params()), s == state) for s in STATES],
               "prev_url": _url(state, customer, mine.params(), page - 1) if page > 1 else None,
               "next_url": _url(state, customer, mine.params(), page + 1)
               if page * PAGE_SIZE < total or not exact else None,
               "clear_url": _url(state, None, mine.params()), "mine": mine,
               "mine_switch_url": _url(state, customer, mine.switched())}
    return render_page(request, "dashboard/alerts.html", context)


def _back(request: HttpRequest) -> str:
    target = request.POST.get("next", "")
    if target.startswith("/") and url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()},
                                                                   require_https=request.is_secure()):
        return target
    return reverse("alerts")


def _alert_or_none(pk: int) -> Alert | None:
    return Alert.objects.filter(pk=pk).first()


def _missing(request: HttpRequest, pk: int) -> HttpResponse:
    return render(request, "dashboard/alert_missing.html", {**frame(tasks.read_model()), "pk": pk}, status=404)


@page_login_required
@permission_required(ACKNOWLEDGE, raise_exception=True)
@require_POST
def alert_acknowledge(request: HttpRequest, pk: int) -> HttpResponse:
    alert = _alert_or_none(pk)
    if alert is None:
        return _missing(request, pk)
    try:
        triage.acknowledge(alert, request.user, datetime.now(timezone.utc))
        messages.success(request, f"Acknowledged: {what(alert)} of "
                                  f"{alert.customer_name or alert.customer_id}. It comes back if it gets worse.")
    except triage.TriageError as exc:
        messages.error(request, str(exc))
    return redirect(_back(request))


@page_login_required
@permission_required(ACKNOWLEDGE, raise_exception=True)
@require_POST
def alert_snooze(request: HttpRequest, pk: int) -> HttpResponse:
    alert = _alert_or_none(pk)
    if alert is None:
        return _missing(request, pk)
    try:
        until = triage.snooze(alert, request.POST.get("snooze", ""), request.user, datetime.now(timezone.utc))
        messages.success(request, f"Snoozed until {ui.when(until)}: {what(alert)} of "
                                  f"{alert.customer_name or alert.customer_id}.")
    except triage.TriageError as exc:
        messages.error(request, str(exc))
    return redirect(_back(request))
