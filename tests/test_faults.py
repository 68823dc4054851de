"""The short fault scenarios of bench/bench_faults.py, on a fleet of 150 customers: the
whole stack (web under gunicorn, hot and sweep workers, beat, the read model's Redis, the
broker's own Redis, the emulator) with Stigg down, the read model's Redis restarted empty
and the broker down while webhooks arrive. Each scenario checks its own expectations
(bench/fault_scenarios.py), a traceback in no process's log among them, and returns the
ones that failed; here there must be none.
The long ones (a 429 storm, a worker SIGKILLed and its pages redone after the visibility
timeout, 50 clients of load) run in the bench only."""
from __future__ import annotations

import os
import time

import pytest

from bench import fault_scenarios as scenarios
from bench.fault_load import world_of
from emulator.demo import bulk

from .full_stack import FullStack, StackSettings, wait_until
from .servers import Emulator

pytestmark = pytest.mark.slow

CUSTOMERS = 150
SWEEP_INTERVAL = 10.0


def filled(stack: FullStack) -> float:
    """Seconds a sweep took to read every customer."""
    t0 = time.time()
    stack.sweep_now()
    assert wait_until(lambda: stack.rm.customer_count() >= CUSTOMERS
                      and not stack.rm.stale_customers(older_than=time.time() - t0), 120, 0.5), "a sweep"
    return time.time() - t0


@pytest.fixture(scope="module")
def faults(tmp_path_factory):
    db_path = os.path.join(tmp_path_factory.mktemp("faults"), "emulator.sqlite3")
    bulk.seed_bulk(db_path, customers=CUSTOMERS, nodes=1500, log=lambda m: None)
    emulator = Emulator(db_path=db_path, workers=2, threads=16)
    stack = None
    try:
        stack = FullStack(emulator, StackSettings(sweep_interval=SWEEP_INTERVAL, hot_interval=5,
                                                  hot_threads=4, sweep_threads=4))
        stack.send_webhooks_to_us()
        discovery, steady = filled(stack), filled(stack)
        timing = scenarios.Timing(sweep_interval=SWEEP_INTERVAL, steady_sweep=steady, discovery_sweep=discovery)
        yield stack, world_of(stack.rm), timing
    finally:
        if stack is not None:
            stack.stop()
        emulator.stop()


def passed(outcome: scenarios.Outcome) -> bool:
    return not outcome.failures


def test_it_serves_every_page_through_a_stigg_outage_and_catches_up_after(faults):
    outcome = scenarios.stigg_outage(*faults, seconds=12)
    assert passed(outcome), (outcome.failures, outcome.figures, outcome.first_traceback)


def test_it_serves_the_503_page_while_redis_restarts_and_fills_it_again(faults):
    outcome = scenarios.redis_restart(*faults, seconds=5)
    assert passed(outcome), (outcome.failures, outcome.figures, outcome.first_traceback)


def test_it_refreshes_every_webhook_event_answered_while_the_broker_was_down(faults):
    outcome = scenarios.broker_down(*faults, seconds=10)
    assert passed(outcome), (outcome.failures, outcome.figures, outcome.first_traceback)
    stack = faults[0]
    assert not stack.exited(), f"processes exited: {stack.exited()}"
