"""The webhook outbox: events recorded in the same write transaction as the change that
caused them, so an event is queued if and only if the change commits. Delivery reads
the same table in the background (``delivery.py``); nothing here sends anything."""
from __future__ import annotations

import sqlite3
import time
import uuid
from typing import Any

from .. import clock, store


def emit(c: sqlite3.Connection, event_type: str, customer_id: str, data: dict[str, Any] | None = None) -> None:
    """Queue one event inside the caller's write transaction. Only queued while a
    webhook target is configured, so an unconfigured emulator keeps no outbox."""
    target = store.get_control(c)["webhook"]
    if not target.get("url"):
        return
    message = {
        "messageId": str(uuid.uuid4()),
        "type": event_type,
        "createdAt": clock.iso(clock.now()),
        # Inferred: data is the affected REST object; customerId is always present so
        # a receiver can refresh that customer without knowing each object's shape.
        "data": {"customerId": customer_id, **(data or {})},
    }
    c.execute(
        "INSERT INTO webhook_outbox (message_id, doc, next_attempt_at) VALUES (?, ?, ?)",
        (message["messageId"], store.dumps(message), time.time()),
    )
