"""Promotions in real Chromium: a customer-success manager grants one through the modal and
sees the entitlement change on the customer page (the refresh served by a real Celery
worker); revokes one by clicking; extends one from the expiring list; a viewer sees no
control and is refused when posting anyway."""
from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

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
def acme(emulator, redis_server, app_read_model):
    rm, e = app_read_model, emulator
    calls = w.feature(e, "NUMBER", displayName="API calls")
    cid = w.customer(e, name="Acme Rockets")
    w.subscribe(e, cid, w.plan(e, w.product(e), [{"id": calls, "usageLimit": 1000, "resetPeriod": "MONTH"}]))
    w.report_usage(e, cid, calls, 900)
    client = StiggClient(e.url, e.key, timeout=10)
    sync.refresh_catalog(client, rm)
    # the refresh a grant queues is served by a real worker, as in production
    worker = CeleryWorker(django_env(redis_server.url, emulator, READ_MODEL_PREFIX=rm.prefix), queues="hot")
    yield {"cid": cid, "calls": calls, "emu": e, "rm": rm, "client": client}
    worker.stop()
    client.close()


@pytest.fixture
def acme_fresh(acme):
    e, cid = acme["emu"], acme["cid"]
    for p in e.data("GET", f"/api/v1/customers/{cid}/promotional-entitlements", params={"status": "Active,Expired"}):
        e.data("DELETE", f"/api/v1/customers/{cid}/promotional-entitlements/{p['featureId']}")
    assert sync.refresh_customer(acme["client"], acme["rm"], cid, discover=True)
    return acme


def signed_in(chromium, live_server, username: str, permissions: tuple[str, ...], group: str = "Customer success"):
    user = get_user_model().objects.create_user(username, password=f"pw-{username}-1")
    if permissions:
        # A transactional test's database is emptied after each test, the migrations' roles
        # too: give the person the permissions the role would.
        role, _ = Group.objects.get_or_create(name=group)
        role.permissions.add(*Permission.objects.filter(codename__in=permissions))
        user.groups.add(role)
    context = chromium.new_context(viewport={"width": 1366, "height": 768})
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(f"{live_server.url}/accounts/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(f"pw-{username}-1")
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{live_server.url}/")
    return context, page


@pytest.fixture
def page(chromium, live_server, audit_log_emptied_after):
    context, page = signed_in(chromium, live_server, "cassie", ("grant_promotion", "view_auditentry"))
    yield page
    close(context)


def promotions(acme) -> list[dict]:
    return acme["emu"].data("GET", f"/api/v1/customers/{acme['cid']}/promotional-entitlements")


def test_a_grant_through_the_modal_shows_on_the_customer_page(page, live_server, acme_fresh, settings):
    settings.PAGE_POLL_SECONDS = 1
    settings.APPROVAL_LARGE_FACTOR = 0  # warned about, but not held for a lead (test_approvals.py)
    acme = acme_fresh
    page.goto(f"{live_server.url}/customers/{acme['cid']}")
    row = page.locator("#metered tbody tr", has_text="API calls")
    assert "900 / 1,000" in row.inner_text()
    row.get_by_role("link", name="Grant a promotion for API calls").click()
    modal = page.locator("dialog#modal")
    modal.get_by_label("Limit:", exact=True).wait_for()
    assert modal.evaluate("d => d.open") and page.url.endswith(acme["cid"])  # a modal, no navigation
    modal.get_by_label("Limit:", exact=True).fill("-1")
    modal.get_by_label("Reason:", exact=True).fill("Script blew the quota")
    modal.get_by_role("button", name="Preview the grant").click()
    modal.get_by_text("A limit is a whole number of 0 or more.").wait_for()
    assert modal.get_by_label("Reason:", exact=True).input_value() == "Script blew the quota"
    modal.get_by_label("Limit:", exact=True).fill("20000")
    modal.get_by_role("button", name="Preview the grant").click()
    modal.get_by_text("more than 10× what the plan gives").wait_for()
    assert "20,000" in modal.locator(".change-table").inner_text() and promotions(acme) == []
    modal.get_by_role("button", name="Confirm: grant it in Stigg").click()
    page.wait_for_url(f"**/customers/{acme['cid']}?since=**")
    assert "Promotion granted in Stigg: API calls for Acme Rockets." in page.locator(".messages").inner_text()
    assert [p["usageLimit"] for p in promotions(acme)] == [20000]
    # the worker's refresh lands and the page shows the entitlement, from the promotion
    page.wait_for_function("() => { const r = [...document.querySelectorAll('#metered tbody tr')]"
                           ".find(r => r.innerText.includes('API calls'));"
                           " return r && r.innerText.includes(' / 20,000') && r.innerText.includes('promotion'); }")
    assert AuditEntry.objects.get().outcome == "done"


def test_revoke_by_clicking(page, live_server, acme_fresh, settings):
    settings.PAGE_POLL_SECONDS = 1
    acme = acme_fresh
    acme["emu"].data("POST", f"/api/v1/customers/{acme['cid']}/promotional-entitlements", json={
        "promotionalEntitlements": [{"featureId": acme["calls"], "period": "1 month", "usageLimit": 5000}]})
    assert sync.refresh_customer(acme["client"], acme["rm"], acme["cid"])
    page.goto(f"{live_server.url}/customers/{acme['cid']}")
    page.locator("#promotions").get_by_role("link", name="Revoke the promotion for API calls").click()
    modal = page.locator("dialog#modal")
    modal.get_by_role("button", name="Revoke it in Stigg").click()
    modal.get_by_text("Say why").wait_for()  # a reason is required
    assert len(promotions(acme)) == 1
    modal.get_by_label("Reason:", exact=True).fill("Incident resolved")
    modal.get_by_role("button", name="Revoke it in Stigg").click()
    page.wait_for_url(f"**/customers/{acme['cid']}?since=**")
    assert promotions(acme) == []
    page.wait_for_function("() => document.querySelector('#promotions').innerText.includes('No promotions.')")
    assert AuditEntry.objects.get().action == "promotion.revoke"


def test_extend_from_the_expiring_list(page, live_server, acme_fresh):
    acme = acme_fresh
    end = datetime.now(timezone.utc) + timedelta(days=3)
    acme["emu"].data("POST", f"/api/v1/customers/{acme['cid']}/promotional-entitlements", json={
        "promotionalEntitlements": [{"featureId": acme["calls"], "period": "custom", "usageLimit": 5000,
                                     "customEndDate": end.isoformat()}]})
    assert sync.refresh_customer(acme["client"], acme["rm"], acme["cid"])
    page.goto(f"{live_server.url}/promotions/expiring")
    row = page.locator("tr", has_text="Acme Rockets")
    row.get_by_label("Why extend API calls of Acme Rockets").fill("Renewal signed, paperwork pending")
    row.get_by_role("button", name="Extend").click()
    page.wait_for_url(f"{live_server.url}/promotions/expiring")
    assert "Promotion extended in Stigg" in page.locator(".messages").inner_text()
    [promo] = promotions(acme)
    assert datetime.fromisoformat(promo["endDate"]) > end + timedelta(days=20)
    # the worker's refresh moves it out of the next 14 days (the list is not polled: it holds forms)
    deadline = time.monotonic() + TIMEOUT_MS / 1000
    while "Acme Rockets" in page.locator("main").inner_text() and time.monotonic() < deadline:
        page.wait_for_timeout(500)
        page.reload()
    assert "Acme Rockets" not in page.locator("main").inner_text()


def test_a_viewer_sees_no_control_and_is_refused(chromium, live_server, acme_fresh, audit_log_emptied_after):
    acme = acme_fresh
    context, page = signed_in(chromium, live_server, "vera", ())
    page.goto(f"{live_server.url}/customers/{acme['cid']}")
    page.locator("#metered").wait_for()
    assert page.get_by_text("Grant promotion").count() == 0
    # posting anyway, with the page's own CSRF token
    status = page.evaluate("""async ([url, feature]) => {
        const token = document.querySelector('input[name=csrfmiddlewaretoken]').value;
        const body = new URLSearchParams({csrfmiddlewaretoken: token, feature, limit: '5000', period: '1 month',
            reason: 'x', token: '00000000-0000-4000-8000-000000000000', confirm: 'yes'});
        return (await fetch(url, {method: 'POST', body})).status; }""",
        [f"/customers/{acme['cid']}/promotions/new?feature={acme['calls']}", acme["calls"]])
    assert status == 403 and promotions(acme) == [] and AuditEntry.objects.count() == 0
    close(context)


def test_a_lead_approves_a_pending_request(chromium, live_server, acme_fresh, audit_log_emptied_after):
    acme = acme_fresh
    # cassie asks for a lifetime grant through the form; the policy holds it for a lead
    context, page = signed_in(chromium, live_server, "cassie", ("grant_promotion", "view_grantrequest"))
    page.goto(f"{live_server.url}/customers/{acme['cid']}/promotions/new?feature={acme['calls']}")
    page.get_by_label("Limit:", exact=True).fill("3000")
    page.get_by_label("For:", exact=True).select_option("lifetime")
    page.get_by_label("Reason:", exact=True).fill("Enterprise pilot")
    page.get_by_role("button", name="Preview the grant").click()
    page.get_by_text("This grant needs approval").wait_for()
    page.get_by_role("button", name="Request approval").click()
    page.wait_for_url(f"{live_server.url}/approvals/")
    assert "your request" not in page.locator("#pending").inner_text()  # cassie may not decide at all
    close(context)
    assert promotions(acme) == []
    # lena, a lead, approves it
    context, page = signed_in(chromium, live_server, "lena", ("approve_grant", "grant_promotion", "view_grantrequest"),
                              group="Customer success lead")
    page.goto(f"{live_server.url}/approvals/")
    row = page.locator("#pending tr", has_text="Acme Rockets")
    assert "it is lifetime" in row.inner_text() and "cassie" in row.inner_text()
    row.get_by_label("Why approve or reject the API calls grant for Acme Rockets").fill("Pilot signed off")
    row.get_by_role("button", name="Approve").click()
    page.get_by_text("Approved and granted in Stigg: API calls for Acme Rockets.").wait_for()
    assert [(p["usageLimit"], p["period"]) for p in promotions(acme)] == [(3000, "lifetime")]
    assert "Pilot signed off" in page.locator("#decided").inner_text()
    close(context)
