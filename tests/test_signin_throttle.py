"""Sign-in throttling (django-axes) and password validators, through the sign-in page:
after SIGN_IN_FAILURE_LIMIT wrong passwords for one username from one address that pair is
refused for the cool-off, the right password included, with the reason on the sign-in page;
a success resets the count."""
from __future__ import annotations

import logging
import subprocess
import sys
import time
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.test import Client
from django.urls import reverse

from .servers import ROOT

pytestmark = pytest.mark.django_db

PASSWORD = "pw-casey-right-1"
PAUSED = "Sign-in paused after too many wrong passwords for this username from your address."


@pytest.fixture
def casey():
    return get_user_model().objects.create_user("casey", password=PASSWORD)


def sign_in(client: Client, password: str, username: str = "casey"):
    return client.post(reverse("login"), {"username": username, "password": password, "next": "/"})


def signed_in(client: Client) -> bool:
    return "_auth_user_id" in client.session


def text(response) -> str:
    return " ".join(response.content.decode().split())


def test_it_refuses_the_right_password_after_fifty_wrong_ones(casey, caplog):
    client = Client()
    with caplog.at_level(logging.WARNING):
        answers = [sign_in(client, f"wrong-{n}") for n in range(50)]
    assert [a.status_code for a in answers[:4]] == [200] * 4  # the form's own "not correct"
    assert "Please enter a correct username and password" in text(answers[0])
    assert {a.status_code for a in answers[4:]} == {429}
    right = sign_in(client, PASSWORD)
    assert right.status_code == 429 and not signed_in(client)
    page = text(right)
    assert PAUSED in page and "Try again in 15 minutes: each attempt before then" in page
    assert 'name="password"' in page and 'value="casey"' in page  # the sign-in page, not a bare text
    lockouts = [r.getMessage() for r in caplog.records if "Locking out" in r.getMessage()]
    assert len(lockouts) == 47  # at the fifth failure, and again at each attempt after it
    assert '"casey"' in lockouts[0] and '"127.0.0.1"' in lockouts[0]


def test_it_counts_per_username_and_address(casey):
    for n in range(5):
        sign_in(Client(), f"wrong-{n}")
    assert sign_in(Client(), PASSWORD).status_code == 429
    elsewhere = Client(REMOTE_ADDR="10.1.2.3")
    assert sign_in(elsewhere, PASSWORD).status_code == 302 and signed_in(elsewhere)


def test_behind_the_trusted_proxy_it_counts_by_the_address_the_proxy_appended(casey, settings):
    """Every request comes from the proxy (REMOTE_ADDR); the client is the address the proxy
    appended last to X-Forwarded-For. What the client wrote before it changes nothing."""
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

    def via_proxy(client_address: str, claimed: str = "") -> Client:
        chain = f"{claimed}, {client_address}" if claimed else client_address
        return Client(REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR=chain)

    for n in range(5):
        sign_in(via_proxy("203.0.113.9", claimed=f"192.0.2.{n}"), f"wrong-{n}")
    assert sign_in(via_proxy("203.0.113.9", claimed="192.0.2.77"), PASSWORD).status_code == 429
    other = via_proxy("203.0.113.10")
    assert sign_in(other, PASSWORD).status_code == 302 and signed_in(other)


def test_a_success_resets_the_count(casey):
    client = Client()
    for _ in range(2):  # eight failures in all, never five in a row
        for n in range(4):
            assert sign_in(client, f"wrong-{n}").status_code == 200
        assert sign_in(client, PASSWORD).status_code == 302
        client.post(reverse("logout"))
    assert sign_in(client, PASSWORD).status_code == 302 and signed_in(client)


def test_the_right_password_signs_in_again_after_the_cool_off(casey, settings):
    settings.AXES_COOLOFF_TIME = timedelta(seconds=1)
    client = Client()
    for n in range(5):
        sign_in(client, f"wrong-{n}")
    locked = sign_in(client, PASSWORD)
    assert locked.status_code == 429 and "Try again in 1 second:" in text(locked)
    time.sleep(1.2)
    assert sign_in(client, PASSWORD).status_code == 302 and signed_in(client)


def test_it_throttles_the_admins_sign_in_too(casey):
    client = Client()
    for n in range(5):
        client.post("/admin/login/", {"username": "casey", "password": f"wrong-{n}"})
    assert sign_in(client, PASSWORD).status_code == 429


def test_the_limit_and_cool_off_come_from_the_environment():
    env = {"SIGN_IN_FAILURE_LIMIT": "3", "SIGN_IN_COOL_OFF_SECONDS": "120", "DJANGO_SETTINGS_MODULE": "stiggadmin.settings"}
    import os

    shown = subprocess.run([sys.executable, "-c", "import django; django.setup(); from django.conf import settings; "
                            "print(settings.AXES_FAILURE_LIMIT, settings.AXES_COOLOFF_TIME.total_seconds())"],
                           cwd=ROOT, env={**os.environ, **env}, capture_output=True, text=True, timeout=60)
    assert shown.stdout.split() == ["3", "120.0"], shown.stderr
    bad = subprocess.run([sys.executable, "-c", "import django; django.setup()"], cwd=ROOT, capture_output=True,
                         env={**os.environ, **env, "SIGN_IN_FAILURE_LIMIT": "0"}, text=True, timeout=60)
    assert bad.returncode != 0 and "SIGN_IN_FAILURE_LIMIT must be at least 1" in bad.stderr


def test_a_new_password_chosen_in_the_admin_must_pass_the_validators(casey):
    boss = get_user_model().objects.create_superuser("boss", password="pw-boss-123")
    client = Client()
    client.force_login(boss)
    form = {"username": "newcomer", "usable_password": "true", "profile-TOTAL_FORMS": "0",
            "profile-INITIAL_FORMS": "0", "profile-MIN_NUM_FORMS": "0", "profile-MAX_NUM_FORMS": "1"}
    weak = client.post("/admin/auth/user/add/", {**form, "password1": "password", "password2": "password"})
    assert weak.status_code == 200 and "This password is too common." in text(weak)
    assert "too short" in text(client.post("/admin/auth/user/add/", {**form, "password1": "x7#", "password2": "x7#"}))
    assert not get_user_model().objects.filter(username="newcomer").exists()
    strong = client.post("/admin/auth/user/add/", {**form, "password1": "quiet-harbour-lantern-42",
                                                   "password2": "quiet-harbour-lantern-42"})
    assert strong.status_code == 302, text(strong)[-3000:]
    assert get_user_model().objects.filter(username="newcomer").exists()


def test_the_demo_logins_keep_their_demo_passwords():
    """Set directly, as demo-only logins: the validators apply where a person chooses one."""
    call_command("ensure_demo_user", "demo", "demo-password", "--group", "Customer success")
    client = Client()
    assert sign_in(client, "demo-password", username="demo").status_code == 302 and signed_in(client)
