"""A bulk grant in real Chromium, end to end with real parts only: the web app under
gunicorn and a real Celery worker sharing one database and their own Redis, the emulator
over HTTP. A customer-success manager ticks rows on the near-limit view, chooses the grant,
reads the dry run, confirms, watches the progress bar finish, and sees the customers'
entitlements change."""
from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile

import pytest
import redis

from dashboard import sync
from dashboard.readmodel import ReadModel
from dashboard.stigg import StiggClient

from . import emulator_world as w
from .browser import TIMEOUT_MS
from .servers import ROOT, CeleryWorker, RedisServer, WebServer, django_env

pytestmark = [pytest.mark.browser, pytest.mark.slow]
PREFIX = "bulk-e2e:"


@pytest.fixture(scope="module")
def stack(emulator):
    """Web and worker with one SQLite database (the job writes its rows and audit rows
    where the pages read them) and a Redis of their own (no task another test queued
    reaches this worker). The job may send 3 requests a second: slow enough to watch."""
    e = emulator
    calls = w.feature(e, "NUMBER", displayName="API calls", featureUnitsPlural="calls")
    plan = w.plan(e, w.product(e), [{"id": calls, "usageLimit": 1000, "resetPeriod": "MONTH"}], displayName="Growth")
    cids = {}
    for name, used in (("Acme Rockets", 900), ("Globex", 950), ("Initech", 880), ("Quiet Co", 100)):
        cids[name] = w.customer(e, name=name)
        w.subscribe(e, cids[name], plan)
        w.report_usage(e, cids[name], calls, used)
    own_redis = RedisServer()
    rm = ReadModel(redis.Redis.from_url(own_redis.url, decode_responses=True), prefix=PREFIX)
    client = StiggClient(e.url, e.key, timeout=10)
    sync.refresh_catalog(client, rm)
    for cid in cids.values():
        assert sync.refresh_customer(client, rm, cid, discover=True)
    tmp = tempfile.mkdtemp(prefix="test-bulk-e2e-")
    # DJANGO_DEBUG: WhiteNoise serves the static files from their sources (htmx, app.js), as
    # without collectstatic into the worktree
    env = django_env(own_redis.url, e, READ_MODEL_PREFIX=PREFIX, DATABASE_URL=f"sqlite:///{tmp}/db.sqlite3",
                     BULK_GRANT_RATE="3", PAGE_POLL_SECONDS="1", DJANGO_DEBUG="true")
    web = WebServer(env)  # migrates the shared database first
    subprocess.run([sys.executable, "manage.py", "ensure_demo_user", "cassie", "pw-cassie-1", "--group",
                    "Customer success"], cwd=ROOT, env=env, check=True, capture_output=True)
    worker = CeleryWorker(env, queues="hot,sweep")
    yield {"web": web, "cids": cids, "calls": calls, "emu": e, "rm": rm}
    worker_log = worker.log()
    for part in (worker, web, own_redis):
        part.stop()
    client.close()
    shutil.rmtree(tmp, ignore_errors=True)
    assert "Traceback" not in worker_log, worker_log[-4000:]


@pytest.fixture
def page(chromium, stack):
    context = chromium.new_context(viewport={"width": 1366, "height": 768})
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    url = stack["web"].url
    page.goto(f"{url}/accounts/login/")
    page.get_by_label("Username").fill("cassie")
    page.get_by_label("Password").fill("pw-cassie-1")
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{url}/")
    yield page
    context.close()


def promotions(stack, name: str) -> list[int]:
    cid = stack["cids"][name]
    return [p["usageLimit"] for p in stack["emu"].data("GET", f"/api/v1/customers/{cid}/promotional-entitlements")]


def test_tick_rows_dry_run_confirm_and_watch_the_grants_land(page, stack):
    url = stack["web"].url
    page.goto(f"{url}/near-limit/?capability={stack['calls']}")
    table = page.locator("#near-limit-table")
    table.get_by_label("Select API calls of Acme Rockets").check()
    table.get_by_label("Select API calls of Globex").check()
    page.wait_for_timeout(2500)  # two poll intervals: ticked rows stay ticked (the poll pauses)
    assert table.get_by_label("Select API calls of Acme Rockets").is_checked()
    table.get_by_role("button", name="Grant a promotion to the ticked rows…").click()
    page.wait_for_url(f"{url}/bulk/new")
    assert "2 entitlements of 2 customers" in page.locator("#bulk-choose").inner_text()
    page.get_by_label("Limit:", exact=True).fill("5000")
    page.get_by_label("For:", exact=True).select_option("1 month")
    page.get_by_label("Reason:", exact=True).fill("Quarter-end crunch")
    page.get_by_role("button", name="Show the dry run").click()
    page.wait_for_url(f"{url}/bulk/*/")
    dry_run = page.locator("#dry-run")
    assert "2 rows · 2 ticked" in dry_run.inner_text()
    acme = dry_run.locator("tr", has_text="Acme Rockets")
    assert "1,000 calls → 5,000 calls" in acme.inner_text() and acme.get_by_role("checkbox").is_checked()
    assert promotions(stack, "Acme Rockets") == []  # a dry run sends nothing
    page.get_by_role("button", name="Confirm: grant the ticked rows").click()
    bar = page.locator("progress#bulk-bar")
    bar.wait_for()
    assert int(bar.get_attribute("max")) == 2 and int(bar.get_attribute("value")) < 2  # still running
    # the bar fills, and once the job is done the page turns into the result
    page.locator("#result").wait_for(timeout=60_000)
    assert "2 granted · 0 not granted" in page.locator("#result").inner_text()
    assert promotions(stack, "Acme Rockets") == [5000] and promotions(stack, "Globex") == [5000]
    assert promotions(stack, "Initech") == []  # not ticked
    # the job read each customer back: their entitlements show the promotion
    page.goto(f"{url}/customers/{stack['cids']['Globex']}")
    row = page.locator("#metered tbody tr", has_text="API calls")
    # 5,000 from the promotion, whose first period starts with it: usage from 0, as the dry run said
    assert "0 / 5,000 calls" in row.inner_text() and "promotion (1 month)" in row.inner_text()
    page.goto(f"{url}/near-limit/?capability={stack['calls']}")
    remaining = page.locator("#near-limit-table").inner_text()
    assert "Initech" in remaining and "Acme Rockets" not in remaining and "Globex" not in remaining
