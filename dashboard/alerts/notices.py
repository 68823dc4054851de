"""Immediate notices: an alert that reached its limit tells the people it concerns
(audience.py) at once, by email and/or a Slack-compatible webhook, each as they chose on
/settings/.

When: the evaluation names the alerts it put at "limit" (opened there, escalated to it, or
back at it from a milder level: Outcome.limits). Each is *claimed* by one conditional
update of ``last_notified_at`` — only an alert still open, at its limit, and not notified
within the cool-down (settings.ALERT_NOTICE_COOLDOWN_HOURS) — so an evaluation run twice,
two workers at once, or usage bouncing on the limit send one notice per cool-down. A limit
reached again within the cool-down sends nothing, and is not sent later either: the people
were told a moment ago. A new alert (the old one closed: usage fell below the clear level,
or its window reset) is news and notifies at once.

Then one delivery per distinct address (two people sharing a team channel's webhook get one
post), each its own task so a failing address is retried alone (tasks in
dashboard/delivery_tasks.py). Deliveries are at least once: a worker lost after sending
and before finishing may send one twice. Nothing here asks Stigg."""
from __future__ import annotations

import logging
import smtplib
from datetime import datetime, timedelta

from django.conf import settings
from django.core.mail import EmailMessage
from django.db.models import Q
from django.template.loader import render_to_string

from ..models import Alert, Profile
from ..rules.delivery import notice_cutoff
from ..templatetags import ui
from . import audience, present, webhook
from .webhook import DeliveryFailed

log = logging.getLogger(__name__)

LIMIT = Alert.Level.LIMIT
EMAIL, WEBHOOK = "email", "webhook"


def cooldown() -> timedelta:
    return timedelta(hours=settings.ALERT_NOTICE_COOLDOWN_HOURS)


def claim(customer_id: str, subject: str, now: datetime) -> Alert | None:
    """The subject's open alert, if it is at its limit and this call took its notice for
    the cool-down; None when there is nothing to send (see the module's docstring)."""
    due = Q(state=Alert.State.OPEN, level=LIMIT) & (
        Q(last_notified_at__isnull=True) | Q(last_notified_at__lte=notice_cutoff(now, cooldown())))
    alert = Alert.objects.filter(due, customer_id=customer_id, subject=subject).first()
    if alert is None or not Alert.objects.filter(due, pk=alert.pk).update(last_notified_at=now, notified_level=LIMIT):
        return None
    return alert


def targets(alert: Alert) -> list[tuple[int, str]]:
    """(profile id, channel) for each distinct address the alert's notice goes to."""
    seen: set[tuple[str, str]] = set()
    found = []
    people = audience.profiles_for(alert).exclude(notice_email="", notice_webhook_url="").order_by("pk")
    for profile in people:
        for channel, address in ((EMAIL, profile.notice_email.strip().lower()),
                                 (WEBHOOK, profile.notice_webhook_url.strip())):
            if address and (channel, address) not in seen:
                seen.add((channel, address))
                found.append((profile.pk, channel))
    return found


def _slack(text: str) -> str:
    """Slack's escaping for text in a message: only these three."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _resets(alert: Alert) -> str:
    return f"resets {ui.until(alert.window_end)} ({ui.when(alert.window_end)})" if alert.window_end else "never resets"


def chat_text(alert: Alert) -> str:
    """The webhook message (Slack mrkdwn: bold, and links as <url|words>)."""
    link = _slack(present.absolute(present.page_path(alert)))
    customer = _slack(present.absolute(present.customer_path(alert)))
    return (f":rotating_light: *Limit reached* · <{customer}|{_slack(present.customer(alert))}> · "
            f"{_slack(present.what(alert))}\n"
            f"{present.usage_limit(alert)} used ({present.utilization(alert)}) · {_resets(alert)} · "
            f"<{link}|Open in Stigg admin>")


def email(alert: Alert, profile: Profile, to: str) -> EmailMessage:
    context = {"a": alert, "customer": present.customer(alert), "what": present.what(alert),
               "usage_limit": present.usage_limit(alert), "utilization": present.utilization(alert),
               "resets": _resets(alert), "link": present.absolute(present.page_path(alert)),
               **present.footer_links(), "scope": audience.scope_words(profile),
               "cooldown": f"{settings.ALERT_NOTICE_COOLDOWN_HOURS:g}"}
    # One line whatever the names hold: a line break in a header is refused by Django (and
    # would be header injection).
    subject = " ".join(f"Limit reached: {present.customer(alert)} · {present.what(alert)}".split())
    return EmailMessage(subject=subject, body=render_to_string("dashboard/email/notice.txt", context), to=[to])


def deliver(alert_id: int, profile_id: int, channel: str) -> str:
    """Send one claimed notice to one person's address; raises DeliveryFailed when it did
    not go out. Reads the address now: one changed or removed since is honoured."""
    alert = Alert.objects.filter(pk=alert_id).first()
    profile = Profile.objects.filter(pk=profile_id, user__is_active=True).first()
    if alert is None or profile is None:
        return "gone"
    if channel == WEBHOOK:
        if not profile.notice_webhook_url:
            return "no address"
        webhook.post(profile.notice_webhook_url, chat_text(alert), allow_private=settings.ALERT_WEBHOOK_ALLOW_PRIVATE)
        return "sent"
    if not profile.notice_email:
        return "no address"
    try:
        email(alert, profile, profile.notice_email).send()
    except (smtplib.SMTPRecipientsRefused, smtplib.SMTPSenderRefused) as exc:
        raise DeliveryFailed(f"the mail server refused the message ({type(exc).__name__})", transient=False) from None
    except (smtplib.SMTPException, OSError) as exc:
        raise DeliveryFailed(f"the mail server did not take the message ({type(exc).__name__}: {exc})",
                             transient=True) from None
    return "sent"
