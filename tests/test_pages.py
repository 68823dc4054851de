"""The dashboard's pages, through Django's test client, on a read model filled by a real
sync from the emulator over HTTP (real Redis, real emulator; no mocks)."""
from __future__ import annotations

import json
import re
import time
from urllib.parse import quote

import pytest
import redis
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse

from dashboard import sync, tasks
from dashboard.readmodel import ReadModel
from dashboard.stigg import StiggClient

from . import emulator_world as w
from .pages import htmx, text_of

HOSTILE = "<script>alert(1)</script>"
pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def world(emulator, app_read_model):
    """A catalog with every entitlement shape and a handful of customers, synced into the
    app's own read model (the one the views read)."""
    rm = app_read_model
    e = emulator
    flag = w.feature(e, "BOOLEAN", displayName="Single sign-on")
    locked = w.feature(e, "BOOLEAN", displayName="Audit log")
    seats = w.feature(e, "NUMBER", metered=False, displayName="Projects", featureUnitsPlural="projects")
    region = w.feature(e, "ENUM", displayName="Data region")
    calls = w.feature(e, "NUMBER", displayName="API calls", featureUnitsPlural="calls")
    tokens = w.feature(e, "NUMBER", displayName="AI tokens")
    storage = w.feature(e, "NUMBER", displayName="Storage")
    bursts = w.feature(e, "NUMBER", displayName="Bursts")
    product = w.product(e)
    plan = w.plan(e, product, [
        {"id": flag}, {"id": locked, "isGranted": False}, {"id": seats, "usageLimit": 5},
        {"id": region, "enumValues": ["a", "b"]},
        {"id": calls, "usageLimit": 100, "resetPeriod": "MONTH"},
        {"id": tokens, "hasUnlimitedUsage": True, "resetPeriod": "MONTH"},
        {"id": storage, "usageLimit": 10, "hasSoftLimit": True, "resetPeriod": "MONTH"},
    ], displayName="Growth")
    other_plan = w.plan(e, product, [{"id": flag}], displayName="Starter")
    addon = w.addon(e, product, [{"id": seats, "usageLimit": 3}], displayName="Extra projects")

    rich = w.customer(e, name="Acme Rockets", email="ops@acme.example")
    w.subscribe(e, rich, plan, addons=[{"id": addon, "quantity": 2}])
    w.report_usage(e, rich, storage, 7)  # last period's usage
    w.grant(e, rich, bursts, period="1 week", usageLimit=40)
    e.advance_clock(35 * 86400)  # the monthly period resets once; the one-week promotion expires
    w.report_usage(e, rich, calls, 85)
    w.report_usage(e, rich, tokens, 123_456)
    w.report_usage(e, rich, storage, 12)
    w.grant(e, rich, calls, period="1 month", usageLimit=1000)
    # governance: a team with a user and an agent, budgets on API calls
    e.data("PUT", "/api/v1-beta/entity-types", json={"types": [
        {"id": "team", "displayName": "Team", "attributionKeys": ["teamId"]},
        {"id": "user", "displayName": "User", "attributionKeys": ["userId"]},
        {"id": "agent", "displayName": "Agent", "attributionKeys": ["agentId"]}]})
    e.data("PUT", f"/api/v1-beta/customers/{rich}/entities", json={"entities": [
        {"id": "research", "entityTypeId": "team", "displayName": "Research"},
        {"id": "ada", "entityTypeId": "user", "displayName": "Ada"},
        {"id": "bot-7", "entityTypeId": "agent", "displayName": HOSTILE}]})
    e.data("PUT", f"/api/v1-beta/customers/{rich}/assignments", json={"assignments": [
        {"entityId": "research", "featureId": calls, "usageLimit": 50, "cadence": "P1M"},
        {"entityId": "ada", "featureId": calls, "usageLimit": 10, "cadence": "P1W", "parentId": "research"},
        {"entityId": "bot-7", "featureId": calls, "usageLimit": 40, "cadence": "PT1H", "parentId": "research"}]})
    w.report_usage(e, rich, calls, 12, dimensions={"userId": "ada"})
    w.report_usage(e, rich, calls, 30, dimensions={"agentId": "bot-7"})

    evil = w.customer(e, name=HOSTILE, email="x@evil.example")
    w.subscribe(e, evil, other_plan)
    broken = w.customer(e, name="Brittle Ltd")
    w.subscribe(e, broken, other_plan)
    quiet = w.customer(e, name="Quiet Co")
    w.subscribe(e, quiet, other_plan)

    client = StiggClient(e.url, e.key, timeout=10)
    sync.refresh_catalog(client, rm)
    for cid in (rich, evil, broken, quiet):
        sync.refresh_customer(client, rm, cid, discover=True)
    sync.refresh_usage_history(client, rm, rich, days=10)  # our clock is 35 days behind the emulator's
    # A refresh that fails after a good one: the malformed-answer fault for one customer,
    # recorded by the real task code.
    e.faults(malformedCustomerIds=[broken])
    assert tasks.refresh_customer_now.apply(args=(broken, "manual")).get() == "failed"
    e.clear_faults()
    yield {"rm": rm, "rich": rich, "evil": evil, "broken": broken, "quiet": quiet, "plan": plan,
           "other_plan": other_plan}
    client.close()


def test_it_sends_anonymous_visitors_to_sign_in(world):
    c = Client()
    for url in (reverse("overview"), reverse("customers"), reverse("customer", args=[world["rich"]])):
        response = c.get(url)
        assert response.status_code == 302 and response["Location"].startswith(reverse("login"))
    # an htmx poll from an expired session moves the whole browser, not a table cell
    response = c.get(reverse("customers"), **htmx("customer-table"))
    assert response.status_code == 200 and response["HX-Redirect"].startswith(reverse("login"))


def test_it_signs_in_with_django_auth(world, db):
    get_user_model().objects.create_user("robin", password="pw-robin-1")
    c = Client()
    bad = c.post(reverse("login"), {"username": "robin", "password": "wrong"})
    assert bad.status_code == 200 and "Please enter a correct username and password" in text_of(bad)
    good = c.post(reverse("login"), {"username": "robin", "password": "pw-robin-1"})
    assert good.status_code == 302 and good["Location"] == reverse("overview")
    assert c.get(reverse("overview")).status_code == 200


def test_it_shows_the_fleet_overview(world, browser):
    response = browser.get(reverse("overview"))
    assert response.status_code == 200
    text = text_of(response)
    assert "Customers 4 1 with a failed refresh" in text
    # API calls at 127/1,000 (promotion) are not near; storage at 12/10 is over, and soft
    counts = world["rm"].entitlement_counts()
    assert (counts.at_80, counts.at_100) == (1, 1)
    assert "Metered entitlements 1 at ≥ 80 % 1 at or over their limit" in text
    assert "Storage" in text and "120 % Over limit" in text and "soft limit" in text
    assert f'href="{reverse("customer", args=[world["rich"]])}#metered"' in response.content.decode()
    figure = json.loads(re.search(r'<script id="histogram-figure" type="application/json">(.*?)</script>',
                                  response.content.decode(), re.S).group(1))
    entitlements, budgets = figure["data"]
    assert sum(entitlements["y"]) == 2 and entitlements["y"][-1] == 1  # calls 12.7 % and storage 120 %
    # budgets: research 42/50 (84 %), ada 12/10 (120 %), the agent 30/40 (75 %)
    assert budgets["y"][7] == 1 and budgets["y"][8] == 1 and budgets["y"][-1] == 1
    assert "Metered entitlements" in text and "Governance budgets 2 at ≥ 80 % 1 at or over their limit" in text
    assert f'href="{reverse("customer", args=[world["rich"]])}#governance"' in response.content.decode()


def test_it_renders_only_the_live_partial_for_htmx(world, browser):
    response = browser.get(reverse("overview"), **htmx("overview-live"))
    body = response.content.decode()
    assert response.status_code == 200 and "<html" not in body and body.lstrip().startswith('<div id="overview-live"')
    assert "HX-Request" in response["Vary"]


def test_it_lists_and_searches_customers(world, browser):
    page = browser.get(reverse("customers"))
    assert page.status_code == 200 and "1–4 of 4 customers" in text_of(page)
    for needle, expected in (("acme", "Acme Rockets"), ("OPS@ACME", "Acme Rockets"), (world["quiet"], "Quiet Co")):
        response = browser.get(reverse("customers"), {"q": needle}, **htmx("customer-table"))
        text = text_of(response)
        assert "<html" not in response.content.decode()
        assert "1–1 of 1 customer" in text and expected in text
    nothing = browser.get(reverse("customers"), {"q": "no such customer"})
    assert "No customers match “no such customer”" in text_of(nothing)


def test_it_filters_by_plan_and_status_and_sorts_by_utilization(world, browser):
    growth = text_of(browser.get(reverse("customers"), {"plan": world["plan"]}))
    assert "1–1 of 1 customer" in growth and "Acme Rockets" in growth
    trial = text_of(browser.get(reverse("customers"), {"status": "IN_TRIAL"}))
    assert "No customers match" in trial
    by_util = browser.get(reverse("customers"), {"sort": "utilization"}).content.decode()
    # Acme (storage at 120 %) first; the others have nothing metered
    first = re.search(r'<td><a href="/customers/([^"]+)">', by_util).group(1)
    assert first == world["rich"]
    assert "120 % <strong class=\"words\">Over limit</strong>" in by_util
    assert "nothing metered" in by_util


def test_it_pages_through_customers(world, browser):
    first = browser.get(reverse("customers"), {"sort": "name"})
    names = re.findall(r'<td><a href="/customers/[^"]+">([^<]+)</a>', first.content.decode())
    assert len(names) == 4
    second = browser.get(reverse("customers"), {"sort": "name", "offset": 3})
    assert "4–4 of 4 customers" in text_of(second) and "← Previous" in text_of(second)


def test_it_explains_bad_filters_instead_of_failing(world, browser):
    response = browser.get(reverse("customers"), {"offset": "-3", "sort": "chaos", "plan": "nope", "q": "x" * 500})
    assert response.status_code == 200
    text = text_of(response)
    assert "Some filters were not understood and were ignored" in text
    assert "1–4 of 4 customers" in text  # every filter fell back to its default


def test_it_shows_every_entitlement_shape_with_its_source(world, browser):
    response = browser.get(reverse("customer", args=[world["rich"]]))
    assert response.status_code == 200
    text = text_of(response)
    # boolean: granted, and not granted with why
    assert "Single sign-on ✓ Granted plan" in text
    assert "Audit log ✗ Not granted (not included in the plan)" in text
    # configuration: a number raised by an add-on (5 + 2 × 3), and enum display names
    assert "Projects 11 projects plan + add-on" in text
    assert "Data region A, B plan" in text
    # metered: usage against limit, reset period and period end, where the value comes from
    # (the promotion wins, and it has no reset period of its own)
    assert "API calls 127 / 1,000 calls 13 % no reset — promotion promotion (1 month) (also granted by Growth)" in text
    assert re.search(r"AI tokens 123,456 / unlimited unlimited monthly \d{4}-\d\d-\d\d \d\d:\d\d UTC plan", text)
    assert re.search(r"Storage 12 / 10 120 % Over limit soft limit monthly \d{4}-\d\d-\d\d \d\d:\d\d UTC plan",
                     text)


def test_it_shows_the_budgets_nearest_their_limits(world, browser):
    text = text_of(browser.get(reverse("customer", args=[world["rich"]])))
    assert "3 of 3 budgets · 1 at or over their limit" in text
    section = text[text.index("Governance budgets nearest their limits"):text.index("Promotions")]
    assert re.search(r"Ada user Research \S+ 12 / 10 120 % Over limit weekly", section)
    assert re.search(r"Research team — \S+ 42 / 50 84 % Near limit monthly", section)
    assert re.search(r"<script>alert\(1\)</script> agent Research \S+ 30 / 40 75 % hourly", section)
    assert section.index("Ada user") < section.index("Research team") < section.index("</script> agent")


def test_it_shows_subscriptions_and_promotions(world, browser):
    text = text_of(browser.get(reverse("customer", args=[world["rich"]])))
    assert re.search(r"Growth Extra projects × 2 active \d{4}-\d\d-\d\d", text)  # plan, add-on × quantity
    assert re.search(r"API calls 1,000 Active \d{4}-\d\d-\d\d \d{4}-\d\d-\d\d", text)  # ends a month later
    assert re.search(r"Bursts 40 Expired \d{4}-\d\d-\d\d \d{4}-\d\d-\d\d", text)


def test_it_draws_usage_over_time_with_limit_and_resets(world, browser):
    body = browser.get(reverse("customer", args=[world["rich"]])).content.decode()
    figures = [json.loads(m) for m in re.findall(r'<script id="usage-\d+-figure" type="application/json">(.*?)'
                                                 r"</script>", body, re.S)]
    by_name = {f["data"][0]["name"]: f for f in figures}
    assert by_name and all(f["data"][0]["x"] for f in figures)
    calls = next(f for f in figures if any(t.get("name") == "limit" and t["y"] == [1000, 1000] for t in f["data"]))
    assert max(calls["data"][0]["y"]) == 127
    # storage: last period's 7, a reset, this period's 12, against a soft limit of 10
    storage = next(f for f in figures if any(t.get("name") == "soft limit" and t["y"] == [10, 10]
                                             for t in f["data"]))
    usage = storage["data"][0]["y"]
    assert 7 in usage and usage[-1] == 12 and 0 in usage[usage.index(7):]
    resets = [a["x"] for a in storage["layout"]["annotations"] if a["text"] == "reset"]
    # the subscription's start and the monthly reset 30 days later, each drawn as a line
    assert len(resets) == 2 and [shape["x0"] for shape in storage["layout"]["shapes"]] == resets


def test_it_queues_usage_history_when_none_is_stored_and_says_it_is_loading(world, browser, settings):
    rm: ReadModel = world["rm"]
    broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    before = broker.llen("hot")
    response = browser.get(reverse("customer", args=[world["broken"]]))
    # "Brittle Ltd" has nothing metered: no history is wanted
    assert "Nothing metered, so nothing to chart" in text_of(response) and broker.llen("hot") == before
    # a customer with metered features and no stored history gets a fetch queued, once
    rm.r.delete(rm.keys.history(world["rich"]))
    rm.release_queued(world["rich"], "history")
    for _ in range(3):
        response = browser.get(reverse("customer", args=[world["rich"]]))
        assert "Loading usage history from Stigg" in text_of(response)
    # the placeholder counts its tries, and after a minute says the history is not there
    waiting = browser.get(reverse("customer", args=[world["rich"]]), {"tries": "7"}, **htmx("usage-charts"))
    assert "?tries=8" in waiting.content.decode() and "<html" not in waiting.content.decode()
    given_up = browser.get(reverse("customer", args=[world["rich"]]), {"tries": "30"}, **htmx("usage-charts"))
    assert "Stigg has not answered for the usage history yet" in text_of(given_up)
    assert "hx-trigger=\"load" not in given_up.content.decode()
    queued = [json.loads(m) for m in broker.lrange("hot", 0, -1)]
    assert [m["headers"]["task"] for m in queued].count("dashboard.tasks.refresh_usage_history") == 1
    # the worker's job, run here: the charts are back
    assert tasks.refresh_usage_history.apply(args=(world["rich"],)).get() == "refreshed"
    assert "Loading usage history" not in text_of(browser.get(reverse("customer", args=[world["rich"]])))
    broker.delete("hot")


@pytest.mark.parametrize("query", [{"since": "nan", "queued": "inf"}, {"since": "x"}, {"since": "1e999", "queued": "1"},
                                   {"fragment": "../../etc"}])
def test_it_ignores_nonsense_in_the_refresh_query(world, browser, query):
    response = browser.get(reverse("customer", args=[world["quiet"]]), query)
    assert response.status_code == 200 and "Refreshing from Stigg" not in text_of(response)
    assert "Refresh now" in text_of(response)


def test_it_passes_text_from_stigg_to_charts_as_text():
    from dashboard.charts import usage_over_time

    ent = {"limit": 5, "unlimited": False, "soft_limit": False, "units": '<a href="https://x">runs</a>'}
    figure = usage_over_time(ent, {"feature_id": "f", "points": [("2026-11-01T00:00:00+00:00", 1)], "resets": [],
                                   "error": None})
    assert figure["layout"]["yaxis"]["title"]["text"] == '&lt;a href="https://x"&gt;runs&lt;/a&gt;'


def test_it_answers_an_unknown_customer_with_a_404_page(world, browser):
    response = browser.get(reverse("customer", args=["nobody-here"]))
    assert response.status_code == 404
    text = text_of(response)
    assert "No customer “nobody-here”" in text and "Search the customers" in text
    assert browser.post(reverse("refresh-customer", args=["nobody-here"])).status_code == 404
    assert browser.get("/no/such/page").status_code == 404


def test_it_keeps_customer_ids_apart_from_each_other_and_from_key_names(world, browser, emulator):
    odd = f"{world['rich']}:history/α 100%"  # an id from Stigg may hold any character
    emulator.data("POST", "/api/v1/customers", json={"id": odd, "name": "Odd Id Inc"})
    with StiggClient(emulator.url, emulator.key, timeout=10) as client:
        assert sync.refresh_customer(client, world["rm"], odd, discover=True)
    response = browser.get(reverse("customer", args=[odd]))
    assert response.status_code == 200 and "Odd Id Inc" in text_of(response)
    # rich's id followed by what once named its usage-history key: no such customer
    assert browser.get(reverse("customer", args=[f"{world['rich']}:history"])).status_code == 404
    response = browser.get(reverse("customer", args=[world["rich"]]))
    assert response.status_code == 200 and "Acme Rockets" in text_of(response)
    response = browser.get(reverse("customers") + "?q=" + quote("α 100%"))
    assert "Odd Id Inc" in text_of(response)
    world["rm"].remove_customers([odd])  # the other tests count the world's customers


def test_it_shows_the_last_good_data_with_its_age_and_the_error(world, browser):
    response = browser.get(reverse("customer", args=[world["broken"]]))
    assert response.status_code == 200
    text = text_of(response)
    assert "The last refresh failed" in text and "malformed" in text
    assert re.search(r"Showing the last good data, read \d+ (s|min) ago", text)
    assert "Starter" in text  # the subscription from the last good read is still shown
    listing = text_of(browser.get(reverse("customers"), {"q": "brittle"}))
    assert "refresh failed" in listing


def test_it_renders_hostile_text_from_stigg_as_text(world, browser):
    for response in (browser.get(reverse("customers")), browser.get(reverse("customer", args=[world["evil"]]))):
        body = response.content.decode()
        assert HOSTILE not in body
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body


def test_it_refreshes_now_and_reports_when_it_landed(world, browser, settings):
    rm: ReadModel = world["rm"]
    broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    broker.delete("hot")
    quiet = world["quiet"]
    rm.release_queued(quiet)
    before = rm.customer(quiet)["fetched_at"]
    # htmx: the progress state, polling for the result
    response = browser.post(reverse("refresh-customer", args=[quiet]), **htmx("refresh-status"))
    assert response.status_code == 200
    body = response.content.decode()
    assert "Refreshing from Stigg" in body and 'hx-trigger="load delay:1s"' in body
    since, queued_at = re.search(r"since=([\d.]+)&amp;queued=([\d.]+)", body).groups()
    # "Quiet Co" has nothing metered: a refresh, and no usage-history fetch
    assert [json.loads(m)["headers"]["task"] for m in broker.lrange("hot", 0, -1)] == [
        "dashboard.tasks.refresh_customer_now"]
    poll = browser.get(reverse("customer", args=[quiet]), {"since": since, "queued": queued_at},
                       **htmx("refresh-status"))
    assert "Refreshing from Stigg" in text_of(poll) and "HX-Trigger" not in poll
    time.sleep(0.01)  # the refresh's read must be later than the one before the button
    assert tasks.refresh_customer_now.apply(args=(quiet, "manual")).get() == "refreshed"
    assert rm.customer(quiet)["fetched_at"] != before
    landed = browser.get(reverse("customer", args=[quiet]), {"since": since, "queued": queued_at},
                         **htmx("refresh-status"))
    assert "Refreshed" in text_of(landed) and json.loads(landed["HX-Trigger"]) == {"customerRefreshed": {}}
    # without JavaScript: back to the page, which shows the same progress state
    plain = browser.post(reverse("refresh-customer", args=[quiet]))
    assert plain.status_code == 302 and "since=" in plain["Location"]
    broker.delete("hot")


def test_it_keeps_a_refreshed_customer_hot_for_sync_hot_changed_seconds(world, browser, settings):
    settings.SYNC_HOT_CHANGED_SECONDS = 90
    broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    rm: ReadModel = world["rm"]
    quiet = world["quiet"]  # nothing near a limit: only the change can make it hot
    rm.release_queued(quiet)
    before = time.time()
    assert browser.post(reverse("refresh-customer", args=[quiet])).status_code == 302
    after = time.time()
    assert quiet in rm.hot_customers(now=before + 89)
    assert quiet not in rm.hot_customers(now=after + 91)
    broker.delete("hot")


def test_it_waits_for_a_newer_read_than_an_earlier_failure(world, browser, settings):
    """A customer whose last refresh failed: pressing Refresh now must wait for a read
    newer than that failure, not take the old failure for the answer."""
    broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    world["rm"].release_queued(world["broken"])
    response = browser.post(reverse("refresh-customer", args=[world["broken"]]), **htmx("refresh-status"))
    since, queued_at = re.search(r"since=([\d.]+)&amp;queued=([\d.]+)", response.content.decode()).groups()
    poll = browser.get(reverse("customer", args=[world["broken"]]), {"since": since, "queued": queued_at},
                       **htmx("refresh-status"))
    assert "Refreshing from Stigg" in text_of(poll) and "HX-Trigger" not in poll
    broker.delete("hot")


def test_it_says_when_the_read_model_is_unreachable(world, browser, monkeypatch):
    from .servers import free_port

    monkeypatch.setattr(tasks, "_read_model", ReadModel(redis.Redis(port=free_port(), socket_connect_timeout=0.5)))
    response = browser.get(reverse("overview"))
    assert response.status_code == 503
    assert "The dashboard's data store is unreachable" in text_of(response)


def test_it_says_when_the_read_model_answers_with_an_error(world, browser, monkeypatch, redis_server):
    """Not only an unreachable Redis: one that refuses every command (here a user with no
    rights, as out of memory or a read-only replica would refuse) is a 503 page too."""
    admin = redis.Redis.from_url(redis_server.url)
    admin.execute_command("ACL", "SETUSER", "locked-out", "on", ">pw-locked", "~*", "-@all")
    try:
        locked = redis.Redis(port=redis_server.port, username="locked-out", password="pw-locked")
        monkeypatch.setattr(tasks, "_read_model", ReadModel(locked))
        response = browser.get(reverse("overview"))
        assert response.status_code == 503
        assert "The dashboard's data store answered with an error" in text_of(response)
        assert Client().get(reverse("healthz")).status_code == 503
    finally:
        admin.execute_command("ACL", "DELUSER", "locked-out")
