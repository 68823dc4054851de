"""What a person would receive, in words, for the settings page: whose alerts, where the
digest goes and when the next one is due (and what it would hold right now), and where
immediate notices go. Read only: nothing is claimed or sent."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.conf import settings

from ..models import Profile
from ..rules.delivery import next_digest_at
from . import audience, digest
from .webhook import where


@dataclass(frozen=True)
class Receiving:
    scope: str
    owner: str  # the person's account owner name; "" when they own no accounts
    digest: str  # off, daily, weekly
    digest_to: str  # "" when there is no address
    digest_next: datetime | None  # None: no digest
    digest_due: bool  # due now: it goes out on the next hourly run
    digest_now: int  # alerts the next digest would hold if it went out now
    digest_since: datetime | None
    notice_email: str
    notice_webhook: str  # the webhook's scheme and host only
    cooldown_hours: float
    hour: int


def receiving(profile: Profile, now: datetime) -> Receiving:
    on = profile.digest != Profile.Digest.OFF
    preview = digest.build(profile, now) if on else None
    upcoming = next_digest_at(profile.digest, profile.last_digest_at, now, settings.ALERT_DIGEST_HOUR)
    return Receiving(
        scope=audience.scope_words(profile), owner=profile.account_owner, digest=profile.digest,
        digest_to=digest.address_of(profile), digest_next=upcoming, digest_due=upcoming == now,
        digest_now=preview.total if preview else 0, digest_since=preview.since if preview else None,
        notice_email=profile.notice_email,
        notice_webhook=where(profile.notice_webhook_url) if profile.notice_webhook_url else "",
        cooldown_hours=settings.ALERT_NOTICE_COOLDOWN_HOURS, hour=settings.ALERT_DIGEST_HOUR)
