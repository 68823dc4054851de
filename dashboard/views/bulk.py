"""Bulk grants (issue 10): a CSV upload, the dry run, confirm, the job's progress, the
result (and its CSV), undo. Rows ticked on the near-limit view arrive through
views/bulk_select.py. Every write needs ``dashboard.grant_promotion``; anybody signed in
may look at a batch.

    GET  /bulk/                 the upload form and the latest batches
    POST /bulk/                 upload: ``file`` (bulk_csv.py has the format), ``reason``,
                                ``ticket``, ``token`` -> the dry run
    GET  /bulk/template.csv     the CSV to start from
    GET  /bulk/<id>/            the batch: dry run, waiting for a lead, progress, or result
    POST /bulk/<id>/            confirm the dry run: ``row`` (the id of each ticked row, repeated)
    GET  /bulk/<id>/progress    the progress bar (htmx polls it every second)
    GET  /bulk/<id>.csv         the result, one line per row
    POST /bulk/<id>/undo        undo the batch: ``reason``
    POST /bulk/<id>/resume      queue its job again (after the task queue was unreachable)
"""
from __future__ import annotations

from datetime import datetime, timezone

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import permission_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from .. import bulk_csv, tasks
from ..actions import bulk
from ..actions.bulk import BulkError, Wanted
from ..actions.bulk_run import progress
from ..forms_bulk import BulkUploadForm, UndoForm
from ..models import BulkBatch, BulkRow
from ..rules.bulk import RowError
from .bulk_cells import row_html
from .common import frame, page_login_required, render_page
from .customer import GRANT_PROMOTION as GRANT

RECENT = 20
Status = BulkBatch.Status
RUNNING = (Status.QUEUED, Status.RUNNING)
UNDOING = (BulkBatch.Undo.QUEUED, BulkBatch.Undo.RUNNING)


@page_login_required
@require_http_methods(["GET", "POST"])
def bulk_index(request: HttpRequest) -> HttpResponse:
    form = BulkUploadForm()
    if request.method == "POST":
        if not request.user.has_perm(GRANT):
            raise PermissionDenied
        form = BulkUploadForm(request.POST, request.FILES)
        if form.is_valid():
            batch = bulk.dry_run(tasks.read_model(), [_wanted(r) for r in form.rows], user=request.user,
                                 source=BulkBatch.Source.CSV, summary=_upload_summary(form), note="",
                                 reason=form.cleaned_data["reason"], ticket=form.cleaned_data["ticket"],
                                 token=form.cleaned_data["token"])
            return redirect("bulk-batch", pk=batch.pk)
    recent = BulkBatch.objects.select_related("created_by").order_by("-created_at", "-id")[:RECENT]
    context = {**frame(tasks.read_model()), "form": form, "recent": recent, "can_grant": request.user.has_perm(GRANT),
               "max_rows": settings.BULK_MAX_ROWS, "max_bytes": settings.BULK_CSV_MAX_BYTES,
               "columns": bulk_csv.COLUMNS, "periods": list(bulk_csv.PERIOD_WORDS)}
    return render_page(request, "dashboard/bulk_new.html", context, status=400 if form.errors else 200)


def _wanted(row: bulk_csv.CsvRow) -> Wanted:
    try:
        values = bulk_csv.grant_values(row)
    except RowError as exc:
        return Wanted(row.customer, row.feature, None, "", problem=f"Line {row.line}: {exc}")
    return Wanted(row.customer, row.feature, values.amount, values.period, values.end_date)


def _upload_summary(form: BulkUploadForm) -> str:
    name = getattr(form.cleaned_data["file"], "name", "") or "upload"
    return f"{name[:120]}: {len(form.rows):,} row{'s' if len(form.rows) != 1 else ''}"


@page_login_required
@require_GET
def bulk_template(request: HttpRequest) -> HttpResponse:
    response = HttpResponse(bulk_csv.template(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="bulk-grant-template.csv"'
    return response


@page_login_required
@require_http_methods(["GET", "POST"])
def bulk_batch(request: HttpRequest, pk: int) -> HttpResponse:
    if request.method == "POST" and not request.user.has_perm(GRANT):
        raise PermissionDenied  # before anything is read: a write refused is refused whatever it names
    batch = get_object_or_404(BulkBatch.objects.select_related("created_by", "decided_by", "undo_by"), pk=pk)
    if request.method == "POST":
        return _confirm(request, batch)
    rows = list(batch.rows.order_by("position"))
    can_grant = request.user.has_perm(GRANT)
    tickable = batch.status == Status.DRAFT and can_grant and batch.created_by_id == request.user.pk
    ticked = [r for r in rows if r.selected and r.state == BulkRow.State.PENDING]
    counts = {"rows": len(rows), "ticked": len(ticked), "bad": sum(r.state == BulkRow.State.BAD for r in rows)}
    context = {**frame(tasks.read_model()), "batch": batch, "rows": [row_html(r, tickable=tickable) for r in rows],
               "counts": counts, "why_now": bulk.needs_approval(ticked) if batch.status == Status.DRAFT else (),
               "can_grant": can_grant, "tickable": tickable,
               "running": batch.status in RUNNING or batch.undo_status in UNDOING,
               "progress": progress(batch), "outcomes": _outcomes(rows), "undo_form": UndoForm(),
               "rate": settings.BULK_GRANT_RATE, "now": datetime.now(timezone.utc)}
    return render_page(request, "dashboard/bulk_batch.html", context)


def _confirm(request: HttpRequest, batch: BulkBatch) -> HttpResponse:
    try:
        ticked = [int(v) for v in request.POST.getlist("row") if v.isdigit()]
        status = bulk.confirm(batch, ticked, user=request.user)
    except BulkError as exc:
        messages.error(request, exc.message)
        return redirect("bulk-batch", pk=batch.pk)
    if status == Status.PENDING:
        messages.info(request, "Sent for approval: another customer-success lead decides on /approvals/; nothing "
                               "is granted until then.")
    elif status == "not-started":
        messages.warning(request, "Confirmed, but the task queue is unreachable, so nothing has started. Start it "
                                  "again in a moment.")
    return redirect("bulk-batch", pk=batch.pk)


def _outcomes(rows: list[BulkRow]) -> dict[str, int]:
    out = {"done": 0, "failed": 0, "skipped": 0, "bad": 0, "revoked": 0, "left": 0, "not_revoked": 0}
    undo = {BulkRow.UndoState.DONE: "revoked", BulkRow.UndoState.SKIPPED: "left",
            BulkRow.UndoState.FAILED: "not_revoked"}
    for r in rows:
        if r.state in out:
            out[r.state] += 1
        if r.undo_state in undo:
            out[undo[r.undo_state]] += 1
    return out


@page_login_required
@require_GET
def bulk_progress(request: HttpRequest, pk: int) -> HttpResponse:
    """The progress bar alone; once the job is over, htmx reloads the page (the result)."""
    batch = get_object_or_404(BulkBatch, pk=pk)
    if not request.htmx:
        return redirect("bulk-batch", pk=batch.pk)
    running = batch.status in RUNNING or batch.undo_status in UNDOING
    response = render_page(request, "dashboard/bulk_batch.html#bulk-progress",
                           {"batch": batch, "progress": progress(batch), "running": running,
                            "rate": settings.BULK_GRANT_RATE, "can_grant": request.user.has_perm(GRANT)})
    if not running:
        response["HX-Refresh"] = "true"
    return response


@page_login_required
@require_GET
def bulk_result_csv(request: HttpRequest, pk: int) -> HttpResponse:
    batch = get_object_or_404(BulkBatch, pk=pk)
    lines = ((str(r.position), r.customer_id, r.customer_name, r.feature_id, r.feature_name, r.grant_text, r.before,
              r.after, r.get_state_display(), r.message, r.get_undo_state_display() if r.undo_state else "",
              r.undo_message) for r in batch.rows.order_by("position"))
    response = HttpResponse(bulk_csv.result(lines), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="bulk-grant-{batch.pk}.csv"'
    return response


@page_login_required
@permission_required(GRANT, raise_exception=True)
@require_POST
def bulk_undo(request: HttpRequest, pk: int) -> HttpResponse:
    batch = get_object_or_404(BulkBatch, pk=pk)
    form = UndoForm(request.POST)
    try:
        if not form.is_valid():
            raise BulkError("reason", " ".join(form.errors.get("reason", ["Say why."])))
        if not bulk.undo(batch, user=request.user, reason=form.cleaned_data["reason"]):
            messages.warning(request, "Undo confirmed, but the task queue is unreachable: start it again in a moment.")
    except BulkError as exc:
        messages.error(request, exc.message)
    return redirect(reverse("bulk-batch", args=[batch.pk]))


@page_login_required
@permission_required(GRANT, raise_exception=True)
@require_POST
def bulk_resume(request: HttpRequest, pk: int) -> HttpResponse:
    batch = get_object_or_404(BulkBatch, pk=pk)
    try:
        if not bulk.resume(batch):
            messages.error(request, "The task queue is still unreachable; nothing was queued. Try again in a moment.")
    except BulkError as exc:
        messages.error(request, exc.message)
    return redirect("bulk-batch", pk=batch.pk)
