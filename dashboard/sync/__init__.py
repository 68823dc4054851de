"""From Stigg to the read model: ``refresh`` fetches (through the client) and writes (through
the read model); ``shaping`` turns Stigg's answers into the stored documents. The Celery
tasks, the rebuild command and the benchmarks call what is exported here."""
from .refresh import (
    PARTS, POLL_PARTS, customer_from_message, customer_message, now, parts_for_webhook, refresh_catalog,
    refresh_customer, refresh_usage_history,
)
from .shaping import build_snapshot

__all__ = [
    "PARTS", "POLL_PARTS", "build_snapshot", "customer_from_message", "customer_message", "now",
    "parts_for_webhook", "refresh_catalog", "refresh_customer", "refresh_usage_history",
]
