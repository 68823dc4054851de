"""One customer: profile, subscriptions, entitlements with their sources, promotions,
budgets nearest their limits, usage charts, and "Refresh now"."""
from __future__ import annotations

import math
import time
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import trigger_client_event

from .. import charts, tasks
from ..readmodel import ReadModel, parse_time
from .common import customer_missing, frame, page_login_required, queue_task, render_page

BUDGETS_ON_CUSTOMER_PAGE = 10
GRANT_PROMOTION = "dashboard.grant_promotion"  # who sees "Grant promotion", "Extend", "Revoke"
# "Refresh now" gives up waiting (and says so) after this long; the refresh stays queued.
REFRESH_WAIT_SECONDS = 90
# The usage-history placeholder polls this often until the charts arrive.
HISTORY_POLL_SECONDS = 2
HISTORY_MAX_TRIES = 30  # a minute: Stigg is slow or down; the page says so and stops asking


def _history_stale(history: dict | None) -> bool:
    if history is None:
        return True
    fetched = parse_time(history["fetched_at"])
    return fetched is None or time.time() - fetched.timestamp() > settings.USAGE_HISTORY_MAX_AGE_SECONDS


def _usage_charts(doc: dict, history: dict | None) -> list[dict[str, Any]]:
    out = []
    for ent in doc["entitlements"]["metered"]:
        series = (history or {}).get("features", {}).get(ent["feature_id"])
        figure = charts.usage_over_time(ent, series) if series and series["points"] else None
        out.append({"entitlement": ent, "figure": figure, "error": series["error"] if series else None,
                    "dom_id": f"usage-{len(out)}", "figure_id": f"usage-{len(out)}-figure"})
    return out


@page_login_required
@require_GET
def customer(request: HttpRequest, customer_id: str) -> HttpResponse:
    rm = tasks.read_model()
    doc = rm.customer(customer_id)
    if doc is None:
        return customer_missing(request, rm, customer_id)
    history = rm.usage_history(customer_id)
    history_wanted = bool(doc["entitlements"]["metered"] and doc["fetched_at"]) and _history_stale(history)
    if history_wanted:
        # fetched in the background; the page never waits
        queue_task("a usage-history fetch", lambda: tasks.queue_usage_history(customer_id), customer_id)
    context = {**frame(rm), "doc": doc, "profile": doc["profile"], "charts": _usage_charts(doc, history),
               "budgets": _nearest_budgets(rm, doc, BUDGETS_ON_CUSTOMER_PAGE),
               "history": history, **_history_wait(request, history_wanted and history is None),
               "history_poll_seconds": HISTORY_POLL_SECONDS, **_refresh_state(request, doc),
               "can_grant": request.user.has_perm(GRANT_PROMOTION)}
    response = render_page(request, "dashboard/customer.html", context,
                       frozenset({"customer-live", "usage-charts", "refresh-status"}))
    if context["refresh_landed"]:
        trigger_client_event(response, "customerRefreshed")
    return response


def last_read(doc: dict) -> float:
    """When Stigg was last asked about this customer, successfully or not."""
    return max(_epoch_of(doc["fetched_at"]), _epoch_of(doc["error_at"]))


def _nearest_budgets(rm: ReadModel, doc: dict, n: int) -> dict[str, Any]:
    """The customer's governance budgets nearest their limits (the governance page shows
    the whole tree), and how many there are."""
    nearest = rm.nearest_budgets(doc["id"], n, doc["governance"]["fingerprint"]) if doc["governance"]["budgets"] \
        else []
    parents = {node["parent"] for node, _ in nearest if node["parent"]}
    names = {p["id"]: p["name"] or p["id"] for p in rm.governance_nodes(doc["id"], sorted(parents))}
    rows = [{**b, "entity_id": node["id"], "display_name": node["name"], "entity_type_id": node["type"],
             "parent_name": names.get(node["parent"], node["parent"])} for node, b in nearest]
    return {"rows": rows, "total": doc["governance"]["budgets"], "over": doc["governance"]["over"]}


def _history_wait(request: HttpRequest, missing: bool) -> dict[str, Any]:
    """The charts' placeholder asks again every HISTORY_POLL_SECONDS while the history
    is missing, counting its tries, and after HISTORY_MAX_TRIES says it is not there."""
    try:
        tries = max(0, min(int(request.GET.get("tries", "0")), HISTORY_MAX_TRIES))
    except ValueError:
        tries = 0
    return {"history_pending": missing and tries < HISTORY_MAX_TRIES,
            "history_unavailable": missing and tries >= HISTORY_MAX_TRIES, "history_tries": tries + 1}


def _epoch_of(value: str | None) -> float:
    when = parse_time(value)
    return when.timestamp() if when else 0.0


def _refresh_state(request: HttpRequest, doc: dict) -> dict[str, Any]:
    """Where a "Refresh now" stands: ``?since=`` is when the data was read before the
    button was pressed; the refresh has landed once a newer read (or a newer error) exists."""
    try:
        since = float(request.GET.get("since", ""))
        queued_at = float(request.GET.get("queued", ""))
    except ValueError:
        since = queued_at = math.nan
    if not (math.isfinite(since) and math.isfinite(queued_at)):
        return {"refreshing": False, "refresh_landed": False, "refresh_gave_up": False}
    landed = last_read(doc) > since
    waited = max(0.0, time.time() - queued_at)
    return {"refreshing": not landed and waited < REFRESH_WAIT_SECONDS, "refresh_landed": landed,
            "refresh_gave_up": not landed and waited >= REFRESH_WAIT_SECONDS, "since": since,
            "queued_at": queued_at, "waited": int(waited)}


@page_login_required
@require_POST
def refresh_customer(request: HttpRequest, customer_id: str) -> HttpResponse:
    """Queue a full refresh of one customer (and its usage history). For htmx, answer
    with the progress state, which polls until the refresh lands; without JavaScript,
    go back to the page, which shows the same state."""
    rm = tasks.read_model()
    doc = rm.customer(customer_id)
    if doc is None:
        return customer_missing(request, rm, customer_id)
    since, queued_at = last_read(doc), time.time()
    # somebody is watching it: keep it in the hot tier a while
    rm.mark_changed(customer_id, ttl=settings.SYNC_HOT_CHANGED_SECONDS)
    error = queue_task("a refresh", lambda: tasks.queue_refresh(customer_id, "manual"), customer_id)
    if error is None and doc["entitlements"]["metered"]:
        error = queue_task("a usage-history fetch", lambda: tasks.queue_usage_history(customer_id), customer_id)
    state = {"refreshing": error is None, "refresh_landed": False, "refresh_gave_up": False, "since": since,
             "queued_at": queued_at, "waited": 0, "refresh_error": error}
    if not request.htmx:
        url = reverse("customer", args=[customer_id])
        return redirect(f"{url}?since={since}&queued={queued_at}" if error is None else url)
    return render(request, "dashboard/customer.html#refresh-status", {"doc": doc, **state})
