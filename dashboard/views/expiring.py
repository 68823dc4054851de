"""Promotions ending soon across the fleet (`/promotions/expiring?days=14`): soonest first,
with who granted each and why (the audit log, where it was granted here), and one-click
extend for people who may grant; "My accounts" by default for a user who owns accounts
(``mine``: the read model's promotions by end date of their customers)."""
from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import urlencode

from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_GET

from .. import tasks
from ..models import AuditEntry
from ..readmodel import ExpiringPage, parse_time
from ..actions.promotions import MAX_REASON
from ..rules.promotions import PERIODS
from .common import frame, my_accounts_of, page_login_required, render_page
from .customer import GRANT_PROMOTION
from .expiring_rows import row_html

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
    mine = my_accounts_of(request)
    now = datetime.now(timezone.utc)
    page = rm.expiring(now, now + timedelta(days=days), (page_number - 1) * PAGE_SIZE, PAGE_SIZE, mine.owner_filter)
    can_grant, here = request.user.has_perm(GRANT_PROMOTION), request.get_full_path()
    periods = [(p, words) for p, words in PERIODS.items() if p not in ("lifetime", "custom")]
    granted = _grants_recorded_here(page)
    rows = [row_html(request, r, granted.get((r["customer_id"], r["feature_id"])), str(uuid.uuid4()),
                     can_grant=can_grant, here=here, periods=periods, max_reason=MAX_REASON) for r in page.rows]
    context = {**frame(rm), "rows": rows, "total": page.total, "days": days, "problem": problem,
               "page_number": page_number, "pages": max(1, -(-page.total // PAGE_SIZE)), "can_grant": can_grant,
               "query": urlencode({"days": days, **mine.params()}), "mine": mine,
               "mine_switch_url": "?" + urlencode({"days": days, **mine.switched()}),
               "further_url": "?" + urlencode({"days": 90 if days < 90 else MAX_DAYS, **mine.params()})}
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


def _grants_recorded_here(page: ExpiringPage) -> dict[tuple[str, str], AuditEntry]:
    """Per row, the latest grant or extension recorded here for it, unless the promotion
    was granted again since (elsewhere, in Stigg's console or by API): a row is written
    once Stigg answered, so it is never earlier than the grant's start (less a minute for
    clocks that disagree). One query by customer and action (indexed: 0006)."""
    starts = {(r["customer_id"], r["feature_id"]): parse_time(r["start_date"]) for r in page.rows}
    latest: dict[tuple[str, str], AuditEntry] = {}
    if not starts:
        return latest
    entries = (AuditEntry.objects.filter(customer_id__in={c for c, _ in starts}, action__in=GRANTS,
                                         outcome=AuditEntry.Outcome.DONE)
               .only("customer_id", "capability", "username", "at", "reason", "ticket").order_by("-at", "-id"))
    for entry in entries:
        key = (entry.customer_id, entry.capability)
        if key in starts and key not in latest:
            start = starts[key]
            if start is None or entry.at >= start - CLOCK_SKEW:
                latest[key] = entry
    return latest
