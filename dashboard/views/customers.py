"""The customer list: live search, filters, sorts and pages; "My accounts" by default for a
user who owns accounts (``mine``, kept in every link the list builds)."""
from __future__ import annotations

from urllib.parse import urlencode

from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_GET

from .. import tasks
from ..forms import PAGE_SIZE, CustomerFilter
from .common import frame, my_accounts_of, page_login_required, render_page


@page_login_required
@require_GET
def customers(request: HttpRequest) -> HttpResponse:
    rm = tasks.read_model()
    form = CustomerFilter(request.GET, rm.plans())
    form.is_valid()  # invalid fields fall back to defaults; their errors are shown
    chosen, mine = form.values(), my_accounts_of(request)
    page = rm.customers_page(limit=PAGE_SIZE, owner=mine.owner_filter, **chosen)
    filters = {k: v for k, v in {"q": chosen["search"], "plan": chosen["plan"] or "",
                                  "status": chosen["status"] or "", "sort": chosen["sort"]}.items() if v}
    context = {**frame(rm), "form": form, "page": page, "query": {**filters, **mine.params()}, "chosen": chosen,
               "first": page.offset + 1 if page.rows else 0, "last": page.offset + len(page.rows),
               "mine": mine, "mine_switch_url": "?" + urlencode({**filters, **mine.switched()})}
    return render_page(request, "dashboard/customers.html", context, frozenset({"customer-table"}))
