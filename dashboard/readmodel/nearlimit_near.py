"""The rows at or above the near-limit view's default threshold, ranked apart.

By usage or urgency, the rows at or above 80 % are scattered through the whole ranking: at
100,000 customers and a million budgets the biggest usages are mostly models and orgs well
under their limits, so a walk for the default view read ~50,000 members before its 50th row
(~110 ms; bench_scale.py) and one for a type low in the order, a whole ranking (~400 ms). So
each ranking by usage and by urgency has a copy holding only its members at or above NEAR
(``rank:{kind}:{order}:near``, same members and scores), written with it in the customer's
transaction; a query whose threshold is at or above NEAR walks the copy instead (still
checking each row's utilization against its own threshold). By utilization the ranking is
already in that order: its rows at or above any threshold come first.

At 100,000 customers the copies hold the ~2 % of rows near their limits: a few MB.
"""
from __future__ import annotations

from typing import Any

from .keys import Keys

NEAR = 0.8  # the near-limit view's default threshold (NearLimitQuery.min_utilization)
NEAR_ORDERS = ("usage", "urgency")


def queue_near(pipe: Any, keys: Keys, kind: str, scores: dict[str, dict[str, float]], members: set[str]) -> None:
    """Queue (inside MULTI) the copies' update for one customer's members of a kind:
    ``scores`` order -> member -> the negated score its rankings get now; ``members``: every
    member it had or has (those not near now are removed from the copies)."""
    near = {m for m, score in scores.get("utilization", {}).items() if -score >= NEAR}
    for order in NEAR_ORDERS:
        add = {m: scores[order][m] for m in near if m in scores.get(order, {})}
        gone = members - set(add)
        if gone:
            pipe.zrem(keys.rank_near(kind, order), *gone)
        if add:
            pipe.zadd(keys.rank_near(kind, order), add)


def walk_ranking(keys: Keys, kind: str, order: str, min_utilization: float) -> str:
    """The ranking a walk in ``order`` reads: its near copy when the threshold allows."""
    if order in NEAR_ORDERS and min_utilization >= NEAR:
        return keys.rank_near(kind, order)
    return keys.rank_budgets(order) if kind == "budgets" else keys.rank_entitlements(order)
