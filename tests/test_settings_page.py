"""Each person's settings page (`/settings/`): their own alert delivery, checked, saved and
shown with what they would receive; `/settings/digest`, the next digest as it would go out."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse

from dashboard.models import Alert, Profile, profile_of

from .pages import signed_in, text_of

pytestmark = pytest.mark.django_db
SLACK = "https://hooks.slack.com/services/T0001/B0001/very-secret-token"


def post(client: Client, **values: str):
    form = {"digest": "off", "notice_email": "", "notice_webhook_url": "", **values}
    return client.post(reverse("settings"), form)


def me(client: Client) -> Profile:
    return profile_of(get_user_model().objects.get(pk=client.session["_auth_user_id"]))


def test_it_shows_the_form_linked_from_the_navigation():
    cs = signed_in("Customer success", "cassie")
    page = cs.get(reverse("settings"))
    html, text = page.content.decode(), text_of(page)
    assert page.status_code == 200
    for name in ("digest", "notice_email", "notice_webhook_url"):
        assert f'name="{name}"' in html
    assert 'href="/settings/" title="Your settings: how alerts reach you" aria-current="page">cassie</a>' in html
    assert "Alerts of every account (you own none)" in text and "No digest." in text
    assert 'href="/settings/"' in cs.get(reverse("alerts")).content.decode()


def test_it_saves_valid_choices_and_says_what_they_will_receive():
    cs = signed_in("Customer success", "cassie")
    Profile.objects.filter(pk=me(cs).pk).update(account_owner="Cassie")
    saved = post(cs, digest="weekly", notice_email="cassie@example.com", notice_webhook_url=SLACK)
    assert saved.status_code == 302 and saved.url == reverse("settings")
    profile = me(cs)
    assert (profile.digest, profile.notice_email, profile.notice_webhook_url) == ("weekly", "cassie@example.com",
                                                                                  SLACK)
    page = cs.get(reverse("settings"))
    text = text_of(page)
    assert "Saved: alerts reach you as shown below." in text
    assert "Alerts of the accounts you own (account owner “Cassie”)" in text
    assert "Once a week, to cassie@example.com" in text and "Next: within the hour" in text
    assert "an email to cassie@example.com" in text
    assert "a message to the webhook at https://hooks.slack.com" in text
    assert "At most one notice per alert every 6 hours" in text
    # the webhook's address is its key: the form holds it for its owner; the summary names only the host
    assert page.content.decode().count("very-secret-token") == 1


def test_a_webhook_without_a_scheme_is_taken_as_https():
    cs = signed_in("Customer success", "cassie")
    assert post(cs, notice_webhook_url="hooks.slack.com/services/T/B/x").status_code == 302
    assert me(cs).notice_webhook_url == "https://hooks.slack.com/services/T/B/x"


@pytest.mark.parametrize("values, field, words", [
    ({"notice_email": "not-an-email"}, "notice_email", "Enter a valid email address."),
    ({"notice_webhook_url": "ftp://hooks.example.com/x"}, "notice_webhook_url", "Use an https://"),
    ({"notice_webhook_url": "https://me:pw@hooks.slack.com/services/x"}, "notice_webhook_url",
     "Leave the user name and password out"),
    ({"notice_webhook_url": "http://127.0.0.1:6379/"}, "notice_webhook_url", "inside this network"),
    ({"notice_webhook_url": "http://169.254.169.254/latest/"}, "notice_webhook_url", "inside this network"),
    ({"notice_webhook_url": "http://localhost:8000/x"}, "notice_webhook_url", "this machine"),
    ({"notice_webhook_url": "https://" + "a" * 600 + ".com/"}, "notice_webhook_url", "at most 500 characters"),
    ({"digest": "hourly"}, "digest", "Select a valid choice."),
    ({"digest": "daily"}, "digest", "A digest needs an email address"),
])
def test_it_refuses_bad_input_with_a_message_and_keeps_what_was_saved(values, field, words):
    cs = signed_in("Customer success", "cassie")
    refused = post(cs, **values)
    assert refused.status_code == 400
    html = refused.content.decode()
    assert words in text_of(refused)
    assert f'name="{field}"' in html and 'class="errorlist' in html
    profile = me(cs)
    assert (profile.digest, profile.notice_email, profile.notice_webhook_url) == ("off", "", "")
    assert "No digest." in text_of(refused)  # the summary shows what is saved, not what was refused


def test_a_digest_goes_to_the_account_address_or_the_notice_address():
    cs = signed_in("Customer success", "cassie")
    assert post(cs, digest="daily", notice_email="alerts@example.com").status_code == 302
    assert "Once a day, to alerts@example.com" in text_of(cs.get(reverse("settings")))
    get_user_model().objects.filter(username="cassie").update(email="cassie@corp.example.com")
    assert "Once a day, to cassie@corp.example.com" in text_of(cs.get(reverse("settings")))
    assert post(cs, digest="daily").status_code == 302  # the account's address is enough


def test_viewers_set_their_own_delivery_too():
    viewer = signed_in("Viewers", "vera")
    assert post(viewer, notice_email="vera@example.com").status_code == 302
    assert me(viewer).notice_email == "vera@example.com"


def test_signed_out_people_are_sent_to_sign_in_and_other_methods_refused():
    page = Client().get(reverse("settings"))
    assert page.status_code == 302 and page.url.startswith(reverse("login"))
    assert Client().post(reverse("settings"), {"digest": "daily"}).status_code == 302
    cs = signed_in("Customer success", "cassie")
    assert cs.put(reverse("settings")).status_code == 405


def test_turning_the_digest_on_starts_it_afresh():
    cs = signed_in("Customer success", "cassie")
    long_ago = datetime.now(timezone.utc) - timedelta(days=40)
    Profile.objects.filter(pk=me(cs).pk).update(last_digest_at=long_ago)
    post(cs, digest="daily", notice_email="c@example.com")
    assert me(cs).last_digest_at is None  # the first digest covers the last day, not the 40 days it was off
    Profile.objects.filter(user__username="cassie").update(last_digest_at=long_ago)
    post(cs, digest="weekly", notice_email="c@example.com")
    assert me(cs).last_digest_at == long_ago  # daily to weekly: it goes on from the last one


def test_the_preview_is_the_digests_html_or_says_there_is_nothing():
    cs = signed_in("Customer success", "cassie")
    empty = cs.get(reverse("settings-digest"))
    assert empty.status_code == 200 and "Nothing is new or worse since" in text_of(empty)
    Alert.objects.create(customer_id="c1", customer_name="Preview <Co>", kind="entitlement", subject="e|calls",
                         capability="calls", feature_name="API calls", level="limit", worst_level="limit",
                         usage=120, usage_limit=100, utilization=1.2,
                         opened_at=datetime.now(timezone.utc) - timedelta(hours=1))
    page = cs.get(reverse("settings-digest"))
    html = page.content.decode()
    assert page.status_code == 200 and html.startswith("<!doctype html>")
    assert "Preview &lt;Co&gt;" in html and "120 / 100" in html and "daily alert digest" in html
    assert me(cs).last_digest_at is None  # a preview claims nothing



def test_the_preview_lets_the_emails_inline_styles_through_but_runs_no_script():
    """The digest is an email, styled inline; its preview page trades scripts for that."""
    c = signed_in("Customer success", "ada")
    policy = c.get(reverse("settings-digest"))["Content-Security-Policy"]
    assert "script-src 'none'" in policy and "sandbox" in policy and "style-src-attr 'unsafe-inline'" in policy
    page_policy = c.get(reverse("settings"))["Content-Security-Policy"]
    assert "script-src 'self'" in page_policy and "unsafe-inline" not in page_policy
