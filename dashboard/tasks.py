"""Celery tasks: thin actions that take ids, call the sync module and record outcomes.

Queues: ``hot`` (webhooks, the hot tier, refreshes after a dashboard write) and
``sweep`` (the reconciling sweep), so fresh work never waits behind 10,000 sweep jobs.
Every task is safe to run twice; a refresh never runs twice at once for one customer.
"""
from __future__ import annotations

import logging
import random
import time

from celery import shared_task
from django.conf import settings

from . import sync
from .read_model import ReadModel
from .stigg_client import BudgetExhausted, StiggClient, StiggRequestError, StiggUnavailable

log = logging.getLogger(__name__)

REFRESH_LOCK_SECONDS = 60
BUSY_RETRY_SECONDS = 1.0  # a refresh already running may have read before the change
MAX_RETRIES = 4
MAX_BACKOFF_SECONDS = 60.0
SWEEP_LOCK_SECONDS = 600

_client: StiggClient | None = None
_sweep_client: StiggClient | None = None
_read_model: ReadModel | None = None


def client() -> StiggClient:
    """One pooled client per worker process (threads share it)."""
    global _client
    if _client is None:
        _client = StiggClient.from_settings()
    return _client


def sweep_client() -> StiggClient:
    """The sweep's client: same connection settings, but held to the sweep's share of
    the request budget."""
    global _sweep_client
    if _sweep_client is None:
        from .budget import RequestBudget

        _sweep_client = StiggClient.from_settings(budget=RequestBudget.for_sweep())
    return _sweep_client


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


def _refresh(task, customer_id: str, reason: str, with_governance: bool | None) -> str:
    rm = read_model()
    rm.release_queued(customer_id)
    lock = rm.acquire_customer_lock(customer_id, REFRESH_LOCK_SECONDS)
    if not lock.acquired:
        if reason != "sweep":
            # The refresh in flight may have read Stigg before this change: come back.
            refresh_customer_now.apply_async((customer_id, reason), countdown=BUSY_RETRY_SECONDS)
        return "busy"
    try:
        stigg = sweep_client() if reason == "sweep" else client()
        found = sync.refresh_customer(stigg, rm, customer_id, with_governance=with_governance)
        return "refreshed" if found else "removed"
    except BudgetExhausted as exc:
        # Our budget is busy, Stigg is fine: come back when a slot frees up.
        raise task.retry(exc=exc, countdown=exc.retry_after or 1.0, max_retries=None)
    except StiggUnavailable as exc:
        rm.mark_customer_error(customer_id, f"Stigg unavailable: {exc}", sync.now())
        rm.record_errors(1)
        if exc.status == 429:
            rm.record_rate_limited(1)
        if reason == "sweep":
            return "unavailable"  # the next sweep (or the hot tier) tries again
        raise task.retry(exc=exc, countdown=backoff(task.request.retries, exc.retry_after),
                         max_retries=MAX_RETRIES)
    except StiggRequestError as exc:
        log.warning("Refresh of customer %s refused: %s", customer_id, exc)
        rm.mark_customer_error(customer_id, f"Stigg refused the request: {exc}", sync.now())
        rm.record_errors(1)
        return "failed"
    finally:
        lock.release()


@shared_task(bind=True, ignore_result=True)
def refresh_customer(self, customer_id: str, reason: str = "sweep", with_governance: bool | None = True) -> str:
    """A sweep's refresh of one customer (``sweep`` queue)."""
    return _refresh(self, customer_id, reason, with_governance)


@shared_task(bind=True, ignore_result=True)
def refresh_customer_now(self, customer_id: str, reason: str = "webhook") -> str:
    """A refresh somebody is waiting for (``hot`` queue): webhooks, the hot tier, and
    right after a write the dashboard made."""
    return _refresh(self, customer_id, reason, None)


def queue_refresh(customer_id: str, reason: str) -> bool:
    """Queue an immediate refresh unless one is already queued for this customer."""
    if not read_model().claim_queued(customer_id):
        return False
    refresh_customer_now.delay(customer_id, reason)
    return True


@shared_task(ignore_result=True)
def sweep_customers() -> dict:
    """The reconciling sweep: refresh the catalog, queue a refresh of every customer,
    and drop customers that disappeared from Stigg."""
    rm = read_model()
    lock = rm.acquire_sweep_lock(SWEEP_LOCK_SECONDS)
    if not lock.acquired:
        return {"skipped": "a sweep is already running"}
    started = time.monotonic()
    rm.record_sweep_started(sync.now())
    try:
        sync.refresh_catalog(sweep_client(), rm)
        known = set(rm.customer_ids())
        seen: set[str] = set()
        for customer in sweep_client().iter_customers():
            seen.add(customer.id)
            refresh_customer.delay(customer.id, "sweep", True)
        gone = sorted(known - seen)
        if gone:
            rm.remove_customers(gone)
        stats = {"customers": len(seen), "removed": len(gone), "queued_in": round(time.monotonic() - started, 2)}
    except (StiggUnavailable, StiggRequestError) as exc:
        log.warning("Sweep stopped early: %s", exc)
        rm.record_errors(1)
        stats = {"error": str(exc)}
    rm.record_sweep_finished(sync.now(), stats)
    lock.release()
    return stats


@shared_task(ignore_result=True)
def sweep_hot_customers() -> int:
    """Refresh the customers nearest their limits, or changed recently."""
    queued = 0
    for customer_id in read_model().hot_customers(settings.SYNC_HOT_UTILIZATION):
        queued += queue_refresh(customer_id, "hot")
    return queued
