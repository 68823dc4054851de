"""Task arithmetic that needs no server: how much of the request rate the hot tier takes."""
from __future__ import annotations

from dashboard import tasks


def test_it_sizes_a_hot_round_to_the_hot_tiers_share_of_the_request_rate(settings):
    settings.STIGG_MAX_RPS, settings.SYNC_HOT_RATE_SHARE, settings.SYNC_HOT_INTERVAL_SECONDS = 20, 0.25, 15
    assert tasks.hot_tier_capacity() == 37  # 15 s x 5 req/s / 2 requests a poll
    settings.SYNC_HOT_RATE_SHARE = 0.01
    assert tasks.hot_tier_capacity() == 1  # never zero: the hottest customer is still polled
    settings.STIGG_MAX_RPS, settings.SYNC_HOT_RATE_SHARE = 100, 0.5
    assert tasks.hot_tier_capacity() == 375
