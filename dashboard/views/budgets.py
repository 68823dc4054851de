"""Changing a governance budget, or adding one: a form showing what the budget is now (from
the read model, never from Stigg), a confirmation step showing before → after, then the
write (actions/budgets.py). Works as plain POSTs and redirects, and with htmx (the form
alone, swapped in place; success announced with ``budgetChanged`` and ``HX-Redirect``)."""
from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import permission_required
from django.http import HttpRequest, HttpResponse, QueryDict
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.cache import patch_vary_headers
from django.views.decorators.http import require_http_methods
from django_htmx.http import HttpResponseClientRedirect, trigger_client_event

from .. import tasks
from ..actions import budgets
from ..actions.budgets import BudgetInputError, ChangeResult
from ..forms_budget import COMMON_CADENCES, BudgetForm, BudgetSubject, parse_scope
from ..models import AuditEntry
from ..readmodel import ReadModel, parse_time
from .common import customer_missing, frame, page_login_required

RECENT_CHANGES = 5


@page_login_required
@permission_required("dashboard.change_budget", raise_exception=True)
@require_http_methods(["GET", "POST"])
def budget_change(request: HttpRequest, customer_id: str) -> HttpResponse:
    rm = tasks.read_model()
    doc = rm.customer(customer_id)
    if doc is None:
        return customer_missing(request, rm, customer_id)
    subject = _subject(rm, doc, request.GET)
    if isinstance(subject, str):
        return render(request, "dashboard/budget_missing.html",
                      {**frame(rm), "doc": doc, "message": subject, "governance_url": governance_url(customer_id)},
                      status=404)
    form = BudgetForm(request.POST if request.method == "POST" else None, subject=subject, rm=rm)
    if request.method == "GET" or "edit" in request.POST or not form.is_valid():
        return _render(request, rm, doc, subject, form, "edit")
    if request.POST.get("confirm") != "yes":
        return _render(request, rm, doc, subject, form, "confirm")
    try:
        result = budgets.change_budget(form.change, user=request.user, token=form.cleaned_data["token"], rm=rm)
    except BudgetInputError as exc:  # the read model moved on since the form was read
        form.add_error(exc.field if exc.field in form.fields else None, exc.message)
        return _render(request, rm, doc, subject, form, "edit")
    if not result.done:
        return _render(request, rm, doc, subject, form.with_new_token(), "edit", failure=result.message)
    return _done(request, subject, result)


def governance_url(customer_id: str, entity_id: str | None = None) -> str:
    """The governance page (views/governance.py), at the node when one is given."""
    url = reverse("customer-governance", args=[customer_id])
    return f"{url}?{urlencode({'node': entity_id})}" if entity_id else url


def _subject(rm: ReadModel, doc: dict[str, Any], query: QueryDict) -> BudgetSubject | str:
    """The node and budget the URL names, or why there is none (a 404 in words)."""
    customer_id = doc["id"]
    entity_id, capability, scope = query.get("entity", ""), query.get("capability", ""), parse_scope(
        query.get("scope", ""))
    node = rm.governance_node(customer_id, entity_id) if entity_id else None
    if node is None:
        return f"No entity “{entity_id}” in this customer's governance hierarchy." if entity_id else \
            "No entity given: open this form from a node of the governance page."
    budget = budgets.find_budget(node, capability, scope) if capability else None
    if capability and budget is None:
        where = f" scoped to {', '.join(scope)}" if scope else ""
        return f"{node['name'] or node['id']} has no budget for “{capability}”{where}."
    return BudgetSubject(customer_id, node, budget, _capabilities(rm, doc), scope)


def _capabilities(rm: ReadModel, doc: dict[str, Any]) -> list[tuple[str, str]]:
    """What a new budget may be for: the metered features of the catalog, and whatever
    this customer already has budgets for (currencies included)."""
    cat = rm.catalog()
    names = {fid: f["display_name"] for fid, f in (cat.features if cat else {}).items() if f.get("metered")}
    for capability in doc["governance"]["capabilities"]:
        names.setdefault(capability, f"{capability[1:]} (currency)" if capability.startswith("$") else capability)
    return sorted(names.items(), key=lambda item: (item[1].casefold(), item[0]))


def _render(request: HttpRequest, rm: ReadModel, doc: dict[str, Any], subject: BudgetSubject, form: BudgetForm,
            step: str, failure: str | None = None) -> HttpResponse:
    node, budget = subject.node, subject.budget
    query = {"entity": node["id"], **({"capability": budget["capability"]} if budget else {}),
             "scope": ",".join(subject.scope)}
    change = form.change if step == "confirm" else None
    capability = budget["capability"] if budget else change.target.capability if change else ""
    names = dict(subject.capabilities)
    context = {**frame(rm), "doc": doc, "subject": subject, "node": node, "budget": budget, "form": form,
               "step": step, "failure": failure, "cadences": COMMON_CADENCES, "change": change,
               "capability_name": names.get(capability, capability),
               "existing": [{**b, "name": names.get(b["capability"], b["capability"])} for b in node["budgets"]],
               "action_url": f"{reverse('budget-change', args=[subject.customer_id])}?{urlencode(query)}",
               "governance_url": governance_url(subject.customer_id, node["id"]),
               "recent": (recent := _recent(subject) if budget else []), "pending": _pending(recent, doc)}
    # For htmx, the form alone: swapped in place, or into whatever holds it (a modal).
    template = "dashboard/budget_change.html#budget-form" if request.htmx else "dashboard/budget_change.html"
    response = render(request, template, context)
    patch_vary_headers(response, ["HX-Request"])
    return response


def _recent(subject: BudgetSubject) -> list[AuditEntry]:
    budget = subject.budget
    assert budget is not None
    return list(AuditEntry.objects.filter(customer_id=subject.customer_id, entity_id=subject.node["id"],
                                          capability=budget["capability"], scope=budget["scope"])[:RECENT_CHANGES])


def _pending(recent: list[AuditEntry], doc: dict[str, Any]) -> AuditEntry | None:
    """The last change, when it was made after the figures on screen were read from Stigg."""
    fetched = parse_time(doc["fetched_at"])
    latest = recent[0] if recent else None
    return latest if latest is not None and latest.done and (fetched is None or latest.at > fetched) else None


def _done(request: HttpRequest, subject: BudgetSubject, result: ChangeResult) -> HttpResponse:
    entry = result.entry
    what = "added" if entry.action == AuditEntry.Action.BUDGET_ADD else "changed"
    messages.success(request, f"Budget {what} in Stigg for {subject.node['name'] or subject.node['id']}"
                              f"{' (this form had already been sent)' if result.replayed else ''}. "
                              "The new figures show as soon as the dashboard has read them back.")
    if result.warning:
        messages.warning(request, result.warning)
    url = governance_url(subject.customer_id, subject.node["id"])
    if not request.htmx:
        return redirect(url)
    response = HttpResponseClientRedirect(url)
    return trigger_client_event(response, "budgetChanged", {"customer": subject.customer_id,
                                                            "entity": subject.node["id"], "audit": entry.pk})
