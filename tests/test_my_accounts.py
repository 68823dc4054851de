""""My accounts" on every list — customers, near-limit (and its CSV), expiring promotions,
alerts — through Django's test client, on the app's own read model: customers written as a
refresh writes them, one synced from the emulator over HTTP with its owner in its Stigg
metadata (real Redis, real emulator; no mocks)."""
from __future__ import annotations

import csv
import io
import re
from datetime import datetime, timedelta, timezone
from html import unescape
from typing import Any

import pytest
from django.core.management import call_command
from django.test import Client
from django.urls import reverse

from dashboard import sync
from dashboard.alerts.evaluate import evaluate_customer
from dashboard.codec import dump
from dashboard.models import Alert, profile_of
from dashboard.rules.alerts import Thresholds
from dashboard.stigg import Promotion, StiggClient

from . import emulator_world as w
from .near_limit_world import customer_snapshot
from .pages import text_of, user_in
from .test_read_model import FEATURES, PACKAGES, T0

pytestmark = pytest.mark.django_db
MARIA, WEI = "Maria Garcia", "Wei Chen"
MARIAS, WEIS, NOBODYS = 60, 15, 5  # written customers of each; Maria also owns the synced one


def ending_in(feature: str, days: float) -> Promotion:
    now = datetime.now(timezone.utc)
    return Promotion(f"promo-{feature}", feature, "Active", "custom", now - timedelta(days=2), now + timedelta(days=days),
                     5000, False, False, None, "MONTH", now - timedelta(days=2))


@pytest.fixture(scope="module")
def world(emulator, app_read_model):
    """Maria owns 61 customers (one synced from the emulator), Wei 15, nobody 5: each with its
    API calls at 85-99 % of the limit and a promotion ending within 14 days."""
    rm = app_read_model
    rm.write_catalog(dump(list(FEATURES.values())), dump(list(PACKAGES.values())), T0, entity_types=[])
    owned = [(f"m{i:02d}", MARIA, 900 + i) for i in range(MARIAS)] + \
            [(f"w{i:02d}", f"  {WEI} ", 850 + i) for i in range(WEIS)] + [(f"u{i}", None, 950 + i) for i in range(NOBODYS)]
    for n, (cid, owner, calls) in enumerate(owned):
        # names interleave the owners in the name order
        rm.write_customer(*customer_snapshot(cid, name=f"Account {n * 37 % 97:02d} {cid}", owner=owner, api=calls,
                                             promotions=(ending_in("seats", 1 + n % 12),)))
    e = emulator
    calls = w.feature(e, "NUMBER", displayName="Synced calls")
    flag = w.feature(e, "BOOLEAN", displayName="Synced SSO")  # promoted: the calls' limit stays the plan's
    plan = w.plan(e, w.product(e), [{"id": calls, "usageLimit": 100, "resetPeriod": "MONTH"}], displayName="Synced")
    synced = w.customer(e, name="Synced Co", metadata={"accountOwner": MARIA})
    w.subscribe(e, synced, plan)
    w.report_usage(e, synced, calls, 91)
    end = (datetime.now(timezone.utc) + timedelta(days=3)).isoformat()
    e.data("POST", f"/api/v1/customers/{synced}/promotional-entitlements", json={"promotionalEntitlements": [
        {"featureId": flag, "period": "custom", "customEndDate": end}]})
    client = StiggClient(e.url, e.key, timeout=10)
    sync.refresh_catalog(client, rm)
    assert sync.refresh_customer(client, rm, synced, discover=True)
    client.close()
    mine = {cid for cid, owner, _ in owned if owner == MARIA} | {synced}
    yield {"rm": rm, "synced": synced, "mine": mine, "all": {cid for cid, _, _ in owned} | {synced},
           "weis": {cid for cid, owner, _ in owned if owner and owner.strip() == WEI}}


def signed_in_as(username: str, group: str = "Customer success", owner: str = "") -> Client:
    user = user_in(group, username)
    if owner:
        profile = profile_of(user)
        profile.account_owner = owner
        profile.save()
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def maria(db) -> Client:
    return signed_in_as("maria", owner=f" {MARIA} ")  # as typed in the admin: stripped when matched


@pytest.fixture
def alerts(db) -> dict[str, list[int]]:
    """55 open alerts of Maria's accounts, 10 of Wei's, 3 of nobody's, opened a minute apart
    with the owners interleaved; their pks, newest first, per owner."""
    now = datetime.now(timezone.utc)
    owners = [MARIA] * 55 + [WEI] * 10 + [""] * 3
    made = Alert.objects.bulk_create([
        Alert(customer_id=f"a{i:02d}", customer_name=f"Alerted {i:02d}", account_owner=owner, kind="entitlement",
              subject="e|api", capability="api", feature_name="API calls", level="warning", worst_level="warning",
              utilization=0.9, usage=900, usage_limit=1000, opened_at=now - timedelta(minutes=(i * 7) % 68))
        for i, owner in enumerate(owners)])
    by_time = sorted(made, key=lambda a: (a.opened_at, a.pk), reverse=True)
    return {owner: [a.pk for a in by_time if a.account_owner == owner] for owner in (MARIA, WEI, "")}


def get(client: Client, name: str, **query: str):
    response = client.get(reverse(name), query)
    assert response.status_code == 200
    return response


def customers_of(response) -> list[str]:
    """The customer of each row, in order: on the customers, near-limit and expiring lists."""
    html = response.content.decode()
    found = re.findall(r'<tr data-customer-id="([^"]*)" data-feature-id=', html)  # expiring
    found += re.findall(r'<tr data-kind="\w+"[^>]*>(?:<td class="tick">[^\n]*?</td>)?<td><span[^>]*>\w+</span></td>'
                        r'<td><a href="/customers/([^"]+)"', html)  # near-limit (a bulk-grant tick first, or not)
    found += re.findall(r'<tr>\s*<td><a href="/customers/([^"]+)">', html)  # customers
    return [unescape(c) for c in found]


def alerts_of(response) -> list[int]:
    return [int(pk) for pk in re.findall(r'<tr data-alert="(\d+)"', response.content.decode())]


def switch_of(response) -> tuple[str, str]:
    """(on / off / none, the switch's link) of the page's "My accounts" line."""
    state, line = re.search(r'<p class="mine[^"]*" data-mine="(\w+)">(.*?)</p>', response.content.decode(),
                            re.S).groups()
    link = re.search(r'<a href="([^"]+)"', line)
    return state, unescape(link.group(1)) if link else ""


def link(response, rel: str) -> str:
    return unescape(re.search(rf'<a href="([^"]+)"[^>]* rel="{rel}"', response.content.decode()).group(1))


def csv_rows(response) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))


def test_every_list_opens_on_my_accounts_for_a_user_who_owns_accounts(world, maria, alerts):
    customers = get(maria, "customers")
    assert switch_of(customers)[0] == "on" and "Showing My accounts (Maria Garcia) Show every account" in \
        text_of(customers)
    assert "1–50 of 61 customers" in text_of(customers) and set(customers_of(customers)) <= world["mine"]
    near = get(maria, "near-limit")
    assert switch_of(near)[0] == "on" and "1–50 of 61 at ≥ 80 %" in text_of(near)
    assert set(customers_of(near)) <= world["mine"] and len(customers_of(near)) == 50
    expiring = get(maria, "promotions-expiring")
    assert switch_of(expiring)[0] == "on" and "61 promotions · page 1 of 2" in text_of(expiring)
    assert set(customers_of(expiring)) <= world["mine"]
    alerted = get(maria, "alerts")
    assert switch_of(alerted)[0] == "on" and alerts_of(alerted) == alerts[MARIA][:50]
    assert "55 open alerts of your accounts, newest first" in text_of(alerted)
    assert 'aria-label="55 open"' in customers.content.decode()  # the nav counts theirs, as the page lists


def test_mine_0_lists_every_account(world, maria, alerts):
    customers = get(maria, "customers", mine="0")
    assert switch_of(customers)[0] == "off" and "1–50 of 81 customers" in text_of(customers)
    assert "Showing every account Show only My accounts (Maria Garcia)" in text_of(customers)
    assert "1–50 of 81 at ≥ 80 %" in text_of(get(maria, "near-limit", mine="0"))
    assert "81 promotions · page 1 of 2" in text_of(get(maria, "promotions-expiring", mine="0"))
    assert "68 open alerts, your accounts' first, then newest first" in text_of(get(maria, "alerts", mine="0"))


def test_a_user_who_owns_no_accounts_sees_every_account_and_how_to_get_my_accounts(world, alerts, db):
    casey = signed_in_as("casey")
    for name, total in (("customers", "1–50 of 81 customers"), ("near-limit", "1–50 of 81 at ≥ 80 %"),
                        ("promotions-expiring", "81 promotions"), ("alerts", "68 open alerts, newest first")):
        response = get(casey, name)
        assert switch_of(response) == ("none", "") and total in text_of(response), name
        assert "“My accounts” appears here once an administrator sets your account owner name" in text_of(response)
        assert 'name="mine"' not in response.content.decode() and 'aria-label="68 open"' in response.content.decode()
        asked = get(casey, name, mine="1")
        assert total in text_of(asked) and "needs your account owner name on your profile" in text_of(asked)
    # someone else's owner name shows theirs
    wei = signed_in_as("wei", owner=WEI)
    assert set(customers_of(get(wei, "customers"))) == world["weis"]


def test_my_accounts_is_kept_through_pages_sorts_polls_and_the_csv(world, maria, alerts):
    first = get(maria, "customers", sort="utilization")
    following = link(first, "next")
    assert "mine=1" in following and "sort=utilization" in following
    second = maria.get(reverse("customers") + following)
    assert set(customers_of(second)) <= world["mine"] and len(customers_of(second)) == 11
    poll = maria.get(reverse("customers"), {"mine": "0", "q": "account"}, HTTP_HX_REQUEST="true",
                     HTTP_HX_TARGET="customer-table")
    assert re.search(r'id="customer-table" hx-get="[^"]*mine=0', poll.content.decode())
    assert "mine=0" in link(get(maria, "customers", mine="0"), "next")

    near = get(maria, "near-limit", order="usage")
    assert "mine=1" in link(near, "next") and "order=usage" in link(near, "next")
    assert set(customers_of(maria.get(link(near, "next")))) <= world["mine"]
    assert re.search(r'id="near-limit-table" hx-get="[^"]*mine=1', near.content.decode())
    csv_link = unescape(re.search(r'<a href="([^"]+)">Download CSV', near.content.decode()).group(1))
    assert "mine=1" in csv_link
    mine_csv = csv_rows(maria.get(csv_link))
    assert len(mine_csv) == 61 and {r["account_owner"] for r in mine_csv} == {MARIA}
    assert len(csv_rows(maria.get(reverse("near-limit-csv")))) == 61  # the default, as on the page
    assert len(csv_rows(maria.get(reverse("near-limit-csv"), {"mine": "0"}))) == 81

    expiring = get(maria, "promotions-expiring")
    assert "mine=1" in link(expiring, "next")
    later = maria.get(reverse("promotions-expiring") + link(expiring, "next"))
    assert set(customers_of(later)) <= world["mine"] and len(customers_of(later)) == 11
    assert 'name="mine" value="1"' in expiring.content.decode()  # the days form keeps it

    alerted = get(maria, "alerts")
    assert "mine=1" in link(alerted, "next")
    assert alerts_of(maria.get(link(alerted, "next"))) == alerts[MARIA][50:]
    tabs = re.findall(r'<nav class="tabs"[^>]*>(.*?)</nav>', alerted.content.decode(), re.S)[0]
    assert tabs.count("mine=1") == 4


def test_the_switch_shows_every_account_and_back_in_one_click(world, maria, alerts):
    for name, query in (("customers", {"q": "account", "sort": "utilization"}), ("near-limit", {"order": "urgency"}),
                        ("promotions-expiring", {"days": "30"}), ("alerts", {"state": "open"})):
        on = get(maria, name, **query)
        state, to_all = switch_of(on)
        assert state == "on" and "mine=0" in to_all
        every = maria.get(reverse(name) + to_all if to_all.startswith("?") else to_all)
        state, back = switch_of(every)
        assert state == "off" and "mine=1" in back, name
        assert switch_of(maria.get(reverse(name) + back if back.startswith("?") else back))[0] == "on"
        kept = {k: v for k, v in query.items() if k != "state"}  # (open is the alerts' default)
        assert all(f"{k}={v}" in to_all and f"{k}={v}" in back for k, v in kept.items()), name
    everyone = customers_of(maria.get(reverse("customers") + switch_of(get(maria, "customers"))[1]))
    assert not set(everyone) <= world["mine"]


def test_the_near_limit_owner_filter_and_my_accounts(world, maria):
    on = get(maria, "near-limit").content.decode()
    assert 'name="owner"' not in on and 'name="mine" value="1"' in on  # the owner is theirs: no choice
    off = get(maria, "near-limit", mine="0").content.decode()
    assert 'name="owner"' in off and 'name="mine" value="0"' in off
    # a link to someone else's accounts is followed as written
    theirs = get(maria, "near-limit", owner=WEI)
    assert switch_of(theirs)[0] == "off" and set(customers_of(theirs)) == world["weis"]
    assert f"owner={WEI.replace(' ', '%20')}" in link_csv(theirs)
    # but not against an explicit "mine=1"
    insisted = get(maria, "near-limit", owner=WEI, mine="1")
    assert switch_of(insisted)[0] == "on" and set(customers_of(insisted)) <= world["mine"]
    assert "The account owner filter “Wei Chen” is left out while My accounts is on" in text_of(insisted)


def link_csv(response) -> str:
    return unescape(re.search(r'<a href="([^"]+)">Download CSV', response.content.decode()).group(1))


def test_alerts_of_my_accounts_come_first_then_the_rest_newest_first(world, maria, alerts):
    newest_first = [a.pk for a in Alert.objects.order_by("-opened_at", "-id")]
    everyone = [*alerts[MARIA], *(pk for pk in newest_first if pk not in alerts[MARIA])]
    assert alerts_of(get(maria, "alerts", mine="0")) == everyone[:50]
    assert alerts_of(get(maria, "alerts", mine="0", page="2")) == everyone[50:]
    assert newest_first != everyone  # interleaved owners: the order above is not just the time
    assert alerts_of(get(signed_in_as("casey"), "alerts")) == newest_first[:50]
    acknowledged = Alert.objects.get(pk=alerts[MARIA][0])
    acknowledged.acknowledged_at = datetime.now(timezone.utc)
    acknowledged.save()
    assert alerts_of(get(maria, "alerts", state="acknowledged")) == [acknowledged.pk]
    assert alerts_of(get(signed_in_as("wei", owner=WEI), "alerts", state="acknowledged")) == []


def test_a_bad_mine_value_is_said_and_the_default_shown(world, maria):
    response = get(maria, "customers", mine="yes")
    assert "“mine” is 1 (only my accounts) or 0 (every account)" in text_of(response)
    assert switch_of(response)[0] == "on" and "of 61 customers" in text_of(response)


def test_an_owner_with_no_accounts_is_told_why_the_list_is_empty(world, db):
    typo = signed_in_as("typo", owner="maria garcia")  # the metadata spells it "Maria Garcia"
    response = get(typo, "customers")
    assert customers_of(response) == [] and "No customer has maria garcia as its account owner" in text_of(response)


def test_open_alerts_follow_their_customers_owner(rm):
    now = T0 + timedelta(minutes=5)
    rm.write_customer(*customer_snapshot("acme", owner=MARIA, api=950))
    assert evaluate_customer(rm, "acme", now, Thresholds()).opened == 1
    opened = Alert.objects.get(customer_id="acme")
    assert opened.account_owner == MARIA
    rm.write_customer(*customer_snapshot("acme", owner=WEI, api=950))  # the same read, reassigned meanwhile
    evaluate_customer(rm, "acme", now, Thresholds())
    moved = Alert.objects.get(customer_id="acme")
    assert (moved.pk, moved.account_owner, moved.state) == (opened.pk, WEI, "open")


def test_the_demo_login_command_sets_whose_accounts_a_user_owns(db):
    call_command("ensure_demo_user", "demo", "pw-demo-1", "--group", "Customer success", "--account-owner",
                 " Maria Garcia ")
    user = user_model().objects.get(username="demo")
    assert profile_of(user).account_owner == MARIA
    call_command("ensure_demo_user", "demo", "pw-demo-2", "--group", "Customer success")  # left as it is
    assert profile_of(user).account_owner == MARIA
    call_command("ensure_demo_user", "demo", "pw-demo-3", "--group", "Customer success", "--account-owner", "")
    assert profile_of(user).account_owner == ""


def user_model() -> Any:
    from django.contrib.auth import get_user_model

    return get_user_model()


def test_the_nav_counts_open_alerts_up_to_99_then_says_99_plus(world, maria, alerts):
    """Past 99 the badge stops counting (every page shows it; /alerts/ gives the exact number)."""
    everyone = signed_in_as("everyone")  # no owner name: the nav counts every account's
    assert 'aria-label="68 open"' in get(everyone, "customers").content.decode()
    now = datetime.now(timezone.utc)
    Alert.objects.bulk_create([Alert(customer_id=f"x{i:02d}", account_owner=WEI, kind="entitlement", subject="e|api",
                                     capability="api", level="warning", worst_level="warning", opened_at=now)
                               for i in range(31)])  # 99 now
    assert 'aria-label="99 open">99<' in get(everyone, "customers").content.decode()
    Alert.objects.create(customer_id="x99", account_owner=WEI, kind="entitlement", subject="e|api", capability="api",
                         level="warning", worst_level="warning", opened_at=now)
    page = get(everyone, "customers").content.decode()
    assert 'aria-label="more than 99 open">99+<' in page
    assert "100 open alerts" in text_of(get(everyone, "alerts"))  # the page itself counts them all
    assert 'aria-label="55 open"' in get(maria, "customers").content.decode()  # Maria's own: still counted
