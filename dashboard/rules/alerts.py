"""Alerts: when one opens, escalates, stays open and closes — hysteresis, so usage teetering
at a threshold opens one alert, not fifty. Pure: no I/O, ``now`` is passed in.

A *subject* is one metered entitlement of a customer, or one governance budget (entity,
capability, scope). Each evaluation reads it once (a ``Reading``) and compares it with the
subject's open alert, if any (``OpenAlert``):

Levels, worst last: "warning" (utilization ≥ the warning level, default 0.8), "runout" (its
time to limit falls inside its window: the rules' TimeToLimit state "before_reset"), "limit"
(utilization ≥ 1.0). A subject at any level opens an alert; a worse level escalates the
open alert (no second one); a milder one lowers the current level, never the worst.

An open alert closes only when:
- "cleared": the subject's *pressure* fell below the clear level (default 0.7). Pressure is
  the utilization projected to the window's end at the current window's rate when a rate is
  known (never less than the utilization now: usage does not fall inside a window), else the
  utilization. So a warning closes when usage falls under 70 % of the limit (a raised limit,
  a promotion), and a runout alert opened at 40 % used does not close the moment it is
  opened (40 % < 70 %) nor flap while the projection hovers around 100 %: it closes once the
  projection says under 70 % at reset.
- "reset": its window ended (the window end it was opened in has passed, or the subject
  now reports another window end: a new window, or a new cadence). A reading whose own
  window has already ended is stale (the sync has not read the new window yet): it closes
  what it can and opens nothing, so a lagging read model never reopens last window's alert.
- "gone": the subject is no longer there (budget deleted, entitlement no longer metered or
  limited, the customer removed from Stigg). Closing is right: nothing can be done about a
  subject that does not exist, and if it comes back it is a new alert.

Between the clear level and the warning level an open alert stays open at level "warning".
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

Level = Literal["warning", "runout", "limit"]
Why = Literal["cleared", "reset", "gone"]

LEVELS: tuple[Level, ...] = ("warning", "runout", "limit")  # mildest first
RANK: dict[str, int] = {level: i for i, level in enumerate(LEVELS, start=1)}
LIMIT_LEVEL = 1.0
DEFAULT_WARNING_LEVEL = 0.8
DEFAULT_CLEAR_LEVEL = 0.7


@dataclass(frozen=True)
class Thresholds:
    warning: float = DEFAULT_WARNING_LEVEL
    clear: float = DEFAULT_CLEAR_LEVEL

    def __post_init__(self) -> None:
        if not 0 < self.clear <= self.warning <= LIMIT_LEVEL:
            raise ValueError("alert levels need 0 < clear ≤ warning ≤ 1, "
                             f"not clear {self.clear:g}, warning {self.warning:g}")


@dataclass(frozen=True)
class Reading:
    """A subject as the read model holds it now."""

    utilization: float | None
    window_end: datetime | None  # None: never resets
    runs_out: bool = False  # time to limit: "before_reset"
    projected: float | None = None  # utilization at the window's end at the current rate, when known


@dataclass(frozen=True)
class OpenAlert:
    """What an evaluation needs of a subject's open alert."""

    level: Level
    worst_level: Level
    window_end: datetime | None


@dataclass(frozen=True)
class Decision:
    """What to do with one subject. ``close``: close the open alert, for ``why``; ``level``:
    the alert to keep open or open (a new one when there was none or it was closed), None:
    none; ``worse``: the level is worse than the alert's worst so far (a later notice's
    cue); ``kept``: an open alert stays open (its latest numbers are updated)."""

    close: Why | None = None
    level: Level | None = None
    worse: bool = False
    kept: bool = False

    @property
    def opens(self) -> bool:
        return self.level is not None and not self.kept


NOTHING = Decision()


def level_of(reading: Reading, thresholds: Thresholds) -> Level | None:
    """The worst level a reading is at, or None."""
    u = reading.utilization
    if u is not None and u >= LIMIT_LEVEL:
        return "limit"
    if reading.runs_out:
        return "runout"
    if u is not None and u >= thresholds.warning:
        return "warning"
    return None


def pressure(reading: Reading) -> float | None:
    """What the clear level is compared with (see the module's docstring)."""
    values = [v for v in (reading.utilization, reading.projected) if v is not None]
    return max(values) if values else None


def projected_utilization(usage: float | None, limit: float | None, rate_per_hour: float | None,
                          read_at: datetime | None, window_end: datetime | None) -> float | None:
    """Utilization at ``window_end`` if usage goes on at ``rate_per_hour`` from ``read_at``
    (when the numbers were read): the same linear projection as the time to limit."""
    if None in (usage, limit, rate_per_hour, read_at, window_end) or limit <= 0:  # type: ignore[operator]
        return None
    hours = max(0.0, (window_end - read_at).total_seconds() / 3600)  # type: ignore[operator]
    return (usage + rate_per_hour * hours) / limit  # type: ignore[operator]


def decide(alert: OpenAlert | None, reading: Reading | None, now: datetime,
           thresholds: Thresholds = Thresholds()) -> Decision:
    """One subject's next step (see the module's docstring)."""
    stale = reading is not None and reading.window_end is not None and reading.window_end <= now
    level = level_of(reading, thresholds) if reading is not None and not stale else None
    if alert is None:
        return Decision(level=level, worse=True) if level is not None else NOTHING
    if reading is None:
        return Decision(close="gone")
    ended = alert.window_end is not None and alert.window_end <= now
    if stale or ended or reading.window_end != alert.window_end:
        return Decision(close="reset", level=level, worse=level is not None)
    p = pressure(reading)
    if level is None and (p is None or p < thresholds.clear):
        # p None: no utilization any more (the limit was removed): nothing to warn about
        return Decision(close="cleared")
    now_level: Level = level or "warning"
    return Decision(level=now_level, kept=True, worse=RANK[now_level] > RANK[alert.worst_level])


def worst(a: Level, b: Level) -> Level:
    return a if RANK[a] >= RANK[b] else b
