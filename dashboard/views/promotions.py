"""Granting, extending and revoking promotions: a form (a plain page, or for htmx the form
alone, shown in a modal), a preview step with the generous rule's before → after and its
warnings, then the write (actions/promotions.py). Success goes back to the customer page,
which shows "Refreshing from Stigg…" until the new figures have been read back."""
from __future__ import annotations

import time
from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import permission_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.cache import patch_vary_headers
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods
from django_htmx.http import HttpResponseClientRedirect

from .. import tasks
from ..actions import approvals, writes
from ..actions import promotions as actions
from ..actions.promotions import PromotionInputError, Subject
from ..actions.writes import WriteResult
from ..forms_promotion import ExtendForm, GrantForm, NoteFields, RevokeForm
from ..readmodel import ReadModel
from ..rules import promotions as rules
from ..rules.approvals import Policy, approval_reasons
from .common import customer_missing, frame, page_login_required
from .customer import GRANT_PROMOTION as GRANT
from .customer import last_read

MAX_FEATURE_ID = 500


@page_login_required
@permission_required(GRANT, raise_exception=True)
@require_http_methods(["GET", "POST"])
def promotion_new(request: HttpRequest, customer_id: str) -> HttpResponse:
    rm = tasks.read_model()
    doc = rm.customer(customer_id)
    if doc is None:
        return customer_missing(request, rm, customer_id)
    catalog = actions.catalog_features(rm)
    feature_id = (request.POST.get("feature") or request.GET.get("feature") or "")[:MAX_FEATURE_ID]
    subject = actions.subject_of(rm, doc, feature_id, catalog) if feature_id else None
    if subject is None or subject.feature is None:
        # An unknown feature is a 404 for a plain request; htmx swaps only 2xx into the modal.
        status = 404 if subject and not request.htmx else 200
        return _render(request, rm, doc, "choose", subject=subject, features=catalog[0], status=status)
    form = GrantForm(request.POST if request.method == "POST" else None, subject=subject)
    if request.method == "GET" or "edit" in request.POST or not form.is_valid():
        return _render(request, rm, doc, "edit", subject=subject, form=form)
    assert form.grant is not None
    at = actions.now()
    preview = actions.preview(subject, form.grant, at)
    why = approval_reasons(form.grant, preview.plan, at, Policy.from_settings())
    if request.POST.get("confirm") != "yes":
        return _render(request, rm, doc, "confirm", subject=subject, form=form, preview=preview, why=why)
    if why:
        return _request_approval(request, rm, doc, subject, form, form.grant, why)
    return _write(request, rm, doc, subject, form, lambda: actions.grant(
        subject, form.grant, form.cleaned_data["reason"], form.cleaned_data["ticket"], user=request.user,
        token=form.cleaned_data["token"], rm=rm), "Promotion granted")


def _needs_approval(subject: Subject, values: rules.Grant) -> tuple[str, ...]:
    at = actions.now()
    return approval_reasons(values, actions.preview(subject, values, at).plan, at, Policy.from_settings())


def _request_approval(request: HttpRequest, rm: ReadModel, doc: dict[str, Any], subject: Subject, form: NoteFields,
                      values: rules.Grant, why: tuple[str, ...]) -> HttpResponse:
    """A grant the policy holds back: a request for a lead, not a write to Stigg."""
    try:
        approvals.request(subject, values, form.cleaned_data["reason"], form.cleaned_data["ticket"], why,
                          user=request.user, token=form.cleaned_data["token"])
    except PromotionInputError as exc:
        form.fail(exc)
        return _render(request, rm, doc, "edit" if isinstance(form, GrantForm) else "extend", subject=subject,
                       form=form)
    messages.info(request, f"Sent for approval: {subject.feature.display_name if subject.feature else ''} for "
                           f"{subject.customer_name} ({'; '.join(why)}). Another customer-success lead decides; "
                           "nothing is granted until then.")
    url = reverse("approvals")
    return HttpResponseClientRedirect(url) if request.htmx else redirect(url)


@page_login_required
@permission_required(GRANT, raise_exception=True)
@require_http_methods(["GET", "POST"])
def promotion_extend(request: HttpRequest, customer_id: str) -> HttpResponse:
    rm, doc, subject, missing = _existing(request, customer_id)
    if missing is not None:
        return missing
    form = ExtendForm(request.POST if request.method == "POST" else None, subject=subject)
    if request.method == "GET" or "edit" in request.POST or not form.is_valid():
        return _render(request, rm, doc, "extend", subject=subject, form=form)
    if writes.earlier(form.cleaned_data["token"]) is None:  # (a replay reports what this form did)
        try:  # an extension is a grant: the approval policy applies to it too
            values = actions.extension(subject, form.cleaned_data["period"], form.end())
        except PromotionInputError as exc:
            form.fail(exc)
            return _render(request, rm, doc, "extend", subject=subject, form=form)
        why = _needs_approval(subject, values) if subject.feature else ()
        if why:
            return _request_approval(request, rm, doc, subject, form, values, why)
    return _write(request, rm, doc, subject, form, lambda: actions.extend(
        subject, form.cleaned_data["period"], form.end(), form.cleaned_data["reason"], form.cleaned_data["ticket"],
        user=request.user, token=form.cleaned_data["token"], rm=rm), "Promotion extended", step="extend")


@page_login_required
@permission_required(GRANT, raise_exception=True)
@require_http_methods(["GET", "POST"])
def promotion_revoke(request: HttpRequest, customer_id: str) -> HttpResponse:
    rm, doc, subject, missing = _existing(request, customer_id)
    if missing is not None:
        return missing
    form = RevokeForm(request.POST if request.method == "POST" else None, subject=subject)
    if request.method == "GET" or not form.is_valid():
        return _render(request, rm, doc, "revoke", subject=subject, form=form)
    return _write(request, rm, doc, subject, form, lambda: actions.revoke(
        subject, form.cleaned_data["reason"], form.cleaned_data["ticket"], user=request.user,
        token=form.cleaned_data["token"], rm=rm), "Promotion revoked", step="revoke")


def _existing(request: HttpRequest, customer_id: str) -> tuple[ReadModel, Any, Subject, HttpResponse | None]:
    """(rm, doc, the customer's promotion for ``?feature=``, None), or a 404 page last."""
    rm = tasks.read_model()
    doc = rm.customer(customer_id)
    if doc is None:
        return rm, None, None, customer_missing(request, rm, customer_id)  # type: ignore[return-value]
    feature_id = request.GET.get("feature", "")[:MAX_FEATURE_ID]
    subject = actions.subject_of(rm, doc, feature_id)
    if subject.promotion is None:
        message = f"{subject.customer_name} has no promotion for “{feature_id}”; it may have been revoked already."
        return rm, doc, subject, render(request, "dashboard/promotion_missing.html",
                                        {**frame(rm), "doc": doc, "message": message}, status=404)
    return rm, doc, subject, None


def _write(request: HttpRequest, rm: ReadModel, doc: dict[str, Any], subject: Subject, form: NoteFields,
           write: Any, done_words: str, step: str = "edit") -> HttpResponse:
    try:
        result: WriteResult = write()
    except PromotionInputError as exc:  # the read model moved on since the form was read
        form.fail(exc)
        return _render(request, rm, doc, step, subject=subject, form=form)
    if not result.done:
        return _render(request, rm, doc, step, subject=subject, form=form.with_new_token(), failure=result.message)
    name = subject.feature.display_name if subject.feature else subject.feature_id
    messages.success(request, f"{done_words} in Stigg: {name} for {subject.customer_name}"
                              f"{' (this form had already been sent)' if result.replayed else ''}.")
    if result.warning:
        messages.warning(request, result.warning)
    # The customer page says "Refreshing from Stigg…" until a read newer than this one lands.
    since = last_read(doc)
    url = f"{reverse('customer', args=[subject.customer_id])}?{urlencode({'since': since, 'queued': time.time()})}"
    url = _next(request) or url + "#promotions"
    return HttpResponseClientRedirect(url) if request.htmx else redirect(url)


def _next(request: HttpRequest) -> str | None:
    """Where a form opened from another page (the expiring list) goes back to: a path on
    this site only."""
    target = request.POST.get("next") or request.GET.get("next") or ""
    safe = url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()},
                                           require_https=request.is_secure())
    return target if safe and target.startswith("/") else None


def _render(request: HttpRequest, rm: ReadModel, doc: dict[str, Any], step: str, *, subject: Subject | None = None,
            form: NoteFields | None = None, preview: rules.Preview | None = None, features: dict | None = None,
            failure: str | None = None, status: int = 200, why: tuple[str, ...] = ()) -> HttpResponse:
    customer_id = doc["id"]
    feature = subject.feature if subject else None
    # Extend and revoke work for a feature the catalog no longer lists, too.
    query = urlencode({"feature": subject.feature_id}) if subject and (feature or step in ("extend", "revoke")) else ""
    names = {"edit": "promotion-new", "confirm": "promotion-new", "choose": "promotion-new",
             "extend": "promotion-extend", "revoke": "promotion-revoke"}
    context = {**frame(rm), "doc": doc, "step": step, "subject": subject, "feature": feature, "form": form,
               "preview": preview, "failure": failure, "promotion": subject.promotion if subject else None,
               "action_url": f"{reverse(names[step], args=[customer_id])}{'?' + query if query else ''}",
               "customer_url": reverse("customer", args=[customer_id]),
               "choices": sorted(((f.id, f.display_name) for f in (features or {}).values()),
                                 key=lambda c: c[1].casefold()),
               "unknown_feature": subject.feature_id if subject and feature is None else None,
               "pending": actions.pending_change(subject, doc["fetched_at"]) if feature else None,
               "entitlement": subject.entitlement if subject else None, "next": _next(request), "why": why}
    template = "dashboard/promotion_form.html"
    response = render(request, f"{template}#promotion-form" if request.htmx else template, context, status=status)
    patch_vary_headers(response, ["HX-Request"])
    return response
