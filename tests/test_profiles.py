"""Profiles: made on first use, and the account owner name set by a superuser on the
user's admin page (the "My accounts" match)."""
from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from dashboard.models import Profile, profile_of

pytestmark = pytest.mark.django_db


def test_a_profile_is_made_once_with_the_defaults():
    user = get_user_model().objects.create_user("ada", password="pw-ada-123")
    first = profile_of(user)
    assert (first.account_owner, first.digest, first.notice_email, first.last_digest_at) == ("", "off", "", None)
    assert profile_of(user).pk == first.pk and Profile.objects.count() == 1


def test_a_superuser_sets_the_account_owner_on_the_users_admin_page():
    User = get_user_model()
    csm = User.objects.create_user("grace", password="pw-grace-123")
    boss = User.objects.create_superuser("boss", password="pw-boss-123")
    c = Client()
    c.force_login(boss)
    page = c.get(f"/admin/auth/user/{csm.pk}/change/")
    assert page.status_code == 200 and 'name="profile-0-account_owner"' in page.content.decode()
    saved = c.post(f"/admin/auth/user/{csm.pk}/change/", admin_form(csm, "Grace Hopper", "daily"))
    assert saved.status_code == 302, saved.content.decode()[:2000]
    assert (profile_of(csm).account_owner, profile_of(csm).digest) == ("Grace Hopper", "daily")


def admin_form(user, owner: str, digest: str, webhook_url: str = "") -> dict[str, str]:
    """The user's admin page as submitted, with its profile inline."""
    return {"username": user.username, "date_joined_0": "2026-11-29", "date_joined_1": "12:00:00",
            "is_active": "on", "profile-TOTAL_FORMS": "1", "profile-INITIAL_FORMS": "0",
            "profile-MIN_NUM_FORMS": "0", "profile-MAX_NUM_FORMS": "1",
            "profile-0-account_owner": owner, "profile-0-digest": digest,
            "profile-0-notice_email": "", "profile-0-notice_webhook_url": webhook_url, "profile-0-user": str(user.pk)}


def test_the_admins_profile_form_refuses_the_webhooks_the_settings_page_refuses():
    User = get_user_model()
    csm = User.objects.create_user("grace", password="pw-grace-123")
    c = Client()
    c.force_login(User.objects.create_superuser("boss", password="pw-boss-123"))
    refused = c.post(f"/admin/auth/user/{csm.pk}/change/", admin_form(csm, "Grace", "off", "http://10.0.0.8/hook"))
    assert refused.status_code == 200 and "inside this network" in refused.content.decode()
    assert not Profile.objects.filter(user=csm, notice_webhook_url__startswith="http://10.").exists()
