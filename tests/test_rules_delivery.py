"""Alert delivery's rules (dashboard/rules/delivery.py), pure: when a digest is due and
what it covers, and which webhook addresses a notice may go to."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from dashboard.rules.delivery import (
    address_problem, digest_due, digest_since, digest_slot, next_digest_at, notice_cutoff, webhook_url_problem,
)

HOUR = 7
WED = datetime(2026, 12, 2, 10, 30, tzinfo=timezone.utc)  # a Wednesday, after the digest hour
MON_7 = datetime(2026, 11, 30, 7, tzinfo=timezone.utc)


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 12, day, hour, minute, tzinfo=timezone.utc)


def test_it_puts_the_daily_slot_at_todays_hour_once_it_has_passed():
    assert digest_slot("daily", WED, HOUR) == at(2, 7)
    assert digest_slot("daily", at(2, 6, 59), HOUR) == at(1, 7)
    assert digest_slot("off", WED, HOUR) is None


def test_it_puts_the_weekly_slot_on_the_last_monday():
    assert digest_slot("weekly", WED, HOUR) == MON_7
    assert digest_slot("weekly", MON_7, HOUR) == MON_7
    assert digest_slot("weekly", MON_7 - timedelta(minutes=1), HOUR) == MON_7 - timedelta(weeks=1)


def test_a_daily_digest_is_due_once_a_day_and_never_drifts():
    assert digest_due("daily", None, WED, HOUR)
    assert not digest_due("daily", at(2, 7, 20), WED, HOUR)  # sent this morning
    assert digest_due("daily", at(1, 7, 20), WED, HOUR)  # yesterday's
    # sent late yesterday (the sweep runs hourly): due again at today's hour, not 24 h later
    assert digest_due("daily", at(1, 9, 59), at(2, 7, 5), HOUR)
    assert not digest_due("daily", at(2, 7, 5), at(2, 8, 5), HOUR)


def test_a_weekly_digest_is_due_once_a_week_on_mondays():
    assert not digest_due("weekly", MON_7 + timedelta(minutes=20), WED, HOUR)
    assert digest_due("weekly", MON_7 - timedelta(days=1), WED, HOUR)
    assert not digest_due("weekly", MON_7 + timedelta(minutes=20), MON_7 + timedelta(days=6, hours=23), HOUR)
    assert digest_due("weekly", MON_7 + timedelta(minutes=20), MON_7 + timedelta(weeks=1), HOUR)
    assert not digest_due("off", None, WED, HOUR)


def test_the_next_digest_is_now_when_due_else_the_next_slot():
    assert next_digest_at("daily", None, WED, HOUR) == WED
    assert next_digest_at("daily", at(2, 7, 1), WED, HOUR) == at(3, 7)
    assert next_digest_at("weekly", at(2, 7, 1), WED, HOUR) == MON_7 + timedelta(weeks=1)
    assert next_digest_at("off", None, WED, HOUR) is None


def test_a_digest_covers_the_time_since_the_last_one_or_one_period_for_the_first():
    assert digest_since("daily", at(1, 7), WED) == at(1, 7)
    assert digest_since("daily", None, WED) == WED - timedelta(days=1)
    assert digest_since("weekly", None, WED) == WED - timedelta(weeks=1)


def test_the_cool_down_cutoff():
    assert notice_cutoff(WED, timedelta(hours=6)) == WED - timedelta(hours=6)


@pytest.mark.parametrize("url", [
    "https://hooks.slack.com/services/T00/B00/XXXX",
    "http://chat.example.com:8065/hooks/abc",
    "https://93.184.216.34/hook",
])
def test_it_takes_web_addresses_on_the_internet(url):
    assert webhook_url_problem(url) is None


@pytest.mark.parametrize("url, words", [
    ("ftp://hooks.example.com/x", "https://"),
    ("file:///etc/passwd", "https://"),
    ("javascript:alert(1)", "https://"),
    ("https://user:secret@hooks.slack.com/services/x", "user name and password"),
    ("https://token@hooks.slack.com/services/x", "user name and password"),
    ("https:///services/x", "host name"),
    ("https://hooks.slack.com:99999/x", "not a web address"),
    ("http://localhost:8000/hook", "this machine"),
    ("http://LOCALHOST./hook", "this machine"),
    ("http://app.localhost/hook", "this machine"),
    ("http://127.0.0.1:6379/", "inside this network"),
    ("http://10.1.2.3/hook", "inside this network"),
    ("http://192.168.0.10/hook", "inside this network"),
    ("http://169.254.169.254/latest/meta-data/", "inside this network"),
    ("http://100.64.0.1/hook", "inside this network"),
    ("http://[::1]:8000/hook", "inside this network"),
    ("http://[::ffff:127.0.0.1]/hook", "inside this network"),
    ("http://[fe80::1]/hook", "inside this network"),
    ("http://0.0.0.0/hook", "inside this network"),
    ("http://239.1.2.3/hook", "inside this network"),
])
def test_it_refuses_other_schemes_credentials_and_addresses_inside_this_network(url, words):
    problem = webhook_url_problem(url)
    assert problem is not None and words in problem, problem


def test_private_addresses_are_allowed_when_the_setting_says_so_but_never_credentials():
    assert webhook_url_problem("http://127.0.0.1:8065/hooks/abc", allow_private=True) is None
    assert webhook_url_problem("http://10.0.0.5/hooks/abc", allow_private=True) is None
    assert "user name" in webhook_url_problem("http://u:p@10.0.0.5/x", allow_private=True)
    assert "https://" in webhook_url_problem("gopher://10.0.0.5/x", allow_private=True)


def test_resolved_addresses_are_checked_one_by_one():
    assert address_problem("93.184.216.34") is None
    assert address_problem("2606:4700::1111") is None
    for inside in ("127.0.0.1", "10.0.0.1", "172.16.5.4", "::1", "fe80::1%eth0", "::ffff:10.0.0.1", "fc00::1"):
        assert address_problem(inside), inside
    assert address_problem("not-an-ip")
