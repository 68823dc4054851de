"""An alert in words and links, the same on /alerts/, in digests and in notices: what it
is about, its numbers, its time to limit and the page to act on it (the node on the
governance page, or the customer's metered entitlements)."""
from __future__ import annotations

from datetime import datetime
from urllib.parse import quote, urlencode

from django.conf import settings
from django.urls import reverse

from ..codec import load
from ..models import Alert
from ..rules.governance import TimeToLimit, describe_time_to_limit
from ..templatetags import ui


def what(a: Alert) -> str:
    """The alert's subject in words: the feature, or the entity and the budget's capability."""
    if a.kind == Alert.Kind.ENTITLEMENT:
        return a.feature_name or a.capability
    scoped = " (scoped)" if a.scope else ""
    return f"{a.entity_name or a.entity_id} · {ui.capability_words(a.capability)}{scoped}"


def customer(a: Alert) -> str:
    return a.customer_name or a.customer_id


def customer_path(a: Alert) -> str:
    return reverse("customer", args=[a.customer_id])


def page_path(a: Alert) -> str:
    """The page to act on it: the budget's node, or the customer's metered entitlements."""
    if a.kind == Alert.Kind.BUDGET:
        return f"{customer_path(a)}/governance?{urlencode({'node': a.entity_id}, quote_via=quote)}"
    return f"{customer_path(a)}#metered"


def absolute(path: str) -> str:
    """A link for mail and chat: the dashboard's public address (settings.DASHBOARD_URL)."""
    return settings.DASHBOARD_URL + path


def footer_links() -> dict[str, str]:
    """The links at the foot of every message: the alerts, and where to change delivery."""
    return {"alerts_url": absolute(reverse("alerts")), "settings_url": absolute(reverse("settings"))}


def time_to_limit(a: Alert, now: datetime) -> str:
    return describe_time_to_limit(load(TimeToLimit, a.ttl), now) if a.ttl else "not enough usage yet to project"


def usage_limit(a: Alert) -> str:
    return f"{ui.num(a.usage)} / {ui.num(a.usage_limit)}"


def utilization(a: Alert) -> str:
    return ui.pct(a.utilization)
