"""Fleet-wide rankings: metered entitlements and governance budgets in sorted sets, so
"nearest their limits across every customer" is a range read, not a scan; threshold
counts and the utilization histogram of the overview."""
from __future__ import annotations

import json
from typing import Any, Sequence

from .base import Store
from .documents import CustomerDocument, GovernanceNodeDoc
from .keys import Keys, part
from .values import BudgetRank, EntitlementRank, HistogramBin, ThresholdCounts, parse_time

# Lower edges of the utilization histogram bins (the last bin is "100 % and over").
HISTOGRAM_EDGES: tuple[float, ...] = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)


def budget_member(customer_id: str, node: GovernanceNodeDoc) -> str:
    capability = node["feature_id"] or f"${node['currency_id']}"
    scope = ",".join(part(s) for s in node["scope"])
    return f"{part(customer_id)}|{part(node['entity_id'])}|{part(capability)}|{scope}"


def entitlement_member(customer_id: str, feature_id: str) -> str:
    return f"{part(customer_id)}|{part(feature_id)}"


def queue_rankings(pipe: Any, keys: Keys, doc: CustomerDocument, old_members: set[str]) -> None:
    """Queue (inside MULTI) the commands that make the rankings equal this customer's
    document: its metered entitlements and budgets in, the ones that disappeared out.
    ``old_members`` (tagged "e|…" / "b|…") were read under WATCH before MULTI."""
    cid = doc["id"]
    name = doc["profile"]["name"]
    new_members: dict[str, tuple[str, dict[str, float], str]] = {}
    for ent in doc["entitlements"]["metered"]:
        if ent["utilization"] is None:
            continue
        member = entitlement_member(cid, ent["feature_id"])
        row = {"customer_id": cid, "customer_name": name, "feature_id": ent["feature_id"],
               "feature_name": ent["feature_name"], "usage": ent["usage"], "limit": ent["limit"],
               "soft_limit": ent["soft_limit"], "utilization": ent["utilization"],
               "period_end": ent["period_end"]}
        new_members["e|" + member] = (member, {keys.rank_entitlements(): ent["utilization"]}, json.dumps(row))
    for node in doc["governance"]:
        if not (node["feature_id"] or node["currency_id"]):
            continue  # tree-mode rows carry no budget
        scores: dict[str, float] = {}
        if node["utilization"] is not None:
            scores[keys.rank_budgets("utilization")] = node["utilization"]
        if node["usage"] is not None:
            scores[keys.rank_budgets("usage")] = node["usage"]
        if not scores:
            continue
        member = budget_member(cid, node)
        row = {"customer_id": cid, "customer_name": name, "entity_id": node["entity_id"],
               "entity_name": node["display_name"], "feature_id": node["feature_id"],
               "currency_id": node["currency_id"], "scope": node["scope"], "cadence": node["cadence"],
               "limit": node["limit"], "usage": node["usage"], "utilization": node["utilization"],
               "period_end": node["period_end"]}
        new_members["b|" + member] = (member, scores, json.dumps(row))

    # Stale members (features, entities or budgets that disappeared) go; every current
    # member is rewritten (ZADD/HSET overwrite), so the rankings equal this snapshot.
    # One command per key, however many members: a 200-budget customer is a handful
    # of commands, not hundreds.
    queue_forget_members(pipe, keys, old_members - set(new_members))
    scores_by_key: dict[str, dict[str, float]] = {}
    rows_by_key: dict[str, dict[str, str]] = {}
    for tagged, (member, scores, row) in new_members.items():
        rows_key = keys.rank_entitlement_rows() if tagged[0] == "e" else keys.rank_budget_rows()
        for key, score in scores.items():
            scores_by_key.setdefault(key, {})[member] = score
        rows_by_key.setdefault(rows_key, {})[member] = row
    for key, mapping in scores_by_key.items():
        pipe.zadd(key, mapping)
    for key, mapping in rows_by_key.items():
        pipe.hset(key, mapping=mapping)
    pipe.delete(keys.members(cid))
    if new_members:
        pipe.sadd(keys.members(cid), *new_members)
    budget_utils = [n["utilization"] for n in doc["governance"] if n["utilization"] is not None
                    and (n["feature_id"] or n["currency_id"])]
    if budget_utils:
        pipe.zadd(keys.budget_utilization(), {cid: max(budget_utils)})
    else:
        pipe.zrem(keys.budget_utilization(), cid)


def queue_forget_members(pipe: Any, keys: Keys, tagged_members: set[str]) -> None:
    ent = [m[2:] for m in tagged_members if m.startswith("e|")]
    bud = [m[2:] for m in tagged_members if m.startswith("b|")]
    if ent:
        pipe.zrem(keys.rank_entitlements(), *ent)
        pipe.hdel(keys.rank_entitlement_rows(), *ent)
    if bud:
        pipe.zrem(keys.rank_budgets("utilization"), *bud)
        pipe.zrem(keys.rank_budgets("usage"), *bud)
        pipe.hdel(keys.rank_budget_rows(), *bud)


class Rankings(Store):
    """Reads of the fleet rankings."""

    def top_entitlements(self, n: int = 20, offset: int = 0) -> list[EntitlementRank]:
        members = self.r.zrevrange(self.keys.rank_entitlements(), offset, offset + n - 1)
        if not members:
            return []
        out = []
        for raw in self.r.hmget(self.keys.rank_entitlement_rows(), members):
            if raw is None:
                continue
            d = json.loads(raw)
            d["period_end"] = parse_time(d["period_end"])
            out.append(EntitlementRank(**d))
        return out

    def top_budgets(self, n: int = 20, by: str = "utilization", offset: int = 0) -> list[BudgetRank]:
        members = self.r.zrevrange(self.keys.rank_budgets(by), offset, offset + n - 1)
        if not members:
            return []
        out = []
        for raw in self.r.hmget(self.keys.rank_budget_rows(), members):
            if raw is None:
                continue
            d = json.loads(raw)
            d["period_end"] = parse_time(d["period_end"])
            d["scope"] = tuple(d["scope"])
            out.append(BudgetRank(**d))
        return out

    def entitlement_counts(self) -> ThresholdCounts:
        return self._threshold_counts(self.keys.rank_entitlements())

    def budget_counts(self) -> ThresholdCounts:
        return self._threshold_counts(self.keys.rank_budgets("utilization"))

    def _threshold_counts(self, key: str) -> ThresholdCounts:
        pipe = self.r.pipeline(transaction=False)
        pipe.zcount(key, 0.8, "+inf")
        pipe.zcount(key, 1.0, "+inf")
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
            # "(" makes the upper edge exclusive, so each value falls into exactly one bin.
            pipe.zcount(key, lower, f"({upper}" if upper is not None else "+inf")
        counts = pipe.execute()
        return [HistogramBin(lo, hi, f"{lo:.0%}–{hi:.0%}" if hi is not None else f"≥ {lo:.0%}", int(c))
                for (lo, hi), c in zip(bins, counts)]
