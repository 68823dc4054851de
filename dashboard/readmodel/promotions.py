"""Promotions across the fleet, by when they end: what `/promotions/expiring` reads.

    promo:ends     sorted set: "{customer}|{feature}" (ids percent-encoded) scored by the end date
    promo:rows     hash: that member -> the row the page shows (customer and feature names, grant)
    promo:members  hash: customer id -> its members, one a line, so a rewrite removes exactly those

Only active promotions with an end date are indexed: a lifetime grant never expires, an
expired one grants nothing (§6). The index is rewritten with the customer's document, in
the same transaction (customers.py), so the list never shows a promotion the customer
page does not."""
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


def promotion_members_of(pipe: Any, keys: Keys, customer_id: str) -> list[str]:
    raw = pipe.hget(keys.promo_members(), customer_id)
    raw = raw.decode() if isinstance(raw, bytes) else raw
    return raw.split("\n") if raw else []


def queue_promotions(pipe: Any, keys: Keys, doc: CustomerDocument | None, customer_id: str,
                     old_members: list[str]) -> None:
    """Move the customer's promotions from their old places to their new ones (inside
    MULTI; ``doc`` None: the customer is gone)."""
    rows = _rows(doc) if doc is not None else {}
    gone = [m for m in old_members if m not in rows]
    if gone:
        pipe.zrem(keys.promo_ends(), *gone)
        pipe.hdel(keys.promo_rows(), *gone)
    if rows:
        pipe.zadd(keys.promo_ends(), {m: score for m, (score, _) in rows.items()})
        pipe.hset(keys.promo_rows(), mapping={m: to_json(row) for m, (_, row) in rows.items()})
        pipe.hset(keys.promo_members(), customer_id, "\n".join(rows))
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
    def expiring(self, start: datetime, until: datetime, offset: int = 0, limit: int = 50) -> ExpiringPage:
        """Active promotions ending in [start, until), soonest first (ties by customer and
        feature, the member's order)."""
        lo, hi = epoch(start), f"({epoch(until)}"
        pipe = self.r.pipeline(transaction=False)
        pipe.zrangebyscore(self.keys.promo_ends(), lo, hi, start=offset, num=limit)
        pipe.zcount(self.keys.promo_ends(), lo, hi)
        members, total = pipe.execute()
        raws = self.r.hmget(self.keys.promo_rows(), members) if members else []
        return ExpiringPage([json.loads(raw) for raw in raws if raw], int(total))
