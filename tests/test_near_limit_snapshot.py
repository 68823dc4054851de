"""The near-limit CSV's snapshot (nearlimit_csv.py, export_tasks.py): built by the task
on the app's own read model, sent by /near-limit.csv for the view as it opens and for each
account owner's rows while it is fresh, the same bytes the live read gives at its time;
every other query, a stale snapshot or none is read live. One build through a real Celery
worker (real Redis, no mocks)."""
from __future__ import annotations

import csv
import io
import time
from datetime import datetime

import pytest
from celery import Celery
from django.urls import reverse

from dashboard.export_tasks import snapshot_near_limit_csv
from dashboard.nearlimit_csv import CSV_HEADER, csv_lines
from dashboard.readmodel import NearLimitQuery

from .near_limit_world import budget, customer_snapshot
from .servers import CeleryWorker, django_env
from .test_near_limit import read_csv, world  # noqa: F401  (the same world of customers)

pytestmark = pytest.mark.django_db
BASE = "http://testserver"


@pytest.fixture
def snapshots_every_30s(settings):
    settings.NEAR_LIMIT_CSV_SNAPSHOT_SECONDS = 30.0
    return settings


def body_of(response) -> str:
    return b"".join(response.streaming_content).decode()


def read_csv_text(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def live(rm, at: datetime, **query: str) -> str:
    return "".join(csv_lines(rm, NearLimitQuery(**query), BASE, at))


def test_the_snapshot_is_the_live_csv_at_its_time(world, browser, snapshots_every_30s):  # noqa: F811
    snapshots_every_30s.ALLOWED_HOSTS = ["testserver", "dash.example"]
    outcome = snapshot_near_limit_csv()
    assert outcome["rows"] == 9 and outcome["owners"] == 4 and outcome["bytes"] > 0
    response = browser.get(reverse("near-limit-csv"))
    assert response.status_code == 200 and response["Content-Type"] == "text/csv; charset=utf-8"
    at = datetime.fromisoformat(response["X-Snapshot-At"])
    # the file is named for when its rows were read
    assert response["Content-Disposition"] == f'attachment; filename="near-limit-{at:%Y%m%d-%H%M}.csv"'
    body = body_of(response)
    assert body == live(world["rm"], at)
    rows = read_csv_text(body)
    assert len(rows) == 9 and rows[0]["link"] == "http://testserver/customers/acme/governance?node=ada"
    # a link's base is the address the file was asked at, not the worker's
    other = browser.get(reverse("near-limit-csv"), HTTP_HOST="dash.example:8443", secure=True)
    assert read_csv_text(body_of(other))[0]["link"] == "https://dash.example:8443/customers/acme/governance?node=ada"


def test_each_owners_rows_come_from_the_snapshot_too(world, browser, snapshots_every_30s):  # noqa: F811
    world["rm"].write_customer(*customer_snapshot("calm", owner="Cal Calm", api=10))  # an owner, nothing near
    snapshot_near_limit_csv()
    for owner in ("Ada Lovelace", "@evil", "Grace Hopper"):
        response = browser.get(reverse("near-limit-csv"), {"owner": owner})
        at = datetime.fromisoformat(response["X-Snapshot-At"])
        body = body_of(response)
        assert body == live(world["rm"], at, owner=owner)
        assert {r["account_owner"] for r in read_csv_text(body)} == {("'" if owner[0] == "@" else "") + owner}
    # an owner none of whose rows is near: the header alone, from the snapshot as well
    calm = browser.get(reverse("near-limit-csv"), {"owner": "Cal Calm"})
    world["rm"].remove_customers(["calm"])
    assert "X-Snapshot-At" in calm and body_of(calm) == ",".join(CSV_HEADER) + "\r\n"


@pytest.mark.parametrize("query", [{"plan": "pro"}, {"order": "usage"}, {"min_utilization": "0.9"},
                                   {"customer": "acme"}, {"capability": "api"}, {"entity_type": "user"},
                                   {"owner": "Ada Lovelace", "plan": "pro"}])
def test_any_other_query_is_read_live(world, browser, snapshots_every_30s, query):  # noqa: F811
    snapshot_near_limit_csv()
    response = browser.get(reverse("near-limit-csv"), query)
    assert response.status_code == 200 and "X-Snapshot-At" not in response
    assert read_csv(response)  # every one of these has rows


def test_a_stale_snapshot_or_none_is_not_sent(world, browser, settings):  # noqa: F811
    settings.NEAR_LIMIT_CSV_SNAPSHOT_SECONDS = 0.01
    snapshot_near_limit_csv()
    time.sleep(0.1)  # older than three intervals
    assert "X-Snapshot-At" not in browser.get(reverse("near-limit-csv"))
    settings.NEAR_LIMIT_CSV_SNAPSHOT_SECONDS = 0  # off: no build, every CSV read live
    assert "skipped" in snapshot_near_limit_csv()
    response = browser.get(reverse("near-limit-csv"))
    assert "X-Snapshot-At" not in response and len(read_csv(response)) == 9


def test_a_change_is_in_the_next_snapshot_and_text_cannot_forge_a_link(world, browser,  # noqa: F811
                                                                      snapshots_every_30s):
    rm = world["rm"]
    rm.write_customer(*customer_snapshot("nul", name="Zero\x00Day", owner="Ada Lovelace", budgets=(
        budget("ops\x00team", 97, 100, name="\x00"),)))
    try:
        snapshot_near_limit_csv()
        response = browser.get(reverse("near-limit-csv"))
        assert "X-Snapshot-At" in response
        nul = next(r for r in read_csv_text(body_of(response)) if r["customer_id"] == "nul")
        # NUL is in no cell (it marks where a snapshot's links take their base)
        assert nul["customer_name"] == "Zero\ufffdDay" and nul["entity_name"] == "\ufffd"
        assert nul["link"] == "http://testserver/customers/nul/governance?node=ops%00team"
    finally:
        rm.remove_customers(["nul"])
    snapshot_near_limit_csv()
    assert "nul" not in {r["customer_id"] for r in read_csv_text(body_of(browser.get(reverse("near-limit-csv"))))}


@pytest.mark.slow
def test_a_worker_builds_it_when_beat_asks(world, browser, redis_server, snapshots_every_30s):  # noqa: F811
    rm = world["rm"]
    rm.r.delete(rm.keys.near_csv())
    assert "X-Snapshot-At" not in browser.get(reverse("near-limit-csv"))
    worker = CeleryWorker(django_env(redis_server.url, READ_MODEL_PREFIX=rm.prefix), queues="hot")
    try:
        # by the name and the queue beat sends it with (settings.CELERY_BEAT_SCHEDULE, CELERY_TASK_ROUTES)
        Celery(broker=redis_server.url).send_task("dashboard.export_tasks.snapshot_near_limit_csv", queue="hot")
        deadline = time.monotonic() + 30
        while rm.near_limit_csv() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        response = browser.get(reverse("near-limit-csv"))
        at = datetime.fromisoformat(response["X-Snapshot-At"])
        assert body_of(response) == live(rm, at)
        assert "Near-limit CSV snapshot built" in worker.log()
    finally:
        worker.stop()
