"""Access, walked over the whole URL configuration (so a URL added later is covered the day
it lands): every URL but sign-in, /healthz, /metrics and Stigg's webhook needs a signed-in
user; every write refuses a viewer in the view itself (403), whatever the read model holds."""
from __future__ import annotations

import re
from typing import Iterator

import pytest
from django.urls import URLPattern, URLResolver, get_resolver

from .pages import signed_in

pytestmark = pytest.mark.django_db

PUBLIC = {"login", "healthz", "metrics", "stigg-webhook",
          "admin:login", "admin:logout"}  # the admin's own sign-in and sign-out pages
# What a viewer may POST, and why: these change nothing in Stigg and are their own.
VIEWER_MAY_POST = {
    "login": "signing in (already signed in: sent on)",
    "logout": "signing themselves out",
    "refresh-customer": "Refresh now: asks Stigg again for a customer's numbers, a read that changes nothing",
    "settings": "their own alert delivery (digest, notice addresses): nothing in Stigg",
}
SAMPLE = {"int": "1", "path": "acme", "str": "acme", "slug": "acme", "uuid": "00000000-0000-0000-0000-000000000000"}


def walk(patterns=None, prefix: str = "", namespace: str = "") -> Iterator[tuple[str, str]]:
    """(name, a URL it answers) for every named pattern, admin's included."""
    for p in get_resolver().url_patterns if patterns is None else patterns:
        route = str(p.pattern)
        if isinstance(p, URLResolver):
            ns = f"{namespace}{p.namespace}:" if p.namespace else namespace
            yield from walk(p.url_patterns, prefix + route, ns)
        elif isinstance(p, URLPattern):
            if route.startswith("^"):  # a regex route (admin's): only the plain ones
                if re.search(r"[()\[\]\\?*+]", route.strip("^$")):
                    continue
                route = route.strip("^$")
            url = "/" + re.sub(r"<(?:(\w+):)?\w+>", lambda m: SAMPLE[m.group(1) or "str"], prefix + route)
            yield f"{namespace}{p.name or p.lookup_str}", url


URLS = sorted(set(walk()))


def test_the_walk_finds_the_pages_and_the_writes():
    names = {name for name, _ in URLS}
    assert {"overview", "customers", "promotion-new", "budget-change", "alert-acknowledge", "approval-approve",
            "admin:index"} <= names


@pytest.mark.parametrize("name,url", [u for u in URLS if u[0] not in PUBLIC])
def test_every_url_but_the_public_ones_needs_a_signed_in_user(client, name, url):
    for method in ("get", "post"):
        response = getattr(client, method)(url)
        if response.status_code == 405:
            continue
        assert response.status_code == 302, f"{method.upper()} {url} ({name}) answered {response.status_code}"
        assert "login" in response["Location"], f"{method.upper()} {url} ({name}) sent to {response['Location']}"


@pytest.mark.parametrize("name,url", [u for u in URLS if u[0] not in PUBLIC and u[0] not in VIEWER_MAY_POST])
def test_a_viewer_posting_to_any_url_changes_nothing(name, url):
    viewer = signed_in("Viewers", "vera")
    response = viewer.post(url, {"reason": "looks harmless", "feature": "api-calls", "limit": "10"})
    if name.startswith("admin:"):  # not staff: the admin's own sign-in page
        assert response.status_code in (302, 403, 405), f"POST {url} ({name}) answered {response.status_code}"
        if response.status_code == 302:
            assert "/admin/login/" in response["Location"]
        return
    assert response.status_code in (403, 405), f"POST {url} ({name}) answered {response.status_code}"
