"""The alerts' hysteresis (dashboard/rules/alerts.py), pure: a subject's readings one after
another, each decision applied to the subject's open alert as the evaluation applies it."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from dashboard.rules.alerts import (
    Decision, OpenAlert, Reading, Thresholds, decide, level_of, pressure, projected_utilization, worst,
)

T0 = datetime(2026, 11, 10, 12, tzinfo=timezone.utc)
END = T0 + timedelta(days=20)


class Subject:
    """One subject's alerts as the evaluation keeps them: at most one open."""

    def __init__(self) -> None:
        self.open: OpenAlert | None = None
        self.opened = 0
        self.closed: list[str] = []

    def read(self, reading: Reading | None, now: datetime = T0) -> Decision:
        d = decide(self.open, reading, now)
        if d.close:
            self.closed.append(d.close)
            self.open = None
        if d.opens:
            self.opened += 1
            self.open = OpenAlert(d.level, d.level, reading.window_end)
        elif d.kept:
            self.open = OpenAlert(d.level, worst(self.open.worst_level, d.level), self.open.window_end)
        return d


def r(utilization: float | None, end: datetime | None = END, **extra) -> Reading:
    return Reading(utilization=utilization, window_end=end, **extra)


def test_it_opens_one_alert_while_usage_teeters_at_the_warning_level():
    s = Subject()
    for u in (0.79, 0.81, 0.79, 0.80, 0.78, 0.82, 0.71, 0.83, 0.75, 0.80) * 5:
        s.read(r(u))
    assert s.opened == 1 and s.closed == [] and s.open.level == "warning"


def test_it_closes_only_below_the_clear_level():
    s = Subject()
    s.read(r(0.85))
    assert s.read(r(0.70)).kept  # 70 % is not below 70 %
    assert s.open.level == "warning"
    assert s.read(r(0.69)) == Decision(close="cleared")
    assert s.open is None and s.closed == ["cleared"]
    s.read(r(0.79))
    assert s.open is None  # below the warning level: nothing opens again
    s.read(r(0.8))
    assert s.opened == 2


def test_it_escalates_to_the_limit_without_opening_another():
    s = Subject()
    assert s.read(r(0.8)).opens
    d = s.read(r(1.0))
    assert d.kept and d.worse and d.level == "limit" and s.opened == 1
    again = s.read(r(1.2))
    assert again.kept and not again.worse
    milder = s.read(r(0.9))  # a raised limit: the level falls, the worst stays
    assert milder.level == "warning" and not milder.worse and s.open.worst_level == "limit"


def test_a_window_reset_closes_it_and_a_new_window_may_open_another():
    s = Subject()
    s.read(r(0.95))
    # the sync has not read the new window yet: the old window's numbers are stale
    assert s.read(r(0.95), now=END + timedelta(minutes=1)) == Decision(close="reset")
    assert s.read(r(0.95), now=END + timedelta(minutes=2)) == Decision()  # never reopened from stale numbers
    new_end = END + timedelta(days=30)
    assert s.read(r(0.02, end=new_end), now=END + timedelta(minutes=3)) == Decision()
    assert s.closed == ["reset"] and s.opened == 1


def test_a_new_window_seen_before_the_old_one_ends_closes_it_too():
    s = Subject()
    s.read(r(0.9))
    d = s.read(r(0.85, end=END + timedelta(days=7)))  # the cadence changed: another window
    assert d.close == "reset" and d.opens and d.level == "warning"
    assert s.opened == 2 and s.open.window_end == END + timedelta(days=7)


def test_a_subject_that_vanished_closes_its_alert():
    s = Subject()
    s.read(r(1.0))
    assert s.read(None) == Decision(close="gone")
    assert s.read(None) == Decision()


def test_runout_opens_below_the_warning_level_and_does_not_flap():
    s = Subject()
    d = s.read(r(0.4, runs_out=True, projected=1.05))
    assert d.opens and d.level == "runout"
    # the projection hovers around the limit: still one alert
    for projected in (0.98, 1.02, 0.95, 1.01, 0.9):
        assert s.read(r(0.45, runs_out=projected >= 1, projected=projected)).kept
    assert s.opened == 1
    assert s.read(r(0.5, projected=0.69)).close == "cleared"


def test_levels_and_their_order():
    t = Thresholds()
    assert level_of(r(0.5), t) is None and level_of(r(None), t) is None
    assert level_of(r(0.8), t) == "warning" and level_of(r(0.1, runs_out=True), t) == "runout"
    assert level_of(r(0.9, runs_out=True), t) == "runout" and level_of(r(1.0, runs_out=True), t) == "limit"
    s = Subject()
    s.read(r(0.85))
    assert s.read(r(0.9, runs_out=True)).worse
    assert s.read(r(1.0)).worse
    assert level_of(r(0.85), Thresholds(warning=0.9, clear=0.5)) is None


def test_a_limit_removed_closes_it():
    s = Subject()
    s.read(r(0.9))
    assert s.read(r(None)).close == "cleared"


def test_a_subject_that_never_resets_keeps_its_alert_until_cleared():
    s = Subject()
    s.read(r(0.9, end=None))
    assert s.read(r(0.9, end=None), now=T0 + timedelta(days=400)).kept
    assert s.read(r(0.5, end=None)).close == "cleared"


def test_projection_and_pressure():
    assert projected_utilization(50, 100, 1.0, T0, T0 + timedelta(hours=25)) == 0.75
    assert projected_utilization(50, 100, None, T0, END) is None
    assert projected_utilization(50, 0, 1.0, T0, END) is None
    assert projected_utilization(50, 100, 1.0, T0, T0 - timedelta(hours=1)) == 0.5
    assert pressure(r(0.5, projected=0.9)) == 0.9 and pressure(r(0.5)) == 0.5 and pressure(r(None)) is None


@pytest.mark.parametrize("warning, clear", [(0.7, 0.8), (0.8, 0.0), (1.2, 0.7)])
def test_levels_that_make_no_sense_are_refused(warning, clear):
    with pytest.raises(ValueError):
        Thresholds(warning=warning, clear=clear)
