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

A filter on a capability or entity type of which few rows, or none, are near their limit
still walked the whole copy to learn so (~32,000 members at 100,000 customers: over 30 ms
on a slower machine; by utilization, the whole ranking's head). So each capability and
entity type also keeps the set of its members at or above NEAR (``near:above:…``, written
in the same transaction): a query at or above NEAR naming a value none of whose rows is
near answers at once, and one naming a value with up to NEAR_LIST_MAX near rows is read
from that set, as a rare value is from its list (nearlimit_rare.py). ~65,000 set members at
100,000 customers (every near row in its capability's set, a budget in its type's too).
"""
from __future__ import annotations

from typing import Any

from .keys import RARE_FACETS, Keys
from .nearlimit_rare import rare_moves

NEAR = 0.8  # the near-limit view's default threshold (NearLimitQuery.min_utilization)
NEAR_ORDERS = ("usage", "urgency")
NEAR_LIST_MAX = 2000  # a value with at most this many near rows is read from its set


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
    moves = rare_moves("b" if kind == "budgets" else "e", members - near, near)
    for (facet, value), (gone_members, near_members) in sorted(moves.items()):
        if gone_members:
            pipe.srem(keys.near_above(facet, value), *gone_members)
        if near_members:
            pipe.sadd(keys.near_above(facet, value), *near_members)


def near_list(r: Any, keys: Keys, chosen: list[tuple[str, str]]) -> tuple[str, int] | None:
    """Among the chosen capability and entity type, the near set with fewest members and
    its size (0: no row of it is near its limit), when it has at most NEAR_LIST_MAX; None
    when neither is chosen, or the set is larger (walking finds its rows soon enough)."""
    above = [keys.near_above(facet, value) for facet, value in chosen if facet in RARE_FACETS]
    if not above:
        return None
    pipe = r.pipeline(transaction=False)
    for key in above:
        pipe.scard(key)
    key, size = min(zip(above, (int(n) for n in pipe.execute())), key=lambda kn: kn[1])
    return (key, size) if size == 0 or size <= NEAR_LIST_MAX else None


def walk_ranking(keys: Keys, kind: str, order: str, min_utilization: float) -> str:
    """The ranking a walk in ``order`` reads: its near copy when the threshold allows."""
    if order in NEAR_ORDERS and min_utilization >= NEAR:
        return keys.rank_near(kind, order)
    return keys.rank_budgets(order) if kind == "budgets" else keys.rank_entitlements(order)
