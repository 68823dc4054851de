"""Task arithmetic that needs no server: how much of the request budget the hot tier takes."""
from __future__ import annotations

from dashboard import tasks


def test_it_sizes_a_hot_round_to_the_budget_the_sweep_leaves(settings):
    settings.STIGG_MAX_RPS, settings.SYNC_SWEEP_BUDGET_SHARE, settings.SYNC_HOT_INTERVAL_SECONDS = 20, 0.6, 15
    assert tasks.hot_tier_capacity() == 60  # 15 s x 8 spare req/s / 2 requests a poll
    settings.SYNC_SWEEP_BUDGET_SHARE = 1.0
    assert tasks.hot_tier_capacity() == 1  # never zero: the hottest customer is still polled
    settings.STIGG_MAX_RPS, settings.SYNC_SWEEP_BUDGET_SHARE = 100, 0.5
    assert tasks.hot_tier_capacity() == 375
