"""How much each demo customer has used in its current period: usage reports and raw
events aimed at a chosen utilization of its plan's limits (its "pressure"), and, for
governed customers, attributed usage aimed at each user's and agent's budgets. The
amounts are undated here; history.py spreads them over time."""
from __future__ import annotations

import random
from datetime import datetime
from typing import Any, Callable

from .catalog import effective_plan_limits
from .company import MODELS, CustomerSpec, Hierarchy

UTILIZATION = {"idle": (0.0, 0.05), "normal": (0.1, 0.65), "near": (0.8, 0.97), "over": (1.03, 1.35)}


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
    nodes at every utilization (and, through roll-up, some parents over budget)."""
    for user_id, team_id, _ in h.users:
        pressure = rng.choices(["idle", "normal", "near", "over"], [10, 55, 22, 13])[0]
        tokens = _target(rng, pressure, h.budgets[(user_id, "ai-tokens")], 100_000)
        n = rng.randint(2, 6)
        # heavy users lean on the expensive model, so the scoped budgets fill up too
        model_weights = [3, 2, 1] if pressure in ("near", "over") else [1, 2, 2]
        for _ in range(n):
            events.append({"customerId": h.customer_id, "eventName": "llm_completion", "idempotencyKey": key(),
                           "dimensions": {"tokens": max(1, round(tokens / n)), "userId": user_id,
                                          "model": rng.choices(MODELS, model_weights)[0]}})
        for _ in range(rng.randint(1, 12)):
            events.append({"customerId": h.customer_id, "eventName": "api_call", "idempotencyKey": key(),
                           "dimensions": {"userId": user_id, "teamId": team_id, "endpoint": "/v1/chat"}})
        events.append({"customerId": h.customer_id, "eventName": "user_active", "idempotencyKey": key(),
                       "dimensions": {"userId": user_id}})
    for agent_id, team_id in h.agents:
        pressure = rng.choices(["normal", "near", "over"], [50, 30, 20])[0]
        runs = round(_target(rng, pressure, h.budgets[(agent_id, "agent-runs")], 100))
        if runs:
            usages.append({"customerId": h.customer_id, "featureId": "agent-runs", "value": runs,
                           "updateBehavior": "DELTA", "idempotencyKey": key(),
                           "dimensions": {"agentId": agent_id, "teamId": team_id}})
        tokens = _target(rng, pressure, h.budgets[(agent_id, "ai-tokens")], 100_000)
        for _ in range(3):
            events.append({"customerId": h.customer_id, "eventName": "llm_completion", "idempotencyKey": key(),
                           "dimensions": {"tokens": max(1, round(tokens / 3)), "agentId": agent_id,
                                          "model": rng.choice(MODELS)}})
