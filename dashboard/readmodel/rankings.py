"""Fleet-wide rankings: metered entitlements in a sorted set, so "nearest their limits
across every customer" is a range read, not a scan; threshold counts and the utilization
histogram of the overview, for entitlements and for governance budgets (whose ranking is
written with their hierarchy, governance.py)."""
from __future__ import annotations

import json
from dataclasses import asdict
from datetime import datetime
from typing import Any, Sequence

from ..rules import governance as rules
from .base import Store
from .documents import CustomerDocument, EntitlementDoc
from .keys import BUDGET_RANKINGS, Keys
from .nearlimit import entitlement_member, join_members, split_entitlement_member, split_members
from .nearlimit_bounds import queue_bounds
from .nearlimit_near import queue_near
from .nearlimit_rare import queue_rare
from .values import EntitlementRank, HistogramBin, ThresholdCounts, as_str, iso, parse_time, to_json

# Lower edges of the utilization histogram bins (the last bin is "100 % and over").
HISTOGRAM_EDGES: tuple[float, ...] = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)


def queue_rankings(pipe: Any, keys: Keys, doc: CustomerDocument, old_members: set[str]) -> None:
    """Queue (inside MULTI) the commands that make the entitlement rankings equal this
    customer's document: its metered entitlements in, the ones that disappeared out.
    ``old_members`` were read under WATCH before MULTI. (Budgets: governance.py.)"""
    cid = doc["id"]
    now = parse_time(doc["fetched_at"])
    new_members: dict[str, tuple[dict[str, float], str]] = {}
    for ent in doc["entitlements"]["metered"]:
        if ent["utilization"] is None:
            continue
        ttl = entitlement_time_to_limit(ent, now)
        # Only what the member (customer, feature), the scores (utilization, usage) and the
        # customer list's row (name) do not hold already; the time to limit as the codec
        # stores it, without its empty fields (codec.load fills them back in).
        row = {"feature_name": ent["feature_name"], "limit": ent["limit"], "soft_limit": ent["soft_limit"],
               "period_end": ent["period_end"], "reset_period": ent["reset_period"],
               "ttl": {k: iso(v) if isinstance(v, datetime) else v for k, v in asdict(ttl).items() if v is not None}}
        new_members[entitlement_member(cid, ent["feature_id"])] = (_scores(ent, ttl), to_json(row))
    # Stale members (features that disappeared) go; every current member is rewritten
    # (ZADD/HSET overwrite), so the rankings equal this snapshot. One command per key,
    # however many members. Scores are negated (keys.py).
    stale = old_members - set(new_members)
    queue_bounds(pipe, keys, "e", {m: -scores["usage"] for m, (scores, _) in new_members.items()}, stale)
    if stale:
        for by in BUDGET_RANKINGS:
            pipe.zrem(keys.rank_entitlements(by), *stale)
        pipe.hdel(keys.rank_entitlement_rows(), *stale)
    if new_members:
        for by in BUDGET_RANKINGS:
            pipe.zadd(keys.rank_entitlements(by), {m: -scores[by] for m, (scores, _) in new_members.items()})
        pipe.hset(keys.rank_entitlement_rows(), mapping={m: row for m, (_, row) in new_members.items()})
    queue_rare(pipe, keys, "e", stale, set(new_members) - old_members)
    queue_near(pipe, keys, "entitlements", {by: {m: -scores[by] for m, (scores, _) in new_members.items()}
                                            for by in BUDGET_RANKINGS}, old_members | set(new_members))
    if new_members:
        pipe.set(keys.members(cid), join_members(new_members))
    else:
        pipe.delete(keys.members(cid))


def entitlement_members_of(pipe: Any, keys: Keys, customer_id: str) -> set[str]:
    """The customer's members of the entitlement rankings (read under WATCH)."""
    return split_members(pipe.get(keys.members(customer_id)))


def entitlement_time_to_limit(ent: EntitlementDoc, now: datetime | None) -> rules.TimeToLimit:
    """A metered entitlement's time to limit, by the rules governance budgets use: its usage
    against its limit over its current usage period, as of when it was read. Computed where
    its rankings are written, so its document carries no copy of it."""
    budget = rules.Budget(entity_id="", capability=ent["feature_id"], limit=ent["limit"], usage=ent["usage"],
                          cadence=ent["reset_period"], period_start=parse_time(ent["period_start"]),
                          period_end=parse_time(ent["period_end"]))
    return rules.time_to_limit(budget, now) if now is not None else rules.TimeToLimit("unknown")


def _scores(ent: EntitlementDoc, ttl: rules.TimeToLimit) -> dict[str, float]:
    return {"utilization": ent["utilization"] or 0.0, "usage": ent["usage"] or 0.0, "urgency": rules.urgency(ttl)}


def queue_forget_members(pipe: Any, keys: Keys, members: set[str]) -> None:
    if members:
        queue_bounds(pipe, keys, "e", {}, members)
        for by in BUDGET_RANKINGS:
            pipe.zrem(keys.rank_entitlements(by), *members)
        pipe.hdel(keys.rank_entitlement_rows(), *members)
        queue_rare(pipe, keys, "e", members, ())
        queue_near(pipe, keys, "entitlements", {}, members)


def queue_entitlement_rows(pipe: Any, keys: Keys, members: list[str]) -> None:
    """Queue the reads of entitlement rows (``entitlement_rows`` takes the replies)."""
    pipe.hmget(keys.rank_entitlement_rows(), members)
    pipe.zmscore(keys.rank_entitlements("utilization"), members)
    pipe.zmscore(keys.rank_entitlements("usage"), members)


def entitlement_rows(members: list[str], replies: list[Any]) -> dict[str, dict[str, Any]]:
    """member -> its row, with customer_id, feature_id, utilization and usage put back."""
    rows, utilizations, usages = replies
    out = {}
    for member, raw, util, usage in zip(members, rows, utilizations, usages):
        if raw is None or util is None:
            continue  # removed between the reads
        cid, feature = split_entitlement_member(as_str(member))
        out[as_str(member)] = {**json.loads(raw), "customer_id": cid, "feature_id": feature,
                               "utilization": -float(util), "usage": -float(usage) if usage is not None else None}
    return out


class Rankings(Store):
    """Reads of the fleet rankings."""

    def top_entitlements(self, n: int = 20, offset: int = 0) -> list[EntitlementRank]:
        members = [as_str(m) for m in self.r.zrange(self.keys.rank_entitlements(), offset, offset + n - 1)]
        if not members:
            return []
        pipe = self.r.pipeline(transaction=True)
        queue_entitlement_rows(pipe, self.keys, members)
        found = entitlement_rows(members, pipe.execute())
        cids = sorted({row["customer_id"] for row in found.values()})
        names = {cid: json.loads(raw)["name"] if raw else None
                 for cid, raw in zip(cids, self.r.hmget(self.keys.rows(), cids))} if cids else {}
        return [EntitlementRank(
            customer_id=d["customer_id"], customer_name=names.get(d["customer_id"]), feature_id=d["feature_id"],
            feature_name=d["feature_name"], usage=d["usage"], limit=d["limit"], soft_limit=d["soft_limit"],
            utilization=d["utilization"], period_end=parse_time(d["period_end"]))
            for d in (found[m] for m in members if m in found)]

    def entitlement_counts(self) -> ThresholdCounts:
        return self._threshold_counts(self.keys.rank_entitlements())

    def budget_counts(self) -> ThresholdCounts:
        return self._threshold_counts(self.keys.rank_budgets("utilization"))

    def _threshold_counts(self, key: str) -> ThresholdCounts:
        pipe = self.r.pipeline(transaction=False)
        pipe.zcount(key, "-inf", -0.8)  # scores are negated (keys.py)
        pipe.zcount(key, "-inf", -1.0)
        at_80, at_100 = pipe.execute()
        return ThresholdCounts(int(at_80), int(at_100))

    def utilization_histogram(self, kind: str = "entitlements",
                              edges: Sequence[float] = HISTOGRAM_EDGES) -> list[HistogramBin]:
        """Counts per utilization bin, for the overview chart ("entitlements" or "budgets")."""
        key = self.keys.rank_entitlements() if kind == "entitlements" else self.keys.rank_budgets("utilization")
        pipe = self.r.pipeline(transaction=False)
        bins: list[tuple[float, float | None]] = []
        for i, lower in enumerate(edges):
            upper = edges[i + 1] if i + 1 < len(edges) else None
            bins.append((lower, upper))
            # Scores are negated: [lower, upper) is [-upper, -lower] with "(" making -upper
            # exclusive, so each value falls into exactly one bin.
            pipe.zcount(key, f"({-upper}" if upper is not None else "-inf", -lower)
        counts = pipe.execute()
        return [HistogramBin(lo, hi, f"{lo:.0%}–{hi:.0%}" if hi is not None else f"≥ {lo:.0%}", int(c))
                for (lo, hi), c in zip(bins, counts)]
