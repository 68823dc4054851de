"""A sweep does not start while the last sweep's work still waits in the sweep queue: with
Stigg slow, beat's sweeps would otherwise pile pages on pages every interval (seen in
bench/bench_faults.py, scenario 2). The real broker (this test process's Redis) and the
real task, called in-process; no worker consumes the queue here."""
from __future__ import annotations

import redis
from django.conf import settings

from dashboard import tasks

from . import emulator_world as w


def test_it_skips_a_sweep_while_the_last_ones_pages_still_wait_and_runs_once_they_are_gone(app_read_model, emulator):
    w.customer(emulator, name="Queued Co")
    broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    queue = settings.CELERY_TASK_DEFAULT_QUEUE
    broker.delete(queue)
    tasks.refresh_customer_page.delay([], False)  # a page of the last sweep, not yet taken by a worker
    tasks.refresh_customer_page.delay([], False)
    try:
        assert tasks.sweep_customers() == {"skipped": "2 tasks of the last sweep still waiting"}
        assert broker.llen(queue) == 2  # nothing queued on top
        assert app_read_model.sync_status().last_sweep_started_at is None  # nothing asked of Stigg either
    finally:
        broker.delete(queue)
    stats = tasks.sweep_customers()
    assert stats["customers"] >= 1 and "skipped" not in stats
    assert broker.llen(queue) >= 1  # its page of customers
    broker.delete(queue)
