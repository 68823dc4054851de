"""Usage history: one whole value per customer, what the customer page's charts draw."""
from __future__ import annotations

import redis

from .base import Store
from .documents import UsageHistoryDoc
from .packed import pack, unpack


class HistoryStore(Store):
    def write_usage_history(self, customer_id: str, history: UsageHistoryDoc) -> None:
        """One whole value per customer. Written only while the customer exists, so a
        history fetched for a customer removed meanwhile does not linger."""
        def write(pipe: redis.client.Pipeline) -> None:
            if not pipe.exists(self.keys.customer(customer_id)):
                return
            pipe.multi()
            pipe.set(self.keys.history(customer_id), pack(history))

        self._transaction(write, customer_id)

    def usage_history(self, customer_id: str) -> UsageHistoryDoc | None:
        raw = self.r.get(self.keys.history(customer_id))
        return unpack(raw) if raw else None
