"""Grants waiting for a customer-success lead (`/approvals/`): what each would grant, why it
needs approval, who asked and why, when it lapses; approve or reject with a reason. Only
people with `dashboard.approve_grant` see the buttons, and nobody approves their own."""
from __future__ import annotations

from datetime import datetime, timezone

from django.contrib import messages
from django.contrib.auth.decorators import permission_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.views.decorators.http import require_GET, require_POST

from .. import tasks
from ..actions import approvals
from ..actions.approvals import ApprovalError
from ..models import GrantRequest
from .common import frame, page_login_required, render_page

APPROVE = "dashboard.approve_grant"
RECENT = 30
MAX_REASON = 2000


@page_login_required
@require_GET
def approvals_list(request: HttpRequest) -> HttpResponse:
    now = datetime.now(timezone.utc)
    pending = list(GrantRequest.objects.filter(status__in=(GrantRequest.Status.PENDING,
                                                           GrantRequest.Status.APPROVING))
                   .select_related("requested_by").order_by("expires_at", "id"))
    decided = list(GrantRequest.objects.exclude(status__in=(GrantRequest.Status.PENDING,
                                                            GrantRequest.Status.APPROVING))
                   .select_related("requested_by", "decided_by").order_by("-decided_at", "-id")[:RECENT])
    context = {**frame(tasks.read_model()), "pending": pending, "decided": decided, "now": now,
               "can_approve": request.user.has_perm(APPROVE)}
    return render_page(request, "dashboard/approvals.html", context)


@page_login_required
@permission_required(APPROVE, raise_exception=True)
@require_POST
def approval_decide(request: HttpRequest, pk: int, decision: str) -> HttpResponse:
    req = get_object_or_404(GrantRequest, pk=pk)
    reason = request.POST.get("reason", "")[:MAX_REASON]
    try:
        if decision == "approve":
            result = approvals.approve(req, user=request.user, reason=reason)
            if result.done:
                messages.success(request, f"Approved and granted in Stigg: {req.feature_name} for {req.customer_name}.")
            else:
                messages.error(request, f"Approved, but not granted: {result.message} It stays waiting; try again.")
        else:
            approvals.reject(req, user=request.user, reason=reason)
            messages.success(request, f"Rejected: {req.feature_name} for {req.customer_name}.")
    except ApprovalError as exc:
        messages.error(request, exc.message)
    return redirect("approvals")
