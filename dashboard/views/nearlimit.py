"""Near limit: every governance budget and metered entitlement of the fleet at or above a
utilization, ordered and filtered (``/near-limit/``), and the same rows as CSV, streamed
(``/near-limit.csv``, or a worker's snapshot of it); "My accounts" by default for a user
who owns accounts (``mine``: the owner filter set to their name)."""
from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timezone
from typing import Any
from urllib.parse import quote, urlencode

from django.conf import settings
from django.http import HttpRequest, HttpResponse, QueryDict, StreamingHttpResponse
from django.middleware.gzip import re_accepts_gzip  # how Django's GZipMiddleware reads Accept-Encoding
from django.urls import reverse
from django.utils.cache import patch_vary_headers
from django.views.decorators.http import require_GET

from .. import tasks
from ..forms import DEFAULT_MIN_UTILIZATION, NEAR_LIMIT_THRESHOLDS, PAGE_SIZE, NearLimitFilter, threshold_label
from ..models import account_owner_of
from ..nearlimit_csv import csv_lines, fresh_snapshot, inflated, row_link, time_to_limit_words
from ..readmodel import NearLimitQuery, NearLimitRow, ReadModel
from ..rules.my_accounts import MINE, MyAccounts, my_accounts
from ..templatetags import ui
from .common import frame, page_login_required, render_page
from .customer import GRANT_PROMOTION
from .nearlimit_cells import row_html


def _query(rm: ReadModel, request: HttpRequest) -> tuple[NearLimitFilter, NearLimitQuery, int, MyAccounts]:
    return query_of(rm, request.GET, account_owner_of(request.user))


def query_of(rm: ReadModel, data: QueryDict, account_owner: str | None
             ) -> tuple[NearLimitFilter, NearLimitQuery, int, MyAccounts]:
    """The form, the query to run (with My accounts on, the owner filter is the user's
    name), the offset, and what My accounts shows: the page's, and a bulk grant's "every
    row that matches this filter" (the page's query string, ``mine`` included)."""
    form = NearLimitFilter(data, rm.near_limit_choices(), dict(rm.plans()))
    form.is_valid()  # invalid fields fall back to defaults; their errors are shown
    query = NearLimitQuery(**form.values())
    mine = my_accounts(data.get(MINE), account_owner, query.owner)
    if mine.on:
        query = replace(query, owner=mine.owner)
    return form, query, form.offset_value(), mine


def _params(query: NearLimitQuery, mine: MyAccounts, offset: int = 0, switch: bool = False) -> str:
    """The query string of a query (only what differs from the defaults, and My accounts
    as it is, or ``switch``ed), for links."""
    params = {"min_utilization": f"{query.min_utilization:g}"} if query.min_utilization != DEFAULT_MIN_UTILIZATION \
        else {}
    if query.order != "utilization":
        params["order"] = query.order
    for name in ("customer", "capability", "entity_type", "plan", "owner"):
        if getattr(query, name) is not None and not (name == "owner" and mine.on):
            params[name] = getattr(query, name)
    params.update(mine.switched() if switch else mine.params())
    if offset:
        params["offset"] = str(offset)
    return urlencode(params, quote_via=quote)


def _with(url: str, query: str) -> str:
    return f"{url}?{query}" if query else url


def _row(row: NearLimitRow, now: datetime) -> dict[str, Any]:
    """What the table shows of a row, as text: 50 rows render faster without a filter each."""
    customer_url = reverse("customer", args=[row.customer_id])
    return {"row": row, "customer_url": customer_url, "link": row_link(row, customer_url),
            "time_to_limit": time_to_limit_words(row, now),
            "capability": row.capability[1:] if row.capability.startswith("$") else row.capability,
            "is_currency": row.capability.startswith("$"),
            "usage_limit": f"{ui.num(row.usage)} / {ui.num(row.limit)}", "period_end": ui.when(row.period_end),
            "period": ui.period_words(row.period)}


def _selects(form: NearLimitFilter, query: NearLimitQuery, mine: MyAccounts) -> list[dict[str, Any]]:
    """The filters' drop-downs, each showing the value in effect (a bad one: the default);
    no owner filter while My accounts is on (it is the owner). Written out here: Django's
    widget templates took longer than the table."""
    thresholds = sorted({*NEAR_LIMIT_THRESHOLDS, query.min_utilization})
    out = [{"name": "min_utilization", "label": "Utilization",
            "options": [(f"{t:g}", threshold_label(t), t == query.min_utilization) for t in thresholds]}]
    for name in ("order", "capability", "entity_type", "plan", *(() if mine.on else ("owner",))):
        chosen = getattr(query, name) or ""
        out.append({"name": name, "label": form.fields[name].label,
                    "options": [(v, label, v == chosen) for v, label in form.fields[name].choices]})
    return out


@page_login_required
@require_GET
def near_limit(request: HttpRequest) -> HttpResponse:
    rm = tasks.read_model()
    form, query, offset, mine = _query(rm, request)
    page = rm.near_limit_page(query, offset, PAGE_SIZE)
    now = datetime.now(timezone.utc)
    here, params = reverse("near-limit"), _params(query, mine)
    can_grant = request.user.has_perm(GRANT_PROMOTION)
    context = {
        **frame(rm), "form": form, "query": query, "page": page,
        "rows": [row_html(_row(r, now), can_grant) for r in page.rows], "can_grant": can_grant,
        "has_entitlements": any(r.kind == "entitlement" for r in page.rows), "filter_params": params,
        "first": page.offset + 1 if page.rows else 0, "last": page.offset + len(page.rows),
        "selects": _selects(form, query, mine) if not request.htmx else [],
        "threshold_words": threshold_label(query.min_utilization),
        "poll_url": _with(here, _params(query, mine, page.offset)),
        "csv_url": _with(reverse("near-limit-csv"), params), "first_url": _with(here, params),
        "prev_url": _with(here, _params(query, mine, page.prev_offset)) if page.prev_offset is not None else None,
        "next_url": _with(here, _params(query, mine, page.next_offset)) if page.next_offset is not None else None,
        "mine": mine, "mine_switch_url": _with(here, _params(replace(query, owner=None), mine, switch=True)),
    }
    return render_page(request, "dashboard/near_limit.html", context, frozenset({"near-limit-table"}))


# --- CSV ---------------------------------------------------------------------------------------

CSV_TYPE = "text/csv; charset=utf-8"


@page_login_required
@require_GET
def near_limit_csv(request: HttpRequest) -> StreamingHttpResponse:
    """The rows as CSV: the worker's snapshot when it has this query's and it is fresh
    (nearlimit_csv.py; ``X-Snapshot-At`` says when it was built), compressed for a client
    that accepts gzip; else read as sent."""
    rm = tasks.read_model()
    _, query, _, _ = _query(rm, request)
    now = datetime.now(timezone.utc)
    snapshot = fresh_snapshot(rm, query, settings.NEAR_LIMIT_CSV_SNAPSHOT_SECONDS, now)
    gzipped = snapshot is not None and re_accepts_gzip.search(request.headers.get("Accept-Encoding", "")) is not None
    if snapshot is None:
        response = StreamingHttpResponse(csv_lines(rm, query, now), content_type=CSV_TYPE)
    else:
        response = StreamingHttpResponse([snapshot.body] if gzipped else inflated(snapshot.body),
                                         content_type=CSV_TYPE)
        response["X-Snapshot-At"] = snapshot.at.isoformat()
        if gzipped:
            response["Content-Encoding"] = "gzip"
    patch_vary_headers(response, ("Accept-Encoding",))
    stamp = (snapshot.at if snapshot else now).strftime("%Y%m%d-%H%M")
    response["Content-Disposition"] = f'attachment; filename="near-limit-{stamp}.csv"'
    return response
