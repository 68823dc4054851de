"""Alert delivery through real parts: a real SMTP server (aiosmtpd) behind Django's SMTP
backend, and a real HTTP receiver for the Slack-style webhook; limits reached through the
emulator over HTTP, synced into the real Redis and evaluated by the task, whose notices
run (eagerly, in this process) through the delivery tasks.

Digests: alerts are rows of our own database, written with the times a digest compares
(opened, escalated), then the hourly task sends what is due."""
from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from dashboard import delivery_tasks, sync, tasks
from dashboard.alerts import digest, notices, webhook
from dashboard.models import Alert, Profile
from dashboard.stigg import StiggClient
from stiggadmin.celery import app as celery_app

from . import emulator_world as w
from .delivery_world import SITE, person
from .receivers import SmtpServer, WebhookReceiver, html_part, make_certificates, text_part
from .servers import free_port

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def smtp():
    server = SmtpServer()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def hook():
    receiver = WebhookReceiver()
    yield receiver
    receiver.stop()


@pytest.fixture
def delivery(smtp, hook, settings):
    """Mail through the SMTP server, webhooks allowed to reach it on 127.0.0.1, links to
    SITE, and the tasks run at once in this process (as a worker would run them)."""
    for name, value in smtp.settings().items():
        setattr(settings, name, value)
    settings.ALERT_WEBHOOK_ALLOW_PRIVATE = True
    settings.DASHBOARD_URL = SITE
    settings.ALERT_NOTICE_COOLDOWN_HOURS = 6
    smtp.clear()
    hook.clear()
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = False


# --- immediate notices, from a limit reached in the emulator ---------------------------------


@pytest.fixture(scope="module")
def world(emulator, app_read_model):
    e, rm = emulator, app_read_model
    calls = w.feature(e, "NUMBER", displayName="API calls")
    plan = w.plan(e, w.product(e), [{"id": calls, "usageLimit": 100, "resetPeriod": "MONTH"}])
    client = StiggClient(e.url, e.key, timeout=10)
    sync.refresh_catalog(client, rm)
    yield {"emu": e, "rm": rm, "client": client, "calls": calls, "plan": plan}
    client.close()


def owned_customer(world: dict[str, Any], name: str, owner: str) -> str:
    cid = w.customer(world["emu"], name=name, metadata={"accountOwner": owner})
    w.subscribe(world["emu"], cid, world["plan"])
    return cid


def use(world: dict[str, Any], cid: str, usage: float) -> dict:
    """Usage set in Stigg (the emulator), read back by a sync, evaluated by the task."""
    w.report_usage(world["emu"], cid, world["calls"], usage, updateBehavior="SET")
    assert sync.refresh_customer(world["client"], world["rm"], cid, discover=True)
    return tasks.evaluate_alerts(cid)


def test_a_limit_reached_notifies_once_per_cool_down_by_email_and_webhook(world, delivery, smtp, hook):
    grace = person("grace", owner="Grace", email="grace@example.com", webhook_url=hook.url)
    person("lena", email="lena@example.com", webhook_url=hook.url)  # owns nothing: every account; same channel
    person("otto", owner="Otto", email="otto@example.com")  # another's accounts: nothing
    person("gone", email="gone@example.com", active=False)
    person("quiet", owner="Grace")  # no address: nothing
    cid = owned_customer(world, "Big & <Small> Co", "Grace")
    assert use(world, cid, 85)["reached_limit"] == 0
    assert smtp.messages == [] and hook.posts == []  # a warning sends no notice
    assert use(world, cid, 100)["escalated"] == 1
    mails = {m["To"]: m for m in smtp.messages}
    assert set(mails) == {"grace@example.com", "lena@example.com"} and len(smtp.messages) == 2
    mail = mails["grace@example.com"]
    assert mail["Subject"] == "Limit reached: Big & <Small> Co · API calls"
    body = mail.get_content()
    assert "Usage:     100 / 100 (100 %)" in body and "Owner:     Grace" in body
    assert f"Act on it: {SITE}/customers/{cid}#metered" in body
    assert "the accounts you own (account owner “Grace”)" in body and "every 6 hours" in body
    assert "every account (you own none)" in mails["lena@example.com"].get_content()
    [post] = hook.posts  # one post for the channel both people entered
    assert post["path"] == "/services/T000/B000/secret-token" and post["content_type"] == "application/json"
    text = post["json"]["text"]
    assert text.startswith(":rotating_light: *Limit reached* · ")
    assert f"<{SITE}/customers/{cid}|Big &amp; &lt;Small&gt; Co> · API calls" in text
    assert "100 / 100 used (100 %)" in text and f"<{SITE}/customers/{cid}#metered|Open in Stigg admin>" in text
    alert = Alert.objects.get(customer_id=cid)
    assert alert.notified_level == "limit" and alert.last_notified_at is not None

    # within the cool-down: back under the limit and at it again, evaluated twice: silence
    use(world, cid, 90)
    assert use(world, cid, 100)["reached_limit"] == 1
    tasks.evaluate_alerts(cid)
    assert len(smtp.messages) == 2 and len(hook.posts) == 1

    # the cool-down passes: the next time it reaches the limit, it notifies again
    Alert.objects.filter(pk=alert.pk).update(last_notified_at=alert.last_notified_at - timedelta(hours=6, minutes=1))
    assert use(world, cid, 100)["reached_limit"] == 0  # still at the limit: nothing new happened
    assert len(smtp.messages) == 2
    use(world, cid, 95)
    use(world, cid, 100)
    assert len(smtp.messages) == 4 and len(hook.posts) == 2
    assert {m["To"] for m in smtp.messages[2:]} == {"grace@example.com", "lena@example.com"}
    assert grace.user.email == ""  # notices go to the notice address, not the account's


def test_an_alert_opened_at_the_limit_notifies_at_once(world, delivery, smtp, hook):
    person("ada", owner="Ada", email="ada@example.com", webhook_url=hook.url)
    cid = owned_customer(world, "Straight\r\nBcc: victim@example.com Co", "Ada")
    assert use(world, cid, 120)["opened"] == 1
    assert len(hook.posts) == 1 and "120 / 100 used (120 %)" in hook.posts[0]["json"]["text"]
    [mail] = smtp.messages  # a line break in the customer's name stays out of the headers
    assert mail["Subject"].strip() == "Limit reached: Straight Bcc: victim@example.com Co · API calls"
    assert mail["Bcc"] is None and smtp.envelopes[0][1] == ["ada@example.com"]


def test_a_failing_webhook_is_retried_and_never_fails_the_evaluation(world, delivery, hook, caplog):
    person("rita", owner="Rita", webhook_url=hook.url)
    cid = owned_customer(world, "Retry Co", "Rita")
    hook.answers = [503, 429]
    with caplog.at_level(logging.INFO):  # INFO: httpx logs the URL of every request a Client sends
        outcome = use(world, cid, 100)
    assert outcome["opened"] == 1 and "error" not in outcome
    assert [p["status"] for p in hook.posts] == [503, 429, 200]
    assert "retrying" in caplog.text and "http://127.0.0.1 answered 503" in caplog.text
    assert "secret-token" not in caplog.text  # the webhook's address is its key: never logged


def test_a_webhook_that_refuses_is_not_retried(world, delivery, hook, caplog):
    person("nora", owner="Nora", webhook_url=hook.url)
    cid = owned_customer(world, "Refused Co", "Nora")
    hook.answers = [404]
    with caplog.at_level(logging.INFO):
        use(world, cid, 100)
    assert [p["status"] for p in hook.posts] == [404]
    assert "answered 404: no_service" in caplog.text and "given up" in caplog.text
    assert "secret-token" not in caplog.text


def test_a_mail_server_that_is_down_never_fails_the_evaluation(world, delivery, settings, smtp, caplog):
    settings.EMAIL_PORT = free_port()  # nothing listens there
    settings.EMAIL_HOST_PASSWORD = "hunter2-mail-password"
    person("mona", owner="Mona", email="mona@example.com")
    cid = owned_customer(world, "Down Co", "Mona")
    with caplog.at_level(logging.WARNING):
        outcome = use(world, cid, 100)
    assert outcome["opened"] == 1 and smtp.messages == []
    assert "mail server did not take the message" in caplog.text and "given up" in caplog.text
    assert "hunter2" not in caplog.text


def test_the_sender_refuses_addresses_inside_this_network_unless_allowed(hook):
    hook.clear()
    for url in (hook.url, f"http://2130706433:{hook.port}/services/x"):  # the second is 127.0.0.1, once resolved
        with pytest.raises(webhook.DeliveryFailed) as refused:
            webhook.post(url, "hello", allow_private=False)
        assert not refused.value.transient and "inside this network" in str(refused.value)
    with pytest.raises(webhook.DeliveryFailed, match="https://"):
        webhook.post("ftp://example.com/x", "hello", allow_private=True)
    assert hook.posts == []
    webhook.post(hook.url, "hello", allow_private=True)
    assert [p["json"] for p in hook.posts] == [{"text": "hello"}]


def test_https_webhooks_go_to_the_checked_address_with_the_host_names_certificate(tmp_path):
    server_tls, client_tls = make_certificates(tmp_path)
    receiver = WebhookReceiver(tls=server_tls)
    try:
        url = f"https://localhost:{receiver.port}/services/T/B/token"
        webhook.post(url, "over TLS", allow_private=True, verify=client_tls)
        [post] = receiver.posts
        assert post["json"] == {"text": "over TLS"} and post["host"] == f"localhost:{receiver.port}"
        with pytest.raises(webhook.DeliveryFailed):  # the public trust store does not know the test CA
            webhook.post(url, "untrusted", allow_private=True)
        assert len(receiver.posts) == 1
    finally:
        receiver.stop()


def test_the_claim_takes_one_notice_per_cool_down():
    now = datetime.now(timezone.utc)
    alert = alert_row("Claim Co", "", "limit", now)
    assert notices.claim(alert.customer_id, alert.subject, now) is not None
    assert notices.claim(alert.customer_id, alert.subject, now) is None  # a second task, or a second worker
    assert notices.claim(alert.customer_id, alert.subject, now + timedelta(hours=5, minutes=59)) is None
    assert notices.claim(alert.customer_id, alert.subject, now + timedelta(hours=6)) is not None
    Alert.objects.filter(pk=alert.pk).update(level="warning")
    assert notices.claim(alert.customer_id, alert.subject, now + timedelta(hours=20)) is None  # not at the limit


# --- digests --------------------------------------------------------------------------------

T = datetime(2026, 12, 2, 10, 30, tzinfo=timezone.utc)  # a Wednesday, after the 07:00 digest hour
_made = {"n": 0}


def alert_row(customer: str, owner: str, level: str, opened_at: datetime, escalated_at: datetime | None = None,
              state: str = "open", **extra: Any) -> Alert:
    _made["n"] += 1
    n = _made["n"]
    usage = {"limit": 100.0, "runout": 50.0, "warning": 85.0}[level]
    return Alert.objects.create(
        customer_id=f"cust-{n}", customer_name=customer, account_owner=owner, kind="entitlement",
        subject=f"e|calls-{n}", capability="calls", feature_name="API calls", level=level, worst_level=level,
        utilization=usage / 100, usage=usage, usage_limit=100.0, opened_at=opened_at, escalated_at=escalated_at,
        state=state, window_end=T + timedelta(days=20), **extra)


def test_a_digest_holds_only_what_is_new_or_worse_since_the_last_one(delivery, settings, smtp):
    settings.ALERT_DIGEST_HOUR = 7
    grace = person("grace", owner="Grace", digest_kind="daily", account_email="grace@example.com")
    last = T.replace(hour=7, minute=0) - timedelta(days=1)  # yesterday's digest
    Profile.objects.filter(pk=grace.pk).update(last_digest_at=last)
    alert_row("Old Co", "Grace", "warning", last - timedelta(days=2))  # already in an earlier digest
    alert_row("Worse Co", "Grace", "limit", last - timedelta(days=2), escalated_at=T - timedelta(hours=2))
    alert_row("New Co", "Grace", "warning", T - timedelta(hours=1))
    alert_row("Runout Co", "Grace", "runout", last + timedelta(minutes=1))
    alert_row("Others Co", "Otto", "limit", T - timedelta(hours=1))  # not Grace's account
    alert_row("Closed Co", "Grace", "limit", T - timedelta(hours=3), state="closed")  # over already
    alert_row("Earlier Co", "Grace", "limit", last - timedelta(days=3), escalated_at=last - timedelta(minutes=5))
    alert_row("Future Co", "Grace", "limit", T + timedelta(minutes=1))  # after this digest: the next one's
    assert digest.send(grace.pk, T) == "sent"
    [mail] = smtp.messages
    assert mail["To"] == "grace@example.com" and smtp.envelopes[0][1] == ["grace@example.com"]
    assert mail["Subject"] == "Alert digest: 3 new or worse since 2026-12-01 07:00 UTC, 1 at the limit"
    text, html = text_part(mail), html_part(mail)
    for body in (text, html):
        assert body.index("Worse Co") < body.index("Runout Co") < body.index("New Co")  # worst first
        for absent in ("Old Co", "Others Co", "Closed Co", "Earlier Co", "Future Co"):
            assert absent not in body
    assert "LIMIT REACHED · Worse Co · API calls (worse)" in text and "WARNING · New Co · API calls (new)" in text
    assert "Usage:         100 / 100 (100 %)" in text and "Time to limit:" in text
    assert f"{SITE}/customers/cust-" in text and f'href="{SITE}/settings/"' in html
    assert "since your last digest (2026-12-01 07:00 UTC), of the accounts you own" in text
    assert Profile.objects.get(pk=grace.pk).last_digest_at == T


def test_nothing_new_sends_no_email_and_the_next_digest_starts_from_now(delivery, smtp):
    quiet = person("quiet", digest_kind="daily", account_email="quiet@example.com")
    alert_row("Long Ago Co", "", "limit", T - timedelta(days=5))
    assert digest.send(quiet.pk, T) == "nothing new"
    assert smtp.messages == [] and Profile.objects.get(pk=quiet.pk).last_digest_at == T


def test_daily_digests_go_daily_and_weekly_ones_on_mondays(delivery, settings, smtp):
    settings.ALERT_DIGEST_HOUR = 7
    monday = T.replace(hour=7, minute=0) - timedelta(days=2)
    daily = person("dan", digest_kind="daily", account_email="dan@example.com")
    weekly = person("wes", digest_kind="weekly", account_email="wes@example.com")
    Profile.objects.filter(pk__in=[daily.pk, weekly.pk]).update(last_digest_at=monday + timedelta(minutes=5))
    alert_row("Tuesday Co", "", "warning", monday + timedelta(days=1))
    assert digest.due(T) == [daily.pk]
    assert [digest.send(p.pk, T) for p in (daily, weekly)] == ["sent", "not due"]
    assert [m["To"] for m in smtp.messages] == ["dan@example.com"]
    next_monday = monday + timedelta(weeks=1, minutes=10)
    assert sorted(digest.due(next_monday)) == sorted([daily.pk, weekly.pk])
    assert digest.send(weekly.pk, next_monday) == "sent"
    assert "Tuesday Co" in text_part(smtp.messages[-1]) and "weekly" in text_part(smtp.messages[-1])
    assert digest.due(next_monday + timedelta(hours=1)) == [daily.pk]  # the daily one was not sent yet


def test_a_digest_is_sent_once_however_often_the_task_runs(delivery, settings, smtp):
    settings.ALERT_DIGEST_HOUR = 0
    twice = person("tess", digest_kind="daily", account_email="tess@example.com")
    alert_row("Twice Co", "", "limit", datetime.now(timezone.utc) - timedelta(minutes=5))
    assert delivery_tasks.send_due_digests()["queued"] == 1
    assert delivery_tasks.send_due_digests()["queued"] == 0
    assert delivery_tasks.send_digest(twice.pk) == "not due"
    assert len(smtp.messages) == 1
    # two beat instances that read the profile at the same moment: one claim wins
    stale = Profile.objects.get(pk=twice.pk)
    later = datetime.now(timezone.utc) + timedelta(days=1)
    assert digest.claim(stale, later) and not digest.claim(stale, later + timedelta(seconds=1))


def test_a_digest_the_mail_server_did_not_take_is_tried_again(delivery, settings, smtp, caplog):
    good_port = settings.EMAIL_PORT
    settings.EMAIL_PORT = free_port()
    again = person("abe", digest_kind="weekly", account_email="abe@example.com")
    alert_row("Again Co", "", "runout", T - timedelta(hours=3))
    with caplog.at_level(logging.WARNING):
        assert digest.send(again.pk, T) == "failed"
    assert Profile.objects.get(pk=again.pk).last_digest_at is None and "tries again" in caplog.text
    settings.EMAIL_PORT = good_port
    assert digest.send(again.pk, T + timedelta(hours=1)) == "sent"
    assert "Again Co" in text_part(smtp.messages[0])


def test_a_digest_goes_to_the_notice_address_when_the_account_has_none(delivery, smtp):
    fallback = person("finn", digest_kind="daily", email="finn-alerts@example.com")
    alert_row("Fallback Co", "", "warning", T - timedelta(hours=3))
    assert digest.send(fallback.pk, T) == "sent" and smtp.messages[0]["To"] == "finn-alerts@example.com"
    nobody = person("nell", digest_kind="daily")
    assert digest.send(nobody.pk, T) == "no address" and len(smtp.messages) == 1


def test_a_long_digest_shows_the_first_hundred_and_counts_the_rest(delivery, smtp):
    lead = person("leo", digest_kind="daily", account_email="leo@example.com")
    for i in range(digest.MAX_ROWS + 3):
        alert_row(f"Fleet {i:03d} Co", "", "warning", T - timedelta(minutes=10 + i))
    assert digest.send(lead.pk, T) == "sent"
    text = text_part(smtp.messages[0])
    assert "Alert digest: 103 new or worse" in smtp.messages[0]["Subject"]
    assert "Fleet 099 Co" in text and "Fleet 100 Co" not in text  # newest first
    assert f"… and 3 more: {SITE}/alerts/" in text and "… and 3 more on" in html_part(smtp.messages[0])
