"""What the alert delivery tests share: the dashboard's public address in their links, and
people with their delivery choices."""
from __future__ import annotations

from django.contrib.auth import get_user_model

from dashboard.models import Profile, profile_of

SITE = "https://stigg-admin.example.com"


def person(username: str, owner: str = "", email: str = "", webhook_url: str = "", digest_kind: str = "off",
           active: bool = True, account_email: str = "") -> Profile:
    user = get_user_model().objects.create_user(username, email=account_email, password=f"pw-{username}-1",
                                                is_active=active)
    profile = profile_of(user)
    Profile.objects.filter(pk=profile.pk).update(account_owner=owner, notice_email=email,
                                                 notice_webhook_url=webhook_url, digest=digest_kind)
    profile.refresh_from_db()
    return profile
