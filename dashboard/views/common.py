"""What every page view shares: sign-in for plain and htmx requests, the page frame
(sync health), rendering a page or one of its named partials, queueing a task, and whether
a list shows only the user's accounts ("My accounts")."""
from __future__ import annotations

import logging
from functools import wraps
from typing import Any, Callable
from urllib.parse import urlencode

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils.cache import patch_vary_headers
from django_htmx.http import HttpResponseClientRedirect
from kombu.exceptions import OperationalError as BrokerUnavailable

from ..models import account_owner_of
from ..readmodel import ReadModel
from ..rules.my_accounts import MINE, MyAccounts, my_accounts

log = logging.getLogger(__name__)


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


def render_page(request: HttpRequest, template: str, context: dict[str, Any], partials: frozenset[str] = frozenset(),
            status: int = 200) -> HttpResponse:
    """The full page, or for htmx the partial whose name is the id of the element htmx
    targets (``HX-Target``), when it is one of ``partials``."""
    fragment = request.htmx.target if request.htmx else None
    name = f"{template}#{fragment}" if fragment in partials else template
    response = render(request, name, context, status=status)
    patch_vary_headers(response, ["HX-Request"])
    return response


def frame(rm: ReadModel) -> dict[str, Any]:
    """What every page's frame shows: sync health and the page poll interval."""
    status = rm.sync_status(settings.SYNC_STALE_AFTER_SECONDS)
    return {"sync": status, "sync_healthy": status.healthy, "poll_seconds": settings.PAGE_POLL_SECONDS,
            "uses_emulator": settings.STIGG_USES_EMULATOR}


def queue_task(what: str, send: Callable[[], bool], customer_id: str) -> str | None:
    """Queue a task; an unreachable broker is said in words, not a 500."""
    try:
        send()
    except (BrokerUnavailable, OSError) as exc:
        log.warning("Could not queue %s for %s: %s", what, customer_id, exc)
        return "The task queue is unreachable, so nothing was queued. Try again in a moment."
    return None


def customer_missing(request: HttpRequest, rm: ReadModel, customer_id: str) -> HttpResponse:
    return render(request, "dashboard/customer_missing.html", {**frame(rm), "customer_id": customer_id}, status=404)


def my_accounts_of(request: HttpRequest, chosen_owner: str | None = None) -> MyAccounts:
    """What the list shows this user (rules/my_accounts.py): the ``mine`` query and their
    profile's owner name, read without making a profile (a page view writes nothing)."""
    return my_accounts(request.GET.get(MINE), account_owner_of(request.user), chosen_owner)
