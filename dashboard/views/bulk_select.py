"""Rows ticked on the near-limit view, or every entitlement that matches its filter, become
a bulk grant: one choice for all of them (how much, for how long, why), then the dry run.
Needs ``dashboard.grant_promotion``.

    POST /bulk/new   from the near-limit view: ``row`` (repeated, each a JSON array
                     ``[customer id, feature id]``), or ``select_all`` = "1" with ``filter``
                     (the view's query string): shows the choice form, which carries them.
                     With ``dry_run`` = "1" and the choice (forms_bulk.BulkChoiceForm:
                     ``amount``, ``limit``, ``percent``, ``period``, ``end_date``,
                     ``reason``, ``ticket``, ``token``): makes the dry run and goes to it.
"""
from __future__ import annotations

import json
from typing import Any

from django.conf import settings
from django.contrib.auth.decorators import permission_required
from django.http import HttpRequest, HttpResponse, QueryDict
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from .. import tasks
from ..actions import bulk
from ..actions.bulk import Wanted
from ..actions.promotions import catalog_features
from ..forms_bulk import BulkChoiceForm
from ..models import BulkBatch, account_owner_of
from ..readmodel import ReadModel
from ..rules.promotions import PERIODS
from .common import frame, page_login_required
from .customer import GRANT_PROMOTION as GRANT
from .nearlimit import query_of

MAX_ID = 1000
# "Every row that matches" reads at most this many near-limit rows (budgets among them).
SCAN_FACTOR = 20


@page_login_required
@permission_required(GRANT, raise_exception=True)
@require_POST
def bulk_select(request: HttpRequest) -> HttpResponse:
    rm = tasks.read_model()
    chosen, note = selection(rm, request.POST, account_owner_of(request.user))
    form = BulkChoiceForm(request.POST if request.POST.get("dry_run") == "1" else None)
    if chosen and form.is_bound and form.is_valid() and form.choice is not None:
        data = form.cleaned_data
        wanted = [Wanted(cid, fid, form.choice, data["period"], form.end()) for cid, fid in chosen]
        batch = bulk.dry_run(rm, wanted, user=request.user, source=BulkBatch.Source.NEAR_LIMIT,
                             summary=_summary(form, chosen), note=note, reason=data["reason"], ticket=data["ticket"],
                             token=data["token"])
        return redirect("bulk-batch", pk=batch.pk)
    context = {**frame(rm), "form": form, "chosen": len(chosen), "customers": len({c for c, _ in chosen}),
               "features": _features(rm, chosen), "note": note, "carry": _carry(request.POST)}
    return render(request, "dashboard/bulk_choose.html", context, status=200 if chosen else 400)


def selection(rm: ReadModel, post: QueryDict, account_owner: str | None = None) -> tuple[list[tuple[str, str]], str]:
    """(customer id, feature id) pairs, each once, in the order given, at most
    BULK_MAX_ROWS; and a note in words of what was left out."""
    limit = settings.BULK_MAX_ROWS
    if post.get("select_all") == "1":
        pairs, more = _matching(rm, post.get("filter", ""), limit, account_owner)
    else:
        pairs, more = _ticked(post.getlist("row"), limit)
    note = (f"More rows than a batch holds were selected: the dry run has the first {limit:,} (in the near-limit "
            "view's order). Narrow the filter, or make another batch for the rest.") if more else ""
    return pairs, note


def _ticked(values: list[str], limit: int) -> tuple[list[tuple[str, str]], bool]:
    pairs: dict[tuple[str, str], None] = {}
    for value in values:
        try:
            cid, fid = json.loads(value)
        except (ValueError, TypeError):
            continue  # not a row of ours (an edited page): left out
        if isinstance(cid, str) and isinstance(fid, str) and cid and fid and max(len(cid), len(fid)) <= MAX_ID:
            pairs.setdefault((cid, fid), None)
    return list(pairs)[:limit], len(pairs) > limit


def _matching(rm: ReadModel, params: str, limit: int, account_owner: str | None
              ) -> tuple[list[tuple[str, str]], bool]:
    """Every metered entitlement the near-limit view's filter matches (budgets cannot get
    a promotion), in its order; My accounts as the page had it (``mine`` in its query)."""
    _, query, _, _ = query_of(rm, QueryDict(params[:4000]), account_owner)
    pairs: dict[tuple[str, str], None] = {}
    for scanned, row in enumerate(rm.iter_near_limit(query), 1):
        if row.kind == "entitlement":
            pairs.setdefault((row.customer_id, row.capability), None)
        if len(pairs) > limit or scanned >= limit * SCAN_FACTOR:
            break
    return list(pairs)[:limit], len(pairs) > limit


def _carry(post: QueryDict) -> list[tuple[str, str]]:
    """The selection, as hidden fields of the choice form."""
    if post.get("select_all") == "1":
        return [("select_all", "1"), ("filter", post.get("filter", "")[:4000])]
    return [("row", v) for v in post.getlist("row")[: settings.BULK_MAX_ROWS + 1]]


def _features(rm: ReadModel, chosen: list[tuple[str, str]]) -> list[tuple[str, int]]:
    """The selected features by name, with how many rows each."""
    names = {fid: f.display_name for fid, f in catalog_features(rm)[0].items()}
    counts: dict[str, int] = {}
    for _, fid in chosen:
        counts[names.get(fid, fid)] = counts.get(names.get(fid, fid), 0) + 1
    return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0].casefold()))


def _summary(form: BulkChoiceForm, chosen: list[Any]) -> str:
    assert form.choice is not None
    period = form.cleaned_data["period"]
    length = f"until {form.cleaned_data['end_date']:%Y-%m-%d}" if period == "custom" else PERIODS[period]
    return f"{form.choice.words()}, {length}: {len(chosen):,} near-limit row{'s' if len(chosen) != 1 else ''}"
