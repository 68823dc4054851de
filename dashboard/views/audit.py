"""The audit log: every promotion grant, extension and revoke and every budget change, newest
first, filtered and paged by keyset (``/audit/``), and the same rows as CSV, streamed
(``/audit.csv``). For anyone with ``dashboard.view_auditentry`` (both roles)."""
from __future__ import annotations

import logging
from datetime import datetime, timezone
from typing import Any
from urllib.parse import quote, urlencode

import redis
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import permission_required
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.urls import reverse
from django.views.decorators.http import require_GET

from .. import auditlog, tasks
from ..auditlog import cells
from ..auditlog.query import ACTIONS, AuditPage, ParsedQuery
from .common import frame, page_login_required, render_page

log = logging.getLogger(__name__)
MAX_USERNAMES = 500  # suggestions in the user filter


@page_login_required
@permission_required("dashboard.view_auditentry", raise_exception=True)
@require_GET
def audit_log(request: HttpRequest) -> HttpResponse:
    parsed = auditlog.parse(request.GET)
    page = None if parsed.errors else auditlog.read_page(parsed.filters, parsed.cursor)
    here = reverse("audit-log")
    context = {**_frame(), "parsed": parsed, "filters": parsed.filters, "page": page,
               "rows": [cells.row(e, here) for e in page.entries] if page else [], "actions": ACTIONS.items(),
               "usernames": _usernames() if not request.htmx else [], **_links(parsed, page)}
    return render_page(request, "dashboard/audit_log.html", context, frozenset({"audit-table"}))


@page_login_required
@permission_required("dashboard.view_auditentry", raise_exception=True)
@require_GET
def audit_log_csv(request: HttpRequest) -> HttpResponse:
    parsed = auditlog.parse(request.GET)
    if parsed.errors:  # a CSV of rows the filters did not ask for would be wrong: say why instead
        return HttpResponse("\n".join(parsed.errors.values()), status=400, content_type="text/plain; charset=utf-8")
    response = StreamingHttpResponse(auditlog.csv_lines(parsed.filters), content_type="text/csv; charset=utf-8")
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M")
    response["Content-Disposition"] = f'attachment; filename="audit-log-{stamp}.csv"'
    return response


def _frame() -> dict[str, Any]:
    """The sync pill of every page; the audit log lives in the database, so it still opens
    when the read model cannot be reached."""
    try:
        return frame(tasks.read_model())
    except (redis.ConnectionError, redis.TimeoutError) as exc:
        log.warning("Audit log without the sync status: %s", exc)
        return {}


def _usernames() -> list[str]:
    return list(get_user_model().objects.order_by("username").values_list("username", flat=True)[:MAX_USERNAMES])


def _url(name: str, params: dict[str, str]) -> str:
    query = urlencode(params, quote_via=quote)
    return f"{reverse(name)}?{query}" if query else reverse(name)


def _links(parsed: ParsedQuery, page: AuditPage | None) -> dict[str, str | None]:
    params = parsed.filters.params()
    older, newer = (page.older, page.newer) if page else (None, None)
    here = _url("audit-log", params)
    return {"here_url": here, "csv_url": _url("audit-log-csv", params), "clear_url": reverse("audit-log"),
            "newest_url": here if page and not page.newest else None,
            "older_url": _url("audit-log", {**params, "cursor": str(older)}) if older else None,
            "newer_url": _url("audit-log", {**params, "cursor": str(newer)}) if newer else None}
