"""`/promotions/expiring`: every promotion across the fleet ending in the next N days, soonest
first, with who granted it and why, and one-click extend. Promotions are granted in the
emulator over HTTP (as if in Stigg's console) or through the dashboard, synced into the
test process's real Redis, and read back through the page."""
from __future__ import annotations

import re
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import quote

import pytest
from django.test import Client
from django.urls import reverse

from dashboard import sync
from dashboard.models import AuditEntry
from dashboard.stigg import StiggClient

from . import emulator_world as w
from .pages import signed_in, text_of

pytestmark = pytest.mark.django_db
HOSTILE = "acme:history/ü %41|x,y"


def q(customer_id: str) -> str:
    return quote(customer_id, safe="")


@pytest.fixture(scope="module")
def fleet(emulator, app_read_model):
    e, rm = emulator, app_read_model
    calls = w.feature(e, "NUMBER", displayName="API calls")
    sso = w.feature(e, "BOOLEAN", displayName="SSO")
    plan = w.plan(e, w.product(e), [{"id": calls, "usageLimit": 1000, "resetPeriod": "MONTH"}])
    ids = {name: w.customer(e, name=name) for name in ("Soon Co", "Later Co", "Lifetime Co", "Far Co")}
    e.data("POST", "/api/v1/customers", json={"id": HOSTILE, "name": "Hostile <b>Ltd</b>"})
    ids["Hostile <b>Ltd</b>"] = HOSTILE
    for cid in ids.values():
        w.subscribe(e, cid, plan)
    client = StiggClient(e.url, e.key, timeout=10)
    sync.refresh_catalog(client, rm)
    fleet = {"emu": e, "rm": rm, "client": client, "ids": ids, "calls": calls, "sso": sso}
    yield fleet
    client.close()


def grant(fleet: dict[str, Any], name: str, feature: str, days: float | None, **values: Any) -> None:
    end = datetime.now(timezone.utc) + timedelta(days=days) if days is not None else None
    item = {"featureId": fleet[feature], "period": "custom" if end else "lifetime",
            "customEndDate": end.isoformat() if end else None, **values}
    fleet["emu"].data("POST", f"/api/v1/customers/{q(fleet['ids'][name])}/promotional-entitlements",
                      json={"promotionalEntitlements": [item]})


def sync_all(fleet: dict[str, Any]) -> None:
    for cid in fleet["ids"].values():
        assert sync.refresh_customer(fleet["client"], fleet["rm"], cid, discover=True)


@pytest.fixture
def world(fleet):
    """Promotions ending in 2 days (Soon), 9 days (Later, Hostile), 40 days (Far) and never."""
    e = fleet["emu"]
    for cid in fleet["ids"].values():
        for p in e.data("GET", f"/api/v1/customers/{q(cid)}/promotional-entitlements",
                        params={"status": "Active,Expired"}):
            e.data("DELETE", f"/api/v1/customers/{q(cid)}/promotional-entitlements/{p['featureId']}")
    grant(fleet, "Later Co", "calls", 9, usageLimit=5000)
    grant(fleet, "Soon Co", "sso", 2)
    grant(fleet, "Hostile <b>Ltd</b>", "calls", 9.5, hasUnlimitedUsage=True)
    grant(fleet, "Far Co", "calls", 40, usageLimit=2000)
    grant(fleet, "Lifetime Co", "calls", None, usageLimit=3000)
    sync_all(fleet)
    return fleet




@pytest.fixture
def cs(db) -> Client:
    return signed_in("Customer success", "cassie")


def rows(response) -> list[tuple[str, str]]:
    html = response.content.decode()
    return re.findall(r'<tr data-customer-id="([^"]*)" data-feature-id="([^"]*)"', html)


def test_it_lists_what_ends_in_the_window_soonest_first(world, cs):
    page = cs.get(reverse("promotions-expiring"))
    assert page.status_code == 200
    ids = world["ids"]
    assert rows(page) == [(ids["Soon Co"], world["sso"]), (ids["Later Co"], world["calls"]),
                          ("acme:history/ü %41|x,y", world["calls"])]
    text = text_of(page)
    assert "3 promotions" in text and re.search(r"in 4[78] h .* in [89] days .* in 9 days", text)
    assert "5,000" in text and "unlimited" in text and "granted outside this dashboard" in text
    assert "Hostile <b>Ltd</b>" in text and "<b>Ltd</b>" not in page.content.decode()  # escaped
    wider = cs.get(reverse("promotions-expiring") + "?days=60")
    assert [r[0] for r in rows(wider)][-1] == ids["Far Co"]  # never the lifetime grant
    assert ids["Lifetime Co"] not in [r[0] for r in rows(wider)]


def test_a_revoked_or_expired_promotion_leaves_the_list(world, cs):
    ids = world["ids"]
    world["emu"].data("DELETE", f"/api/v1/customers/{ids['Later Co']}/promotional-entitlements/{world['calls']}")
    world["emu"].set_clock_offset(3 * 86400)  # Soon Co's ends
    try:
        sync_all(world)
    finally:
        world["emu"].set_clock_offset(0)
    listed = [r[0] for r in rows(cs.get(reverse("promotions-expiring")))]
    assert ids["Later Co"] not in listed and ids["Soon Co"] not in listed and HOSTILE in listed


def test_it_says_who_granted_a_promotion_here_and_why(world, cs):
    ids = world["ids"]
    page = cs.get(f"{reverse('promotion-new', args=[ids['Later Co']])}?feature={world['calls']}")
    token = re.search(r'name="token" value="([0-9a-f-]{36})"', page.content.decode()).group(1)
    end = (datetime.now(timezone.utc) + timedelta(days=5)).date().isoformat()
    done = cs.post(f"{reverse('promotion-new', args=[ids['Later Co']])}?feature={world['calls']}",
                   {"feature": world["calls"], "limit": "7000", "period": "custom", "end_date": end,
                    "reason": "Launch week spike", "ticket": "https://help.example/t/42", "token": token,
                    "confirm": "yes"})
    assert done.status_code == 302
    sync_all(world)
    text = text_of(cs.get(reverse("promotions-expiring")))
    assert re.search(r"7,000 custom since .* cassie .* Launch week spike · https://help.example/t/42", text)


def test_one_click_extend_moves_it_out_of_the_window(world, cs):
    ids = world["ids"]
    here = reverse("promotions-expiring")
    url = f"{reverse('promotion-extend', args=[ids['Later Co']])}?feature={world['calls']}"
    missing_reason = cs.post(url, {"period": "1 month", "reason": "", "token": str(uuid.uuid4()), "next": here})
    assert "Say why" in text_of(missing_reason)
    done = cs.post(url, {"period": "1 month", "reason": "Renewal in progress", "token": str(uuid.uuid4()),
                         "next": here})
    assert done.status_code == 302 and done.url == here
    [promo] = world["emu"].data("GET", f"/api/v1/customers/{ids['Later Co']}/promotional-entitlements")
    assert datetime.fromisoformat(promo["endDate"]) > datetime.now(timezone.utc) + timedelta(days=27)
    assert promo["usageLimit"] == 5000
    entry = AuditEntry.objects.get()
    assert (entry.action, entry.reason) == ("promotion.extend", "Renewal in progress")
    sync_all(world)
    assert ids["Later Co"] not in [r[0] for r in rows(cs.get(here))]
    # "next" only ever goes back to a page of this site
    elsewhere = cs.post(url, {"period": "1 month", "reason": "r", "token": str(uuid.uuid4()),
                              "next": "https://evil.example/"})
    assert elsewhere.status_code == 302 and elsewhere.url.startswith(reverse("customer", args=[ids["Later Co"]]))


@pytest.mark.parametrize("days", ["abc", "0", "1000", "-3", "1e3", "9" * 40])
def test_a_bad_window_is_said_and_the_default_shown(world, cs, days):
    page = cs.get(reverse("promotions-expiring"), {"days": days})
    assert page.status_code == 200 and "“days” is a whole number of days from 1 to 366" in text_of(page)
    assert len(rows(page)) == 3


def test_a_viewer_sees_the_list_without_extend_and_is_refused(world, db):
    viewer = signed_in("Viewers", "vera")
    page = viewer.get(reverse("promotions-expiring"))
    assert len(rows(page)) == 3 and "inline-extend" not in page.content.decode()
    url = f"{reverse('promotion-extend', args=[world['ids']['Later Co']])}?feature={world['calls']}"
    assert viewer.post(url, {"period": "1 year", "reason": "r", "token": str(uuid.uuid4())}).status_code == 403
    assert AuditEntry.objects.count() == 0
