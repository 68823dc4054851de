"""Promotions across the fleet, by when they end: what `/promotions/expiring` reads.

    promo:ends              sorted set: "{customer}|{feature}" (ids percent-encoded) scored by the end date
    promo:ends:owner:{o}    the same, of one account owner's customers ("My accounts": a range read too)
    promo:rows              hash: that member -> the row the page shows (customer and feature names, grant)
    promo:members           hash: customer id -> JSON {"owner", "members"}, so a rewrite removes exactly those,
                            from the owner's set they were put in

Only active promotions with an end date are indexed: a lifetime grant never expires, an
expired one grants nothing (§6). The index is rewritten with the customer's document, in
the same transaction (customers.py), so the list never shows a promotion the customer
page does not, and an owner change moves the customer's promotions with it."""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from .base import Store
from .documents import CustomerDocument
from .keys import Keys, part
from .values import epoch, parse_time, to_json

ACTIVE = "Active"


@dataclass(frozen=True)
class ExpiringPage:
    rows: list[dict[str, Any]]  # each: customer_id, customer_name, feature_id, feature_name, end_date, grant…
    total: int  # in the window


@dataclass(frozen=True)
class Indexed:
    """Where a customer's promotions are in the index: its owner then, and its members."""

    owner: str = ""
    members: tuple[str, ...] = ()


def promotion_members_of(pipe: Any, keys: Keys, customer_id: str) -> Indexed:
    raw = pipe.hget(keys.promo_members(), customer_id)
    if not raw:
        return Indexed()
    found = json.loads(raw)
    return Indexed(found["owner"], tuple(found["members"]))


def queue_promotions(pipe: Any, keys: Keys, doc: CustomerDocument | None, customer_id: str, old: Indexed,
                     owner: str = "") -> None:
    """Move the customer's promotions from their old places to their new ones (inside
    MULTI; ``doc`` None: the customer is gone); ``owner``: its account owner now."""
    rows = _rows(doc) if doc is not None else {}
    gone = [m for m in old.members if m not in rows]
    if gone:
        pipe.zrem(keys.promo_ends(), *gone)
        pipe.hdel(keys.promo_rows(), *gone)
    if old.owner and old.members and (old.owner != owner or gone):
        pipe.zrem(keys.promo_ends(old.owner), *(old.members if old.owner != owner else gone))
    if rows:
        scores = {m: score for m, (score, _) in rows.items()}
        pipe.zadd(keys.promo_ends(), scores)
        if owner:
            pipe.zadd(keys.promo_ends(owner), scores)
        pipe.hset(keys.promo_rows(), mapping={m: to_json(row) for m, (_, row) in rows.items()})
        pipe.hset(keys.promo_members(), customer_id, to_json({"owner": owner, "members": list(rows)}))
    else:
        pipe.hdel(keys.promo_members(), customer_id)


def _rows(doc: CustomerDocument) -> dict[str, tuple[float, dict[str, Any]]]:
    out: dict[str, tuple[float, dict[str, Any]]] = {}
    for p in doc["promotions"]["active"]:
        end = parse_time(p["end_date"])
        if p["status"] != ACTIVE or end is None:
            continue
        member = f"{part(doc['id'])}|{part(p['feature_id'])}"
        out[member] = (epoch(end), {
            "customer_id": doc["id"], "customer_name": doc["profile"]["name"] or doc["id"],
            "plan_name": doc["plan_name"], "feature_id": p["feature_id"], "feature_name": p["feature_name"],
            "period": p["period"], "start_date": p["start_date"], "end_date": p["end_date"],
            "usage_limit": p["usage_limit"], "unlimited": p["unlimited"], "soft_limit": p["soft_limit"],
            "enum_values": p["enum_values"]})
    return out


class PromotionIndex(Store):
    def expiring(self, start: datetime, until: datetime, offset: int = 0, limit: int = 50,
                 owner: str | None = None) -> ExpiringPage:
        """Active promotions ending in [start, until), soonest first (ties by customer and
        feature, the member's order); only those of ``owner``'s customers when given."""
        lo, hi = epoch(start), f"({epoch(until)}"
        key = self.keys.promo_ends(owner) if owner else self.keys.promo_ends()
        pipe = self.r.pipeline(transaction=False)
        pipe.zrangebyscore(key, lo, hi, start=offset, num=limit)
        pipe.zcount(key, lo, hi)
        members, total = pipe.execute()
        raws = self.r.hmget(self.keys.promo_rows(), members) if members else []
        return ExpiringPage([json.loads(raw) for raw in raws if raw], int(total))
