"""Sign-in throttling (django-axes): which address failures are counted by, and the page a
locked-out person sees. Failures count per username and address; after
SIGN_IN_FAILURE_LIMIT of them in a row that pair is refused for SIGN_IN_COOL_OFF_SECONDS,
the right password included, and each attempt meanwhile starts the wait again."""
from __future__ import annotations

import ipaddress
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.forms import AuthenticationForm
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render


def client_ip(request: HttpRequest) -> str:
    """The address sign-in failures are counted by. Behind the trusted proxy
    (DJANGO_SECURE_PROXY_SSL_HEADER) every request comes from the proxy, so it is the address
    the proxy appended last to X-Forwarded-For; what stands before it the client may have
    written itself."""
    remote = request.META.get("REMOTE_ADDR", "")
    if getattr(settings, "SECURE_PROXY_SSL_HEADER", None):
        appended = request.META.get("HTTP_X_FORWARDED_FOR", "").rsplit(",", 1)[-1].strip()
        try:
            return str(ipaddress.ip_address(appended))
        except ValueError:
            pass
    return remote


def wait_in_words(wait: timedelta) -> str:
    seconds = int(wait.total_seconds())
    if seconds % 60:
        return f"{seconds} second{'s' if seconds != 1 else ''}"
    minutes = seconds // 60
    return f"{minutes} minute{'s' if minutes != 1 else ''}"


def locked_out(request: HttpRequest, response: HttpResponse | None = None,
               credentials: dict | None = None) -> HttpResponse:
    """The sign-in page again, saying why the password was not even tried (429)."""
    username = request.POST.get("username", "") if request.method == "POST" else ""
    form = AuthenticationForm(request, initial={"username": username})
    return render(request, "registration/login.html", {
        "form": form, "next": request.POST.get("next", request.GET.get("next", "")),
        "locked_out": wait_in_words(settings.AXES_COOLOFF_TIME),
    }, status=429)
