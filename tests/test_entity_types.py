"""Governance's entity types: read by the client, stored with the catalog, shown on
Governance → Entity types. Real emulator over HTTP and real Redis; a tiny local server
(tests/stub_stigg.py) only for answers the emulator never gives (malformed shapes)."""
from __future__ import annotations

from typing import Any, Iterator

import pytest

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
