"""The bulk grant's Celery tasks, apart from tasks.py (as approval_tasks.py is): the
actions use tasks.py, so tasks.py does not import them back.

A batch's job runs in slices: one task grants rows for up to SLICE_SECONDS, then queues
the next slice, so no task nears Celery's time limits (CELERY_TASK_SOFT_TIME_LIMIT) and no
worker thread is held for a whole batch. A lock per batch keeps one slice running at a
time; a duplicate task (redelivered, or queued twice by "Start it again") finds the lock
and leaves. Each row is sent once whatever runs twice (actions/bulk_run.py)."""
from __future__ import annotations

import logging
import time
from typing import Any, Callable

from celery import shared_task
from kombu.exceptions import OperationalError as BrokerUnavailable

from . import tasks
from .actions import bulk_run

log = logging.getLogger(__name__)

SLICE_SECONDS = 45.0
# Held while a slice runs: longer than a slice and its last row (a write timeout and a read-back).
LOCK_SECONDS = SLICE_SECONDS + 60.0


@shared_task(ignore_result=True)
def run_bulk_batch(batch_id: int) -> str:
    """Grant a batch's ticked rows (the ``sweep`` queue: never ahead of webhooks)."""
    return _slice(batch_id, "grant", bulk_run.run, run_bulk_batch)


@shared_task(ignore_result=True)
def undo_bulk_batch(batch_id: int) -> str:
    """Revoke what a batch granted, where it is still the batch's."""
    return _slice(batch_id, "undo", bulk_run.run_undo, undo_bulk_batch)


def _slice(batch_id: int, what: str, step: Callable[..., bool], task: Any) -> str:
    rm = tasks.read_model()
    lock = rm.acquire_sweep_lock(LOCK_SECONDS, what=f"bulk-{what}-{int(batch_id)}")
    if not lock.acquired:
        return "busy"  # another slice is running; it queues the next one itself
    try:
        finished = step(batch_id, client=tasks.bulk_client(), rm=rm, deadline=time.monotonic() + SLICE_SECONDS)
    finally:
        lock.release()
    if not finished and not _queue(task, batch_id):
        return "stalled"  # the batch page offers to resume it
    return "finished" if finished else "continues"


def queue_run(batch_id: int) -> bool:
    """Queue a batch's grants; False (logged) when the task queue is unreachable."""
    return _queue(run_bulk_batch, batch_id)


def queue_undo(batch_id: int) -> bool:
    return _queue(undo_bulk_batch, batch_id)


def _queue(task: Any, batch_id: int) -> bool:
    try:
        task.delay(batch_id)
    except (BrokerUnavailable, OSError) as exc:
        log.warning("Bulk batch %s not queued: %s", batch_id, exc)
        return False
    return True
