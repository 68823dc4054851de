"""What people do with an open alert on /alerts/: acknowledge it (it leaves the open list
until it gets worse) or snooze it for a day, a week or until its window resets (it comes
back by itself when the time passes). Both only ever touch an alert that is still open;
neither changes what opens or closes it (rules/alerts.py)."""
from __future__ import annotations

from datetime import datetime, timedelta

from django.contrib.auth.models import AbstractBaseUser

from ..models import Alert

SNOOZES: dict[str, str] = {"1d": "1 day", "1w": "1 week", "reset": "until reset"}
SNOOZE_LENGTHS = {"1d": timedelta(days=1), "1w": timedelta(weeks=1)}


class TriageError(Exception):
    """Something a person asked for that cannot be done, in words."""


def snooze_until(alert: Alert, choice: str, now: datetime) -> datetime:
    """When a snooze of ``choice`` ("1d", "1w", "reset") ends."""
    if choice == "reset":
        if alert.window_end is None:
            raise TriageError("This one never resets: snooze it for a day or a week instead.")
        return alert.window_end
    if choice not in SNOOZE_LENGTHS:
        raise TriageError("Snooze for 1 day, 1 week or until reset.")
    return now + SNOOZE_LENGTHS[choice]


def _still_open(alert: Alert) -> None:
    if alert.state != Alert.State.OPEN:
        raise TriageError("This alert is already closed: nothing to do.")


def acknowledge(alert: Alert, user: AbstractBaseUser, now: datetime) -> None:
    _still_open(alert)
    if not Alert.objects.filter(pk=alert.pk, state=Alert.State.OPEN).update(acknowledged_by=user, acknowledged_at=now):
        raise TriageError("This alert closed meanwhile: nothing to do.")


def snooze(alert: Alert, choice: str, user: AbstractBaseUser, now: datetime) -> datetime:
    _still_open(alert)
    until = snooze_until(alert, choice, now)
    if not Alert.objects.filter(pk=alert.pk, state=Alert.State.OPEN).update(snoozed_by=user, snoozed_until=until):
        raise TriageError("This alert closed meanwhile: nothing to do.")
    return until
