"""The fleet overview: counts, the utilization histogram, and what is nearest its limit."""
from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_GET

from .. import charts, tasks
from ..readmodel import BudgetRank, EntitlementRank, ReadModel
from .common import frame, page_login_required, render_page

NEAREST_ON_OVERVIEW = 20


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
        **frame(rm),
        "entitlement_counts": rm.entitlement_counts(),
        "budget_counts": rm.budget_counts(),
        "nearest": _nearest(rm, NEAREST_ON_OVERVIEW),
        "histogram": charts.utilization_histogram(rm.utilization_histogram("entitlements"),
                                                  rm.utilization_histogram("budgets")),
    }
    return render_page(request, "dashboard/overview.html", context, frozenset({"overview-live"}))
