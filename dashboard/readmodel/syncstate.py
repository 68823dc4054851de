"""Sync state: when each customer was last read, which are hot (near a limit, or changed
recently), the sweep's status and counters, and the small keys that keep background work
single: per-customer and per-round locks, queued-refresh claims, webhook dedupe."""
from __future__ import annotations

import json
import secrets
import time
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Any, Iterator, Mapping

from .base import CustomerLock, Store
from .customers import id_of_utilization_member
from .values import SyncStatus, as_str, iso, json_default, parse_time

# "Recently changed" keeps a customer in the hot tier this long after a webhook or a write.
CHANGED_TTL_SECONDS = 15 * 60
# Customers whose data is older than this count as "behind" in sync status, unless told.
DEFAULT_BEHIND_SECONDS = 15 * 60
DEFAULT_HOT_UTILIZATION = 0.8
# A per-customer refresh lock expires on its own so a crashed worker never blocks a customer.
DEFAULT_LOCK_TTL_SECONDS = 120
QUEUED_TTL_SECONDS = 300  # a queued refresh lost with a dead broker is retried after this
WEBHOOK_DEDUPE_TTL_SECONDS = 7 * 24 * 3600  # Stigg retries a delivery for well under this


class SyncState(Store):
    """Freshness, the hot tier, sync status, locks and claims."""

    def mark_changed(self, customer_id: str, ttl: float = CHANGED_TTL_SECONDS, now: float | None = None) -> None:
        """Keep a customer in the hot tier for ``ttl`` seconds (a webhook or a dashboard write)."""
        now = time.time() if now is None else now
        pipe = self.r.pipeline(transaction=True)
        pipe.zadd(self.keys.changed(), {customer_id: now + ttl})
        # Expired entries are dropped here, by the writer, so reads stay read-only.
        pipe.zremrangebyscore(self.keys.changed(), "-inf", now)
        pipe.execute()

    # --- queueing and dedupe (used by tasks and the webhook endpoint) ----------------------------

    def claim_queued(self, customer_id: str, ttl: float = QUEUED_TTL_SECONDS, what: str = "customer") -> bool:
        """True for the first caller that queues a refresh of this customer (``what``: the
        customer, or its usage "history"); later callers see it is already queued and spend
        no broker message and no Stigg request on it."""
        return bool(self.r.set(self.keys.queued(customer_id, what), "1", nx=True, px=max(1, int(ttl * 1000))))

    def release_queued(self, customer_id: str, what: str = "customer") -> None:
        """Called when the queued refresh starts: a change after this point queues anew."""
        self.r.delete(self.keys.queued(customer_id, what))

    def claim_write(self, token: str, ttl: float) -> bool:
        """True for the one request that may send the write of a form's token; a twin
        (a double click, a retried request) waits for that one's audit row instead."""
        return bool(self.r.set(self.keys.write_claim(token), "1", nx=True, px=max(1, int(ttl * 1000))))

    def webhook_first_seen(self, message_id: str, ttl: float = WEBHOOK_DEDUPE_TTL_SECONDS) -> bool:
        """True the first time a webhook messageId arrives; Stigg may deliver one twice."""
        return bool(self.r.set(self.keys.webhook_seen(message_id), "1", nx=True, px=int(ttl * 1000)))

    def forget_webhook(self, message_id: str) -> None:
        """Undo ``webhook_first_seen`` for a delivery that was not acted on (the task queue
        was down and it was answered 503): Stigg's retry of it must not read "duplicate"."""
        self.r.delete(self.keys.webhook_seen(message_id))

    def acquire_sweep_lock(self, ttl: float, what: str = "sweep") -> CustomerLock:
        """The full sweep (``what``: or a hot-tier round) is exclusive: two beats, or a
        beat and a manual run, never overlap."""
        return self._acquire(self.keys.round_lock(what), ttl)


    # --- freshness and hot tier -----------------------------------------------------------------

    def stale_customers(self, older_than: float, now: float | None = None, limit: int | None = None) -> list[str]:
        """Customers whose last good fetch is older than ``older_than`` seconds, oldest first."""
        now = time.time() if now is None else now
        args = {"start": 0, "num": limit} if limit is not None else {}
        return [as_str(m) for m in self.r.zrangebyscore(self.keys.fetched_at(), "-inf", f"({now - older_than}", **args)]

    def hot_customers(self, threshold: float | None = None, now: float | None = None,
                      limit: int | None = None) -> list[str]:
        """Customers with anything at or above ``threshold`` utilization (a metered
        entitlement or a governance budget), or changed recently — in the order a hot-tier
        poll should take them, at most ``limit``.

        Order: customers with an entitlement near its limit first (at the limit the whole
        customer is blocked), then the recently changed (somebody acted, or Stigg said so;
        a webhook already refreshed them once), then those with only a budget near its
        limit (that blocks one team, user or agent). Within each, the longest unread
        first, so a tier larger than one round is polled round-robin. A lower tier gets
        what the higher ones leave; the sweep still reaches everyone."""
        if threshold is None:
            threshold = hot_threshold()
        now = time.time() if now is None else now
        pipe = self.r.pipeline(transaction=False)
        pipe.zrangebyscore(self.keys.changed(), f"({now}", "+inf")
        pipe.zrangebyscore(self.keys.order("utilization"), threshold, "+inf")
        pipe.zrangebyscore(self.keys.budget_utilization(), threshold, "+inf")
        changed, near, budgets = pipe.execute()
        tiers = [[id_of_utilization_member(as_str(m)) for m in near], [as_str(m) for m in changed],
                 [as_str(m) for m in budgets]]
        everyone = list({cid for tier in tiers for cid in tier})
        read_at = dict(zip(everyone, self.r.zmscore(self.keys.fetched_at(), everyone))) if everyone else {}
        ordered: list[str] = []
        seen: set[str] = set()
        for tier in tiers:
            for cid in sorted(set(tier) - seen, key=lambda c: (read_at.get(c) or 0.0, c)):
                ordered.append(cid)
                seen.add(cid)
        return ordered if limit is None else ordered[:limit]

    def fetched_at(self, customer_id: str) -> datetime | None:
        score = self.r.zscore(self.keys.fetched_at(), customer_id)
        return datetime.fromtimestamp(score, timezone.utc) if score else None

    # --- sync status -----------------------------------------------------------------------------

    def record_sweep_started(self, at: datetime) -> None:
        self.r.hset(self.keys.sync_status(), "started_at", iso(at) or "")

    def record_sweep_finished(self, at: datetime, stats: Mapping[str, Any]) -> None:
        started = parse_time(as_str(self.r.hget(self.keys.sync_status(), "started_at")) or None)
        duration = (at - started).total_seconds() if started else None
        self.r.hset(self.keys.sync_status(), mapping={
            "finished_at": iso(at) or "", "duration": "" if duration is None else str(duration),
            "stats": json.dumps(dict(stats), default=json_default)})

    def record_discovery(self, at: datetime) -> None:
        """A sweep that asked every customer for promotions and budgets (not only those
        known to have them) started at ``at``."""
        self.r.hset(self.keys.sync_status(), "discovery_at", iso(at) or "")

    def last_discovery(self) -> datetime | None:
        return parse_time(as_str(self.r.hget(self.keys.sync_status(), "discovery_at")) or None)

    def record_errors(self, count: int = 1) -> None:
        # A counter of events seen, not state: an increment is the honest representation.
        self.r.hincrby(self.keys.sync_counters(), "errors", count)

    def record_rate_limited(self, count: int = 1) -> None:
        self.r.hincrby(self.keys.sync_counters(), "rate_limited", count)

    def sync_status(self, behind_after: float | None = None, now: float | None = None) -> SyncStatus:
        """Everything the pages and /healthz show about sync, in one round trip."""
        if behind_after is None:
            behind_after = DEFAULT_BEHIND_SECONDS
        now = time.time() if now is None else now
        pipe = self.r.pipeline(transaction=False)
        pipe.hgetall(self.keys.sync_status())
        pipe.hgetall(self.keys.sync_counters())
        pipe.hlen(self.keys.rows())
        pipe.zcount(self.keys.fetched_at(), "-inf", f"({now - behind_after}")
        pipe.scard(self.keys.errored())
        status, counters, total, behind, errored = pipe.execute()
        status = {as_str(k): as_str(v) for k, v in status.items()}
        counters = {as_str(k): int(v) for k, v in counters.items()}
        started = parse_time(status.get("started_at") or None)
        finished = parse_time(status.get("finished_at") or None)
        return SyncStatus(
            last_sweep_started_at=started, last_sweep_finished_at=finished,
            last_sweep_duration=float(status["duration"]) if status.get("duration") else None,
            last_sweep_stats=json.loads(status["stats"]) if status.get("stats") else {},
            sweep_running=started is not None and (finished is None or finished < started),
            customers_total=int(total), customers_behind=int(behind), customers_in_error=int(errored),
            errors_seen=counters.get("errors", 0), rate_limited_seen=counters.get("rate_limited", 0),
        )

    def oldest_fetched_at(self) -> float | None:
        """When the customer read longest ago was read (epoch seconds): the sync's lag."""
        oldest = self.r.zrange(self.keys.fetched_at(), 0, 0, withscores=True)
        return float(oldest[0][1]) if oldest else None

    # --- /healthz ----------------------------------------------------------------------------------

    def write_probe(self, who: str, ttl: float = 60.0) -> bool:
        """Write a value and read it back: Redis accepts writes (not only answers a ping)."""
        key, value = self.keys.health(f"write:{who}"), secrets.token_hex(8)
        pipe = self.r.pipeline(transaction=True)
        pipe.set(key, value, px=int(ttl * 1000))
        pipe.get(key)
        return as_str(pipe.execute()[1]) == value

    def cached_stigg_health(self) -> dict[str, Any] | None:
        raw = self.r.get(self.keys.health("stigg"))
        return json.loads(raw) if raw else None

    def claim_stigg_probe(self, ttl: float) -> bool:
        """One process at a time asks Stigg whether it answers; the others read its result."""
        return bool(self.r.set(self.keys.health("stigg:probe"), "1", nx=True, px=int(ttl * 1000)))

    def store_stigg_health(self, result: Mapping[str, Any], ttl: float) -> None:
        self.r.set(self.keys.health("stigg"), json.dumps(result), px=int(ttl * 1000))

    # --- locks -------------------------------------------------------------------------------------

    @contextmanager
    def customer_lock(self, customer_id: str, ttl: float = DEFAULT_LOCK_TTL_SECONDS) -> Iterator[CustomerLock]:
        """``with rm.customer_lock(cid) as lock: if not lock.acquired: return`` — a refresh
        never runs twice at once for one customer. Released only by its owner (the token)."""
        lock = self.acquire_customer_lock(customer_id, ttl)
        try:
            yield lock
        finally:
            lock.release()

    def acquire_customer_lock(self, customer_id: str, ttl: float = DEFAULT_LOCK_TTL_SECONDS) -> CustomerLock:
        return self._acquire(self.keys.customer_lock(customer_id), ttl)


def hot_threshold() -> float:
    """The utilization at which an entitlement or a budget puts its customer in the hot tier."""
    return _setting("SYNC_HOT_UTILIZATION", DEFAULT_HOT_UTILIZATION)


def _setting(name: str, default: float) -> float:
    try:
        from django.conf import settings

        return float(getattr(settings, name, default))
    except Exception:  # settings not configured (a script): the default is right
        return default

