"""Big grants wait for another customer-success lead: the request instead of the grant, the
approval that then grants in Stigg (the emulator over real HTTP) exactly as if submitted,
rejection, expiry, self-approval refused, and who may decide. Every step in the audit log."""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from django.urls import reverse

from dashboard import sync
from dashboard.actions import approvals
from dashboard.models import AuditEntry, GrantRequest
from dashboard.stigg import StiggClient

from . import emulator_world as w
from .pages import signed_in, text_of, user_in

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def world(emulator, app_read_model):
    e, rm = emulator, app_read_model
    calls = w.feature(e, "NUMBER", displayName="API calls")
    cid = w.customer(e, name="Acme Rockets")
    w.subscribe(e, cid, w.plan(e, w.product(e), [{"id": calls, "usageLimit": 1000, "resetPeriod": "MONTH"}]))
    client = StiggClient(e.url, e.key, timeout=10)
    sync.refresh_catalog(client, rm)
    yield {"emu": e, "rm": rm, "cid": cid, "calls": calls, "client": client}
    client.close()


@pytest.fixture
def fresh(world):
    e = world["emu"]
    e.clear_faults()
    for p in e.data("GET", f"/api/v1/customers/{world['cid']}/promotional-entitlements",
                    params={"status": "Active,Expired"}):
        e.data("DELETE", f"/api/v1/customers/{world['cid']}/promotional-entitlements/{p['featureId']}")
    assert sync.refresh_customer(world["client"], world["rm"], world["cid"], discover=True)
    yield world
    e.clear_faults()


def promotions(world: dict[str, Any]) -> list[dict[str, Any]]:
    return world["emu"].data("GET", f"/api/v1/customers/{world['cid']}/promotional-entitlements")


def ask(client, world: dict[str, Any], **fields: Any):
    """Fill the grant form and confirm it (a lifetime grant: the policy holds it back)."""
    url = f"{reverse('promotion-new', args=[world['cid']])}?feature={world['calls']}"
    token = re.search(r'name="token" value="([0-9a-f-]{36})"', client.get(url).content.decode()).group(1)
    data = {"feature": world["calls"], "limit": "5000", "period": "lifetime", "reason": "Enterprise pilot",
            "ticket": "T-7", "token": token, **fields}
    preview = client.post(url, data)
    return preview, client.post(url, {**data, "confirm": "yes"})


def decide(client, req: GrantRequest, decision: str, reason: str = "ok"):
    return client.post(reverse(f"approval-{decision}", args=[req.pk]), {"reason": reason})


def test_a_lifetime_grant_becomes_a_request_and_a_lead_approves_it(fresh, db):
    cs, lead = signed_in("Customer success", "cassie"), signed_in("Customer success lead", "lena")
    preview, sent = ask(cs, fresh)
    assert "This grant needs approval by another customer-success lead: it is lifetime" in text_of(preview)
    assert "Request approval" in text_of(preview)
    assert sent.status_code == 302 and sent.url == reverse("approvals")
    assert promotions(fresh) == []  # nothing granted yet
    req = GrantRequest.objects.get()
    assert (req.status, req.requested_by.username, req.why) == ("pending", "cassie", ["it is lifetime"])
    listed = text_of(lead.get(reverse("approvals")))
    assert "Acme Rockets" in listed and "it is lifetime" in listed and "Enterprise pilot" in listed
    done = decide(lead, req, "approve", "Pilot signed off")
    assert done.status_code == 302
    [promo] = promotions(fresh)
    assert (promo["usageLimit"], promo["period"]) == (5000, "lifetime")
    req.refresh_from_db()
    assert (req.status, req.decided_by.username, req.decision_reason) == ("granted", "lena", "Pilot signed off")
    steps = list(AuditEntry.objects.order_by("id").values_list("action", "username", "outcome"))
    assert steps == [("grant.request", "cassie", "done"), ("promotion.grant", "cassie", "done"),
                     ("grant.approve", "lena", "done")]
    again = decide(lead, req, "approve")  # decided already: said, nothing more
    assert again.status_code == 302 and AuditEntry.objects.count() == 3


def test_the_same_form_sent_twice_is_one_request(fresh, db):
    cs = signed_in("Customer success", "cassie")
    preview, sent = ask(cs, fresh)
    token = re.search(r'name="token" value="([0-9a-f-]{36})"', preview.content.decode()).group(1)
    url = f"{reverse('promotion-new', args=[fresh['cid']])}?feature={fresh['calls']}"
    cs.post(url, {"feature": fresh["calls"], "limit": "5000", "period": "lifetime", "reason": "Enterprise pilot",
                  "token": token, "confirm": "yes"})
    assert GrantRequest.objects.count() == 1 and AuditEntry.objects.count() == 1


def test_nobody_approves_their_own_request(fresh, db):
    lead = signed_in("Customer success lead", "lena")
    ask(lead, fresh)
    req = GrantRequest.objects.get()
    page = lead.get(reverse("approvals"))
    assert "your request: another lead decides" in text_of(page)
    refused = decide(lead, req, "approve")
    follow = lead.get(refused.url)
    assert "Nobody approves their own request" in text_of(follow)
    req.refresh_from_db()
    assert req.status == "pending" and promotions(fresh) == []


def test_reject_needs_a_reason_and_grants_nothing(fresh, db):
    ask(signed_in("Customer success", "cassie"), fresh)
    lead = signed_in("Customer success lead", "lena")
    req = GrantRequest.objects.get()
    assert "Say why it is rejected" in text_of(lead.get(decide(lead, req, "reject", " ").url))
    decide(lead, req, "reject", "Too generous for a pilot")
    req.refresh_from_db()
    assert (req.status, req.decision_reason) == ("rejected", "Too generous for a pilot")
    assert promotions(fresh) == [] and AuditEntry.objects.filter(action="grant.reject").count() == 1


def test_an_undecided_request_expires(fresh, db):
    ask(signed_in("Customer success", "cassie"), fresh)
    req = GrantRequest.objects.get()
    assert approvals.expire_due(datetime.now(timezone.utc) + timedelta(hours=71)) == 0
    assert approvals.expire_due(datetime.now(timezone.utc) + timedelta(hours=73)) == 1
    assert approvals.expire_due(datetime.now(timezone.utc) + timedelta(hours=74)) == 0  # once
    req.refresh_from_db()
    assert req.status == "expired" and AuditEntry.objects.filter(action="grant.expire").count() == 1
    lead = signed_in("Customer success lead", "lena")
    assert "already decided: expired undecided" in text_of(lead.get(decide(lead, req, "approve").url))
    assert promotions(fresh) == []


def test_a_failed_approval_stays_waiting_and_can_be_approved_again(fresh, db, settings):
    settings.STIGG_WRITE_TIMEOUT_SECONDS = 0.5
    ask(signed_in("Customer success", "cassie"), fresh)
    lead = signed_in("Customer success lead", "lena")
    req = GrantRequest.objects.get()
    fresh["emu"].faults(outage=True)
    page = lead.get(decide(lead, req, "approve").url)
    assert "Approved, but not granted" in text_of(page)
    req.refresh_from_db()
    assert req.status == "pending" and req.last_error and not AuditEntry.objects.filter(
        action="promotion.grant", outcome="done").exists()
    fresh["emu"].clear_faults()
    decide(lead, req, "approve")
    req.refresh_from_db()
    assert req.status == "granted" and [p["usageLimit"] for p in promotions(fresh)] == [5000]


def test_only_leads_decide(fresh, db):
    ask(signed_in("Customer success", "cassie"), fresh)
    req = GrantRequest.objects.get()
    for client in (signed_in("Customer success", "carl"), signed_in("Viewers", "vera"), signed_in(None, "nobody")):
        assert decide(client, req, "approve").status_code == 403
        assert decide(client, req, "reject").status_code == 403
        assert "Approve" not in text_of(client.get(reverse("approvals")))
    req.refresh_from_db()
    assert req.status == "pending" and promotions(fresh) == []
    assert user_in(None, "x").has_perm("dashboard.approve_grant") is False


def test_an_extension_past_the_policy_waits_for_a_lead_too(fresh, db):
    e, cid = fresh["emu"], fresh["cid"]
    e.data("POST", f"/api/v1/customers/{cid}/promotional-entitlements", json={"promotionalEntitlements": [
        {"featureId": fresh["calls"], "period": "1 week", "usageLimit": 3000}]})
    assert sync.refresh_customer(fresh["client"], fresh["rm"], cid)
    [before] = promotions(fresh)
    cs = signed_in("Customer success", "cassie")
    url = f"{reverse('promotion-extend', args=[cid])}?feature={fresh['calls']}"
    token = re.search(r'name="token" value="([0-9a-f-]{36})"', cs.get(url).content.decode()).group(1)
    sent = cs.post(url, {"period": "1 year", "reason": "Annual deal", "token": token})
    assert sent.status_code == 302 and sent.url == reverse("approvals")
    req = GrantRequest.objects.get()
    assert req.why == ["it lasts longer than 90 days"] and promotions(fresh) == [before]
    decide(signed_in("Customer success lead", "lena"), req, "approve", "Signed")
    [after] = promotions(fresh)
    assert after["endDate"] > before["endDate"] and after["usageLimit"] == 3000


def test_every_beat_task_is_one_the_worker_knows():
    from django.conf import settings

    from stiggadmin.celery import app

    app.loader.import_default_modules()
    assert {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()} <= set(app.tasks)
    assert "dashboard.approval_tasks.expire_grant_requests" in app.tasks
