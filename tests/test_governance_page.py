"""The governance page of one customer, through Django's test client, on a read model
filled by a real sync of an emulator world built for it (real Redis, real emulator)."""
from __future__ import annotations

import json
import re

import pytest
import redis
from django.contrib.auth import get_user_model
from django.urls import reverse

from dashboard import sync
from dashboard.stigg import StiggClient

from . import governance_world
from .governance_world import AGENT, HOSTILE
from .pages import text_of

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def gov(emulator, app_read_model):
    rm = app_read_model
    world = governance_world.build(emulator)
    acme, bare, e = world["acme"], world["bare"], emulator
    client = StiggClient(e.url, e.key, timeout=10)
    sync.refresh_catalog(client, rm)
    for cid in (acme, bare):
        sync.refresh_customer(client, rm, cid, discover=True)
    yield {"rm": rm, "acme": acme, "bare": bare, "calls": world["calls"], "emulator": e, "client": client}
    client.close()


def page(browser, gov, customer: str | None = None, headers: dict | None = None, **query):
    url = reverse("customer-governance", args=[customer or gov["acme"]])
    return browser.get(url, query, **(headers or {}))


def entity_order(response) -> list[str]:
    """The entity ids of the page's node rows, in order (each node's first row)."""
    ids = re.findall(r'<tbody class="tnode[^"]*"[^>]*data-entity-id="([^"]*)"', response.content.decode())
    return [json.loads(f'"{i}"') for i in ids]


def row_text(response, entity_id: str) -> str:
    """The visible text of one node's rows."""
    html = response.content.decode()
    match = re.search(r'<tbody class="tnode[^"]*"[^>]*data-entity-id="%s".*?</tbody>' % re.escape(
        entity_id.replace("<", "&lt;").replace(">", "&gt;")), html, re.S)
    assert match, f"no rows for {entity_id!r}"
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", match.group(0))).strip()


def test_it_shows_the_top_level_first_ordered_by_utilization(browser, gov):
    response = page(browser, gov)
    assert response.status_code == 200
    # eng 100 % before sales 5 %; lonely has no budget: last. Nothing below is loaded yet.
    assert entity_order(response) == ["eng", "sales", "lonely"]
    assert "Blocked now" in text_of(response)


def test_it_orders_siblings_by_usage_or_by_utilization(browser, gov):
    by_util = page(browser, gov, open=["eng"])
    assert entity_order(by_util) == ["eng", "platform", "research", "sales", "lonely"]
    by_usage = page(browser, gov, open=["eng"], order="usage")
    assert entity_order(by_usage) == ["eng", "research", "platform", "sales", "lonely"]
    # the order is kept in every link of the page
    assert "order=usage" in re.search(r'<a class="toggle" href="([^"]*)"', by_usage.content.decode()).group(1)


def test_it_loads_one_level_on_expand(browser, gov):
    url = reverse("governance-children", args=[gov["acme"]])
    response = browser.get(url, {"parent": "research", "depth": "1"}, HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    # the parent, now open, then its children: the agent at 6 %, ada unlimited (no utilization) last
    assert entity_order(response) == ["research", AGENT, "ada"]
    assert "<html" not in response.content.decode()
    assert browser.get(url, {"parent": "nobody"}).status_code == 404


def test_it_names_what_blocks_a_node(browser, gov):
    response = page(browser, gov, node="ada")
    # research has 400 left of its own but its department has spent everything
    research = row_text(response, "research")
    assert "Blocked by Engineering" in research and "its own budget still has 400 left" in research
    # ada: unlimited but tracked, blocked by the department above
    ada = row_text(response, "ada")
    assert "40 / unlimited" in ada and "tracked, no limit" in ada and "Blocked by Engineering" in ada
    # the scoped budget on research for ada is its own row, told apart
    assert "scoped to ada" in research and "40 / 80" in research
    assert 'class="tnode depth-2 focus"' in response.content.decode()


def test_it_says_when_each_budget_reaches_its_limit(browser, gov):
    response = page(browser, gov, open=["eng"])
    # platform: 8 of 10 in the 10 days its monthly window has run, so the last 2 in ~2.5 days
    assert re.search(r"reaches its limit in ~[23] days, 1[78] days before reset", row_text(response, "platform"))
    # research: 100 of 500 in 10 days will not reach 500 before the window resets
    assert "will not reach it this window" in row_text(response, "research")
    assert "limit reached" in row_text(response, "eng")


def test_it_shows_a_scoped_budget_that_blocks(browser, gov):
    sales = row_text(page(browser, gov, open=["sales", "emea"]), "bob")
    assert "50 / unlimited" in sales and "Limited by Sales" in sales or "Limited by EMEA" in sales


def test_it_lists_every_node_ranked(browser, gov):
    response = page(browser, gov, view="ranked")
    assert entity_order(response)[:3] == ["eng", "platform", "research"]
    assert set(entity_order(response)) == {"eng", "platform", "research", "ada", AGENT, "sales", "emea", "bob",
                                           "lonely"}
    by_usage = page(browser, gov, view="ranked", order="usage")
    assert entity_order(by_usage)[:3] == ["eng", "research", AGENT]


def test_it_filters_by_type_search_minimum_and_scope(browser, gov):
    assert set(entity_order(page(browser, gov, view="ranked", entity_type="team"))) == {"research", "platform",
                                                                                         "emea"}
    assert entity_order(page(browser, gov, view="ranked", q="EME")) == ["emea"]
    assert entity_order(page(browser, gov, view="ranked", min_utilization="0.8")) == ["eng", "platform"]
    # in the tree, a match shows with the path above it, dimmed
    tree = page(browser, gov, q="Platform")
    assert entity_order(tree) == ["eng", "platform"]
    assert 'class="tnode depth-0 context"' in tree.content.decode()
    scoped = row_text(page(browser, gov, view="ranked", scope="scoped", q="research"), "research")
    assert "scoped to ada" in scoped and "node-wide" not in scoped


def test_it_explains_bad_filters_instead_of_failing(browser, gov):
    response = page(browser, gov, order="sideways", min_utilization="lots", scope="?", view="x", offset="-3",
                    capability="nope")
    assert response.status_code == 200
    assert "Some filters were not understood" in text_of(response)
    assert entity_order(response) == ["eng", "sales", "lonely"]


def test_it_renders_hostile_names_and_ids_as_text(browser, gov):
    response = page(browser, gov, open=["eng", "research"])
    html = response.content.decode()
    assert HOSTILE not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert AGENT in entity_order(response)


def test_it_explains_a_customer_without_entities(browser, gov):
    response = page(browser, gov, customer=gov["bare"])
    assert response.status_code == 200 and "has no governance entities yet" in text_of(response)


def test_it_answers_an_unknown_customer_with_a_404(browser, gov):
    assert page(browser, gov, customer="nobody:here").status_code == 404


def test_it_draws_the_hierarchy_as_a_sunburst_linking_to_each_node(browser, gov):
    response = page(browser, gov, chart="sunburst", headers={"HTTP_HX_REQUEST": "true", "HTTP_HX_TARGET": "sunburst"})
    html = response.content.decode()
    figure = json.loads(re.search(r'<script id="sunburst-figure" type="application/json">(.*?)</script>',
                                  html, re.S).group(1))["data"][0]
    assert figure["type"] == "sunburst" and set(figure["ids"]) >= {"eng", "research", AGENT}
    assert figure["parents"][figure["ids"].index("research")] == "eng"
    assert figure["customdata"][figure["ids"].index("research")].endswith("node=research")
    assert figure["labels"][figure["ids"].index(AGENT)] == "&lt;script&gt;alert(1)&lt;/script&gt;"


def test_it_shows_the_customer_a_governance_summary_and_link(browser, gov, settings):
    response = browser.get(reverse("customer", args=[gov["acme"]]))
    redis.Redis.from_url(settings.CELERY_BROKER_URL).delete("hot")  # the page queued a usage-history fetch
    text = text_of(response)
    assert response.status_code == 200
    assert "9 entities" in text and "1 blocked" in text or "blocked now" in text.lower()
    assert reverse("customer-governance", args=[gov["acme"]]) in response.content.decode()


def test_it_offers_budget_changes_only_to_those_who_may_make_them(browser, gov):
    viewer_page = page(browser, gov, open=["eng"]).content.decode()
    assert "Change budget" not in viewer_page and "raise it" not in viewer_page
    from django.contrib.auth.models import Group

    user = get_user_model().objects.get(username="casey")
    user.groups.add(Group.objects.get(name="Customer success"))
    html = page(browser, gov, open=["eng"]).content.decode()
    change = reverse("budget-change", args=[gov["acme"]])
    assert f'href="{change}?entity=platform&amp;capability={gov["calls"]}&amp;scope="' in html
    # research is blocked by eng: "raise it" changes eng's budget
    research = re.search(r'data-entity-id="research".*?</tbody>', html, re.S).group(0)
    assert f'{change}?entity=eng&amp;capability={gov["calls"]}&amp;scope="' in research and "raise it" in research
