"""Whose alerts are whose, for delivery: one rule, read in both directions.

A person who owns accounts (their profile's ``account_owner`` names them in the customers'
metadata) hears about the alerts of those accounts only: their book of business. A person
who owns none (a lead, an on-call rota, a team channel's webhook) hears about every
account's. The alert's owner is the one copied when it opened (Alert.account_owner).
Only active users hear anything; viewers included: delivery writes nothing to Stigg, and
they read the same alerts on /alerts/."""
from __future__ import annotations

from django.db.models import Q, QuerySet

from ..models import Alert, Profile


def alerts_of(profile: Profile) -> QuerySet[Alert]:
    """The alerts this person hears about."""
    if profile.account_owner:
        return Alert.objects.filter(account_owner=profile.account_owner)
    return Alert.objects.all()


def profiles_for(alert: Alert) -> QuerySet[Profile]:
    """The people who hear about this alert (the same rule, from the alert's side)."""
    mine = Q(account_owner="")
    if alert.account_owner:
        mine |= Q(account_owner=alert.account_owner)
    return Profile.objects.filter(mine, user__is_active=True)


def scope_words(profile: Profile) -> str:
    """Whose alerts these are, for the settings page and the foot of every message."""
    if profile.account_owner:
        return f"the accounts you own (account owner “{profile.account_owner}”)"
    return "every account (you own none)"
