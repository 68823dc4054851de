"""How much each demo customer has used in its current period: usage reports and raw
events aimed at a chosen utilization of its plan's limits (its "pressure"), and, for
governed customers, attributed usage aimed at each user's and agent's budgets and kept
within the budgets it reaches, as an application that checks governance would report
it. The amounts are undated here; history.py spreads them over time, and scales the
attributed ones to the part of their budgets' window already behind them."""
from __future__ import annotations

import math
import random
from datetime import datetime
from typing import Any, Callable

from .catalog import ENTITY_TYPES, attributed, effective_plan_limits
from .company import MODELS, CustomerSpec, Hierarchy

UTILIZATION = {"idle": (0.0, 0.05), "normal": (0.1, 0.65), "near": (0.8, 0.97), "over": (1.03, 1.35)}
# Pooled budgets (teams, departments, the org, models, scoped budgets) are set below the
# sum of their members' budgets, so members aimed at their own limits would overfill them.
# The seed fills each pool to at most a share of its limit drawn from POOL_FILL, so the
# pools keep room for live traffic (which then fills them, checking, up to the limit).
POOL_FILL = (0.6, 0.98)
# A governed customer's attributed amounts are one window's usage of this cadence: tokens
# are aimed at monthly user budgets and runs at daily agent budgets; API calls (a few per
# user) are a month's, so the weekly budgets on them see about a quarter. history.py
# dates them, and scales them to the part of the window already behind the budgets.
GOVERNED_PER = {"ai-tokens": "P1M", "api-calls": "P1M", "agent-runs": "P1D"}


def _target(rng: random.Random, pressure: str, limit: float | None, fallback: float) -> float:
    low, high = UTILIZATION[pressure]
    base = limit if limit else fallback
    return base * rng.uniform(low, high)


def plan_usage(rng: random.Random, specs: list[CustomerSpec], hierarchies: list[Hierarchy],
               now: datetime) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Usage reports and raw events aimed at a chosen utilization per customer, for the
    current period and undated; ``date_usage`` then spreads them over time."""
    usages: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    governed = {h.customer_id: h for h in hierarchies}
    counter = 0

    def key() -> str:
        nonlocal counter
        counter += 1
        return f"demo-{counter:07d}"

    for spec in specs:
        if spec.plan is None or spec.archived:
            continue
        limits = effective_plan_limits(spec.plan)
        extra_seats = sum(a["quantity"] * 10 for a in spec.addons if a["id"] == "extra-seats")
        extra_tokens = sum(a["quantity"] * 5_000_000 for a in spec.addons if a["id"] == "extra-ai-tokens")
        seat_limit = (limits.get("seats") or 0) + extra_seats
        seats = round(_target(rng, spec.pressure, seat_limit, 10))
        usages.append({"customerId": spec.id, "featureId": "seats", "value": max(1, seats),
                       "updateBehavior": "SET", "idempotencyKey": key()})
        h = governed.get(spec.id)
        if h is not None:
            _governed_usage(rng, h, usages, events, key)
            continue
        # API calls are counted one event each, so only small limits are pushed close.
        call_limit = limits.get("api-calls") or 0
        calls = round(_target(rng, spec.pressure, call_limit, 500)) if call_limit <= 500 \
            else rng.randint(20, 150)
        mau_limit = limits.get("monthly-active-users")
        users = round(_target(rng, spec.pressure, mau_limit, 50)) if mau_limit and mau_limit <= 50 \
            else rng.randint(5, 120)
        user_ids = [f"user-{i:04d}" for i in range(max(1, users))]
        for _ in range(calls):
            events.append({"customerId": spec.id, "eventName": "api_call", "idempotencyKey": key(),
                           "dimensions": {"userId": rng.choice(user_ids), "endpoint": rng.choice(
                               ["/v1/search", "/v1/chat", "/v1/embed", "/v1/projects"])}})
        for uid in user_ids:
            events.append({"customerId": spec.id, "eventName": "user_active", "idempotencyKey": key(),
                           "dimensions": {"userId": uid}})
        token_limit = (limits.get("ai-tokens") or 0) + extra_tokens
        tokens = _target(rng, spec.pressure, token_limit, 1_000_000)
        n = rng.randint(5, 25)
        for _ in range(n):
            events.append({"customerId": spec.id, "eventName": "llm_completion", "idempotencyKey": key(),
                           "dimensions": {"tokens": max(1, round(tokens / n)), "model": rng.choice(MODELS),
                                          "userId": rng.choice(user_ids)}})
        run_limit = limits.get("agent-runs")
        runs = round(_target(rng, spec.pressure, run_limit, 200))
        if runs:
            usages.append({"customerId": spec.id, "featureId": "agent-runs", "value": runs,
                           "updateBehavior": "DELTA", "idempotencyKey": key()})
    return usages, events


def _governed_usage(rng: random.Random, h: Hierarchy, usages: list[dict[str, Any]],
                    events: list[dict[str, Any]], key: Callable[[], str]) -> None:
    """Attributed usage: each user and agent gets its own pressure, so the tree has
    nodes at every utilization; then only what the budgets allow is kept (see
    _within_budgets), so hard budgets stop at their limit. One user per customer, the
    first one aimed over its budget, is deliberately left over it: usage reported
    without a check (a late report, an app that skipped it), which also counts in its
    team's, department's and org's budgets."""
    planned: list[dict[str, Any]] = []
    overrun: str | None = None
    for user_id, team_id, _ in h.users:
        pressure = rng.choices(["idle", "normal", "near", "over"], [10, 55, 22, 13])[0]
        if pressure == "over" and overrun is None:
            overrun = user_id
        tokens = _target(rng, pressure, h.budgets[(user_id, "ai-tokens")], 100_000)
        n = rng.randint(2, 6)
        # heavy users lean on the expensive model, so the scoped budgets fill up too
        model_weights = [3, 2, 1] if pressure in ("near", "over") else [1, 2, 2]
        for _ in range(n):
            planned.append({"customerId": h.customer_id, "eventName": "llm_completion", "idempotencyKey": key(),
                            "dimensions": {"tokens": max(1, round(tokens / n)), "userId": user_id,
                                           "model": rng.choices(MODELS, model_weights)[0]}})
        for _ in range(rng.randint(1, 12)):
            planned.append({"customerId": h.customer_id, "eventName": "api_call", "idempotencyKey": key(),
                            "dimensions": {"userId": user_id, "teamId": team_id, "endpoint": "/v1/chat"}})
        planned.append({"customerId": h.customer_id, "eventName": "user_active", "idempotencyKey": key(),
                        "dimensions": {"userId": user_id}})
    for agent_id, team_id in h.agents:
        pressure = rng.choices(["normal", "near", "over"], [50, 30, 20])[0]
        runs = round(_target(rng, pressure, h.budgets[(agent_id, "agent-runs")], 100))
        if runs:
            planned.append({"customerId": h.customer_id, "featureId": "agent-runs", "value": runs,
                            "updateBehavior": "DELTA", "idempotencyKey": key(),
                            "dimensions": {"agentId": agent_id, "teamId": team_id}})
        tokens = _target(rng, pressure, h.budgets[(agent_id, "ai-tokens")], 100_000)
        for _ in range(3):
            planned.append({"customerId": h.customer_id, "eventName": "llm_completion", "idempotencyKey": key(),
                            "dimensions": {"tokens": max(1, round(tokens / 3)), "agentId": agent_id,
                                           "model": rng.choice(MODELS)}})
    h.overrun = overrun
    # A generator of its own, so the rest of the company is drawn as before.
    for item in _within_budgets(h, planned, overrun, random.Random(f"budgets:{h.customer_id}")):
        (events if "eventName" in item else usages).append(item)


class _Budgets:
    """One governed customer's budgets, counting usage the way the emulator attributes it
    (stigg-api.md §9.4): a dimension that names an entity of a type carrying that key
    reaches the entity's budgets and those of every ancestor; a scoped budget also needs
    every entity of its scope reached."""

    def __init__(self, h: Hierarchy, rng: random.Random) -> None:
        keys = {t["id"]: set(t["attributionKeys"]) for t in ENTITY_TYPES}
        self.keys = {e["id"]: keys[e["entityTypeId"]] for e in h.entities}
        self.parents = {a["entityId"]: a["parentId"] for level in h.assignments for a in level if "parentId" in a}
        self.budgets = [a for level in h.assignments for a in level]
        members = {user for user, _, _ in h.users} | {agent for agent, _ in h.agents}
        self.ceilings = [self._ceiling(b, members, rng) for b in self.budgets]
        self.used = [0.0] * len(self.budgets)

    @staticmethod
    def _ceiling(budget: dict[str, Any], members: set[str], rng: random.Random) -> float:
        limit = budget["usageLimit"]
        if limit is None:
            return math.inf  # tracked only
        if budget["entityId"] in members:
            return float(limit)
        return limit * rng.uniform(*POOL_FILL)

    def reached(self, feature_id: str, dims: dict[str, Any]) -> list[int]:
        """The budgets (indexes) that usage of ``feature_id`` with ``dims`` counts in."""
        resolved: set[str] = set()
        for key, value in dims.items():
            entity: str | None = str(value)
            if key in self.keys.get(entity, ()):
                while entity is not None and entity not in resolved:
                    resolved.add(entity)
                    entity = self.parents.get(entity)
        return [i for i, b in enumerate(self.budgets) if b["featureId"] == feature_id and b["entityId"] in resolved
                and set(b.get("scopeEntityIds") or []) <= resolved]

    def room(self, reached: list[int]) -> float:
        """How much more those budgets allow before the first reaches its ceiling."""
        return min((self.ceilings[i] - self.used[i] for i in reached), default=math.inf)

    def add(self, reached: list[int], amount: float) -> None:
        for i in reached:
            self.used[i] += amount


def _within_budgets(h: Hierarchy, planned: list[dict[str, Any]], overrun: str | None,
                    rng: random.Random) -> list[dict[str, Any]]:
    """The planned items as a governed application reports them: each trimmed to what
    every budget it reaches still allows, or dropped when nothing is left; taken in a
    random order, so no member of a pool is always served first. The ``overrun`` user's
    items go first and unchecked. Planned order is kept in the result."""
    def unchecked(item: dict[str, Any]) -> bool:
        return overrun is not None and (item.get("dimensions") or {}).get("userId") == overrun

    budgets = _Budgets(h, rng)
    order = list(range(len(planned)))
    rng.shuffle(order)
    order.sort(key=lambda i: not unchecked(planned[i]))
    kept: dict[int, dict[str, Any]] = {}
    for i in order:
        item = planned[i]
        counted = attributed(item)
        if counted is None:
            kept[i] = item
            continue
        feature_id, field, amount = counted
        dims = item.get("dimensions") or {}
        reached = budgets.reached(feature_id, dims)
        if not unchecked(item):
            room = budgets.room(reached)
            if room < amount:
                amount = math.floor(room)
            if amount < 1:
                continue
        budgets.add(reached, amount)
        if field:
            item = {**item, "dimensions": {**dims, field: amount}}
        elif "eventName" not in item:
            item = {**item, "value": amount}
        kept[i] = item
    return [kept[i] for i in sorted(kept)]
