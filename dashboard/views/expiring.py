"""Promotions ending soon across the fleet (`/promotions/expiring?days=14`): soonest first,
with who granted each and why (the audit log, where it was granted here), and one-click
extend for people who may grant."""
from __future__ import annotations

import operator
import uuid
from datetime import datetime, timedelta, timezone
from functools import reduce
from typing import Any

from django.db.models import Q
from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_GET

from .. import tasks
from ..models import AuditEntry
from ..readmodel import ExpiringPage, parse_time
from ..actions.promotions import MAX_REASON
from ..rules.promotions import PERIODS
from .common import frame, page_login_required, render_page
from .customer import GRANT_PROMOTION

DEFAULT_DAYS = 14
MAX_DAYS = 366
PAGE_SIZE = 50
GRANTS = (AuditEntry.Action.PROMOTION_GRANT, AuditEntry.Action.PROMOTION_EXTEND)
CLOCK_SKEW = timedelta(minutes=1)


@page_login_required
@require_GET
def promotions_expiring(request: HttpRequest) -> HttpResponse:
    rm = tasks.read_model()
    days, page_number, problem = _window(request.GET)
    now = datetime.now(timezone.utc)
    page = rm.expiring(now, now + timedelta(days=days), (page_number - 1) * PAGE_SIZE, PAGE_SIZE)
    context = {**frame(rm), "rows": _with_grants(page), "total": page.total, "days": days, "problem": problem,
               "page_number": page_number, "pages": max(1, -(-page.total // PAGE_SIZE)), "now": now,
               "can_grant": request.user.has_perm(GRANT_PROMOTION), "here": request.get_full_path(),
               "extend_periods": [(p, words) for p, words in PERIODS.items() if p not in ("lifetime", "custom")],
               "max_reason": MAX_REASON}
    return render_page(request, "dashboard/promotions_expiring.html", context, frozenset({"expiring-live"}))


def _window(query: Any) -> tuple[int, int, str | None]:
    """(days, page, what was wrong with the query in words)."""
    problem = None
    try:
        days = int(query.get("days", DEFAULT_DAYS))
        if not 1 <= days <= MAX_DAYS:
            raise ValueError
    except ValueError:
        days = DEFAULT_DAYS
        problem = f"“days” is a whole number of days from 1 to {MAX_DAYS}; showing the next {DEFAULT_DAYS}."
    try:
        page_number = max(1, min(int(query.get("page", 1)), 10_000))
    except ValueError:
        page_number = 1
    return days, page_number, problem


def _with_grants(page: ExpiringPage) -> list[dict[str, Any]]:
    """Each row with the latest grant or extension recorded here for it (None: granted
    elsewhere, in Stigg's console or by API), and a fresh token for its extend form."""
    pairs = {(r["customer_id"], r["feature_id"]) for r in page.rows}
    latest: dict[tuple[str, str], AuditEntry] = {}
    if pairs:
        which = reduce(operator.or_, (Q(customer_id=c, capability=f) for c, f in pairs))
        for entry in (AuditEntry.objects.filter(which, action__in=GRANTS, outcome=AuditEntry.Outcome.DONE)
                      .only("customer_id", "capability", "username", "at", "reason", "ticket").order_by("-at", "-id")):
            latest.setdefault((entry.customer_id, entry.capability), entry)
    return [{**r, "granted": _if_this_grant(latest.get((r["customer_id"], r["feature_id"])), r["start_date"]),
             "token": uuid.uuid4()} for r in page.rows]


def _if_this_grant(entry: AuditEntry | None, start_date: str | None) -> AuditEntry | None:
    """The audit row, unless the promotion started after it (granted again elsewhere since):
    a row is written once Stigg answered, so it is never earlier than the grant's start
    (less a minute for clocks that disagree)."""
    start = parse_time(start_date)
    if entry is None or start is None or entry.at >= start - CLOCK_SKEW:
        return entry
    return None
