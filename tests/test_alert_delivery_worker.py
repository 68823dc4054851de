"""A limit reached, end to end through a real Celery worker: usage reported to the emulator
over HTTP; the worker's refresh reads it into the real Redis, its evaluation opens the
alert and queues the notice, its delivery tasks send the mail to a real SMTP server and
the message to a real webhook receiver; a second limit within the cool-down is silent.

The worker runs in a thread of this process (Celery's embedded test worker, consuming the
real Redis broker), so it shares this test's database; the tests are transactional so
the worker sees what they write."""
from __future__ import annotations

import time
from datetime import timedelta
from typing import Any, Callable

import pytest
from celery.contrib.testing.worker import start_worker

from dashboard import sync, tasks
from dashboard.models import Alert
from dashboard.stigg import StiggClient
from stiggadmin.celery import app as celery_app

from . import emulator_world as w
from .receivers import SmtpServer, WebhookReceiver
from .delivery_world import SITE, person

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def eventually(check: Callable[[], Any], timeout: float = 30.0) -> Any:
    deadline = time.time() + timeout
    while time.time() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError(f"not within {timeout} s: {check.__doc__ or check}")


@pytest.fixture
def worker(emulator, app_read_model, settings):
    smtp, hook = SmtpServer(), WebhookReceiver()
    for name, value in smtp.settings().items():
        setattr(settings, name, value)
    settings.ALERT_WEBHOOK_ALLOW_PRIVATE = True
    settings.DASHBOARD_URL = SITE
    with celery_app.connection_for_write() as conn:  # what earlier tests queued with no worker to run it
        for queue in ("hot", "sweep"):
            conn.default_channel.queue_purge(queue)
    hijack = celery_app.conf.worker_hijack_root_logger
    celery_app.conf.worker_hijack_root_logger = False  # leave pytest's log capture alone
    try:
        with start_worker(celery_app, pool="solo", concurrency=1, perform_ping_check=False, queues=["hot", "sweep"],
                          loglevel="WARNING", shutdown_timeout=30):
            yield {"emu": emulator, "rm": app_read_model, "smtp": smtp, "hook": hook}
    finally:
        celery_app.conf.worker_hijack_root_logger = hijack
        smtp.stop()
        hook.stop()


def test_a_limit_reached_reaches_mail_and_chat_through_the_worker_once_per_cool_down(worker):
    e, smtp, hook = worker["emu"], worker["smtp"], worker["hook"]
    calls = w.feature(e, "NUMBER", displayName="Worker calls")
    plan = w.plan(e, w.product(e), [{"id": calls, "usageLimit": 50, "resetPeriod": "MONTH"}])
    with StiggClient(e.url, e.key, timeout=10) as client:
        sync.refresh_catalog(client, worker["rm"])
    person("grace", owner="Grace", email="grace@example.com", webhook_url=hook.url)
    cid = w.customer(e, name="Worker Co", metadata={"accountOwner": "Grace"})
    sentinel = w.customer(e, name="Sentinel Co", metadata={"accountOwner": "Grace"})
    for customer in (cid, sentinel):
        w.subscribe(e, customer, plan)

    def usage(customer: str, value: float) -> None:
        """Usage set in Stigg, then a refresh queued for the worker, as a webhook would."""
        w.report_usage(e, customer, calls, value, updateBehavior="SET")
        tasks.refresh_customer_now.delay(customer, "manual")

    def alert_usage(value: float) -> Callable[[], Alert | None]:
        def check() -> Alert | None:
            """the worker's evaluation has read the new usage"""
            return Alert.objects.filter(customer_id=cid, state="open", usage=value).first()
        return check

    usage(cid, 50)
    [mail] = eventually(lambda: smtp.messages)
    [post] = eventually(lambda: hook.delivered())
    assert mail["To"] == "grace@example.com" and mail["Subject"] == "Limit reached: Worker Co · Worker calls"
    assert f"{SITE}/customers/{cid}#metered" in mail.get_content()
    assert "*Limit reached*" in post["json"]["text"] and "Worker Co" in post["json"]["text"]
    alert = Alert.objects.get(customer_id=cid)
    assert (alert.level, alert.notified_level) == ("limit", "limit")

    # within the cool-down: under the limit, then at it again — the worker evaluates, sends nothing
    usage(cid, 45)
    eventually(alert_usage(45))
    usage(cid, 50)
    eventually(alert_usage(50))
    # the sentinel's notice is queued behind whatever that evaluation queued: once it is here, the
    # worker has dealt with the second limit, and sent nothing for it
    usage(sentinel, 50)
    eventually(lambda: len(smtp.messages) == 2 and len(hook.delivered()) == 2)
    assert "Sentinel Co" in smtp.messages[1]["Subject"]
    assert "Sentinel Co" in hook.delivered()[1]["json"]["text"]

    # the cool-down is over: the next limit reached notifies again
    Alert.objects.filter(pk=alert.pk).update(last_notified_at=alert.last_notified_at - timedelta(hours=7))
    usage(cid, 40)
    eventually(alert_usage(40))
    usage(cid, 55)
    eventually(lambda: len(smtp.messages) == 3 and len(hook.delivered()) == 3)
    assert "Worker Co" in smtp.messages[2]["Subject"] and "55 / 50 used (110 %)" in hook.delivered()[2]["json"]["text"]
