"""Celery workers and beat outlive the Redis servers they depend on, without a restart: a
worker busy with a task when the broker goes away (with acks_late every busy worker holds
an unacknowledged message) carries on once the broker is back; tasks run while the read
model's Redis is unreachable log a warning, never a traceback, and a refresh somebody
waits for is retried until it is back; a refresh through a Stigg outage longer than its
retries gives up in a warning line; beat says the broker is unreachable in a line and
sends again once it is back."""
from __future__ import annotations

import subprocess
import sys
import time

import pytest
import redis
from celery import Celery

from dashboard.readmodel import ReadModel

from . import emulator_world as w
from .servers import ROOT, CeleryBeat, CeleryWorker, Emulator, RedisServer, django_env

pytestmark = pytest.mark.slow


def wait_for(predicate, timeout: float, message: str):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"{message} not within {timeout} s")


@pytest.fixture
def parts():
    read_model, broker, emulator = RedisServer(), RedisServer(), Emulator()
    held = {"broker": broker, "worker": None, "read_model": read_model}
    yield read_model, held, emulator
    for part in (held["worker"], held["broker"], emulator, held["read_model"]):
        if part is not None:
            part.stop()


def test_a_worker_busy_with_a_task_survives_the_broker_going_away(parts):
    read_model, held, emulator = parts
    customer = w.customer(emulator, name="Still Here Co")
    env = django_env(read_model.url, emulator, CELERY_BROKER_URL=held["broker"].url, STIGG_TIMEOUT_SECONDS="10")
    worker = held["worker"] = CeleryWorker(env, queues="hot", concurrency=2)
    celery = Celery(broker=held["broker"].url, set_as_current=False)
    emulator.faults(latencyMs=4000)  # the refresh below is still running when the broker goes
    celery.send_task("dashboard.tasks.refresh_customer_now", args=(customer, "test"), queue="hot")
    wait_for(lambda: "refresh_customer_now" in worker.log() and "received" in worker.log(), 20, "task received")
    time.sleep(0.5)
    port = held["broker"].port
    held["broker"].stop()
    time.sleep(3)  # the worker notices the lost connection and starts reconnecting
    log = worker.log()
    assert worker.proc.poll() is None, f"the worker exited when the broker went away:\n{log[-3000:]}"
    assert "Unrecoverable error" not in log, log[-3000:]

    emulator.clear_faults()
    wait_for(lambda: "succeeded" in worker.log(), 20, "the task that was running")  # it finished its work
    rm = ReadModel(redis.Redis.from_url(read_model.url))
    rm.clear()
    held["broker"] = RedisServer(port=port)  # back, empty
    wait_for(lambda: worker.log().count("Connected to redis") == 2, 30, "the worker reconnecting")
    celery = Celery(broker=held["broker"].url, set_as_current=False)
    celery.send_task("dashboard.tasks.refresh_customer_now", args=(customer, "test"), queue="hot")
    wait_for(lambda: rm.customer(customer) is not None, 30, "a refresh queued after the broker came back")
    assert rm.customer(customer)["profile"]["name"] == "Still Here Co"
    assert worker.proc.poll() is None
    log = worker.log()
    assert "Unrecoverable error" not in log and "Traceback" not in log, log[-3000:]


def test_a_sweep_that_loses_the_broker_while_queueing_its_pages_stops_in_a_line(parts):
    """The sweep reads Stigg's customer pages and queues a task for each: the broker gone by
    then is said in one warning line (the next sweep comes round), never a task failure
    with its traceback (seen once in bench/bench_faults.py scenario 4, under load)."""
    read_model, held, emulator = parts
    for name in ("First Co", "Second Co"):
        w.customer(emulator, name=name)
    env = django_env(read_model.url, emulator, CELERY_BROKER_URL=held["broker"].url, STIGG_TIMEOUT_SECONDS="10")
    worker = held["worker"] = CeleryWorker(env, queues="sweep", concurrency=2)
    celery = Celery(broker=held["broker"].url, set_as_current=False)
    emulator.faults(latencyMs=1500)  # the catalog and the first page of customers are read first
    rm = ReadModel(redis.Redis.from_url(read_model.url))
    celery.send_task("dashboard.tasks.sweep_customers", queue="sweep")
    # started: past its look at the queue, now reading Stigg, slowly
    wait_for(lambda: rm.sync_status().last_sweep_started_at is not None, 30, "the sweep started")
    held["broker"].stop()
    wait_for(lambda: "Sweep stopped early, the broker is unreachable" in worker.log(), 60, "the warning")
    status = rm.sync_status()
    assert status.last_sweep_finished_at is not None and "broker" in str(status.last_sweep_stats), status
    assert rm.customer_ids() == []  # nothing read (no page was queued), and nobody removed
    assert worker.proc.poll() is None
    assert "Traceback" not in worker.log(), worker.log()[-3000:]


def test_a_refresh_behind_a_busy_one_with_the_broker_gone_is_left_to_the_hot_tier(parts):
    """A refresh that finds its customer's refresh in flight queues itself again (the one in
    flight may have read Stigg before the change); with the broker gone that cannot be
    done: it keeps the customer among the recently changed, which the hot tier polls, and
    says so in a line."""
    read_model, held, emulator = parts
    customer = w.customer(emulator, name="Busy Co")
    rm = ReadModel(redis.Redis.from_url(read_model.url))
    lock = rm.acquire_customer_lock(customer, 60)  # a refresh of this customer is in flight
    assert lock.acquired and customer not in rm.hot_customers()
    broker_url = held["broker"].url
    held["broker"].stop()
    ran = subprocess.run(
        [sys.executable, "-c", "import django; django.setup(); from dashboard import tasks\n"
         f"print(tasks.refresh_customer_now({customer!r}, 'manual'))"],
        cwd=ROOT, env=django_env(read_model.url, emulator, CELERY_BROKER_URL=broker_url),
        capture_output=True, text=True, timeout=60)
    assert ran.stdout.split()[-1:] == ["busy"], ran.stderr[-3000:]
    assert f"Refresh of customer {customer} not queued again behind the one in flight" in ran.stderr
    assert "Traceback" not in ran.stderr, ran.stderr[-3000:]
    assert customer in rm.hot_customers()
    lock.release()


def test_tasks_wait_out_an_unreachable_read_model_without_a_traceback(parts):
    read_model, held, emulator = parts
    customer = w.customer(emulator, name="Patient Co")
    env = django_env(read_model.url, emulator, CELERY_BROKER_URL=held["broker"].url)
    worker = held["worker"] = CeleryWorker(env, queues="hot,sweep", concurrency=2)
    celery = Celery(broker=held["broker"].url, set_as_current=False)
    port = read_model.port
    read_model.stop()
    celery.send_task("dashboard.tasks.sweep_customers", queue="sweep")
    celery.send_task("dashboard.tasks.refresh_customer_now", args=(customer, "webhook:customer.updated"), queue="hot")
    wait_for(lambda: "sweep_customers not done: the read model's Redis is unreachable" in worker.log(), 30,
             "the sweep skipped with a warning")
    wait_for(lambda: "refresh_customer_now" in worker.log() and "retry: Retry in" in worker.log(), 30,
             "the refresh retried")

    held["read_model"] = RedisServer(port=port)  # back, empty
    rm = ReadModel(redis.Redis.from_url(held["read_model"].url))
    wait_for(lambda: rm.customer(customer) is not None, 30, "the retried refresh")
    assert rm.customer(customer)["profile"]["name"] == "Patient Co"
    assert "Traceback" not in worker.log(), worker.log()[-3000:]


def test_beat_says_the_broker_is_unreachable_in_a_line_and_sends_again_after(parts):
    read_model, held, emulator = parts
    env = django_env(read_model.url, emulator, CELERY_BROKER_URL=held["broker"].url, SYNC_HOT_INTERVAL_SECONDS="1")
    beat = held["worker"] = CeleryBeat(env)  # stopped with the other parts
    broker = redis.Redis.from_url(held["broker"].url)
    wait_for(lambda: broker.llen("hot") > 0, 30, "a hot-tier round sent")  # connected, sending
    port = held["broker"].port
    held["broker"].stop()
    wait_for(lambda: "sweep-hot-customers not sent, the broker is unreachable" in beat.log(), 30, "the warning")
    held["broker"] = RedisServer(port=port)  # back, empty
    wait_for(lambda: broker.llen("hot") > 0, 30, "a hot-tier round sent once the broker is back")
    assert "Traceback" not in beat.log(), beat.log()[-3000:]


def test_a_refresh_through_a_stigg_outage_longer_than_its_retries_gives_up_in_a_line(parts):
    read_model, held, emulator = parts
    customer = w.customer(emulator, name="Patient Co")
    calls = w.feature(emulator)  # metered: its usage history is asked for
    w.subscribe(emulator, customer, w.plan(emulator, w.product(emulator), [{"id": calls, "usageLimit": 100,
                                                                            "resetPeriod": "MONTH"}]))
    env = django_env(read_model.url, emulator, CELERY_BROKER_URL=held["broker"].url)
    worker = held["worker"] = CeleryWorker(env, queues="hot", concurrency=2)
    celery = Celery(broker=held["broker"].url, set_as_current=False)
    rm = ReadModel(redis.Redis.from_url(read_model.url))
    celery.send_task("dashboard.tasks.refresh_customer_now", args=(customer, "manual"), queue="hot")
    wait_for(lambda: rm.customer(customer) is not None, 30, "the first refresh")  # known: its charts can be asked for
    emulator.faults(outage=True)
    celery.send_task("dashboard.tasks.refresh_customer_now", args=(customer, "webhook:customer.updated"), queue="hot")
    celery.send_task("dashboard.tasks.refresh_usage_history", args=(customer,), queue="hot")
    wait_for(lambda: f"Refresh of customer {customer} given up after 4 retries" in worker.log()
             and f"Usage history of customer {customer} given up after 4 retries" in worker.log(), 90, "giving up")
    assert "Stigg unavailable" in rm.customer(customer)["error"]  # marked: pages say the refresh failed
    assert "Traceback" not in worker.log(), worker.log()[-3000:]
