"""Alert delivery's Celery tasks: the hourly digest sweep, and the immediate notices an
evaluation queues. Apart from tasks.py (which queues notices after each evaluation and
imports this module; this one imports nothing of it). None of them asks Stigg.

A failing mail server or webhook never fails an evaluation: the evaluation only queues.
A digest that did not go out is retried by the next hourly run (digest.py); a notice
that did not go out is retried here with backoff when the failure may pass (no answer, a
5xx, 429), and dropped with a warning when the address itself is wrong."""
from __future__ import annotations

import logging
import random
from datetime import datetime, timezone

from celery import shared_task
from kombu.exceptions import OperationalError as BrokerUnavailable

from .alerts import digest, notices
from .alerts.webhook import DeliveryFailed

log = logging.getLogger(__name__)

NOTICE_RETRIES = 5
NOTICE_FIRST_RETRY_SECONDS = 30.0
NOTICE_MAX_RETRY_SECONDS = 900.0


def _now() -> datetime:
    return datetime.now(timezone.utc)


@shared_task(ignore_result=True)
def send_due_digests() -> dict:
    """Beat, hourly: queue a digest for each person whose digest is due."""
    due = digest.due(_now())
    queued = 0
    try:
        for profile_id in due:
            send_digest.delay(profile_id)
            queued += 1
    except (BrokerUnavailable, OSError) as exc:  # still due: the next hourly run queues them
        log.warning("%d of %d due digests not queued, the broker is unreachable: %s", len(due) - queued, len(due), exc)
    return {"queued": queued}


@shared_task(ignore_result=True)
def send_digest(profile_id: int) -> str:
    return digest.send(profile_id, _now())


def queue_limit_notices(subjects: list[tuple[str, str]]) -> None:
    """After an evaluation: notices for the alerts it put at their limit. Never fails the
    evaluation; an unreachable broker loses these notices (logged)."""
    if not subjects:
        return
    try:
        send_limit_notices.delay([list(s) for s in subjects])
    except (BrokerUnavailable, OSError) as exc:
        log.warning("Notices of %d alerts at their limit not queued: %s", len(subjects), exc)


@shared_task(ignore_result=True)
def send_limit_notices(subjects: list[list[str]]) -> int:
    """Claim each alert's notice for its cool-down, then queue one delivery per address.
    The broker gone meanwhile: the rest are not claimed, and the claimed one's notices are
    lost, in a line (as queue_limit_notices says)."""
    queued = 0
    for customer_id, subject in subjects:
        alert = notices.claim(customer_id, subject, _now())
        if alert is None:
            continue
        try:
            for profile_id, channel in notices.targets(alert):
                deliver_limit_notice.delay(alert.pk, profile_id, channel)
                queued += 1
        except (BrokerUnavailable, OSError) as exc:
            log.warning("Notices of alert %s not queued, the broker is unreachable: %s", alert.pk, exc)
            return queued
    return queued


def retry_in(retries: int) -> float:
    base = min(NOTICE_MAX_RETRY_SECONDS, NOTICE_FIRST_RETRY_SECONDS * 4 ** retries)
    return base * (0.75 + random.random() * 0.5)


@shared_task(bind=True, ignore_result=True, max_retries=NOTICE_RETRIES)
def deliver_limit_notice(self, alert_id: int, profile_id: int, channel: str) -> str:
    """One claimed notice to one address. Logs name the user and the channel, never the
    address (a webhook's address is its key)."""
    try:
        return notices.deliver(alert_id, profile_id, channel)
    except DeliveryFailed as exc:
        if exc.transient and self.request.retries < NOTICE_RETRIES:
            countdown = retry_in(self.request.retries)
            log.warning("Notice of alert %s by %s (profile %s) not delivered, retrying in %.0f s: %s",
                        alert_id, channel, profile_id, countdown, exc)
            raise self.retry(exc=exc, countdown=countdown)
        log.warning("Notice of alert %s by %s (profile %s) not delivered, given up: %s", alert_id, channel,
                    profile_id, exc)
        return "failed"
