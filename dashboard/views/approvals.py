"""Grants waiting for a customer-success lead (`/approvals/`): what each would grant, why it
needs approval, who asked and why, when it lapses; approve or reject with a reason. Bulk
grants wait here too, one decision per batch (POST /bulk/<id>/approve or /reject, with
``reason``). Only people with `dashboard.approve_grant` see the buttons, and nobody
approves their own."""
from __future__ import annotations

from datetime import datetime, timezone

from django.contrib import messages
from django.contrib.auth.decorators import permission_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.views.decorators.http import require_GET, require_POST

from .. import tasks
from ..actions import approvals, bulk
from ..actions.approvals import ApprovalError
from ..actions.bulk import BulkError
from ..models import BulkBatch, GrantRequest
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
    batches = list(BulkBatch.objects.filter(status=BulkBatch.Status.PENDING).select_related("created_by")
                   .order_by("expires_at", "id"))
    for batch in batches:
        rows = batch.rows.filter(selected=True)
        batch.counts = {"rows": rows.count(), "customers": rows.values("customer_id").distinct().count()}
    context = {**frame(tasks.read_model()), "pending": pending, "decided": decided, "now": now, "batches": batches,
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


@page_login_required
@permission_required(APPROVE, raise_exception=True)
@require_POST
def bulk_decide(request: HttpRequest, pk: int, decision: str) -> HttpResponse:
    batch = get_object_or_404(BulkBatch, pk=pk)
    reason = request.POST.get("reason", "")[:MAX_REASON]
    try:
        if decision == "approve":
            started = bulk.approve(batch, user=request.user, reason=reason)
            messages.success(request, f"Approved: bulk grant #{batch.pk} is being granted in Stigg."
                             if started else f"Approved bulk grant #{batch.pk}, but the task queue is unreachable: "
                                             "start it again from its page in a moment.")
        else:
            bulk.reject(batch, user=request.user, reason=reason)
            messages.success(request, f"Rejected: bulk grant #{batch.pk}.")
    except BulkError as exc:
        messages.error(request, exc.message)
    return redirect("approvals")
