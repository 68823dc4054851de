"""Dating the demo's usage over past periods.

The amounts usage.py plans are what each customer has used so far in its current
period. Sent undated, all of it would land on today, and the usage history (daily points
of in-period usage) would read zero for weeks and then jump. So each customer's usage is
dated: the current period's amounts are spread over the days since that period started
(periods differ per customer: they are anchored to its subscription or to the calendar
month), and every earlier period inside the charted range gets usage of its own, dated
there, so the history climbs day by day and drops at each reset.

A governed customer's budgets were all set up at one moment some days ago (seed.py sets
the emulator's clock back to create them), so their windows, anchored there, are part
way through: a monthly one days in, a daily one hours in. Its attributed usage is dated
inside the current window of the budgets it reaches, the window of usage.GOVERNED_PER
(later windows of shorter budgets, e.g. the weekly ones on tokens, hold what falls in
them), and scaled to the part of that window behind it at each entity's own pace: an
entity on course for its planned amount has used that share of it so far, so the
dashboard's time to limit (usage so far over time so far) projects what usage.py aimed
at. Only the user deliberately left over its budget keeps its whole amount. Before the
window the same entities used the same pace, reported unattributed.

Usage outside the budgets' current windows (earlier periods, and the part of this one
before them) carries only what its meter reads (no userId on an API call, no model on a
completion): it reaches no budget, and an event without attribution dimensions costs the
emulator half as much to ingest.
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Callable

from ..periods import add_months, cadence_window
from .catalog import METERED_EVENTS
from .rest import RestClient, iso, parse_time
from .usage import GOVERNED_PER

HISTORY_DAYS = 62  # what the dashboard charts (settings.USAGE_HISTORY_DAYS)
FRESH_PERIOD = timedelta(hours=1)  # a period this young (a promotion just granted): server time
MARGIN = timedelta(minutes=1)  # dated usage stays this far before now
WEEKEND = 0.4  # a weekend day carries this share of a weekday's activity
# Divisible usage (tokens of completions, runs of DELTA reports) is split into pieces, about
# this many a day: events are cheap to ingest, usage reports (each one re-evaluates the
# entitlement) about five times dearer.
PIECES_PER_DAY = {"event": 1.0, "report": 0.25}
EARLIER_PIECES_PER_DAY = {"event": 0.4, "report": 0.15}
MAX_PIECES = 6  # one current amount is split into no more than this many pieces
EARLIER_PERIODS = 3  # at most this many periods before the current one
YOUNG_PERIOD_CAP = 3.0  # an earlier whole period is at most this many times the current one so far
FIXED_STEPS = {"WEEK": timedelta(weeks=1), "DAY": timedelta(days=1), "HOUR": timedelta(hours=1)}
# How fast each governed entity has used its budget so far, against the pace that would
# use its planned amount by the window's end: those above 1 that were aimed near their
# limit are projected to reach it before the reset.
PACE = (0.7, 1.4)


@dataclass
class Period:
    """A metered entitlement's reset schedule, as the customer's entitlements report it."""

    start: datetime | None  # usagePeriodStart
    reset: str | None  # None: usage never resets, it counts whenever it happened
    anchor: datetime | None


@dataclass
class Timeline:
    since: datetime  # the current subscription's start: no usage is dated before it
    periods: dict[str, Period] = field(default_factory=dict)


@dataclass
class Governance:
    """A governed customer's budgets: when they were set up (their windows' anchor) and
    the user left over its budget."""

    set_up: datetime
    overrun: str | None = None


def read_timeline(api: RestClient, customer_id: str, since: datetime) -> Timeline:
    data = api.get(f"/api/v1/customers/{customer_id}/entitlements") or {}
    timeline = Timeline(since)
    for ent in data.get("entitlements") or []:
        feature_id = (ent.get("feature") or {}).get("id")
        if ent.get("type") == "FEATURE" and feature_id and ent.get("currentUsage") is not None:
            timeline.periods[feature_id] = Period(parse_time(ent.get("usagePeriodStart")), ent.get("resetPeriod"),
                                                  parse_time(ent.get("usagePeriodAnchor")))
    return timeline


def _period_before(period: Period, start: datetime) -> datetime:
    """Start of the period that ends at ``start``. Month and year steps count from the
    anchor and clamp to short months, as emulator/periods.py does; a calendar-month
    anchor is the current month's first day, and the steps go back from it just the same."""
    if period.reset in ("MONTH", "YEAR"):
        anchor = period.anchor or start
        months = (start.year - anchor.year) * 12 + start.month - anchor.month
        return add_months(anchor, months - (12 if period.reset == "YEAR" else 1))
    return start - FIXED_STEPS.get(period.reset or "", timedelta(days=30))


def _current_window(period: Period | None, since: datetime, horizon: datetime,
                    end: datetime) -> tuple[datetime, datetime] | None:
    """Where this period's usage may be dated, or None to leave it at server time (no
    period read, or one that began moments ago, e.g. at a promotion granted by this seed)."""
    if period is None:
        return None
    if period.reset and period.start:
        start = max(period.start, since)
    else:
        start = max(since, horizon)
    return (start, end) if end - start >= FRESH_PERIOD else None


def _earlier_windows(period: Period, floor: datetime, horizon: datetime) -> list[tuple[datetime, datetime, float]]:
    """(start, end, share) of each earlier period that reaches into the charted range,
    newest first, none of it before ``floor``; ``share`` is the part of the period kept."""
    windows: list[tuple[datetime, datetime, float]] = []
    if not period.reset or period.start is None:
        return windows
    end = period.start
    while end > max(floor, horizon) and len(windows) < EARLIER_PERIODS:
        start = _period_before(period, end)
        if start >= end:
            break
        begins = max(start, floor)
        windows.append((begins, end, (end - begins) / (end - start)))
        end = start
    return windows


class _Days:
    """How activity spreads over [start, end): weekdays busier than weekends and some
    days busier than others; with ``early``, most first sightings come in the first days
    (monthly active users)."""

    def __init__(self, rng: random.Random, start: datetime, end: datetime, *, early: bool = False):
        self.rng = rng
        self.spans: list[tuple[datetime, timedelta]] = []
        self.cum: list[float] = []
        total = 0.0
        day = start.replace(hour=0, minute=0, second=0, microsecond=0)
        while day < end:
            lo, hi = max(day, start), min(day + timedelta(days=1), end)
            if hi > lo:
                weight = (hi - lo) / timedelta(days=1) * (WEEKEND if day.weekday() >= 5 else 1.0)
                weight *= rng.uniform(0.6, 1.4)
                if early:
                    weight *= 0.15 + 0.5 ** (len(self.spans) / 3)
                total += weight
                self.spans.append((lo, hi - lo))
                self.cum.append(total)
            day += timedelta(days=1)

    @property
    def days(self) -> int:
        return len(self.spans)

    def times(self, n: int) -> list[datetime]:
        if n <= 0 or not self.spans:
            return []
        picked = self.rng.choices(self.spans, cum_weights=self.cum, k=n)
        return [lo + length * self.rng.random() for lo, length in picked]


def _split(rng: random.Random, amount: int, pieces: int) -> list[int]:
    """Whole, positive pieces that add up to ``amount`` exactly."""
    pieces = max(1, min(pieces, amount))
    weights = [rng.uniform(0.5, 1.5) for _ in range(pieces)]
    total = sum(weights)
    parts = [int(amount * w / total) for w in weights]
    for i in range(amount - sum(parts)):
        parts[i % pieces] += 1
    return [p for p in parts if p > 0]


def _amount(item: dict[str, Any]) -> int | None:
    """The divisible quantity of an item (tokens of a completion, runs of a DELTA report),
    None for an item that counts as one (an API call, an active user)."""
    if "eventName" in item:
        return item["dimensions"].get("tokens") if item["eventName"] == "llm_completion" else None
    return int(item["value"]) if item.get("updateBehavior") == "DELTA" else None


def _dated(item: dict[str, Any], when: datetime, key: str, *, amount: int | None = None) -> dict[str, Any]:
    """A copy of the item at ``when`` (events: ``timestamp``; usage reports: ``createdAt``)."""
    out = {**item, "idempotencyKey": key}
    if "eventName" in item:
        if amount is not None:
            out["dimensions"] = {**item["dimensions"], "tokens": amount}
        out["timestamp"] = iso(when)
    else:
        if amount is not None:
            out["value"] = amount
        out["createdAt"] = iso(when)
    return out


def _bare(item: dict[str, Any], when: datetime, key: str, *, amount: int | None = None,
          user: str | None = None) -> dict[str, Any]:
    """Usage like ``item`` at ``when`` with no dimension but the one its meter reads."""
    if "eventName" not in item:
        return {"customerId": item["customerId"], "featureId": item["featureId"], "value": amount,
                "updateBehavior": item["updateBehavior"], "idempotencyKey": key, "createdAt": iso(when)}
    field_name = METERED_EVENTS[item["eventName"]]["meter"]["aggregation"].get("field")
    out = {"customerId": item["customerId"], "eventName": item["eventName"], "idempotencyKey": key,
           "timestamp": iso(when)}
    if field_name:
        out["dimensions"] = {field_name: amount if amount is not None else user}
    return out


def _seat_history(rng: random.Random, item: dict[str, Any], start: datetime, end: datetime) -> list[dict[str, Any]]:
    """Seat counts (usage SET) over time, ending at the count the seed aims for. They go
    out in one batch, oldest first: each SET's delta is taken from the one before it."""
    if end - start < FRESH_PERIOD:
        return [item]
    final = int(item["value"])
    first = max(1, round(final * rng.uniform(0.6, 1.0)))
    steps = rng.randint(2, 5)
    times = [start] + sorted(start + (end - start) * rng.random() for _ in range(steps))
    out = []
    for i, when in enumerate(times):
        value = final if i == steps else max(1, round(first + (final - first) * i / steps) + rng.choice([-1, 0, 0, 1]))
        out.append(_dated(item, when, f"{item['idempotencyKey']}-{i}", amount=value))
    return out


def _spread(rng: random.Random, items: list[dict[str, Any]], days: _Days, kind: str,
            share: Callable[[dict[str, Any]], float] | None = None) -> list[dict[str, Any]]:
    """The items dated over ``days``: a divisible amount (times ``share``) in a few pieces,
    an item that counts as one kept with the probability ``share``."""
    if _amount(items[0]) is None:
        kept = [item for item in items if share is None or rng.random() < share(item)]
        return [_dated(item, when, item["idempotencyKey"]) for item, when in zip(kept, days.times(len(kept)))]
    out: list[dict[str, Any]] = []
    pieces = min(MAX_PIECES, -(-round(PIECES_PER_DAY[kind] * days.days) // len(items)))
    for item in items:
        amount = _amount(item) or 0
        parts = _split(rng, round(amount * share(item)) if share else amount, pieces)
        out += [_dated(item, when, f"{item['idempotencyKey']}-{i}", amount=part)
                for i, (part, when) in enumerate(zip(parts, days.times(len(parts))))]
    return out


def _unattributed(rng: random.Random, item: dict[str, Any], days: _Days, total: int, pieces: int,
                  key: str) -> list[dict[str, Any]]:
    """``total`` more usage like ``item`` over ``days`` that reaches no budget: a divisible
    amount in ``pieces`` pieces, otherwise ``total`` items of one."""
    if _amount(item) is None:
        return [_bare(item, when, f"{key}{i}") for i, when in enumerate(days.times(total))]
    parts = _split(rng, total, pieces) if total > 0 else []
    return [_bare(item, when, f"{key}{i}", amount=part)
            for i, (part, when) in enumerate(zip(parts, days.times(len(parts))))]


def _entity(item: dict[str, Any]) -> str | None:
    """The user or agent a governed customer's item is attributed to."""
    dims = item.get("dimensions") or {}
    return dims.get("userId") or dims.get("agentId")


def _date_governed(rng: random.Random, governance: Governance, feature_id: str, items: list[dict[str, Any]],
                   window: tuple[datetime, datetime] | None,
                   end: datetime) -> tuple[list[dict[str, Any]], float, datetime]:
    """A governed feature's usage (see the module docstring): every item dated, how much
    a day its entities use at their paces (earlier periods get as much), and where the
    attributed items begin: the start of the budgets' current window."""
    start, stop = cadence_window(GOVERNED_PER[feature_id], governance.set_up, end)
    behind = (end - start) / (stop - start)
    pace: dict[str | None, float] = {}
    for item in items:
        pace.setdefault(_entity(item), rng.uniform(*PACE))

    def share(item: dict[str, Any]) -> float:
        who = _entity(item)
        return 1.0 if who is not None and who == governance.overrun else min(1.0, pace[who] * behind)

    kind = "event" if "eventName" in items[0] else "report"
    attributed = _spread(rng, items, _Days(rng, start, end), kind, share)
    # Before the window, in this period, the same entities at the same pace, a piece a day.
    per_day = sum((_amount(item) or 1) * pace[_entity(item)] for item in items) / ((stop - start) / timedelta(days=1))
    if window is not None and window[0] < start:
        past = _Days(rng, window[0], start)
        total = round(per_day * (start - window[0]) / timedelta(days=1) * rng.uniform(0.85, 1.15))
        attributed += _unattributed(rng, items[0], past, total, past.days, f"demo-{feature_id}-p0-")
    return attributed, per_day, start


def _whole_period(so_far: float, per_day: float | None, elapsed: timedelta | None, length: timedelta) -> float:
    """What a whole earlier period of ``length`` is measured against (the trend scales
    it down): a governed feature's entities at their pace over that length; tokens and
    runs at this period's pace so far (``so_far`` over ``elapsed``), over that length, but
    no more than ``YOUNG_PERIOD_CAP`` times what this period has: a period days or hours
    old says little about a month. (Measured against the amount so far, as it once was,
    the whole period before one three days old could weigh less than its first day, and
    the history climbed at the reset.) API calls and active users, one event each, are
    measured against the amount so far: projecting them would multiply the seed's
    dearest events."""
    if per_day is not None:
        return per_day * length / timedelta(days=1)
    if elapsed is None:
        return so_far
    return so_far * (min(YOUNG_PERIOD_CAP, length / elapsed) if elapsed > timedelta(0) else YOUNG_PERIOD_CAP)


def _date_customer(rng: random.Random, timeline: Timeline, events: list[dict[str, Any]], usages: list[dict[str, Any]],
                   horizon: datetime, end: datetime,
                   governance: Governance | None = None) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """One customer's usage, dated: the current period's spread over its days (a governed
    customer's attributed usage over its budgets' windows), plus usage for the earlier
    periods in the charted range."""
    out_events: list[dict[str, Any]] = []
    out_usages: list[dict[str, Any]] = []
    by_feature: dict[str, list[dict[str, Any]]] = {}
    for item in events + usages:
        if "eventName" not in item:
            by_feature.setdefault(item["featureId"], []).append(item)
        elif item["eventName"] in METERED_EVENTS:
            by_feature.setdefault(METERED_EVENTS[item["eventName"]]["id"], []).append(item)
        else:
            out_events.append(item)
    # the customer's trend: each earlier period used a little less than the one after it
    trend = [rng.uniform(0.5, 0.95)]
    while len(trend) < EARLIER_PERIODS:
        trend.append(trend[-1] * rng.uniform(0.55, 0.95))

    for feature_id, items in by_feature.items():
        sink = out_events if "eventName" in items[0] else out_usages
        if items[0].get("updateBehavior") == "SET":
            for item in items:
                out_usages.extend(_seat_history(rng, item, max(timeline.since, horizon), end))
            continue
        period = timeline.periods.get(feature_id)
        budgets = governance if feature_id in GOVERNED_PER else None
        if period is None and budgets is None:
            sink.extend(items)
            continue
        window = _current_window(period, timeline.since, horizon, end)
        early = feature_id == "monthly-active-users"
        divisible = _amount(items[0]) is not None
        kind = "event" if "eventName" in items[0] else "report"
        # what a whole earlier period is measured against (see _whole_period)
        per_day: float | None = None
        covered: datetime | None = None  # from there on, earlier periods are already dated
        so_far = sum(_amount(item) or 0 for item in items) if divisible else len(items)
        # how long this period's amount took (a period begun moments ago too: its usage
        # stays at server time, and an earlier period is still measured by its pace)
        elapsed = end - max(period.start, timeline.since) if period and period.reset and period.start else None
        if budgets is not None:
            dated, per_day, covered = _date_governed(rng, budgets, feature_id, items, window, end)
            sink.extend(dated)
        elif window is None:
            sink.extend(items)
        else:
            sink.extend(_spread(rng, items, _Days(rng, *window, early=early), kind))

        if period is None:
            continue
        # One event per API call or active user is the costly part of the seed, so those
        # fill an earlier period only from the charted range's first day; tokens and runs
        # come in a few pieces and fill whole periods.
        floor = timeline.since if divisible else max(timeline.since, horizon)
        for n, (start, stop, share) in enumerate(_earlier_windows(period, floor, horizon)):
            base = _whole_period(so_far, per_day, elapsed if divisible else None, (stop - start) / share)
            if covered is not None and covered < stop:
                if covered <= start:
                    continue
                share, stop = share * ((covered - start) / (stop - start)), covered
            ratio = trend[n] * rng.uniform(0.85, 1.15) * share
            # (a period that began at a promotion granted moments ago ends after ``end``)
            past = _Days(rng, start, min(stop, end), early=early)
            key = f"demo-{feature_id}-p{n + 1}-"
            if early:
                users = sorted({str(item["dimensions"]["userId"]) for item in items})
                active = rng.sample(users, min(len(users), round(len(users) * ratio)))
                sink.extend(_bare(items[0], when, f"{key}{i}", user=user)
                            for i, (user, when) in enumerate(zip(active, past.times(len(active)))))
            else:
                pieces = round(EARLIER_PIECES_PER_DAY[kind] * past.days)
                sink.extend(_unattributed(rng, items[0], past, round(base * ratio), pieces, key))
    return out_events, out_usages


def date_usage(usages: list[dict[str, Any]], events: list[dict[str, Any]], timelines: dict[str, Timeline],
               now: datetime, seed: int, governance: dict[str, Governance] | None = None,
               ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Every customer's usage dated (see above); a customer whose periods could not be
    read keeps its usage undated. ``governance`` has the governed customers' budgets.
    Each customer draws from its own generator, so the amounts stay the same company
    whatever day the seed runs on."""
    horizon = (now - timedelta(days=HISTORY_DAYS)).replace(hour=0, minute=0, second=0, microsecond=0)
    end = now - MARGIN
    events_of: dict[str, list[dict[str, Any]]] = {}
    usages_of: dict[str, list[dict[str, Any]]] = {}
    for item in events:
        events_of.setdefault(item["customerId"], []).append(item)
    for item in usages:
        usages_of.setdefault(item["customerId"], []).append(item)
    out_usages: list[dict[str, Any]] = []
    out_events: list[dict[str, Any]] = []
    for customer_id in dict.fromkeys([*usages_of, *events_of]):
        timeline = timelines.get(customer_id)
        if timeline is None:
            out_events += events_of.get(customer_id, [])
            out_usages += usages_of.get(customer_id, [])
            continue
        rng = random.Random(f"{seed}:{customer_id}")
        dated_events, dated_usages = _date_customer(rng, timeline, events_of.get(customer_id, []),
                                                    usages_of.get(customer_id, []), horizon, end,
                                                    (governance or {}).get(customer_id))
        out_events += dated_events
        out_usages += dated_usages
    return out_usages, out_events
