"""The pages' presentation filters: words next to colours, numbers, ages, periods."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from dashboard.templatetags import ui


@pytest.mark.parametrize("value, pct, level, words, width", [
    (None, "—", "none", "", "0"),
    (0.0, "0 %", "ok", "", "0"),
    (0.004, "0.4 %", "ok", "", "1"),  # anything used shows
    (0.053, "5.3 %", "ok", "", "5"),
    (0.79, "79 %", "ok", "", "79"),
    (0.8, "80 %", "near", "Near limit", "80"),
    (1.0, "100 %", "over", "Over limit", "100"),
    (12.33, "1233 %", "over", "Over limit", "100"),
])
def test_it_says_utilization_in_words_not_only_colour(value, pct, level, words, width):
    assert (ui.pct(value), ui.level(value), ui.level_words(value), ui.bar_width(value)) == (pct, level, words, width)


def test_it_formats_numbers_for_people():
    assert [ui.num(v) for v in (None, "", 0, 1234567, 12.5, 1.0, 0.125, "n/a")] == [
        "—", "—", "0", "1,234,567", "12.5", "1", "0.12", "n/a"]


@pytest.mark.parametrize("value, words", [
    ("MONTH", "monthly"), ("YEAR", "yearly"), ("P1M", "monthly"), ("P30D", "every 30 days"), ("PT1H", "hourly"),
    ("PT5M", "every 5 minutes"), ("P2W", "every 2 weeks"), (None, "no reset"), ("P1H", "P1H"), ("nonsense", "nonsense"),
])
def test_it_names_reset_periods_and_cadences(value, words):
    assert ui.period_words(value) == words


def test_it_shows_ages_as_time_elements_that_escape_nothing_they_should_not():
    now = datetime.now(timezone.utc)
    html = ui.age(now - timedelta(minutes=3))
    assert html.startswith('<time class="age" datetime="') and ">3 min ago</time>" in html
    assert ui.age(None) == '<span class="age age-never">never</span>'
    assert ui.age("not a date", "never synced") == '<span class="age age-never">never synced</span>'
    assert "2 h 5 min ago" == ui.age_text(2 * 3600 + 5 * 60)
    assert ui.when("2026-11-21T14:05:09+00:00") == "2026-11-21 14:05 UTC"


def test_it_words_access_denied_reasons():
    assert ui.denied_words("NoFeatureEntitlementInSubscription") == "not included in the plan"
    assert ui.denied_words("SomethingNew") == "SomethingNew"
    assert ui.denied_words(None) == ""
