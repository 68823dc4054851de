"""Promotional entitlements (stigg-api.md §6): status from the clock, end dates by period,
replacing a grant, and announcing expiries. A promotion is Active until its endDate;
nothing stores the status, so advancing the clock expires it at once."""
from __future__ import annotations

import sqlite3
from datetime import datetime, timedelta
from typing import Any

from .. import clock, periods, store
from ..webhooks import outbox

EXPIRED_NOTIFIED = "_expiredNotified"  # internal key, stripped when rendering


def promotion_status(doc: dict[str, Any], now: datetime) -> str:
    if doc.get("status") == "Paused":
        return "Paused"  # Inferred: only seeding sets Paused, and it grants nothing
    end = doc.get("endDate")
    return "Active" if end is None or clock.parse(end) > now else "Expired"


def render_promotion(doc: dict[str, Any], now: datetime | None = None) -> dict[str, Any]:
    out = {k: v for k, v in doc.items() if not k.startswith("_")}
    out["status"] = promotion_status(doc, now or clock.now())
    return out


def end_date(period: str, start: datetime, custom: datetime | None) -> datetime | None:
    """Inferred mapping of §6: calendar arithmetic in UTC."""
    if period == "1 week":
        return start + timedelta(days=7)
    months = {"1 month": 1, "6 month": 6, "1 year": 12}.get(period)
    if months:
        return periods.add_months(start, months)
    return custom if period == "custom" else None


def replace_promotion(c: sqlite3.Connection, customer_id: str, doc: dict[str, Any]) -> None:
    """Replace, not stack (guarantee 15): the old record goes, the new one gets a new id
    and a new seq, so it lists after older grants."""
    c.execute("DELETE FROM promotions WHERE customer_id=? AND feature_id=?", (customer_id, doc["featureId"]))
    c.execute("INSERT INTO promotions (customer_id, feature_id, created_at, doc) VALUES (?, ?, ?, ?)",
              (customer_id, doc["featureId"], doc["createdAt"], store.dumps(doc)))
    outbox.emit(c, "promotional_entitlement.granted", customer_id, render_promotion(doc))


def expire_due_promotions(c: sqlite3.Connection) -> int:
    """Emit promotional_entitlement.expired once per promotion whose endDate has passed.
    Returns how many were announced. Safe to call from any thread, repeatedly."""
    if c.in_transaction:
        return _expire(c)
    # store.write() would use this thread's default connection, not the one given.
    c.execute("BEGIN IMMEDIATE")
    try:
        count = _expire(c)
    except BaseException:
        c.execute("ROLLBACK")
        raise
    c.execute("COMMIT")
    return count


def _expire(c: sqlite3.Connection) -> int:
    # The dispatcher thread serves no request, so it reads the clock offset itself.
    clock.set_request_offset(float(store.get_control(c).get("clockOffsetSeconds") or 0))
    now = clock.now()
    rows = c.execute(
        "SELECT seq, customer_id, doc FROM promotions WHERE json_extract(doc, '$.endDate') IS NOT NULL "
        f"AND json_extract(doc, '$.{EXPIRED_NOTIFIED}') IS NULL AND json_extract(doc, '$.endDate') <= ?",
        (clock.iso(now),),
    ).fetchall()
    for row in rows:
        doc = store.loads(row["doc"])
        doc[EXPIRED_NOTIFIED] = clock.iso(now)
        c.execute("UPDATE promotions SET doc=? WHERE seq=?", (store.dumps(doc), row["seq"]))
        outbox.emit(c, "promotional_entitlement.expired", row["customer_id"], render_promotion(doc, now))
        outbox.emit(c, "entitlements.updated", row["customer_id"], {"featureIds": [doc["featureId"]]})
    return len(rows)
