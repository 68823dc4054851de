"""Governance budgets: which budget gates an entity, how close it is, when it runs out.

Works on the hydrated governance tree (stigg-api.md §9.5): one ``Budget`` per assignment
row and one ``Node`` per entity. Usage attributed to an entity counts against it and every
ancestor (guarantee 31), so a request attributed to one entity is gated by the budgets on
its chain (guarantees 32, 33). Datetimes are timezone-aware; a window's end is exclusive.
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal, Protocol, TypeVar

TtlState = Literal["exhausted", "before_reset", "not_this_window", "unlimited", "unknown"]
SiblingOrder = Literal["usage", "utilization"]

# A rate needs some of the window behind it: usage in the first moments is one burst, and
# dividing it by a few seconds projects absurd rates. 1 % of the window (7.2 h of a month,
# 1.7 h of a week) and never less than 60 s, because the tree itself may lag by minutes,
# so a sub-minute sample is noise; a PT1M budget is therefore never projected, which is
# honest: it resets before anyone reads the page.
MIN_ELAPSED_SHARE = 0.01
MIN_ELAPSED_SECONDS = 60.0

# Urgency bands (see urgency()): exhausted > before reset (1, 2] > the rest.
_URGENCY_EXHAUSTED = 3.0
_URGENCY_LOW: dict[str, float] = {"not_this_window": 0.5, "unknown": 0.25, "unlimited": 0.0}


def capability_key(feature_id: str | None, currency_id: str | None) -> str:
    """The capability of an assignment: its feature id, or "$" + its currency id."""
    if (feature_id is None) == (currency_id is None):
        raise ValueError("an assignment has a feature id or a currency id, exactly one")
    return feature_id if feature_id is not None else "$" + str(currency_id)


@dataclass(frozen=True)
class Budget:
    """One governance assignment as the hydrated tree returns it.

    ``scope`` is the sorted scopeEntityIds (``()`` = node-wide); ``limit`` None = unlimited
    but tracked; the period is the cadence window running now."""

    entity_id: str
    capability: str
    scope: tuple[str, ...] = ()
    limit: float | None = None
    usage: float | None = None
    cadence: str | None = None
    period_start: datetime | None = None
    period_end: datetime | None = None

    @property
    def is_scoped(self) -> bool:
        return bool(self.scope)

    @property
    def headroom(self) -> float | None:
        """What is left: limit − usage (no usage counts as 0), negative when overspent
        (ingest never gates, guarantee 23); None when unlimited."""
        return None if self.limit is None else self.limit - (self.usage or 0.0)


@dataclass(frozen=True)
class Node:
    """An entity of the customer's hierarchy (``parent_id`` None = a root or not placed)."""

    entity_id: str
    entity_type_id: str
    display_name: str | None = None
    parent_id: str | None = None


@dataclass(frozen=True)
class Blocking:
    """The budget that limits an entity: the applicable one with the least headroom.

    ``exhausted`` means the entity is blocked now. ``own_headroom`` is what the entity's
    own node-wide budget has left (None without one, or when it is unlimited), so a page
    can say "400 left, but blocked by its department (0 left)"."""

    budget: Budget
    blocking_entity_id: str
    is_own: bool
    is_scoped: bool
    is_ancestor: bool
    headroom: float
    exhausted: bool
    own_headroom: float | None


@dataclass(frozen=True)
class TimeToLimit:
    """When a budget reaches its limit at the current window's rate (see time_to_limit)."""

    state: TtlState
    reaches_at: datetime | None = None
    seconds_to_limit: float | None = None
    seconds_before_reset: float | None = None
    rate_per_hour: float | None = None


@dataclass(frozen=True)
class NodeFacts:
    """What a page shows for one entity and one capability."""

    entity_id: str
    capability: str
    own: Budget | None  # the entity's own node-wide budget
    scoped: tuple[Budget, ...]  # the entity's own scoped budgets
    blocking: Blocking | None
    blocking_ttl: TimeToLimit | None
    own_ttl: TimeToLimit | None


def utilization(usage: float | None, limit: float | None) -> float | None:
    """usage / limit; 1.0 when the limit is 0 (guarantee 34: nothing may be used, so the
    budget is full); None without a limit or without usage."""
    if limit is None or usage is None:
        return None
    return 1.0 if limit == 0 else usage / limit


def chain(nodes_by_id: Mapping[str, Node], entity_id: str) -> list[str]:
    """The entity and its ancestors, leaf → root.

    Stops at a parent that is not among the nodes (archived, or not fetched) and at a
    parent already on the chain, so a broken hierarchy never loops."""
    ids = [entity_id]
    seen = {entity_id}
    node = nodes_by_id.get(entity_id)
    while node is not None and node.parent_id is not None and node.parent_id not in seen:
        node = nodes_by_id.get(node.parent_id)
        if node is None:
            break
        ids.append(node.entity_id)
        seen.add(node.entity_id)
    return ids


def _applicable(chain_ids: Sequence[str], capability: str,
                budgets_by_entity: Mapping[str, Sequence[Budget]]) -> list[Budget]:
    in_chain = set(chain_ids)
    return [b for e in chain_ids for b in budgets_by_entity.get(e, ())
            if b.capability == capability and all(s in in_chain for s in b.scope)]


def applicable_budgets(entity_id: str, capability: str, nodes_by_id: Mapping[str, Node],
                       budgets_by_entity: Mapping[str, Sequence[Budget]]) -> list[Budget]:
    """The budgets that gate a request attributed to this entity alone, leaf → root.

    Such a request's resolved set is the entity's chain (§9.4), so: every budget for the
    capability on the chain that is node-wide, or scoped with every scope id on the chain
    (guarantee 33). A scope naming an entity off the chain applies only to requests that
    carry that other dimension too, so it is left out here."""
    return _applicable(chain(nodes_by_id, entity_id), capability, budgets_by_entity)


def _blocking(entity_id: str, chain_ids: Sequence[str], applicable: Iterable[Budget]) -> Blocking | None:
    depth = {e: i for i, e in enumerate(chain_ids)}
    limited = [(b.limit - (b.usage or 0.0), b) for b in applicable if b.limit is not None]
    if not limited:
        return None
    # Ties: nearest to the entity, then node-wide before scoped, then by scope.
    headroom, budget = min(limited, key=lambda hb: (hb[0], depth[hb[1].entity_id], hb[1].is_scoped, hb[1].scope))
    own = next((h for h, b in limited if b.entity_id == entity_id and not b.scope), None)
    return Blocking(budget=budget, blocking_entity_id=budget.entity_id,
                    is_own=budget.entity_id == entity_id and not budget.scope, is_scoped=budget.is_scoped,
                    is_ancestor=budget.entity_id != entity_id, headroom=headroom, exhausted=headroom <= 0,
                    own_headroom=own)


def blocking_budget(entity_id: str, capability: str, nodes_by_id: Mapping[str, Node],
                    budgets_by_entity: Mapping[str, Sequence[Budget]]) -> Blocking | None:
    """The budget that limits this entity for this capability, or None when nothing on its
    chain has a finite limit.

    Each unit the entity uses spends one unit of every applicable budget, so what it may
    still use is the least headroom among them, and it is blocked when any of them is spent
    (guarantee 32: denied if any node of the chain denies)."""
    ids = chain(nodes_by_id, entity_id)
    return _blocking(entity_id, ids, _applicable(ids, capability, budgets_by_entity))


def _elapsed_seconds(budget: Budget, now: datetime) -> float | None:
    """Seconds of the current window behind us, or None when too few to measure a rate."""
    if budget.period_start is None or budget.period_end is None or now >= budget.period_end:
        return None
    window = (budget.period_end - budget.period_start).total_seconds()
    elapsed = (now - budget.period_start).total_seconds()
    return elapsed if elapsed >= max(MIN_ELAPSED_SHARE * window, MIN_ELAPSED_SECONDS) else None


def time_to_limit(budget: Budget, now: datetime) -> TimeToLimit:
    """When the budget reaches its limit at the current window's rate, and whether before reset.

    Rate: the usage so far in this window divided by the time since ``period_start`` — a
    linear projection of the current window, needing no history. Before max(1 % of the
    window, 60 s) has passed, with no usage yet, or once the window is over (a lagging
    tree), there is no rate and the state is "unknown". Reaching the limit exactly at
    ``period_end`` is not this window: the end is exclusive and the usage resets there."""
    if budget.limit is None:
        return TimeToLimit("unlimited")
    usage = budget.usage or 0.0
    elapsed = _elapsed_seconds(budget, now)
    rate_per_hour = usage / elapsed * 3600 if elapsed is not None else None
    if usage >= budget.limit:
        return TimeToLimit("exhausted", seconds_to_limit=0.0, rate_per_hour=rate_per_hour)
    if elapsed is None or usage <= 0 or budget.period_end is None:
        return TimeToLimit("unknown", rate_per_hour=rate_per_hour)
    # remaining / (usage / elapsed), written so that whole numbers stay exact
    seconds = (budget.limit - usage) * elapsed / usage
    until_reset = (budget.period_end - now).total_seconds()
    if seconds >= until_reset:
        return TimeToLimit("not_this_window", rate_per_hour=rate_per_hour)
    return TimeToLimit("before_reset", reaches_at=now + timedelta(seconds=seconds), seconds_to_limit=seconds,
                       seconds_before_reset=until_reset - seconds, rate_per_hour=rate_per_hour)


def urgency(ttl: TimeToLimit) -> float:
    """A ranking score, higher = more urgent; finite, so it can be a sorted-set score.

    3 when exhausted; 1 + 1 / (1 + hours to the limit), in (1, 2], when projected to reach
    it before reset, so sooner ranks higher; then 0.5 when it will not reach it this window,
    0.25 when there is no projection yet, 0 when unlimited."""
    if ttl.state == "exhausted":
        return _URGENCY_EXHAUSTED
    if ttl.state == "before_reset" and ttl.seconds_to_limit is not None and math.isfinite(ttl.seconds_to_limit):
        return 1.0 + 1.0 / (1.0 + max(ttl.seconds_to_limit, 0.0) / 3600.0)
    return _URGENCY_LOW.get(ttl.state, 0.0)


def _round(x: float) -> int:
    return math.floor(x + 0.5)


def _duration(seconds: float, approx: bool = False) -> str:
    """"42 minutes", "5 hours", "3 days": rounded, and under 48 hours counted in hours."""
    minutes = _round(seconds / 60)
    if minutes < 1:
        return "less than a minute"
    if minutes < 60:
        n, unit = minutes, "minute"
    elif (hours := _round(seconds / 3600)) < 48:
        n, unit = hours, "hour"
    else:
        n, unit = _round(seconds / 86400), "day"
    return f"{'~' if approx else ''}{n} {unit}{'' if n == 1 else 's'}"


def describe_time_to_limit(ttl: TimeToLimit, now: datetime) -> str:
    """Words for the page. ``now`` is the page's time: a stored projection is read later
    than it was made, so the time left is counted from ``reaches_at``."""
    if ttl.state == "exhausted":
        return "limit reached"
    if ttl.state == "before_reset":
        seconds = (ttl.reaches_at - now).total_seconds() if ttl.reaches_at is not None else ttl.seconds_to_limit
        if seconds is None or seconds <= 0:
            return "projected to have reached its limit by now"
        return (f"reaches its limit in {_duration(seconds, approx=True)}, "
                f"{_duration(ttl.seconds_before_reset or 0.0)} before reset")
    if ttl.state == "not_this_window":
        return "will not reach it this window"
    if ttl.state == "unlimited":
        return "no limit"
    return "not enough usage yet to project"


def sibling_sort_key(value: float | None, entity_id: str) -> tuple[bool, float, str]:
    """Sort key for siblings by usage or utilization as Stigg's console orders them:
    descending, None last, ties by entity id ascending (§9.5)."""
    return (value is None, -value if value is not None else 0.0, entity_id)


class SiblingRow(Protocol):
    @property
    def entity_id(self) -> str: ...
    @property
    def usage(self) -> float | None: ...
    @property
    def limit(self) -> float | None: ...


R = TypeVar("R", bound=SiblingRow)


def order_siblings(items: Iterable[R], by: SiblingOrder) -> list[R]:
    """Rows (budgets, or anything with entity_id, usage, limit) by "usage" or "utilization"."""
    if by == "usage":
        return sorted(items, key=lambda r: sibling_sort_key(r.usage, r.entity_id))
    if by == "utilization":
        return sorted(items, key=lambda r: sibling_sort_key(utilization(r.usage, r.limit), r.entity_id))
    raise ValueError(f"siblings order by usage or utilization, not {by!r}")


def index_budgets(budgets: Iterable[Budget]) -> dict[str, list[Budget]]:
    """Budgets by entity id, the shape applicable_budgets and blocking_budget take."""
    by_entity: dict[str, list[Budget]] = {}
    for b in budgets:
        by_entity.setdefault(b.entity_id, []).append(b)
    return by_entity


def compute_node_facts(nodes: Iterable[Node], budgets: Iterable[Budget],
                       now: datetime) -> dict[tuple[str, str], NodeFacts]:
    """Facts for every entity and every capability with a budget on its chain.

    A (entity, capability) pair with no budget on the chain has nothing to show and no
    entry. Entities that appear only in budgets are included with a chain of their own.
    Cost: one chain walk per entity times the budgets on that chain, never entity × tree."""
    nodes_by_id = {n.entity_id: n for n in nodes}
    by_capability: dict[str, dict[str, list[Budget]]] = {}
    for b in budgets:
        by_capability.setdefault(b.capability, {}).setdefault(b.entity_id, []).append(b)
    capabilities_of: dict[str, set[str]] = {}
    for capability, per_entity in by_capability.items():
        for e in per_entity:
            capabilities_of.setdefault(e, set()).add(capability)
    facts: dict[tuple[str, str], NodeFacts] = {}
    for e in [*nodes_by_id, *(e for e in capabilities_of if e not in nodes_by_id)]:
        ids = chain(nodes_by_id, e)
        capabilities: set[str] = set()
        for a in ids:
            capabilities |= capabilities_of.get(a, set())
        for capability in sorted(capabilities):
            per_entity = by_capability[capability]
            mine = per_entity.get(e, [])
            own = next((b for b in mine if not b.scope), None)
            blocking = _blocking(e, ids, _applicable(ids, capability, per_entity))
            facts[(e, capability)] = NodeFacts(
                entity_id=e, capability=capability, own=own, scoped=tuple(b for b in mine if b.scope),
                blocking=blocking, blocking_ttl=time_to_limit(blocking.budget, now) if blocking else None,
                own_ttl=time_to_limit(own, now) if own else None)
    return facts
