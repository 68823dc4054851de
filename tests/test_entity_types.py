"""Governance's entity types: read by the client, stored with the catalog, shown on
Governance → Entity types. Real emulator over HTTP and real Redis; a tiny local server
(tests/stub_stigg.py) only for answers the emulator never gives (malformed shapes)."""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from html import unescape
from typing import Any, Iterator

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse

from dashboard import sync, tasks
from dashboard.codec import load_all
from dashboard.readmodel import ReadModel
from dashboard.stigg import EntityType, GovernanceNotEnabled, StiggClient, StiggRequestError

from . import emulator_world as w
from .servers import Emulator
from .stub_stigg import StubStigg, page, running

T = "2026-01-01T00:00:00.000Z"


@pytest.fixture
def client(emulator: Emulator) -> Iterator[StiggClient]:
    with StiggClient(emulator.url, emulator.key, timeout=10) as c:
        yield c


def put_types(emu: Emulator, *types: dict[str, Any]) -> list[dict[str, Any]]:
    return emu.data("PUT", "/api/v1-beta/entity-types", json={"types": list(types)})


# --- the client --------------------------------------------------------------------------------


def test_it_reads_every_entity_type_past_one_page(emulator: Emulator, client: StiggClient) -> None:
    types = [{"id": f"bulk-{i:03}", "displayName": f"Bulk {i}", "attributionKeys": [f"k{i}"]} for i in range(120)]
    put_types(emulator, *types[:100])
    put_types(emulator, *types[100:], {"id": "bulk-000", "displayName": "Bulk zero", "attributionKeys": [],
                                        "description": "none attributed"})
    emulator.call("DELETE", "/_emulator/stats")
    read = {t.id: t for t in client.iter_entity_types() if t.id.startswith("bulk-")}
    assert emulator.data("GET", "/_emulator/stats")["requests"] == 2  # 100 a page
    assert len(read) == 120 and all(isinstance(t, EntityType) for t in read.values())
    zero, last = read["bulk-000"], read["bulk-119"]
    assert (zero.display_name, zero.attribution_keys, zero.description) == ("Bulk zero", (), "none attributed")
    assert (last.display_name, last.attribution_keys, last.description) == ("Bulk 119", ("k119",), None)
    assert zero.updated_at >= zero.created_at and zero.created_at.tzinfo is not None


def test_it_raises_governance_not_enabled_for_entity_types(emulator: Emulator, client: StiggClient) -> None:
    emulator.data("PUT", "/_emulator/settings", json={"governanceEnabled": False})
    try:
        with pytest.raises(GovernanceNotEnabled) as caught:
            list(client.iter_entity_types())
        assert caught.value.status == 403
    finally:
        emulator.data("PUT", "/_emulator/settings", json={"governanceEnabled": True})


@pytest.fixture
def stub() -> Iterator[StubStigg]:
    yield from running()


GOOD_TYPE = {"id": "team", "displayName": "Team", "description": None, "attributionKeys": ["teamId"],
             "createdAt": T, "updatedAt": T}


@pytest.mark.parametrize("bad", [
    {k: v for k, v in GOOD_TYPE.items() if k != "attributionKeys"},
    {**GOOD_TYPE, "attributionKeys": "teamId"},
    {**GOOD_TYPE, "attributionKeys": ["teamId", 7]},
    {**GOOD_TYPE, "displayName": None},
    {**GOOD_TYPE, "description": 5},
    {**GOOD_TYPE, "createdAt": "yesterday"},
    {k: v for k, v in GOOD_TYPE.items() if k != "updatedAt"},
    ["team"],
])
def test_it_rejects_a_malformed_entity_type(stub: StubStigg, bad: Any) -> None:
    stub.serve({"/api/v1-beta/entity-types": page([GOOD_TYPE, bad])})
    with StiggClient(stub.url, "server-x", timeout=5) as c:
        with pytest.raises(StiggRequestError, match="malformed answer from Stigg: /api/v1-beta/entity-types"):
            list(c.iter_entity_types())


# --- stored with the catalog -------------------------------------------------------------------


@pytest.fixture
def rm() -> Iterator[ReadModel]:
    """The app's own read model: the one the page reads."""
    model = tasks.read_model()
    model.clear()
    yield model
    model.clear()


def test_it_stores_entity_types_with_the_catalog(emulator: Emulator, client: StiggClient, rm: ReadModel) -> None:
    put_types(emulator, {"id": "squad", "displayName": "Squad", "attributionKeys": ["squadId", "orgId"],
                         "description": "A team of teams"})
    sync.refresh_catalog(client, rm)
    cat = rm.catalog()
    assert cat is not None and cat.governance_enabled is True
    stored = {t.id: t for t in load_all(EntityType, cat.entity_types.values())}
    assert stored == {t.id: t for t in client.iter_entity_types()}
    assert stored["squad"].attribution_keys == ("squadId", "orgId")


def test_it_refreshes_the_catalog_with_governance_off(emulator: Emulator, client: StiggClient, rm: ReadModel) -> None:
    put_types(emulator, {"id": "squad", "displayName": "Squad", "attributionKeys": ["squadId"]})
    sync.refresh_catalog(client, rm)
    emulator.data("PUT", "/_emulator/settings", json={"governanceEnabled": False})
    try:
        added = w.feature(emulator, displayName="Added while governance is off")
        sync.refresh_catalog(client, rm)
        cat = rm.catalog()
        assert cat is not None and added in cat.features  # the rest of the catalog is fresh
        assert (cat.governance_enabled, cat.entity_types) == (False, {})
    finally:
        emulator.data("PUT", "/_emulator/settings", json={"governanceEnabled": True})
        sync.refresh_catalog(client, rm)  # this process's sync stops waiting out the recheck
    assert rm.catalog().governance_enabled is True


# --- the page ----------------------------------------------------------------------------------

HOSTILE = "<script>alert(1)</script>"


@pytest.fixture
def browser(db: Any) -> Client:
    c = Client()
    c.force_login(get_user_model().objects.create_user("casey", password="pw-casey-1"))
    return c


def text_of(response: Any) -> str:
    """The page's visible text, tags removed, whitespace collapsed."""
    html = re.sub(r"<script\b.*?</script>", " ", response.content.decode(), flags=re.S)
    return re.sub(r"\s+", " ", unescape(re.sub(r"<[^>]+>", " ", html))).strip()


def when(value: datetime) -> str:
    return value.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def test_it_shows_every_entity_type_with_its_keys_and_dates(emulator: Emulator, client: StiggClient,
                                                           rm: ReadModel, browser: Client) -> None:
    put_types(emulator, {"id": "team", "displayName": "Team", "attributionKeys": ["teamId"]},
              {"id": "user", "displayName": "User", "attributionKeys": ["userId", "email"],
               "description": "A person with a seat"},
              {"id": "agent", "displayName": "Agent", "attributionKeys": []})
    emulator.advance_clock(3 * 86400)
    put_types(emulator, {"id": "team", "displayName": "Team", "attributionKeys": ["teamId"],
                         "description": "Engineering and product teams"})
    sync.refresh_catalog(client, rm)
    read = {t.id: t for t in client.iter_entity_types()}
    team, user = read["team"], read["user"]
    assert team.updated_at - team.created_at >= timedelta(days=3)

    emulator.call("DELETE", "/_emulator/stats")
    response = browser.get(reverse("entity-types"))
    assert emulator.data("GET", "/_emulator/stats")["requests"] == 0  # the page reads the read model only
    assert response.status_code == 200 and reverse("entity-types") == "/governance/entity-types"
    text = text_of(response)
    assert f"{len(read)} entity types · read from Stigg" in text
    assert (f"Team id team teamId Engineering and product teams {when(team.created_at)} {when(team.updated_at)}"
            in text)
    assert f"User id user userId email A person with a seat {when(user.created_at)} {when(user.updated_at)}" in text
    assert "Agent id agent none: usage is not attributed to this type —" in text
    assert text.index("Agent id agent") < text.index("Team id team") < text.index("User id user")  # by name
    assert '<a href="/governance/entity-types" aria-current="page">Entity types</a>' in response.content.decode()


def test_it_renders_hostile_text_from_stigg_as_text(emulator: Emulator, client: StiggClient, rm: ReadModel,
                                                   browser: Client) -> None:
    put_types(emulator, {"id": f"evil{HOSTILE}", "displayName": HOSTILE, "description": HOSTILE,
                         "attributionKeys": [HOSTILE]})
    sync.refresh_catalog(client, rm)
    response = browser.get(reverse("entity-types"))
    body = response.content.decode()
    assert response.status_code == 200 and HOSTILE not in body
    assert body.count("&lt;script&gt;alert(1)&lt;/script&gt;") == 4  # name, id, key, description
    assert f"{HOSTILE} id evil{HOSTILE} {HOSTILE} {HOSTILE}" in text_of(response)


def test_it_explains_that_governance_is_not_enabled(emulator: Emulator, client: StiggClient, rm: ReadModel,
                                                   browser: Client) -> None:
    put_types(emulator, {"id": "team", "displayName": "Team", "attributionKeys": ["teamId"]})
    sync.refresh_catalog(client, rm)
    emulator.data("PUT", "/_emulator/settings", json={"governanceEnabled": False})
    try:
        sync.refresh_catalog(client, rm)
        response = browser.get(reverse("entity-types"))
    finally:
        emulator.data("PUT", "/_emulator/settings", json={"governanceEnabled": True})
        sync.refresh_catalog(client, rm)  # this process's sync stops waiting out the recheck
    assert response.status_code == 200
    text = text_of(response)
    assert "Governance is not enabled for this Stigg environment" in text
    assert "ask Stigg to turn it on" in text and "<table" not in response.content.decode()
    assert "Team id team" not in text  # what was stored before is not shown as current


def test_it_explains_entity_types_when_governance_has_none(rm: ReadModel, browser: Client) -> None:
    bare = Emulator()  # governance on, nothing defined
    try:
        with StiggClient(bare.url, bare.key, timeout=10) as c:
            sync.refresh_catalog(c, rm)
    finally:
        bare.stop()
    response = browser.get(reverse("entity-types"))
    assert response.status_code == 200
    text = text_of(response)
    assert "No entity types yet" in text and "Governance is on for this Stigg environment" in text
    assert "up to two attribution keys" in text and "Governance → Entity types" in text
    assert "<table" not in response.content.decode()


def test_it_says_when_entity_types_have_not_been_read_yet(rm: ReadModel, browser: Client) -> None:
    text = text_of(browser.get(reverse("entity-types")))
    assert "Not read from Stigg yet" in text and "Governance is not enabled" not in text


def test_it_sends_anonymous_visitors_to_sign_in(db: Any) -> None:
    c = Client()
    response = c.get(reverse("entity-types"))
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))
    polled = c.get(reverse("entity-types"), HTTP_HX_REQUEST="true")
    assert polled.status_code == 200 and polled["HX-Redirect"].startswith(reverse("login"))
