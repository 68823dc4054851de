"""The budget form in real Chromium: htmx swaps the form and its confirmation in place, a
bad value comes back in words, and a confirmed change lands on the governance page with
the news, after one write to Stigg (the emulator)."""
from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission

from dashboard import sync
from dashboard.models import AuditEntry
from dashboard.stigg import StiggClient

from . import emulator_world as w
from .browser import TIMEOUT_MS, close
from .servers import CeleryWorker, django_env

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def governed(emulator, redis_server, app_read_model):
    rm = app_read_model
    e = emulator
    calls = w.feature(e, "NUMBER", displayName="API calls")
    cid = w.customer(e, name="Acme Rockets")
    w.subscribe(e, cid, w.plan(e, w.product(e), [{"id": calls, "usageLimit": 100, "resetPeriod": "MONTH"}]))
    e.data("PUT", "/api/v1-beta/entity-types", json={"types": [{"id": "user", "displayName": "User",
                                                                 "attributionKeys": ["userId"]}]})
    e.data("PUT", f"/api/v1-beta/customers/{cid}/entities", json={"entities": [
        {"id": "ada", "entityTypeId": "user", "displayName": "Ada"}]})
    e.data("PUT", f"/api/v1-beta/customers/{cid}/assignments", json={"assignments": [
        {"entityId": "ada", "featureId": calls, "usageLimit": 10, "cadence": "P1W"}]})
    with StiggClient(e.url, e.key, timeout=10) as client:
        sync.refresh_catalog(client, rm)
        sync.refresh_customer(client, rm, cid, discover=True)
    # the refresh a change queues is served by a real worker, as in production
    worker = CeleryWorker(django_env(redis_server.url, emulator, READ_MODEL_PREFIX=rm.prefix), queues="hot")
    yield {"cid": cid, "calls": calls, "emu": e}
    worker.stop()


@pytest.fixture
def page(chromium, live_server, audit_log_emptied_after):
    # A transactional test's database is emptied after each test, the migrations' roles too:
    # give the person the permission the role would.
    user = get_user_model().objects.create_user("cassie", password="pw-cassie-1")
    role, _ = Group.objects.get_or_create(name="Customer success")
    role.permissions.add(Permission.objects.get(codename="change_budget"))
    user.groups.add(role)
    context = chromium.new_context(viewport={"width": 1366, "height": 768})
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(f"{live_server.url}/accounts/login/")
    page.get_by_label("Username").fill("cassie")
    page.get_by_label("Password").fill("pw-cassie-1")
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{live_server.url}/")
    yield page
    close(context)


def test_it_reviews_and_confirms_a_change_in_place(page, live_server, governed, settings):
    settings.PAGE_POLL_SECONDS = 1
    cid, emu = governed["cid"], governed["emu"]
    page.goto(f"{live_server.url}/customers/{cid}/governance/budget?entity=ada&capability={governed['calls']}")
    assert "Now: 10" in page.locator("#budget-form").inner_text()
    page.get_by_label("Limit:", exact=True).fill("-3")
    page.get_by_label("Reason:", exact=True).fill("Launch week")
    page.get_by_role("button", name="Review the change").click()
    page.get_by_text("A limit is a number of 0 or more.").wait_for()
    assert page.get_by_label("Reason:", exact=True).input_value() == "Launch week"  # what was typed stays
    page.get_by_label("Limit:", exact=True).fill("25")
    page.get_by_role("button", name="Review the change").click()
    page.get_by_text("Check the change, then confirm it").wait_for()
    assert "/governance/budget" in page.url  # swapped in place by htmx, no navigation
    assert AuditEntry.objects.count() == 0
    page.get_by_role("button", name="Confirm: change it in Stigg").click()
    page.wait_for_url(f"{live_server.url}/customers/{cid}/governance?node=ada")
    assert "Budget changed in Stigg for Ada." in page.locator(".messages").inner_text()
    stored = emu.data("GET", f"/api/v1-beta/customers/{cid}/assignments", params={"entityId": "ada"})
    assert [a["usageLimit"] for a in stored] == [25]
    assert AuditEntry.objects.get().outcome == "done"
    # the refresh lands (worker) and the tree, polling, shows the new figure in place
    page.wait_for_function("() => document.querySelector('tbody[data-entity-id=\"ada\"]')"
                           ".innerText.includes('0 / 25')")
