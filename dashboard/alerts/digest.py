"""Email digests: once a day or once a week (each person's choice on /settings/), what is
new or worse among the alerts they hear about (audience.py) since their last digest.

New or worse: opened, or escalated (Alert.escalated_at), after the last digest and up to
this one; still open when it is made (one that opened and closed in between needs nothing
from anyone). Nothing new: no email. When a digest is due is a pure rule
(rules/delivery.py); the beat sweep (dashboard/delivery_tasks.py) runs hourly.

Sent once: a digest is *claimed* by one conditional update of ``last_digest_at`` (from the
value it was read with to now), so a task run twice or two beat instances send one. That
moment is also where the next digest starts, so no alert falls between two digests. If the
mail server does not take it, the claim is put back and the next hourly run tries again.
An alert whose evaluation was still being written at the very moment of a digest can miss
it (its opened_at is a few milliseconds before the claim but committed after): one in a
great many, and it is still on /alerts/.

Mail goes to the person's account address (the user's email, set by an administrator), or
to their notice address when the account has none."""
from __future__ import annotations

import logging
import smtplib
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db.models import Case, IntegerField, Q, QuerySet, Value, When
from django.template.loader import render_to_string

from ..models import Alert, Profile
from ..rules.delivery import digest_due, digest_since
from ..templatetags import ui
from . import audience, present

log = logging.getLogger(__name__)

MAX_ROWS = 100  # a fleet-wide digest of a quiet week can hold thousands: the rest are on /alerts/
WORST_FIRST = Case(When(level=Alert.Level.LIMIT, then=Value(0)), When(level=Alert.Level.RUNOUT, then=Value(1)),
                   default=Value(2), output_field=IntegerField())
PERIOD_WORDS = {"daily": ("daily", "the last day"), "weekly": ("weekly", "the last week")}


def address_of(profile: Profile) -> str:
    return profile.user.email or profile.notice_email


def due(now: datetime) -> list[int]:
    """The profiles whose digest is due now (a team's worth of rows: read and checked here)."""
    people = Profile.objects.filter(user__is_active=True).exclude(digest=Profile.Digest.OFF)
    return [p.pk for p in people.only("pk", "digest", "last_digest_at")
            if digest_due(p.digest, p.last_digest_at, now, settings.ALERT_DIGEST_HOUR)]


def new_or_worse(profile: Profile, since: datetime, until: datetime) -> QuerySet[Alert]:
    """What a digest covering (since, until] holds, worst level first, then newest."""
    window = Q(opened_at__gt=since, opened_at__lte=until) | Q(escalated_at__gt=since, escalated_at__lte=until)
    return (audience.alerts_of(profile).filter(window, state=Alert.State.OPEN)
            .select_related("acknowledged_by").order_by(WORST_FIRST, "-opened_at", "-id"))


@dataclass
class Digest:
    profile: Profile
    since: datetime
    until: datetime
    alerts: list[Alert]
    total: int

    def rows(self) -> list[dict[str, object]]:
        return [{"a": a, "customer": present.customer(a), "what": present.what(a),
                 "usage_limit": present.usage_limit(a), "utilization": present.utilization(a),
                 "time_to_limit": present.time_to_limit(a, self.until),
                 "link": present.absolute(present.page_path(a)),
                 "change": "new" if a.opened_at > self.since else "worse", "snoozed": a.snoozed(self.until)}
                for a in self.alerts]

    def subject(self) -> str:
        limits = sum(a.level == Alert.Level.LIMIT for a in self.alerts)
        reached = f", {limits} at the limit" if limits else ""
        return (f"Alert digest: {self.total} new or worse since {ui.when(self.since)}{reached}")

    def message(self, to: str) -> EmailMultiAlternatives:
        kind, span = PERIOD_WORDS.get(self.profile.digest, ("", "the last day"))
        context = {"rows": self.rows(), "total": self.total, "more": self.total - len(self.alerts),
                   "since": self.since, "until": self.until, "kind": kind, "first": self.profile.last_digest_at is None,
                   "span": span, "scope": audience.scope_words(self.profile), "subject": self.subject(),
                   **present.footer_links()}
        mail = EmailMultiAlternatives(subject=self.subject(), to=[to],
                                      body=render_to_string("dashboard/email/digest.txt", context))
        mail.attach_alternative(render_to_string("dashboard/email/digest.html", context), "text/html")
        return mail


def build(profile: Profile, now: datetime) -> Digest:
    """The digest this person would get now (nothing is claimed or sent)."""
    since = digest_since(profile.digest, profile.last_digest_at, now)
    found = new_or_worse(profile, since, now)
    shown = list(found[:MAX_ROWS])
    return Digest(profile, since, now, shown, len(shown) if len(shown) < MAX_ROWS else found.count())


def claim(profile: Profile, now: datetime) -> bool:
    """Take this digest: ``last_digest_at`` moves from the value read to now, once."""
    return bool(Profile.objects.filter(pk=profile.pk, digest=profile.digest, last_digest_at=profile.last_digest_at)
                .update(last_digest_at=now))


def _release(profile: Profile, now: datetime) -> None:
    Profile.objects.filter(pk=profile.pk, last_digest_at=now).update(last_digest_at=profile.last_digest_at)


def send(profile_id: int, now: datetime) -> str:
    """Send this person's digest if it is due and nobody else has; what happened, in a word."""
    profile = Profile.objects.select_related("user").filter(pk=profile_id, user__is_active=True).first()
    if profile is None or not digest_due(profile.digest, profile.last_digest_at, now, settings.ALERT_DIGEST_HOUR):
        return "not due"
    to = address_of(profile)
    if not to:
        log.info("No digest for user %s: neither the account nor the profile has an email address", profile.user_id)
        return "no address"
    digest = build(profile, now)  # read before the claim moves last_digest_at
    if not claim(profile, now):
        return "taken"
    if not digest.total:
        return "nothing new"
    try:
        digest.message(to).send()
    except (smtplib.SMTPException, OSError) as exc:
        _release(profile, now)
        log.warning("Digest of user %s not sent, the next hourly run tries again: %s: %s", profile.user_id,
                    type(exc).__name__, exc)
        return "failed"
    except BaseException:
        _release(profile, now)
        raise
    return "sent"
