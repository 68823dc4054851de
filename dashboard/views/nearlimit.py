"""Near limit: every governance budget and metered entitlement of the fleet at or above a
utilization, ordered and filtered (``/near-limit/``), and the same rows as CSV, streamed
(``/near-limit.csv``); "My accounts" by default for a user who owns accounts (``mine``: the
owner filter set to their name)."""
from __future__ import annotations

import csv
from dataclasses import replace
from datetime import datetime, timezone
from typing import Any, Iterator
from urllib.parse import quote, urlencode

from django.http import HttpRequest, HttpResponse, QueryDict, StreamingHttpResponse
from django.urls import reverse
from django.views.decorators.http import require_GET

from .. import tasks
from ..codec import load
from ..forms import DEFAULT_MIN_UTILIZATION, NEAR_LIMIT_THRESHOLDS, PAGE_SIZE, NearLimitFilter, threshold_label
from ..models import account_owner_of
from ..readmodel import NearLimitQuery, NearLimitRow, ReadModel
from ..rules.governance import TimeToLimit, describe_time_to_limit
from ..rules.my_accounts import MINE, MyAccounts, my_accounts
from ..templatetags import ui
from .common import frame, page_login_required, render_page
from .customer import GRANT_PROMOTION
from .nearlimit_cells import row_html

CSV_BATCH = 500
# Spreadsheets run a cell starting with these as a formula: text from Stigg gets a quote first.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


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


def time_to_limit_words(row: NearLimitRow, now: datetime) -> str:
    return describe_time_to_limit(load(TimeToLimit, row.ttl), now) if row.ttl else "not enough usage yet to project"


def _reaches_at(row: NearLimitRow) -> datetime | None:
    when = (row.ttl or {}).get("reaches_at")
    return datetime.fromisoformat(when) if when else None


def row_link(row: NearLimitRow, customer_url: str | None = None) -> str:
    """Where a row is looked at: a budget in its customer's governance tree, opened at its
    entity; an entitlement on its customer's page."""
    customer_url = customer_url or reverse("customer", args=[row.customer_id])
    if row.kind == "budget":
        return f"{customer_url}/governance?{urlencode({'node': row.entity_id}, quote_via=quote)}"
    return f"{customer_url}#metered"


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

CSV_HEADER = ("kind", "customer_id", "customer_name", "plan", "account_owner", "entity_id", "entity_name",
              "entity_type", "capability", "feature_name", "scope", "usage", "limit", "utilization",
              "time_to_limit", "reaches_limit_at", "period", "period_end", "data_read_at", "link")


class _Line:
    """csv.writer writes into this and gets the line back: one line at a time, no buffer."""

    def write(self, text: str) -> str:
        return text


def safe_text(value: str | None) -> str:
    """Text from Stigg as a CSV cell a spreadsheet shows as text, never runs as a formula."""
    if not value:
        return ""
    return "'" + value if value.startswith(FORMULA_STARTS) else value


def _number(value: float | None) -> str:
    if value is None:
        return ""
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _iso(value: datetime | None) -> str:
    return value.isoformat() if value else ""


def csv_cells(row: NearLimitRow, now: datetime, link: str) -> list[str]:
    return [row.kind, safe_text(row.customer_id), safe_text(row.customer_name), safe_text(row.plan_id),
            safe_text(row.owner), safe_text(row.entity_id), safe_text(row.entity_name), safe_text(row.entity_type),
            safe_text(row.capability), safe_text(row.feature_name), safe_text(";".join(row.scope)),
            _number(row.usage), _number(row.limit), _number(row.utilization), time_to_limit_words(row, now),
            _iso(_reaches_at(row)), safe_text(row.period), _iso(row.period_end), _iso(row.fetched_at), link]


def csv_lines(rm: ReadModel, query: NearLimitQuery, base_url: str) -> Iterator[str]:
    """The header, then every row, read from Redis CSV_BATCH at a time as the client reads."""
    writer = csv.writer(_Line())
    now = datetime.now(timezone.utc)
    yield writer.writerow(CSV_HEADER)
    for row in rm.iter_near_limit(query, CSV_BATCH):
        yield writer.writerow(csv_cells(row, now, base_url + row_link(row)))


@page_login_required
@require_GET
def near_limit_csv(request: HttpRequest) -> StreamingHttpResponse:
    rm = tasks.read_model()
    _, query, _, _ = _query(rm, request)
    response = StreamingHttpResponse(csv_lines(rm, query, request.build_absolute_uri("/")[:-1]),
                                     content_type="text/csv; charset=utf-8")
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M")
    response["Content-Disposition"] = f'attachment; filename="near-limit-{stamp}.csv"'
    return response
