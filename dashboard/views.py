"""The dashboard's pages and endpoints. A page view reads only the Redis read model,
never Stigg; it renders the whole page, or one named partial for htmx."""
from __future__ import annotations

import hmac
import json
import logging
import math
import time
from dataclasses import asdict
from functools import wraps
from urllib.parse import urlencode
from typing import Any, Callable

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.cache import patch_vary_headers
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import HttpResponseClientRedirect, trigger_client_event
from kombu.exceptions import OperationalError as BrokerUnavailable

from . import charts, tasks
from .forms import PAGE_SIZE, CustomerFilter
from .read_model import BudgetRank, EntitlementRank, ReadModel, parse_time

log = logging.getLogger(__name__)

NEAREST_ON_OVERVIEW = 20
BUDGETS_ON_CUSTOMER_PAGE = 10
# "Refresh now" gives up waiting (and says so) after this long; the refresh stays queued.
REFRESH_WAIT_SECONDS = 90
# The usage-history placeholder polls this often until the charts arrive.
HISTORY_POLL_SECONDS = 2
HISTORY_MAX_TRIES = 30  # a minute: Stigg is slow or down; the page says so and stops asking

MAX_WEBHOOK_BYTES = 1024 * 1024


@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """Liveness plus sync status; 503 when the read model (Redis) cannot be read."""
    try:
        status = tasks.read_model().sync_status(settings.SYNC_STALE_AFTER_SECONDS)
    except Exception as exc:  # Redis down: say so instead of a 500 page
        log.warning("healthz: read model unreachable: %s", exc)
        return JsonResponse({"status": "unavailable", "error": "read model unreachable"}, status=503)
    sync = asdict(status)
    for key, value in sync.items():
        if hasattr(value, "isoformat"):
            sync[key] = value.isoformat()
    return JsonResponse({"status": "ok" if status.healthy else "degraded", "sync": sync})


def _refuse(reason: str, status: int) -> JsonResponse:
    log.warning("Stigg webhook refused (%s): %s", status, reason)
    return JsonResponse({"error": reason}, status=status)


@csrf_exempt
@require_POST
def stigg_webhook(request: HttpRequest) -> JsonResponse:
    """Stigg's events: check the shared secret, drop duplicates, queue an immediate
    refresh of the customer named. Never a 500 for anything a sender can send."""
    secret = settings.STIGG_WEBHOOK_SECRET
    if not secret:
        return _refuse("webhooks are not configured (STIGG_WEBHOOK_SECRET is empty)", 403)
    given = request.headers.get("Stigg-Webhooks-Secret", "")
    if not hmac.compare_digest(given.encode(), secret.encode()):
        return _refuse("missing or wrong Stigg-Webhooks-Secret", 401)
    if len(request.body) > MAX_WEBHOOK_BYTES:
        return _refuse("body too large", 413)
    try:
        message = json.loads(request.body)
    except (ValueError, UnicodeDecodeError):
        return _refuse("body is not JSON", 400)
    if not isinstance(message, dict):
        return _refuse("body is not a JSON object", 400)
    message_id, event_type, data = message.get("messageId"), message.get("type"), message.get("data")
    customer_id = data.get("customerId") if isinstance(data, dict) else None
    if not all(isinstance(v, str) and v for v in (message_id, event_type, customer_id)):
        return _refuse("messageId, type and data.customerId are required strings", 400)
    rm = tasks.read_model()
    if not rm.webhook_first_seen(message_id):
        return JsonResponse({"status": "duplicate"})
    rm.mark_changed(customer_id, ttl=settings.SYNC_HOT_CHANGED_SECONDS)
    queued = tasks.queue_refresh(customer_id, f"webhook:{event_type}")
    return JsonResponse({"status": "queued" if queued else "already queued"}, status=202)


# --- pages ------------------------------------------------------------------------------------


def page_login_required(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """login_required, but an htmx request from an expired session sends the whole
    browser to the sign-in page instead of swapping it into a table cell."""
    guarded = login_required(view)

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if request.htmx and not request.user.is_authenticated:
            back = urlencode({"next": request.htmx.current_url_abs_path or "/"})
            return HttpResponseClientRedirect(f"{reverse('login')}?{back}")
        return guarded(request, *args, **kwargs)

    return wrapper


def _render(request: HttpRequest, template: str, context: dict[str, Any], partials: frozenset[str] = frozenset(),
            status: int = 200) -> HttpResponse:
    """The full page, or for htmx the partial whose name is the id of the element htmx
    targets (``HX-Target``), when it is one of ``partials``."""
    fragment = request.htmx.target if request.htmx else None
    name = f"{template}#{fragment}" if fragment in partials else template
    response = render(request, name, context, status=status)
    patch_vary_headers(response, ["HX-Request"])
    return response


def _frame(rm: ReadModel) -> dict[str, Any]:
    """What every page's frame shows: sync health and the page poll interval."""
    status = rm.sync_status(settings.SYNC_STALE_AFTER_SECONDS)
    return {"sync": status, "sync_healthy": status.healthy, "poll_seconds": settings.PAGE_POLL_SECONDS,
            "uses_emulator": settings.STIGG_USES_EMULATOR}


def _nearest(rm: ReadModel, n: int) -> list[dict[str, Any]]:
    """The ``n`` metered entitlements and governance budgets nearest their limits, anywhere."""
    rows: list[dict[str, Any]] = []
    ent: EntitlementRank
    for ent in rm.top_entitlements(n):
        rows.append({"kind": "Entitlement", "anchor": "#metered", "customer_id": ent.customer_id,
                     "customer_name": ent.customer_name, "what": ent.feature_name, "detail": "",
                     "usage": ent.usage, "limit": ent.limit, "utilization": ent.utilization,
                     "soft_limit": ent.soft_limit, "period_end": ent.period_end})
    bud: BudgetRank
    for bud in rm.top_budgets(n, by="utilization"):
        if bud.utilization is None:
            continue
        scope = f" · scope {', '.join(bud.scope)}" if bud.scope else ""
        rows.append({"kind": "Budget", "anchor": "#governance", "customer_id": bud.customer_id,
                     "customer_name": bud.customer_name, "what": bud.entity_name or bud.entity_id,
                     "detail": f"{bud.feature_id or bud.currency_id}{scope}", "usage": bud.usage, "limit": bud.limit,
                     "utilization": bud.utilization, "soft_limit": False, "period_end": bud.period_end})
    rows.sort(key=lambda r: r["utilization"], reverse=True)
    return rows[:n]


@page_login_required
@require_GET
def overview(request: HttpRequest) -> HttpResponse:
    rm = tasks.read_model()
    context = {
        **_frame(rm),
        "entitlement_counts": rm.entitlement_counts(),
        "budget_counts": rm.budget_counts(),
        "nearest": _nearest(rm, NEAREST_ON_OVERVIEW),
        "histogram": charts.utilization_histogram(rm.utilization_histogram("entitlements"),
                                                  rm.utilization_histogram("budgets")),
    }
    return _render(request, "dashboard/overview.html", context, frozenset({"overview-live"}))


@page_login_required
@require_GET
def customers(request: HttpRequest) -> HttpResponse:
    rm = tasks.read_model()
    form = CustomerFilter(request.GET, rm.plans())
    form.is_valid()  # invalid fields fall back to defaults; their errors are shown
    chosen = form.values()
    page = rm.customers_page(limit=PAGE_SIZE, **chosen)
    query = {k: v for k, v in {"q": chosen["search"], "plan": chosen["plan"] or "", "status": chosen["status"] or "",
                                "sort": chosen["sort"]}.items() if v}
    context = {**_frame(rm), "form": form, "page": page, "query": query, "chosen": chosen,
               "first": page.offset + 1 if page.rows else 0, "last": page.offset + len(page.rows)}
    return _render(request, "dashboard/customers.html", context, frozenset({"customer-table"}))


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


def _queue(what: str, send: Callable[[], bool], customer_id: str) -> str | None:
    """Queue a task; an unreachable broker is said in words, not a 500."""
    try:
        send()
    except (BrokerUnavailable, OSError) as exc:
        log.warning("Could not queue %s for %s: %s", what, customer_id, exc)
        return "The task queue is unreachable, so nothing was queued. Try again in a moment."
    return None


@page_login_required
@require_GET
def customer(request: HttpRequest, customer_id: str) -> HttpResponse:
    rm = tasks.read_model()
    doc = rm.customer(customer_id)
    if doc is None:
        return _missing(request, rm, customer_id)
    history = rm.usage_history(customer_id)
    history_wanted = bool(doc["entitlements"]["metered"] and doc["fetched_at"]) and _history_stale(history)
    if history_wanted:
        # fetched in the background; the page never waits
        _queue("a usage-history fetch", lambda: tasks.queue_usage_history(customer_id), customer_id)
    context = {**_frame(rm), "doc": doc, "profile": doc["profile"], "charts": _usage_charts(doc, history),
               "budgets": _nearest_budgets(doc, BUDGETS_ON_CUSTOMER_PAGE),
               "history": history, **_history_wait(request, history_wanted and history is None),
               "history_poll_seconds": HISTORY_POLL_SECONDS, **_refresh_state(request, doc)}
    response = _render(request, "dashboard/customer.html", context,
                       frozenset({"customer-live", "usage-charts", "refresh-status"}))
    if context["refresh_landed"]:
        trigger_client_event(response, "customerRefreshed")
    return response


def _missing(request: HttpRequest, rm: ReadModel, customer_id: str) -> HttpResponse:
    return render(request, "dashboard/customer_missing.html", {**_frame(rm), "customer_id": customer_id}, status=404)


def _last_read(doc: dict) -> float:
    """When Stigg was last asked about this customer, successfully or not."""
    return max(_epoch_of(doc["fetched_at"]), _epoch_of(doc["error_at"]))


def _nearest_budgets(doc: dict, n: int) -> dict[str, Any]:
    """The customer's governance budgets nearest their limits (the governance pages show
    the whole tree), and how many there are."""
    names = {node["entity_id"]: node["display_name"] for node in doc["governance"]}
    budgets = [node for node in doc["governance"] if node["feature_id"] or node["currency_id"]]
    budgets.sort(key=lambda node: (node["utilization"] is None, -(node["utilization"] or 0)))
    rows = [{**node, "parent_name": names.get(node["parent_id"]) or node["parent_id"]} for node in budgets[:n]]
    return {"rows": rows, "total": len(budgets), "over": sum(1 for b in budgets if (b["utilization"] or 0) >= 1)}


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
    landed = _last_read(doc) > since
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
        return _missing(request, rm, customer_id)
    since, queued_at = _last_read(doc), time.time()
    # somebody is watching it: keep it in the hot tier a while
    rm.mark_changed(customer_id, ttl=settings.SYNC_HOT_CHANGED_SECONDS)
    error = _queue("a refresh", lambda: tasks.queue_refresh(customer_id, "manual"), customer_id)
    if error is None and doc["entitlements"]["metered"]:
        error = _queue("a usage-history fetch", lambda: tasks.queue_usage_history(customer_id), customer_id)
    state = {"refreshing": error is None, "refresh_landed": False, "refresh_gave_up": False, "since": since,
             "queued_at": queued_at, "waited": 0, "refresh_error": error}
    if not request.htmx:
        url = reverse("customer", args=[customer_id])
        return redirect(f"{url}?since={since}&queued={queued_at}" if error is None else url)
    return render(request, "dashboard/customer.html#refresh-status", {"doc": doc, **state})
