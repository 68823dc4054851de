"""Alert delivery: when a person's digest is due and what it covers, and which webhook
addresses a notice may be sent to. Pure: no I/O, ``now`` is passed in.

Digests go out at a fixed hour (settings.ALERT_DIGEST_HOUR, UTC): daily ones every day,
weekly ones on Mondays. A digest's *slot* is the latest such moment; it is due when none
went out since its slot, so an hourly sweep that runs late, or twice, sends one digest a
slot and the time never drifts. It holds what is new or worse since the last one (or, for
the first, over the last period).

Webhook addresses (the "Slack-compatible incoming webhook" a person enters): http or https
only, no user name or password in the address (it would sit in the database and the
logs), and — unless settings.ALERT_WEBHOOK_ALLOW_PRIVATE — never an address inside this
network (loopback, private, link-local, shared, reserved, multicast), so the field cannot
be used to make the worker post to the machines beside it. The form checks what the
address says (a literal IP, "localhost"); the sender checks every address the host name
resolves to, and connects to the one it checked.
"""
from __future__ import annotations

import ipaddress
from datetime import datetime, timedelta, timezone
from urllib.parse import urlsplit

PERIODS: dict[str, timedelta] = {"daily": timedelta(days=1), "weekly": timedelta(weeks=1)}
WEEKLY_ON = 0  # Monday
LOCAL_NAMES = ("localhost", "localhost.localdomain")


def digest_slot(digest: str, now: datetime, hour: int) -> datetime | None:
    """The latest moment at or before ``now`` a digest of this kind was scheduled for;
    None when the person has no digest."""
    if digest not in PERIODS:
        return None
    now = now.astimezone(timezone.utc)
    slot = now.replace(hour=hour, minute=0, second=0, microsecond=0)
    if slot > now:
        slot -= timedelta(days=1)
    if digest == "weekly":
        slot -= timedelta(days=(slot.weekday() - WEEKLY_ON) % 7)
    return slot


def digest_due(digest: str, last_digest_at: datetime | None, now: datetime, hour: int) -> bool:
    slot = digest_slot(digest, now, hour)
    return slot is not None and (last_digest_at is None or last_digest_at < slot)


def next_digest_at(digest: str, last_digest_at: datetime | None, now: datetime, hour: int) -> datetime | None:
    """When the next digest is due (``now`` when it already is); None: no digest."""
    slot = digest_slot(digest, now, hour)
    if slot is None:
        return None
    if last_digest_at is None or last_digest_at < slot:
        return now
    return slot + PERIODS[digest]


def digest_since(digest: str, last_digest_at: datetime | None, now: datetime) -> datetime:
    """The start of what a digest covers: the last digest, or one period back for the first."""
    return last_digest_at if last_digest_at is not None else now - PERIODS.get(digest, PERIODS["daily"])


def notice_cutoff(now: datetime, cooldown: timedelta) -> datetime:
    """An alert last notified at or before this is past its cool-down: it may notify again."""
    return now - cooldown


def address_problem(address: str) -> str | None:
    """Why a notice may not be sent to this IP address, or None."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])  # an IPv6 zone ("fe80::1%eth0") is local anyway
    except ValueError:
        return "That is not an address."
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if not ip.is_global or ip.is_multicast:
        return (f"{address} is inside this network (loopback, private, link-local or reserved): "
                "notices go to webhooks on the internet.")
    return None


def webhook_url_problem(url: str, allow_private: bool = False) -> str | None:
    """Why this webhook address cannot be used, in words, or None (see the module's docstring)."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises on a port that is not a number
    except ValueError:
        return "That is not a web address."
    if parts.scheme not in ("http", "https"):
        return "Use an https:// (or http://) address."
    if parts.username is not None or parts.password is not None:
        return "Leave the user name and password out of the address: the webhook's address itself is its key."
    host = (parts.hostname or "").rstrip(".")
    if not host:
        return "The address needs a host name, as in https://hooks.slack.com/services/…"
    if allow_private:
        return None
    if host in LOCAL_NAMES or host.endswith(".localhost"):
        return "That address is this machine: notices go to webhooks on the internet."
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return None  # a name: its addresses are checked when a notice is sent
    return address_problem(host)
