"""The near-limit CSV's snapshot (nearlimit_csv.py, export_tasks.py): built by the task
on the app's own read model, sent by /near-limit.csv for the view as it opens and for each
account owner's rows while it is fresh — compressed to a client that accepts gzip,
inflated to one that does not — the same bytes the live read gives at its time; every
other query, a stale snapshot or none is read live. One build through a real Celery
worker (real Redis, no mocks)."""
from __future__ import annotations

import csv
import gzip
import io
import time
from datetime import datetime

import pytest
from django.urls import reverse

from dashboard.export_tasks import snapshot_near_limit_csv
from dashboard.nearlimit_csv import CSV_HEADER, csv_lines
from dashboard.readmodel import NearLimitQuery

from .near_limit_world import customer_snapshot
from .servers import CeleryWorker, django_env
from .test_metrics_and_logs import sample
from .test_near_limit import read_csv, world  # noqa: F401  (the same world of customers)

pytestmark = pytest.mark.django_db
GZIP = {"HTTP_ACCEPT_ENCODING": "gzip, deflate, br"}  # as a browser asks


@pytest.fixture
def snapshots_every_30s(settings):
    settings.NEAR_LIMIT_CSV_SNAPSHOT_SECONDS = 30.0
    settings.DASHBOARD_URL = "https://dash.example"
    return settings


def body_of(response) -> str:
    body = b"".join(response.streaming_content)
    return (gzip.decompress(body) if response.get("Content-Encoding") == "gzip" else body).decode()


def rows_of(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def live(rm, at: datetime, **query: str) -> str:
    return "".join(csv_lines(rm, NearLimitQuery(**query), at))


def test_the_snapshot_is_the_live_csv_at_its_time(world, browser, snapshots_every_30s):  # noqa: F811
    outcome = snapshot_near_limit_csv()
    assert outcome["rows"] == 9 and outcome["owners"] == 4 and outcome["bytes"] > 0
    response = browser.get(reverse("near-limit-csv"), **GZIP)
    assert response.status_code == 200 and response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Encoding"] == "gzip" and "Accept-Encoding" in response["Vary"]
    at = datetime.fromisoformat(response["X-Snapshot-At"])
    # the file is named for when its rows were read
    assert response["Content-Disposition"] == f'attachment; filename="near-limit-{at:%Y%m%d-%H%M}.csv"'
    body = body_of(response)
    assert body == live(world["rm"], at)
    rows = rows_of(body)
    assert len(rows) == 9 and rows[0]["link"] == "https://dash.example/customers/acme/governance?node=ada"
    # a client that does not take gzip gets the same file inflated
    plain = browser.get(reverse("near-limit-csv"))
    assert "Content-Encoding" not in plain and plain["X-Snapshot-At"] == response["X-Snapshot-At"]
    assert body_of(plain) == body


def test_each_owners_rows_come_from_the_snapshot_too(world, browser, snapshots_every_30s):  # noqa: F811
    world["rm"].write_customer(*customer_snapshot("calm", owner="Cal Calm", api=10))  # an owner, nothing near
    snapshot_near_limit_csv()
    for owner in ("Ada Lovelace", "@evil", "Grace Hopper"):
        response = browser.get(reverse("near-limit-csv"), {"owner": owner}, **GZIP)
        at = datetime.fromisoformat(response["X-Snapshot-At"])
        body = body_of(response)
        assert body == live(world["rm"], at, owner=owner)
        assert {r["account_owner"] for r in rows_of(body)} == {("'" if owner[0] == "@" else "") + owner}
    # an owner none of whose rows is near: the header alone, from the snapshot as well
    for headers in (GZIP, {}):
        calm = browser.get(reverse("near-limit-csv"), {"owner": "Cal Calm"}, **headers)
        assert "X-Snapshot-At" in calm and body_of(calm) == ",".join(CSV_HEADER) + "\r\n"
    world["rm"].remove_customers(["calm"])


@pytest.mark.parametrize("query", [{"plan": "pro"}, {"order": "usage"}, {"min_utilization": "0.9"},
                                   {"customer": "acme"}, {"capability": "api"}, {"entity_type": "user"},
                                   {"owner": "Ada Lovelace", "plan": "pro"}])
def test_any_other_query_is_read_live(world, browser, snapshots_every_30s, query):  # noqa: F811
    snapshot_near_limit_csv()
    response = browser.get(reverse("near-limit-csv"), query, **GZIP)
    assert response.status_code == 200 and "X-Snapshot-At" not in response and "Content-Encoding" not in response
    assert read_csv(response)  # every one of these has rows


def test_metrics_say_when_it_was_built(world, browser, snapshots_every_30s):  # noqa: F811
    snapshots_every_30s.METRICS_TOKEN = ""
    snapshot_near_limit_csv()
    at = world["rm"].near_limit_csv_built_at()
    text = browser.get(reverse("metrics")).content.decode()
    assert sample(text, "stiggadmin_near_limit_csv_built_timestamp_seconds") == pytest.approx(at.timestamp())


def test_a_stale_snapshot_or_none_is_not_sent(world, browser, settings):  # noqa: F811
    settings.NEAR_LIMIT_CSV_SNAPSHOT_SECONDS = 0.01
    snapshot_near_limit_csv()
    time.sleep(0.1)  # older than three intervals
    assert "X-Snapshot-At" not in browser.get(reverse("near-limit-csv"), **GZIP)
    settings.NEAR_LIMIT_CSV_SNAPSHOT_SECONDS = 0  # off: no build, every CSV read live
    assert "skipped" in snapshot_near_limit_csv()
    response = browser.get(reverse("near-limit-csv"), **GZIP)
    assert "X-Snapshot-At" not in response and len(read_csv(response)) == 9


def test_a_change_is_in_the_next_snapshot(world, browser, snapshots_every_30s):  # noqa: F811
    rm = world["rm"]
    rm.write_customer(*customer_snapshot("newco", name="New Co", owner="Ada Lovelace", api=990))
    try:
        snapshot_near_limit_csv()
        assert "newco" in {r["customer_id"] for r in rows_of(body_of(browser.get(reverse("near-limit-csv"))))}
    finally:
        rm.remove_customers(["newco"])
    assert "newco" in {r["customer_id"] for r in rows_of(body_of(browser.get(reverse("near-limit-csv"))))}
    snapshot_near_limit_csv()
    assert "newco" not in {r["customer_id"] for r in rows_of(body_of(browser.get(reverse("near-limit-csv"))))}


@pytest.mark.slow
def test_a_worker_builds_it_when_beat_asks(world, browser, redis_server, snapshots_every_30s):  # noqa: F811
    rm = world["rm"]
    rm.r.delete(rm.keys.near_csv())
    assert "X-Snapshot-At" not in browser.get(reverse("near-limit-csv"))
    worker = CeleryWorker(django_env(redis_server.url, READ_MODEL_PREFIX=rm.prefix,
                                     DASHBOARD_URL="https://dash.example"), queues="hot")
    try:
        # as beat sends it: by the app's routes (CELERY_TASK_ROUTES: the hot queue, all this worker reads)
        snapshot_near_limit_csv.delay()
        deadline = time.monotonic() + 30
        while rm.near_limit_csv() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        response = browser.get(reverse("near-limit-csv"), **GZIP)
        at = datetime.fromisoformat(response["X-Snapshot-At"])
        assert body_of(response) == live(rm, at)
        assert "Near-limit CSV snapshot built" in worker.log()
    finally:
        worker.stop()


@pytest.mark.browser
def test_a_browser_saves_the_compressed_snapshot_as_plain_csv(world, chromium, live_server,  # noqa: F811
                                                              transactional_db, snapshots_every_30s):
    from django.contrib.auth import get_user_model

    from .browser import TIMEOUT_MS, close

    snapshot_near_limit_csv()
    get_user_model().objects.create_user("casey", password="pw-casey-1")
    context = chromium.new_context(viewport={"width": 1366, "height": 768}, accept_downloads=True)
    try:
        page = context.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        page.goto(live_server.url + reverse("near-limit"))
        page.get_by_label("Username").fill("casey")
        page.get_by_label("Password").fill("pw-casey-1")
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(live_server.url + reverse("near-limit"))
        with page.expect_download() as download, page.expect_response(
                lambda r: reverse("near-limit-csv") in r.url) as answer:
            page.get_by_role("link", name="Download CSV").click()
        assert answer.value.headers["content-encoding"] == "gzip" and "x-snapshot-at" in answer.value.headers
        at = datetime.fromisoformat(answer.value.headers["x-snapshot-at"])
        assert download.value.suggested_filename == f"near-limit-{at:%Y%m%d-%H%M}.csv"
        with open(download.value.path(), encoding="utf-8", newline="") as saved:
            assert saved.read() == live(world["rm"], at)  # saved inflated: the CSV itself
    finally:
        close(context)
