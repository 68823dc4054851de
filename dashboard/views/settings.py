"""Each person's own settings (`/settings/`, the user menu): how alerts reach them — an
email digest, immediate notices of a limit reached by email and to a Slack-compatible
webhook — shown with what they would receive; and `/settings/digest`, the next digest as
its email would show it now.

Every signed-in person may set their own delivery, viewers included: it writes nothing to
Stigg and they read the same alerts on /alerts/. Nobody sets anyone else's here (the
admin's user page does that)."""
from __future__ import annotations

from datetime import datetime, timezone

from csp.decorators import csp_replace
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods

from .. import tasks
from ..alerts import digest
from ..alerts.receiving import receiving
from ..forms_delivery import DeliveryForm
from ..models import Profile, profile_of
from .common import frame, page_login_required, render_page


@page_login_required
@require_http_methods(["GET", "POST"])
def user_settings(request: HttpRequest) -> HttpResponse:
    profile = profile_of(request.user)
    form = DeliveryForm(request.POST or None, instance=profile, user=request.user)
    if request.method == "POST" and form.is_valid():
        form.save()
        messages.success(request, "Saved: alerts reach you as shown below.")
        return redirect("settings")
    now = datetime.now(timezone.utc)
    context = {**frame(tasks.read_model()), "form": form,
               "receiving": receiving(Profile.objects.get(pk=profile.pk), now)}
    return render_page(request, "dashboard/settings.html", context, status=400 if form.errors else 200)


# The digest is an email: its styles are inline, as mail clients need. This one page lets
# style attributes through and, in exchange, runs no script at all and is sandboxed.
EMAIL_PREVIEW_POLICY = {"style-src-attr": ["'unsafe-inline'"], "script-src": ["'none'"], "sandbox": [""]}


@page_login_required
@require_GET
@csp_replace(EMAIL_PREVIEW_POLICY)
def digest_preview(request: HttpRequest) -> HttpResponse:
    """The HTML part of the digest this person would get if it went out now (a daily one
    when theirs is off). Nothing is claimed or sent."""
    profile = profile_of(request.user)
    if profile.digest == Profile.Digest.OFF:
        profile.digest = Profile.Digest.DAILY
    found = digest.build(profile, datetime.now(timezone.utc))
    if not found.total:
        return render(request, "dashboard/digest_empty.html", {**frame(tasks.read_model()), "digest": found})
    content, _mimetype = found.message(digest.address_of(profile) or "you@example.com").alternatives[0]
    return HttpResponse(content)
