"""Celery tasks: thin actions that take ids, call the sync module and record outcomes.

Queues: ``hot`` (webhooks, the hot tier, refreshes after a dashboard write) and
``sweep`` (the reconciling sweep, a task per page of 100 customers), so fresh work
never waits behind a full sweep.
Every task is safe to run twice; a refresh never runs twice at once for one customer.
"""
from __future__ import annotations

import logging
import random
import time
from typing import Callable

import redis
from celery import Task, shared_task
from django.conf import settings
from kombu.exceptions import ChannelError
from kombu.exceptions import OperationalError as BrokerUnavailable

from . import sync
from .delivery_tasks import queue_limit_notices
from .ratelimit import RequestRateLimiter
from .readmodel import ReadModel, parse_time
from .readmodel.base import CustomerLock
from .stigg import RateLimitExhausted, StiggClient, StiggRequestError, StiggUnavailable

log = logging.getLogger(__name__)
refresh_log = logging.getLogger("dashboard.refresh")

# A refresh renews its lock while it works (CustomerLock.keep_alive): this is how long a
# worker killed mid-refresh blocks the next refresh of that customer, not a time limit.
REFRESH_LOCK_SECONDS = 60
BUSY_RETRY_SECONDS = 1.0  # a refresh already running may have read before the change
MAX_RETRIES = 4
MAX_BACKOFF_SECONDS = 60.0
SWEEP_LOCK_SECONDS = 600
HOT_POLL_REQUESTS = 2  # a hot-tier poll asks for entitlements, and budgets where the customer has some

_clients: dict[str, StiggClient] = {}
_read_model: ReadModel | None = None


def _shared_client(share: str) -> StiggClient:
    """One pooled client per worker process and share of the request rate (threads share it)."""
    if share not in _clients:
        limiter = {"all": RequestRateLimiter.from_settings, "sweep": RequestRateLimiter.for_sweep,
                   "hot": RequestRateLimiter.for_hot_tier, "bulk": RequestRateLimiter.for_bulk}[share]()
        _clients[share] = StiggClient.from_settings(rate_limiter=limiter)
    return _clients[share]


def client() -> StiggClient:
    """Refreshes somebody waits for: the whole request rate."""
    return _shared_client("all")


def hot_tier_client() -> StiggClient:
    """The hot tier's polls: held to SYNC_HOT_RATE_SHARE of the request rate."""
    return _shared_client("hot")


def sweep_client() -> StiggClient:
    """The sweep: held to SYNC_SWEEP_RATE_SHARE of the request rate."""
    return _shared_client("sweep")


def bulk_client() -> StiggClient:
    """A bulk grant's job: held to BULK_GRANT_RATE requests a second, grants and read-backs."""
    return _shared_client("bulk")


def read_back(stigg: StiggClient, customer_id: str) -> str:
    """Read one customer back after a write, with the caller's client (a bulk job's: its
    own share of the request rate), not by queueing a refresh on the whole rate. Returns
    the outcome as a hot-tier poll does ("refreshed", "busy", "failed", …)."""
    return _refresh_with(stigg, customer_id, parts=sync.parts_for_webhook("promotional_entitlement"))


def read_model() -> ReadModel:
    global _read_model
    if _read_model is None:
        _read_model = ReadModel.from_settings()
    return _read_model


def backoff(retries: int, retry_after: float | None) -> float:
    if retry_after:
        return min(MAX_BACKOFF_SECONDS, retry_after)
    base = min(MAX_BACKOFF_SECONDS, 2.0 ** retries)
    return base * (0.75 + random.random() * 0.5)


READ_MODEL_UNREACHABLE = (redis.ConnectionError, redis.TimeoutError)


class ReadModelTask(Task):
    """A task that needs the read model's Redis. Redis unreachable (restarting, a network
    cut) is an outage to wait out, not a bug in the task: one warning line, no traceback.
    A refresh somebody waits for (``retry_unreachable``) is retried with backoff; anything
    else is left to its next run (the sweep, the hot tier and the alert pass come round by
    themselves and rebuild whatever a restarted Redis lost)."""

    retry_unreachable = False

    def __call__(self, *args, **kwargs):
        if self.request.called_directly:  # a plain call inside another task: that task decides
            return super().__call__(*args, **kwargs)
        try:
            return self.run(*args, **kwargs)  # the worker has pushed this run's request
        except READ_MODEL_UNREACHABLE as exc:
            if self.retry_unreachable and self.request.retries < MAX_RETRIES:
                raise self.retry(exc=exc, countdown=backoff(self.request.retries, None), max_retries=MAX_RETRIES)
            log.warning("%s not done: the read model's Redis is unreachable (%s)", self.name, exc)
            return "skipped: the read model is unreachable"


@shared_task(bind=True, ignore_result=True, base=ReadModelTask, retry_unreachable=True)
def refresh_customer_now(self, customer_id: str, reason: str = "webhook", received_at: float | None = None) -> str:
    """A refresh somebody is waiting for (``hot`` queue): webhooks, the hot tier, and
    right after a write the dashboard made. Retried with backoff while Stigg is down.
    ``received_at`` (a webhook's arrival, epoch seconds): a customer read since then
    already holds what the event announced (Stigg sends it after the change), so nothing
    is asked again — a bulk grant's job reads each customer back right after its webhook."""
    rm = read_model()
    rm.release_queued(customer_id)
    if received_at is not None and _read_since(rm, customer_id, received_at):
        return "fresh"
    lock = _lock(rm, customer_id)
    if not lock.acquired:
        # The refresh in flight may have read Stigg before this change: come back.
        try:
            refresh_customer_now.apply_async((customer_id, reason, received_at), countdown=BUSY_RETRY_SECONDS)
        except (BrokerUnavailable, OSError) as exc:
            # Kept among the recently changed for SYNC_HOT_CHANGED_SECONDS: the hot tier polls
            # it once beat reaches the broker again, and the sweep comes round in any case.
            rm.mark_changed(customer_id, ttl=settings.SYNC_HOT_CHANGED_SECONDS)
            log.warning("Refresh of customer %s not queued again behind the one in flight, the broker is "
                        "unreachable; the hot tier polls it: %s", customer_id, exc,
                        extra={"customer_id": customer_id})
        return "busy"
    try:
        found = sync.refresh_customer(client(), rm, customer_id, parts=_parts_for(reason))
        queue_alert_evaluation([customer_id])
        return "refreshed" if found else "removed"
    except RateLimitExhausted as exc:
        # Our rate limit is busy, Stigg is fine: come back when a slot frees up.
        raise self.retry(exc=exc, countdown=exc.retry_after or 1.0, max_retries=None)
    except StiggUnavailable as exc:
        _record_failure(rm, customer_id, exc)
        return _retry_or_give_up(self, exc, f"Refresh of customer {customer_id}")
    except StiggRequestError as exc:
        _record_failure(rm, customer_id, exc)
        return "failed"
    finally:
        _unlock(lock, customer_id)


def _lock(rm: ReadModel, customer_id: str) -> CustomerLock:
    """The customer's lock, kept alive while its refresh works: one refresh of a customer
    at a time, across every worker process on every host."""
    return rm.acquire_customer_lock(customer_id, REFRESH_LOCK_SECONDS).keep_alive()


def _unlock(lock: CustomerLock, customer_id: str) -> None:
    """Release, and say for how long it was held (one line per refresh, with the customer id:
    what shows that two sets of workers never refreshed one customer at once)."""
    if lock.acquired:
        held = time.time() - lock.taken_at
        lock.release()
        refresh_log.info("refreshed customer %s in %.0f ms", customer_id, held * 1000,
                         extra={"customer_id": customer_id, "started_at": round(lock.taken_at, 6),
                                "duration_ms": round(held * 1000, 1)})


def _read_since(rm: ReadModel, customer_id: str, at: float) -> bool:
    """Whether the customer's last read started at or after ``at`` (epoch seconds)."""
    doc = rm.customer(customer_id)
    fetched = parse_time(doc.get("fetched_at")) if doc else None
    return fetched is not None and fetched.timestamp() >= at


def _retry_or_give_up(task: Task, exc: StiggUnavailable, what: str) -> str:
    """Retry while Stigg is unavailable, with backoff, MAX_RETRIES times; then give up in a
    warning line, not a task failure with its traceback: an outage longer than the retries
    is not a bug, and the refresh is not lost — the customer is marked, a webhook's customer
    stays in the hot tier, the sweep comes round, a page view asks for its charts again."""
    if task.request.retries < MAX_RETRIES:
        raise task.retry(exc=exc, countdown=backoff(task.request.retries, exc.retry_after), max_retries=MAX_RETRIES)
    log.warning("%s given up after %d retries: %s", what, MAX_RETRIES, exc)
    return "gave up"


def _record_failure(rm: ReadModel, customer_id: str, exc: StiggUnavailable | StiggRequestError) -> None:
    """Mark the customer (its last good data stays) and count the error, and the 429."""
    if isinstance(exc, StiggUnavailable):
        message = f"Stigg unavailable: {exc}"
        if exc.status == 429:
            rm.record_rate_limited(1)
    else:
        log.warning("Refresh of customer %s refused: %s", customer_id, exc)
        message = f"Stigg refused the request: {exc}"
    rm.mark_customer_error(customer_id, message, sync.now())
    rm.record_errors(1)


def _parts_for(reason: str) -> frozenset[str]:
    """What a refresh asks Stigg for: what its cause can have changed."""
    if reason.startswith("webhook:"):
        return sync.parts_for_webhook(reason.split(":", 1)[1])
    if reason == "promotion":  # a grant, extension or revoke made here: what a promotion webhook changes
        return sync.parts_for_webhook("promotional_entitlement")
    return sync.PARTS  # a write, a person pressing refresh, a retry after an outage


def _queue_once(customer_id: str, what: str, send: Callable[[], object]) -> bool:
    """Send a refresh task unless one is already queued (its claim, ``what``). A broker
    that cannot take the message raises, and the claim is given back first: nothing is
    queued, so the next webhook or click must queue it, not find it "already queued"."""
    rm = read_model()
    if not rm.claim_queued(customer_id, what=what):
        return False
    try:
        send()
    except (BrokerUnavailable, OSError):
        rm.release_queued(customer_id, what)
        raise
    return True


def queue_refresh(customer_id: str, reason: str, received_at: float | None = None) -> bool:
    """Queue an immediate refresh unless one is already queued for this customer
    (``received_at``: see refresh_customer_now)."""
    extra = () if received_at is None else (received_at,)
    return _queue_once(customer_id, "customer", lambda: refresh_customer_now.delay(customer_id, reason, *extra))


@shared_task(bind=True, ignore_result=True, base=ReadModelTask, retry_unreachable=True)
def refresh_usage_history(self, customer_id: str) -> str:
    """The customer page's usage charts (``hot`` queue: somebody is looking at them)."""
    rm = read_model()
    rm.release_queued(customer_id, "history")
    try:
        found = sync.refresh_usage_history(client(), rm, customer_id, settings.USAGE_HISTORY_DAYS)
    except RateLimitExhausted as exc:
        raise self.retry(exc=exc, countdown=exc.retry_after or 1.0, max_retries=None)
    except StiggUnavailable as exc:
        if exc.status == 429:
            rm.record_rate_limited(1)
        return _retry_or_give_up(self, exc, f"Usage history of customer {customer_id}")
    return "refreshed" if found else "no such customer"


def queue_usage_history(customer_id: str) -> bool:
    """Queue a fetch of a customer's usage history unless one is already queued."""
    return _queue_once(customer_id, "history", lambda: refresh_usage_history.delay(customer_id))


@shared_task(bind=True, ignore_result=True, base=ReadModelTask)
def refresh_customer_page(self, customers: list[dict], discover: bool = False) -> dict:
    """A sweep's refresh of one page of customers (``sweep`` queue): their subscriptions
    in one call for the whole page, then each customer's entitlements, and promotions
    and budgets where they may exist (all of them when ``discover``). One customer
    failing marks that customer and the page goes on."""
    rm, stigg = read_model(), sweep_client()
    ids = [c["id"] for c in customers]
    try:
        subscriptions = list(stigg.iter_subscriptions(customer_ids=ids))
    except RateLimitExhausted as exc:
        raise self.retry(exc=exc, countdown=exc.retry_after or 1.0, max_retries=None)
    except (StiggUnavailable, StiggRequestError) as exc:
        log.warning("Sweep page of %d customers skipped: %s", len(ids), exc)
        rm.record_errors(1)
        return {"skipped": len(ids)}
    by_customer: dict[str, list] = {cid: [] for cid in ids}
    for sub in subscriptions:
        by_customer.setdefault(sub.customer_id, []).append(sub)
    outcomes: dict[str, int] = {}
    written = []
    for message in customers:
        cid = message["id"]
        outcome = _refresh_with(stigg, cid, customer=sync.customer_from_message(message),
                                subscriptions=by_customer[cid], discover=discover)
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
        if outcome == "refreshed":
            written.append(cid)
    queue_alert_evaluation(written)
    return outcomes


def _refresh_with(stigg: StiggClient, customer_id: str, **known) -> str:
    """One customer of a sweep page or a hot-tier round: locked, errors recorded on that
    customer only."""
    rm = read_model()
    lock = _lock(rm, customer_id)
    if not lock.acquired:
        return "busy"  # a fresher refresh is running right now
    try:
        sync.refresh_customer(stigg, rm, customer_id, **known)
        return "refreshed"
    except RateLimitExhausted:
        return "deferred"  # the next sweep or the hot tier gets it
    except StiggUnavailable as exc:
        _record_failure(rm, customer_id, exc)
        return "unavailable"
    except StiggRequestError as exc:
        _record_failure(rm, customer_id, exc)
        return "failed"
    finally:
        _unlock(lock, customer_id)


@shared_task(ignore_result=True, base=ReadModelTask)
def sweep_customers() -> dict:
    """The reconciling sweep: refresh the catalog, queue a refresh of every page of
    customers, and drop customers that disappeared from Stigg.

    Not while the sweep queue still holds work: the last sweep's pages (and their alert
    evaluations) outlasting the interval — Stigg answering slowly, a 429 storm — would
    otherwise be joined by another sweep's pages every interval, refreshing the same
    customers again and again and growing the queue for as long as Stigg stays slow. A
    sweep starts once the last one's work has left the queue: back to back at most."""
    try:
        waiting = tasks_waiting(settings.CELERY_TASK_DEFAULT_QUEUE)
    except (BrokerUnavailable, OSError) as exc:
        log.warning("Sweep not started, the broker is unreachable: %s", exc)
        return {"skipped": "the broker is unreachable"}
    if waiting:
        log.info("Sweep not started: %d tasks of the last one still wait in the queue", waiting)
        return {"skipped": f"{waiting} tasks of the last sweep still waiting"}
    rm = read_model()
    lock = rm.acquire_sweep_lock(SWEEP_LOCK_SECONDS)
    if not lock.acquired:
        return {"skipped": "a sweep is already running"}
    try:
        return _sweep(rm)
    finally:
        lock.release()


def tasks_waiting(queue: str) -> int:
    """Messages waiting in a Celery queue (not counting those a worker holds)."""
    with sweep_customers.app.connection_for_read() as connection:
        try:
            return connection.default_channel.queue_declare(queue=queue, passive=True).message_count
        except ChannelError:  # no such queue: with Redis, an empty queue's list does not exist
            return 0


def _sweep(rm: ReadModel) -> dict:
    started = time.monotonic()
    rm.ensure_layout()
    rm.record_sweep_started(sync.now())
    try:
        sync.refresh_catalog(sweep_client(), rm)
        last = rm.last_discovery()
        discover = last is None or (sync.now() - last).total_seconds() >= settings.SYNC_DISCOVERY_INTERVAL_SECONDS
        if discover:
            rm.record_discovery(sync.now())
        known = set(rm.customer_ids())
        seen: set[str] = set()
        for page in sweep_client().iter_customer_pages():
            seen.update(c.id for c in page)
            refresh_customer_page.delay([sync.customer_message(c) for c in page], discover)
        gone = sorted(known - seen)
        if gone:
            rm.remove_customers(gone)
            queue_alert_evaluation(gone)  # their alerts close: nothing left to alert about
        stats = {"customers": len(seen), "removed": len(gone), "discovery": discover,
                 "queued_in": round(time.monotonic() - started, 2)}
    except (StiggUnavailable, StiggRequestError) as exc:
        log.warning("Sweep stopped early: %s", exc)
        rm.record_errors(1)
        stats = {"error": str(exc)}
    except (BrokerUnavailable, OSError) as exc:
        # The broker went away while pages were being queued: those sent are refreshed, the
        # rest wait for the next sweep; nobody is removed (not every page was read).
        log.warning("Sweep stopped early, the broker is unreachable: %s", exc)
        stats = {"error": f"the broker is unreachable: {exc}"}
    rm.record_sweep_finished(sync.now(), stats)
    return stats


@shared_task(ignore_result=True, base=ReadModelTask)
def sweep_hot_customers() -> dict:
    """One hot-tier round: poll the customers nearest their limits, or changed recently,
    as many as the hot tier's share of the request rate allows in one interval, most
    urgent and longest unread first (see ReadModel.hot_customers).

    The round polls one customer after another in this one task, instead of fanning out
    a task per customer: a poll waiting for a rate-limit slot then holds one worker thread,
    never all of them, and refreshes somebody waits for (webhooks, Refresh now) are
    picked up by the others at once."""
    rm = read_model()
    lock = rm.acquire_sweep_lock(settings.SYNC_HOT_INTERVAL_SECONDS * 4, what="hot")
    if not lock.acquired:
        return {"skipped": "a hot-tier round is still running"}
    outcomes: dict[str, int] = {}
    try:
        for customer_id in rm.hot_customers(settings.SYNC_HOT_UTILIZATION, limit=hot_tier_capacity()):
            outcome = _refresh_with(hot_tier_client(), customer_id, parts=sync.POLL_PARTS)
            outcomes[outcome] = outcomes.get(outcome, 0) + 1
            if outcome == "refreshed":
                queue_alert_evaluation([customer_id])
            if outcome in ("deferred", "unavailable"):
                break  # the share is spent, or Stigg is down: the next round goes on
    finally:
        lock.release()
    return outcomes


def hot_tier_capacity() -> int:
    """Customers one hot-tier round may poll: its share of the request rate over one
    interval, at about two requests a poll (entitlements, and budgets where they exist)."""
    hot_rps = settings.STIGG_MAX_RPS * settings.SYNC_HOT_RATE_SHARE
    return max(1, int(settings.SYNC_HOT_INTERVAL_SECONDS * hot_rps / HOT_POLL_REQUESTS))


# --- alerts --------------------------------------------------------------------------------


def queue_alert_evaluation(customer_ids: list[str]) -> None:
    """After a sync wrote (or removed) customers: evaluate their alerts, from the read model
    only. One task for one customer (the ``hot`` queue: a refresh somebody may be waiting
    for), one for a sweep page. Never fails the refresh: the fleet pass catches up."""
    if not customer_ids:
        return
    try:
        if len(customer_ids) == 1:
            evaluate_alerts.delay(customer_ids[0])
        else:
            evaluate_alerts_of.delay(customer_ids)
    except (BrokerUnavailable, OSError) as exc:  # the broker went away after the refresh: the beat pass catches up
        log.warning("Alert evaluation of %d customers not queued: %s", len(customer_ids), exc)


def _alert_evaluation(run, what: str) -> dict:
    """Run an evaluation, then queue the notices of alerts it put at their limit; the
    database being unreachable (or not migrated) is logged, not raised: evaluation is
    idempotent and the next pass does it again."""
    from django.db import DatabaseError

    try:
        outcome = run()
    except DatabaseError as exc:
        log.warning("Alerts of %s not evaluated, the database failed: %s", what, exc)
        return {"error": str(exc)}
    queue_limit_notices(outcome.limits)
    return outcome.as_dict()


@shared_task(ignore_result=True, base=ReadModelTask)
def evaluate_alerts(customer_id: str) -> dict:
    """Open, escalate and close one customer's alerts (rules/alerts.py) from the read model."""
    from .alerts import evaluate, subjects

    return _alert_evaluation(lambda: evaluate.evaluate_customer(read_model(), customer_id, sync.now(),
                                                                subjects.thresholds()), customer_id)


@shared_task(ignore_result=True, base=ReadModelTask)
def evaluate_alerts_of(customer_ids: list[str]) -> dict:
    """evaluate_alerts for each customer of a sweep page, in one task."""
    totals: dict[str, int] = {}
    for customer_id in customer_ids:
        outcome = evaluate_alerts(customer_id)
        for name in ("opened", "escalated", "updated"):
            totals[name] = totals.get(name, 0) + int(outcome.get(name, 0))
    return totals


@shared_task(ignore_result=True, base=ReadModelTask)
def evaluate_all_alerts() -> dict:
    """The pass over every customer's alerts (beat): closes alerts whose subject vanished
    and catches up with evaluations that were never queued. Skipped while the read model
    has no finished sweep (emptied for a rebuild): everything would look vanished."""
    from .alerts import evaluate, subjects

    rm = read_model()
    if rm.sync_status(settings.SYNC_STALE_AFTER_SECONDS).last_sweep_finished_at is None:
        return {"skipped": "no finished sweep in the read model"}
    lock = rm.acquire_sweep_lock(settings.ALERT_EVALUATE_INTERVAL_SECONDS * 2, what="alerts")
    if not lock.acquired:
        return {"skipped": "a pass is still running"}
    try:
        return _alert_evaluation(lambda: evaluate.evaluate_fleet(rm, sync.now(), subjects.thresholds()), "the fleet")
    finally:
        lock.release()
