"""The near-limit page (/near-limit/) and its CSV (/near-limit.csv), through Django's test
client, on the app's own read model: customers written as a refresh writes them, and one
synced from the emulator over HTTP (real Redis, real emulator; no mocks)."""
from __future__ import annotations

import csv
import io
import re
import types
from datetime import datetime, timezone
from html import unescape
from urllib.parse import quote

import pytest
from django.test import Client
from django.urls import reverse

from dashboard import sync
from dashboard.codec import dump
from dashboard.stigg import StiggClient

from . import emulator_world as w
from .near_limit_world import budget, customer_snapshot
from .pages import text_of
from .test_read_model import FEATURES, PACKAGES, T0

pytestmark = pytest.mark.django_db
ODD = "a:b/c 100%é"  # a customer id from Stigg may hold any character
ODD_ENTITY = "team/x y%"


@pytest.fixture(scope="module")
def world(emulator, app_read_model):
    rm = app_read_model
    rm.write_catalog(dump(list(FEATURES.values())), dump(list(PACKAGES.values())), T0, entity_types=[])
    for doc, gov in (
        customer_snapshot("acme", name="Acme Rockets", plan="pro", owner="Ada Lovelace", api=950, budgets=(
            budget("research", 90, 100, name="Research"), budget("ada", 120, 100, type_="user", parent="research"),
            budget("bot", 30, 40, type_="agent", parent="research"),
            budget("research", 990, 1000, name="Research", feature=None, currency="credits"))),
        customer_snapshot(ODD, name="=cmd|' /C calc'!A0", plan="free", owner="@evil", budgets=(
            budget(ODD_ENTITY, 95, 100, name="+SUM(1)", scope=("-x",)),)),
        customer_snapshot("globex", name="Globex", plan="free", owner="Bob", api=85),
        customer_snapshot("initech", name="Initech", plan="pro", storage=49),
        # read just now, 20 days into a 30-day period: 860 of 1,000 calls, the limit comes in ~3 days
        customer_snapshot("soon", name="Soon Ltd", plan="pro", api=860, fetched_at=datetime.now(timezone.utc)),
    ):
        rm.write_customer(doc, gov)
    # one customer as the sync writes it, with its account owner in its Stigg metadata
    e = emulator
    calls = w.feature(e, "NUMBER", displayName="Synced calls")
    plan = w.plan(e, w.product(e), [{"id": calls, "usageLimit": 100, "resetPeriod": "MONTH"}], displayName="Synced")
    synced = w.customer(e, name="Synced Co", metadata={"accountOwner": "Grace Hopper"})
    w.subscribe(e, synced, plan)
    w.report_usage(e, synced, calls, 91)
    client = StiggClient(e.url, e.key, timeout=10)
    sync.refresh_customer(client, rm, synced, discover=True)
    client.close()
    yield {"rm": rm, "synced": synced, "calls": calls}


def page(browser: Client, **query: str):
    response = browser.get(reverse("near-limit"), query)
    assert response.status_code == 200
    return response


def rows_of(response) -> list[tuple[str, str]]:
    """(kind, entity id or "") of each row, in order."""
    return [(kind, unescape(entity or "")) for kind, entity in re.findall(
        r'<tr data-kind="(\w+)"(?: data-entity-id="([^"]*)")?>', response.content.decode())]


def test_it_sends_anonymous_visitors_to_sign_in(world):
    c = Client()
    for url in (reverse("near-limit"), reverse("near-limit-csv")):
        response = c.get(url)
        assert response.status_code == 302 and response["Location"].startswith(reverse("login"))
    response = c.get(reverse("near-limit"), HTTP_HX_REQUEST="true", HTTP_HX_TARGET="near-limit-table")
    assert response["HX-Redirect"].startswith(reverse("login"))


def test_it_lists_budgets_and_entitlements_at_80_percent_or_more_across_customers(world, browser):
    response = page(browser)
    # 120 %, 99 %, 98 %, 95 % twice (a budget first on a tie), 91 %, 90 %, 86 %, 85 %
    assert rows_of(response) == [("budget", "ada"), ("budget", "research"), ("entitlement", ""),
                                 ("budget", ODD_ENTITY), ("entitlement", ""), ("entitlement", ""), ("budget", "research"),
                                 ("entitlement", ""), ("entitlement", "")]
    text = text_of(response)
    assert "1–9 of 9 at ≥ 80 % of the limit · by utilization" in text
    assert "Ada user api 120 / 100 120 % Over limit limit reached" in text
    assert "Research team credits (currency) 990 / 1,000 99 % Near limit" in text
    assert f"Synced Co {world['synced']} Synced calls {world['calls']} 91 / 100 91 % Near limit" in text
    assert re.search(r"Soon Ltd soon API calls api 860 / 1,000 86 % Near limit soft limit "
                     r"reaches its limit in ~(3 days|7\d hours), (7 days|16\d hours) before reset", text)
    body = response.content.decode()
    assert 'href="/customers/acme/governance?node=ada"' in body and 'href="/customers/acme#metered"' in body
    assert 'href="/customers/globex"' in body and re.search(r'<time class="age" datetime="[^"]+"', body)
    assert reverse("near-limit") in browser.get(reverse("overview")).content.decode()  # the overview links here
    assert '>Near limit</a>' in body and 'aria-current="page">Near limit' in body


def test_it_takes_another_threshold(world, browser):
    assert [k for k, _ in rows_of(page(browser, min_utilization="0.95"))] == ["budget", "budget", "entitlement",
                                                                             "budget", "entitlement"]
    everything = page(browser, min_utilization="0")
    assert ("budget", "bot") in rows_of(everything) and "≥ 0 % of the limit" in text_of(everything)
    assert rows_of(page(browser, min_utilization="1.2")) == [("budget", "ada")]
    assert '<option value="0.85" selected>≥ 85 %</option>' in page(browser, min_utilization="0.85").content.decode()


def test_it_filters_by_customer_capability_entity_type_plan_and_owner(world, browser):
    assert rows_of(page(browser, customer="acme")) == [("budget", "ada"), ("budget", "research"),
                                                       ("entitlement", ""), ("budget", "research")]
    assert rows_of(page(browser, customer=ODD)) == [("budget", ODD_ENTITY)]
    assert rows_of(page(browser, capability="$credits")) == [("budget", "research")]
    assert rows_of(page(browser, capability=world["calls"])) == [("entitlement", "")]
    teams = page(browser, entity_type="team")
    assert rows_of(teams) == [("budget", "research"), ("budget", ODD_ENTITY), ("budget", "research")]
    assert "entity type team: budgets only" in text_of(teams)
    assert rows_of(page(browser, plan="free")) == [("budget", ODD_ENTITY), ("entitlement", "")]
    assert rows_of(page(browser, owner="Ada Lovelace", order="usage")) == [
        ("budget", "research"), ("entitlement", ""), ("budget", "ada"), ("budget", "research")]
    assert "Synced Co" in text_of(page(browser, owner="Grace Hopper"))  # from Stigg's metadata, via the sync
    assert rows_of(page(browser, owner="Ada Lovelace", plan="pro", entity_type="user")) == [("budget", "ada")]
    assert "Nothing at ≥ 80 %" in text_of(page(browser, customer="nobody"))


def test_it_orders_by_usage_and_by_urgency(world, browser):
    by_usage = rows_of(page(browser, order="usage"))
    assert by_usage[:2] == [("budget", "research"), ("entitlement", "")]  # 990 credits, then 950 calls
    by_urgency = rows_of(page(browser, order="urgency"))
    assert by_urgency[0] == ("budget", "ada")  # the one at its limit already


def test_it_pages_fifty_at_a_time(world, browser, monkeypatch):
    monkeypatch.setattr("dashboard.views.nearlimit.PAGE_SIZE", 3)
    first = page(browser)
    assert "1–3 of 9" in text_of(first) and len(rows_of(first)) == 3
    second = page(browser, offset="3")
    assert "4–6 of 9" in text_of(second) and rows_of(second) == [("budget", ODD_ENTITY), ("entitlement", ""),
                                                                   ("entitlement", "")]
    assert 'rel="prev"' in second.content.decode() and 'href="/near-limit/?offset=6"' in second.content.decode()
    assert "Nothing past row 30" in text_of(page(browser, offset="30"))


@pytest.mark.parametrize("query", [
    {"min_utilization": "abc", "order": "chaos", "plan": "nope", "offset": "-3"},
    {"min_utilization": "nan", "owner": "nobody at all", "capability": "zzz", "entity_type": "robot"},
    {"min_utilization": "-1", "customer": "x" * 1200},
    {"min_utilization": "inf"}, {"min_utilization": "1e999"}, {"offset": "99999999999"}, {"customer": "nul\0"},
])
def test_it_names_bad_values_and_ignores_them(world, browser, query):
    response = browser.get(reverse("near-limit"), query)
    assert response.status_code == 200
    text = text_of(response)
    assert "Some filters were not understood and were ignored" in text
    for name in query:
        assert f"{name}:" in text
    assert "1–9 of 9 at ≥ 80 %" in text  # every bad value fell back to its default
    assert browser.get(reverse("near-limit-csv"), query).status_code == 200


def test_it_renders_only_the_table_for_htmx(world, browser):
    response = browser.get(reverse("near-limit"), {"plan": "pro"}, HTTP_HX_REQUEST="true",
                           HTTP_HX_TARGET="near-limit-table")
    body = response.content.decode()
    assert body.lstrip().startswith('<div id="near-limit-table"') and "<html" not in body
    assert 'hx-get="/near-limit/?plan=pro"' in body and "HX-Request" in response["Vary"]


def test_it_keeps_hostile_ids_and_names_as_data(world, browser):
    body = page(browser, customer=ODD).content.decode()
    customer_url = reverse("customer", args=[ODD])
    assert customer_url == "/customers/a:b/c%20100%25%C3%A9"
    assert f'href="{customer_url}/governance?node=team%2Fx%20y%25"' in body
    assert "+SUM(1)" in body and "=cmd|&#x27; /C calc&#x27;!A0" in body and "<script" not in body.split("<main")[1]
    assert f'data-entity-id="{ODD_ENTITY}"' in body
    assert rows_of(page(browser, owner="@evil")) == [("budget", ODD_ENTITY)]
    assert "=cmd" in text_of(browser.get(reverse("near-limit") + "?customer=" + quote(ODD, safe="")))


def read_csv(response) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))


def test_it_streams_the_rows_as_csv(world, browser, settings):
    # links go to the dashboard's public address, wherever the file was asked for (it travels)
    settings.DASHBOARD_URL = "https://dash.example"
    response = browser.get(reverse("near-limit-csv"), {"order": "usage"})
    assert response.status_code == 200 and response.streaming
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert re.fullmatch(r'attachment; filename="near-limit-\d{8}-\d{4}\.csv"', response["Content-Disposition"])
    assert isinstance(response.streaming_content, types.GeneratorType) or hasattr(response.streaming_content,
                                                                                   "__next__")
    rows = read_csv(response)
    assert [(r["kind"], r["entity_id"]) for r in rows][:2] == [("budget", "research"), ("entitlement", "")]
    assert len(rows) == 9
    research = rows[0]
    assert research["usage"] == "990" and research["limit"] == "1000" and research["utilization"] == "0.99"
    assert research["capability"] == "$credits" and research["account_owner"] == "Ada Lovelace"
    assert research["link"] == "https://dash.example/customers/acme/governance?node=research"
    for field in ("period_end", "data_read_at"):
        assert datetime.fromisoformat(research[field]).tzinfo is not None
    api = next(r for r in rows if r["capability"] == "api")
    assert api["feature_name"] == "API calls" and api["utilization"] == "0.95" and api["period"] == "MONTH"
    assert datetime.fromisoformat(api["reaches_limit_at"]) > datetime.fromisoformat(api["data_read_at"])
    assert api["link"] == "https://dash.example/customers/acme#metered"


def test_it_applies_the_filters_to_the_csv_and_defuses_formulas(world, browser):
    rows = read_csv(browser.get(reverse("near-limit-csv"), {"plan": "free", "min_utilization": "0.9"}))
    assert [r["customer_id"] for r in rows] == [ODD]
    odd = rows[0]
    # text from Stigg that a spreadsheet would run as a formula starts with a quote
    assert odd["customer_name"] == "'=cmd|' /C calc'!A0" and odd["entity_name"] == "'+SUM(1)"
    assert odd["account_owner"] == "'@evil" and odd["scope"] == "'-x"
    assert odd["link"].endswith("/customers/a:b/c%20100%25%C3%A9/governance?node=team%2Fx%20y%25")


def test_it_reads_the_csv_rows_from_redis_as_they_are_sent(world, browser):
    response = browser.get(reverse("near-limit-csv"), {"customer": "late"})
    lines = iter(response.streaming_content)
    assert next(lines).decode().startswith("kind,customer_id,")
    # nothing was read before the client asked for it: a customer written now is in the rows
    world["rm"].write_customer(*customer_snapshot("late", api=999))
    assert [r.split(",")[1] for r in b"".join(lines).decode().splitlines()] == ["late"]
    world["rm"].remove_customers(["late"])
