"""Helpers for tests that read pages through Django's test client."""
from __future__ import annotations

import re
from html import unescape
from typing import Any

from django.test import Client


def htmx(target: str) -> dict[str, str]:
    return {"HTTP_HX_REQUEST": "true", "HTTP_HX_TARGET": target}


def text_of(response) -> str:
    """The page's visible text, tags removed, whitespace collapsed."""
    html = response.content.decode()
    html = re.sub(r"<script\b.*?</script>", " ", html, flags=re.S)
    return re.sub(r"\s+", " ", unescape(re.sub(r"<[^>]+>", " ", html))).strip()


def user_in(group: str | None, username: str) -> Any:
    """A new user (password ``pw-<username>-1``), in ``group`` when given (a migration's role)."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group

    user = get_user_model().objects.create_user(username, password=f"pw-{username}-1")
    if group:
        user.groups.add(Group.objects.get(name=group))
    return user


def signed_in(group: str | None, username: str) -> Client:
    """Django's test client, signed in as a new user of ``group``."""
    client = Client()
    client.force_login(user_in(group, username))
    return client
