"""Governance v1-beta over real HTTP (stigg-api.md §9, guarantees 24–31 and 33–36).

Each test uses its own customer; entity types are per environment and shared."""
from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import pytest
import stigg as stigg_module

from emulator import store
from emulator.domain import governance

BETA = "/api/v1-beta"


# --- helpers ---------------------------------------------------------------------------


def new_customer(emulator: Any, prefix: str = "gov") -> str:
    customer_id = f"{prefix}-{uuid.uuid4().hex[:8]}"
    emulator.data("POST", "/api/v1/customers", json={"id": customer_id, "name": customer_id}, expect=201)
    return customer_id


def ensure_types(stigg: Any) -> None:
    stigg.v1_beta.entity_types.upsert(types=[
        {"id": "org", "display_name": "Organisation", "attribution_keys": ["orgId"]},
        {"id": "team", "display_name": "Team", "attribution_keys": ["teamId"]},
        {"id": "user", "display_name": "User", "attribution_keys": ["userId", "userEmail"]},
    ])


def entities(stigg: Any, customer_id: str, *specs: tuple[str, str]) -> None:
    stigg.v1_beta.customers.entities.upsert(
        id=customer_id, entities=[{"id": eid, "entity_type_id": tid} for eid, tid in specs])


def assign(emulator: Any, customer_id: str, *items: dict[str, Any], expect: int = 200) -> Any:
    """The upserted assignments, or the error body when a non-200 status is expected."""
    resp = emulator.call("PUT", f"{BETA}/customers/{customer_id}/assignments", json={"assignments": list(items)})
    assert resp.status_code == expect, resp.text
    return resp.json()["data"] if expect == 200 else resp.json()


def tree(emulator: Any, customer_id: str, **query: Any) -> dict[str, Any]:
    resp = emulator.call("GET", f"{BETA}/customers/{customer_id}/governance", params=query)
    assert resp.status_code == 200, resp.text
    return resp.json()


def walk_tree(stigg: Any, customer_id: str, **kwargs: Any) -> list[Any]:
    rows, after = [], None
    while True:
        page = stigg.v1.events.beta.customers.retrieve_governance(
            customer_id, **kwargs, **({"after": after} if after else {}))
        rows += page.data
        after = page.pagination.next
        if after is None:
            return rows


def build_hierarchy(stigg: Any, emulator: Any, customer_id: str) -> None:
    """org1 ← team1 ← (u1, u2); org1 ← team2 ← u3, each with an ai-tokens budget."""
    ensure_types(stigg)
    entities(stigg, customer_id, ("org1", "org"), ("team1", "team"), ("team2", "team"), ("u1", "user"),
             ("u2", "user"), ("u3", "user"))
    assign(emulator, customer_id,
           {"entityId": "org1", "featureId": "ai-tokens", "usageLimit": 1000, "cadence": "P1M"},
           {"entityId": "team1", "featureId": "ai-tokens", "usageLimit": 500, "cadence": "P1M", "parentId": "org1"},
           {"entityId": "team2", "featureId": "ai-tokens", "usageLimit": 0, "cadence": "P1M", "parentId": "org1"},
           {"entityId": "u1", "featureId": "ai-tokens", "usageLimit": 100, "cadence": "P1D", "parentId": "team1"},
           {"entityId": "u2", "featureId": "ai-tokens", "usageLimit": None, "cadence": "P1D", "parentId": "team1"},
           {"entityId": "u3", "featureId": "ai-tokens", "usageLimit": 10, "cadence": "P1W", "parentId": "team2"})


def attribute_directly(emulator: Any, customer_id: str, feature_id: str, dims: dict[str, Any],
                       value: float) -> list[dict[str, Any]]:
    """Runs the module's attribute() against the live server's database, as the usage
    module will inside its own write transaction."""
    state = emulator.data("GET", "/_emulator/state")
    now = datetime.fromisoformat(state["now"].replace("Z", "+00:00"))
    c = store.connect(emulator.db_path)
    try:
        c.execute("BEGIN IMMEDIATE")
        out = governance.attribute(c, customer_id, feature_id, dims, value, now)
        c.execute("COMMIT")
        return out
    finally:
        c.close()


@pytest.fixture
def governance_off(emulator):
    emulator.data("PUT", "/_emulator/settings", json={"governanceEnabled": False})
    yield
    emulator.data("PUT", "/_emulator/settings", json={"governanceEnabled": True})


# --- guarantee 24: the switch --------------------------------------------------------------


def test_it_answers_403_on_every_governance_endpoint_when_off(emulator, governance_off):
    """Guarantee 24: with governance off every §9.1–9.5 endpoint → 403 GovernanceNotEnabled."""
    customer_id = "gov-off-customer"
    calls = [
        ("GET", f"{BETA}/entity-types", None),
        ("PUT", f"{BETA}/entity-types", {"types": [{"id": "x", "displayName": "X", "attributionKeys": []}]}),
        ("GET", f"{BETA}/customers/{customer_id}/entities", None),
        ("GET", f"{BETA}/customers/{customer_id}/entities/e1", None),
        ("PUT", f"{BETA}/customers/{customer_id}/entities", {"entities": [{"id": "e1", "entityTypeId": "x"}]}),
        ("POST", f"{BETA}/customers/{customer_id}/entities/archive", {"ids": ["e1"]}),
        ("POST", f"{BETA}/customers/{customer_id}/entities/unarchive", {"ids": ["e1"]}),
        ("GET", f"{BETA}/customers/{customer_id}/assignments", None),
        ("PUT", f"{BETA}/customers/{customer_id}/assignments", {"assignments": []}),
        ("GET", f"{BETA}/customers/{customer_id}/governance", None),
    ]
    for method, path, body in calls:
        resp = emulator.call(method, path, json=body)
        assert resp.status_code == 403, (method, path, resp.text)
        assert resp.json()["code"] == "GovernanceNotEnabled"


def test_it_raises_permission_denied_in_the_sdk_when_off(emulator, stigg, governance_off):
    """Guarantee 24, through the official client: 403 is PermissionDeniedError."""
    with pytest.raises(stigg_module.PermissionDeniedError):
        stigg.v1_beta.entity_types.list()
    with pytest.raises(stigg_module.PermissionDeniedError):
        stigg.v1.events.beta.customers.retrieve_governance("anyone")


def test_it_answers_404_for_an_unknown_customer(emulator, stigg):
    """Unknown customer on a governance endpoint → 404 CustomerNotFound."""
    with pytest.raises(stigg_module.NotFoundError):
        stigg.v1_beta.customers.entities.list(id="no-such-customer")
    resp = emulator.call("GET", f"{BETA}/customers/no-such-customer/governance")
    assert resp.status_code == 404 and resp.json()["code"] == "CustomerNotFound"


# --- guarantee 25: entity types and entity upserts -----------------------------------------


def test_it_upserts_entity_types_idempotently_and_keeps_description(emulator, stigg):
    """Guarantee 25: entity type upsert is by id and idempotent; description left out is
    kept, "" or null clears it."""
    first = stigg.v1_beta.entity_types.upsert(types=[
        {"id": "dept", "display_name": "Department", "attribution_keys": ["deptId"], "description": "A department"}])
    again = stigg.v1_beta.entity_types.upsert(types=[
        {"id": "dept", "display_name": "Dept", "attribution_keys": ["deptId"]}])
    assert again.data[0].description == "A department"
    assert again.data[0].display_name == "Dept"
    assert again.data[0].created_at == first.data[0].created_at
    cleared = stigg.v1_beta.entity_types.upsert(types=[
        {"id": "dept", "display_name": "Dept", "attribution_keys": ["deptId"], "description": ""}])
    assert cleared.data[0].description is None
    ids = [t.id for t in stigg.v1_beta.entity_types.list(limit=100).data]
    assert ids.count("dept") == 1


def test_it_rejects_more_than_two_attribution_keys_and_bad_batches(emulator):
    """Guarantee 25: ≤ 2 attributionKeys, 1–100 types per call; a rejected batch writes nothing."""
    too_many = {"id": "t3", "displayName": "T", "attributionKeys": ["a", "b", "c"]}
    good = {"id": "never-written", "displayName": "N", "attributionKeys": []}
    assert emulator.call("PUT", f"{BETA}/entity-types", json={"types": [good, too_many]}).status_code == 400
    assert emulator.call("PUT", f"{BETA}/entity-types", json={"types": []}).status_code == 400
    many = [{"id": f"t{i}", "displayName": "T", "attributionKeys": []} for i in range(101)]
    assert emulator.call("PUT", f"{BETA}/entity-types", json={"types": many}).status_code == 400
    listed = emulator.data("GET", f"{BETA}/entity-types", params={"limit": 100})
    assert "never-written" not in [t["id"] for t in listed]


def test_it_pages_entity_types_with_the_sdk(emulator, stigg):
    """Guarantee 3 for entity types: following next visits every type exactly once."""
    stigg.v1_beta.entity_types.upsert(types=[
        {"id": f"paged-{i}", "display_name": f"P{i}", "attribution_keys": []} for i in range(7)])
    seen = [t.id for t in stigg.v1_beta.entity_types.list(limit=3)]  # auto-pagination
    assert len(seen) == len(set(seen))
    assert {f"paged-{i}" for i in range(7)} <= set(seen)


def test_it_patches_entity_metadata_and_display_name(emulator, stigg):
    """Guarantee 25: entity upsert is idempotent; metadata is a patch ("" deletes, keys
    not sent are kept); displayName left out is kept, "" clears it."""
    customer_id = new_customer(emulator)
    ensure_types(stigg)
    api = stigg.v1_beta.customers.entities
    api.upsert(id=customer_id, entities=[{"id": "e1", "entity_type_id": "team", "display_name": "Team One",
                                          "metadata": {"a": "1", "b": "2"}}])
    out = api.upsert(id=customer_id, entities=[{"id": "e1", "metadata": {"a": "", "c": "3"}}]).data[0]
    assert out.metadata == {"b": "2", "c": "3"}
    assert out.display_name == "Team One" and out.entity_type_id == "team"
    out = api.upsert(id=customer_id, entities=[{"id": "e1", "display_name": ""}]).data[0]
    assert out.display_name is None and out.metadata == {"b": "2", "c": "3"}
    api.upsert(id=customer_id, entities=[{"id": "e1", "entity_type_id": "team"}])
    listed = api.list(id=customer_id).data
    assert [e.id for e in listed] == ["e1"]
    assert api.retrieve("e1", id=customer_id).data.metadata == {"b": "2", "c": "3"}


# --- guarantee 26: entity upsert validation ------------------------------------------------


def test_it_rejects_parent_id_unknown_keys_and_missing_type(emulator, stigg):
    """Guarantee 26: parentId → 400; Inferred: any unknown key → 400; entityTypeId is
    required on create; Inferred: an unknown type → 400. Nothing of the batch is written."""
    customer_id = new_customer(emulator)
    ensure_types(stigg)
    path = f"{BETA}/customers/{customer_id}/entities"
    ok_item = {"id": "fine", "entityTypeId": "team"}
    for bad in ({"id": "x", "entityTypeId": "team", "parentId": "fine"},
                {"id": "x", "entityTypeId": "team", "colour": "red"},
                {"id": "x"},
                {"id": "x", "entityTypeId": "no-such-type"},
                {"id": "x", "entityTypeId": "team", "metadata": {"n": 1}}):
        resp = emulator.call("PUT", path, json={"entities": [ok_item, bad]})
        assert resp.status_code == 400, (bad, resp.text)
    assert emulator.data("GET", path) == []
    with pytest.raises(stigg_module.BadRequestError):
        stigg.v1_beta.customers.entities.upsert(id=customer_id, entities=[{"id": "y"}])


def test_it_lists_entities_by_type_and_answers_404_for_unknown_entity(emulator, stigg):
    """§9.2: entityTypeId filter; an unknown path id → 404 (guarantee 5)."""
    customer_id = new_customer(emulator)
    ensure_types(stigg)
    entities(stigg, customer_id, ("t1", "team"), ("u1", "user"), ("u2", "user"))
    users = stigg.v1_beta.customers.entities.list(id=customer_id, entity_type_id="user").data
    assert sorted(e.id for e in users) == ["u1", "u2"]
    with pytest.raises(stigg_module.NotFoundError):
        stigg.v1_beta.customers.entities.retrieve("nope", id=customer_id)


# --- guarantee 36: archive ----------------------------------------------------------------


def test_it_archives_a_parent_without_leaf_gating_and_unarchives(emulator, stigg):
    """Guarantee 36: archive is not leaf-gated, hides entities unless includeArchived=true,
    and unarchive restores them. Inferred: the archived parent's children become roots."""
    customer_id = new_customer(emulator)
    build_hierarchy(stigg, emulator, customer_id)
    api = stigg.v1_beta.customers.entities
    out = api.archive(id=customer_id, ids=["team1"])
    assert out.data.ids == ["team1"]
    visible = {e.id for e in api.list(id=customer_id)}
    assert "team1" not in visible and "u1" in visible
    everything = {e.id: e for e in api.list(id=customer_id, include_archived="true")}
    assert everything["team1"].archived_at is not None
    rows = {r.entity_id: r for r in walk_tree(stigg, customer_id)}
    assert "team1" not in rows and rows["u1"].parent_id is None
    api.unarchive(id=customer_id, ids=["team1"])
    restored = api.retrieve("team1", id=customer_id).data
    assert restored.archived_at is None
    assert "team1" in {e.id for e in api.list(id=customer_id)}


def test_it_rejects_archiving_an_unknown_entity(emulator, stigg):
    """Inferred: an unknown id in the archive body → 400 and nothing is archived."""
    customer_id = new_customer(emulator)
    ensure_types(stigg)
    entities(stigg, customer_id, ("t1", "team"))
    resp = emulator.call("POST", f"{BETA}/customers/{customer_id}/entities/archive", json={"ids": ["t1", "ghost"]})
    assert resp.status_code == 400
    assert stigg.v1_beta.customers.entities.retrieve("t1", id=customer_id).data.archived_at is None


# --- guarantees 27–30: assignments --------------------------------------------------------


def test_it_keeps_the_assignment_id_on_re_upsert_of_the_natural_key(emulator, stigg):
    """Guarantee 27: (entityId, featureId|currencyId, set of scopeEntityIds) is the key;
    scope order does not matter; a different scope is a different record."""
    customer_id = new_customer(emulator)
    ensure_types(stigg)
    entities(stigg, customer_id, ("t1", "team"), ("u1", "user"), ("u2", "user"))
    api = stigg.v1_beta.customers.assignments
    first = api.upsert(id=customer_id, assignments=[
        {"entity_id": "t1", "feature_id": "f", "usage_limit": 10, "cadence": "P1M",
         "scope_entity_ids": ["u1", "u2"]}]).data[0]
    again = api.upsert(id=customer_id, assignments=[
        {"entity_id": "t1", "feature_id": "f", "usage_limit": 20, "scope_entity_ids": ["u2", "u1"]}]).data[0]
    assert again.id == first.id and again.usage_limit == 20 and again.cadence == "P1M"
    assert again.created_at == first.created_at
    other = api.upsert(id=customer_id, assignments=[
        {"entity_id": "t1", "feature_id": "f", "usage_limit": 5, "cadence": "P1M"}]).data[0]
    credit = api.upsert(id=customer_id, assignments=[
        {"entity_id": "t1", "currency_id": "credits", "usage_limit": 5, "cadence": "P1M"}]).data[0]
    assert len({first.id, other.id, credit.id}) == 3
    assert credit.currency_id == "credits" and credit.feature_id is None
    listed = api.list(id=customer_id).data
    assert len(listed) == 3
    assert [a.id for a in api.list(id=customer_id, currency_id="credits").data] == [credit.id]
    assert {a.id for a in api.list(id=customer_id, feature_id="f", entity_id="t1").data} == {first.id, other.id}


def test_it_requires_usage_limit_key_and_cadence_on_create_only(emulator, stigg):
    """Guarantee 28: no usageLimit key or no cadence on create → 400; on update both are
    kept when left out; usageLimit null = unlimited, still tracked in the tree."""
    customer_id = new_customer(emulator)
    ensure_types(stigg)
    entities(stigg, customer_id, ("t1", "team"))
    assign(emulator, customer_id, {"entityId": "t1", "featureId": "f", "cadence": "P1M"}, expect=400)
    assign(emulator, customer_id, {"entityId": "t1", "featureId": "f", "usageLimit": 5}, expect=400)
    assert emulator.data("GET", f"{BETA}/customers/{customer_id}/assignments") == []
    created = assign(emulator, customer_id, {"entityId": "t1", "featureId": "f", "usageLimit": None,
                                             "cadence": "P1W"})[0]
    assert created["usageLimit"] is None
    updated = assign(emulator, customer_id, {"entityId": "t1", "featureId": "f"})[0]
    assert updated["id"] == created["id"] and updated["usageLimit"] is None and updated["cadence"] == "P1W"
    rows = walk_tree(stigg, customer_id, feature_ids=["f"])
    assert len(rows) == 1 and rows[0].usage_limit is None and rows[0].current_usage == 0
    assert rows[0].utilization is None


@pytest.mark.parametrize("cadence", ["P1M10D", "P0D", "1M", "P1.5M", "PT", "P1H", "", 30])
def test_it_rejects_composite_or_malformed_cadences(emulator, cadence):
    """Guarantee 29: cadence must be one single-unit ISO-8601 duration (Inferred: 400)."""
    customer_id = new_customer(emulator)
    emulator.data("PUT", f"{BETA}/entity-types",
                  json={"types": [{"id": "team", "displayName": "Team", "attributionKeys": ["teamId"]}]})
    emulator.data("PUT", f"{BETA}/customers/{customer_id}/entities",
                  json={"entities": [{"id": "t1", "entityTypeId": "team"}]})
    resp = emulator.call("PUT", f"{BETA}/customers/{customer_id}/assignments", json={"assignments": [
        {"entityId": "t1", "featureId": "f", "usageLimit": 1, "cadence": cadence}]})
    assert resp.status_code == 400, resp.text


def test_it_accepts_every_single_unit_cadence(emulator, stigg):
    """Guarantee 29: P1M, P30D, P1W, P1Y, PT1H, PT1M are accepted."""
    customer_id = new_customer(emulator)
    ensure_types(stigg)
    entities(stigg, customer_id, ("t1", "team"))
    for i, cadence in enumerate(["P1M", "P30D", "P1W", "P1Y", "PT1H", "PT1M"]):
        out = stigg.v1_beta.customers.assignments.upsert(id=customer_id, assignments=[
            {"entity_id": "t1", "feature_id": f"f{i}", "usage_limit": 1, "cadence": cadence}])
        assert out.data[0].cadence == cadence


def test_it_rejects_bad_assignment_input_without_writing(emulator, stigg):
    """featureId xor currencyId, unknown entity (Inferred 400), unknown keys, 1–100 items;
    a rejected batch writes nothing."""
    customer_id = new_customer(emulator)
    ensure_types(stigg)
    entities(stigg, customer_id, ("t1", "team"))
    good = {"entityId": "t1", "featureId": "f", "usageLimit": 1, "cadence": "P1M"}
    for bad in ({"entityId": "t1", "featureId": "f", "currencyId": "c", "usageLimit": 1, "cadence": "P1M"},
                {"entityId": "t1", "usageLimit": 1, "cadence": "P1M"},
                {"entityId": "ghost", "featureId": "f", "usageLimit": 1, "cadence": "P1M"},
                {"entityId": "t1", "featureId": "g", "usageLimit": -1, "cadence": "P1M"},
                {"entityId": "t1", "featureId": "g", "usageLimit": "lots", "cadence": "P1M"},
                {"entityId": "t1", "featureId": "g", "usageLimit": 1, "cadence": "P1M", "budget": 3},
                {"entityId": "t1", "featureId": "g", "usageLimit": 1, "cadence": "P1M", "parentId": "ghost"},
                {"entityId": "t1", "featureId": "g", "usageLimit": 1, "cadence": "P1M", "scopeEntityIds": "t1"}):
        assert assign(emulator, customer_id, good, bad, expect=400)["code"] == "BadUserInput"
    assert assign(emulator, customer_id, *([good] * 101), expect=400)["code"] == "BadUserInput"
    assert emulator.data("GET", f"{BETA}/customers/{customer_id}/assignments") == []


def test_it_applies_tri_state_parent_id(emulator, stigg):
    """Guarantee 30: absent = unchanged (a new node is a root), null = make root, id = set
    the parent; one parent per entity, shown on every assignment of it."""
    customer_id = new_customer(emulator)
    ensure_types(stigg)
    entities(stigg, customer_id, ("org1", "org"), ("org2", "org"), ("u1", "user"))
    api = stigg.v1_beta.customers.assignments
    created = api.upsert(id=customer_id, assignments=[
        {"entity_id": "u1", "feature_id": "f", "usage_limit": 1, "cadence": "P1M"}]).data[0]
    assert created.parent_id is None
    placed = api.upsert(id=customer_id, assignments=[
        {"entity_id": "u1", "feature_id": "f", "parent_id": "org1"}]).data[0]
    assert placed.parent_id == "org1"
    untouched = api.upsert(id=customer_id, assignments=[
        {"entity_id": "u1", "feature_id": "g", "usage_limit": 2, "cadence": "P1M"}]).data[0]
    assert untouched.parent_id == "org1"
    moved = api.upsert(id=customer_id, assignments=[{"entity_id": "u1", "feature_id": "f", "parent_id": "org2"}])
    assert moved.data[0].parent_id == "org2"
    assert {a.parent_id for a in api.list(id=customer_id, entity_id="u1").data} == {"org2"}
    rooted = api.upsert(id=customer_id, assignments=[{"entity_id": "u1", "feature_id": "f", "parent_id": None}])
    assert rooted.data[0].parent_id is None
    rows = {r.entity_id: r for r in walk_tree(stigg, customer_id)}
    assert rows["u1"].parent_id is None


def test_it_answers_500_without_retry_when_moving_a_node_with_children(emulator, stigg):
    """Guarantee 30: moving a node that has children is rejected; the documented live
    answer is an opaque 500 (Inferred: with x-should-retry: false). Nothing changes."""
    customer_id = new_customer(emulator)
    build_hierarchy(stigg, emulator, customer_id)
    entities(stigg, customer_id, ("org2", "org"))
    resp = emulator.call("PUT", f"{BETA}/customers/{customer_id}/assignments", json={"assignments": [
        {"entityId": "org2", "featureId": "ai-tokens", "usageLimit": 5, "cadence": "P1M"},
        {"entityId": "team1", "featureId": "ai-tokens", "parentId": "org2"}]})
    assert resp.status_code == 500
    assert resp.headers["x-should-retry"] == "false"
    listed = emulator.data("GET", f"{BETA}/customers/{customer_id}/assignments", params={"entityId": "team1"})
    assert listed[0]["parentId"] == "org1"
    assert emulator.data("GET", f"{BETA}/customers/{customer_id}/assignments", params={"entityId": "org2"}) == []
    # the SDK must not retry it
    with pytest.raises(stigg_module.InternalServerError):
        stigg.v1_beta.customers.assignments.upsert(id=customer_id, assignments=[
            {"entity_id": "team1", "feature_id": "ai-tokens", "parent_id": None}])


def test_it_rejects_depth_over_four_and_cycles(emulator, stigg):
    """Guarantee 30: depth > 4 → 400; Inferred: a cycle (including self-parent) → 400."""
    customer_id = new_customer(emulator)
    ensure_types(stigg)
    entities(stigg, customer_id, *[(f"n{i}", "team") for i in range(1, 6)])
    base = {"featureId": "f", "usageLimit": 1, "cadence": "P1M"}
    assign(emulator, customer_id, {**base, "entityId": "n1"},
           {**base, "entityId": "n2", "parentId": "n1"},
           {**base, "entityId": "n3", "parentId": "n2"},
           {**base, "entityId": "n4", "parentId": "n3"})
    resp = emulator.call("PUT", f"{BETA}/customers/{customer_id}/assignments",
                         json={"assignments": [{**base, "entityId": "n5", "parentId": "n4"}]})
    assert resp.status_code == 400
    resp = emulator.call("PUT", f"{BETA}/customers/{customer_id}/assignments",
                         json={"assignments": [{"entityId": "n4", "featureId": "f", "parentId": "n4"}]})
    assert resp.status_code == 400
    # n1 has children: making it a child of its own descendant is a cycle, answered 400
    resp = emulator.call("PUT", f"{BETA}/customers/{customer_id}/assignments",
                         json={"assignments": [{"entityId": "n1", "featureId": "f", "parentId": "n4"}]})
    assert resp.status_code == 400
    rows = {r["entityId"]: r for r in tree(emulator, customer_id)["data"]}
    assert rows["n5"]["parentId"] is None and rows["n1"]["parentId"] is None


# --- guarantees 31, 34, 35: the tree --------------------------------------------------------


def test_it_lists_one_unconfigured_row_per_entity_in_tree_mode(emulator, stigg):
    """Guarantee 35: without featureIds/currencyIds one row per (live) entity with null
    limit, usage, utilization and cadence; default sort utilization desc → all null → by
    entityId ascending."""
    customer_id = new_customer(emulator)
    build_hierarchy(stigg, emulator, customer_id)
    rows = walk_tree(stigg, customer_id)
    assert [r.entity_id for r in rows] == ["org1", "team1", "team2", "u1", "u2", "u3"]
    for r in rows:
        assert r.usage_limit is None and r.current_usage is None and r.utilization is None
        assert r.cadence is None and r.scope_entity_ids == [] and r.usage_period_start is None
    parents = {r.entity_id: r.parent_id for r in rows}
    assert parents == {"org1": None, "team1": "org1", "team2": "org1", "u1": "team1", "u2": "team1", "u3": "team2"}


def test_it_rolls_attributed_usage_up_to_every_ancestor(emulator, stigg):
    """Guarantees 31 and 34 (unit level: attribute() called directly): usage on u1 counts
    against u1, team1 and org1; utilization = usage/limit, 1 when the limit is 0, null
    when unlimited."""
    customer_id = new_customer(emulator)
    build_hierarchy(stigg, emulator, customer_id)
    touched = attribute_directly(emulator, customer_id, "ai-tokens", {"userId": "u1"}, 40)
    assert sorted(t["entityId"] for t in touched) == ["org1", "team1", "u1"]
    assert all(t["currentUsage"] == 40 and t["featureId"] == "ai-tokens" for t in touched)
    attribute_directly(emulator, customer_id, "ai-tokens", {"userEmail": "u2"}, 10)
    assert attribute_directly(emulator, customer_id, "other-feature", {"userId": "u1"}, 5) == []
    assert attribute_directly(emulator, customer_id, "ai-tokens", {"nobody": "u1"}, 5) == []
    rows = {r.entity_id: r for r in walk_tree(stigg, customer_id, feature_ids=["ai-tokens"])}
    assert rows["u1"].current_usage == 40 and rows["u1"].utilization == pytest.approx(0.4)
    assert rows["team1"].current_usage == 50 and rows["team1"].utilization == pytest.approx(0.1)
    assert rows["org1"].current_usage == 50 and rows["org1"].utilization == pytest.approx(0.05)
    assert rows["u2"].current_usage == 10 and rows["u2"].utilization is None
    assert rows["team2"].current_usage == 0 and rows["team2"].utilization == 1
    assert rows["u3"].current_usage == 0 and rows["u3"].utilization == 0


def test_it_counts_scoped_budgets_only_when_the_scope_is_resolved(emulator, stigg):
    """Guarantee 33 (attribution side): a scoped budget counts only usage whose resolved
    set holds every scope id."""
    customer_id = new_customer(emulator)
    build_hierarchy(stigg, emulator, customer_id)
    assign(emulator, customer_id, {"entityId": "org1", "featureId": "ai-tokens", "usageLimit": 20,
                                   "cadence": "P1M", "scopeEntityIds": ["u3"]})
    attribute_directly(emulator, customer_id, "ai-tokens", {"userId": "u1"}, 7)
    attribute_directly(emulator, customer_id, "ai-tokens", {"userId": "u3"}, 3)
    scoped = walk_tree(stigg, customer_id, feature_ids=["ai-tokens"], scope="scoped")
    assert [(r.entity_id, r.scope_entity_ids, r.current_usage) for r in scoped] == [("org1", ["u3"], 3)]
    node_wide = walk_tree(stigg, customer_id, feature_ids=["ai-tokens"], scope="nodeWide")
    assert len(node_wide) == 6 and all(r.scope_entity_ids == [] for r in node_wide)
    assert {r.entity_id: r.current_usage for r in node_wide}["org1"] == 10


def test_it_resets_usage_when_the_cadence_window_passes(emulator, stigg):
    """Guarantee 13-style periods for §9.5: usage is per cadence window anchored at the
    assignment's createdAt (Inferred anchor); advancing the clock past the window end
    shows a fresh window with zero usage."""
    customer_id = new_customer(emulator)
    ensure_types(stigg)
    entities(stigg, customer_id, ("t1", "team"))
    assign(emulator, customer_id, {"entityId": "t1", "featureId": "f", "usageLimit": 10, "cadence": "PT1H"})
    attribute_directly(emulator, customer_id, "f", {"teamId": "t1"}, 4)
    before = walk_tree(stigg, customer_id, feature_ids=["f"])[0]
    assert before.current_usage == 4
    assert (before.usage_period_end - before.usage_period_start).total_seconds() == 3600
    emulator.advance_clock(3601)
    after = walk_tree(stigg, customer_id, feature_ids=["f"])[0]
    assert after.current_usage == 0 and after.utilization == 0
    assert after.usage_period_start == before.usage_period_end


# --- §9.5 filters, sorts, cursors -------------------------------------------------------------


def test_it_sorts_by_every_key_in_both_orders_with_nulls_last(emulator, stigg):
    """§9.5: sortBy utilization|currentUsage|usageLimit|scopeSize|id|createdAt, order
    asc|desc; Inferred: nulls last in both orders, ties by entityId ascending."""
    customer_id = new_customer(emulator)
    build_hierarchy(stigg, emulator, customer_id)
    attribute_directly(emulator, customer_id, "ai-tokens", {"userId": "u1"}, 40)
    attribute_directly(emulator, customer_id, "ai-tokens", {"userId": "u3"}, 5)
    q = {"feature_ids": ["ai-tokens"]}

    def ids(**kw: Any) -> list[str]:
        return [r.entity_id for r in walk_tree(stigg, customer_id, **q, **kw)]

    # usage: org1 45, team1 40, team2 5, u1 40, u2 0, u3 5; limits 1000, 500, 0, 100, None, 10
    # utilization: org1 .045, team1 .08, team2 1, u1 .4, u2 None, u3 .5
    assert ids() == ["team2", "u3", "u1", "team1", "org1", "u2"]
    assert ids(order="asc") == ["org1", "team1", "u1", "u3", "team2", "u2"]
    assert ids(sort_by="currentUsage") == ["org1", "team1", "u1", "team2", "u3", "u2"]
    assert ids(sort_by="currentUsage", order="asc") == ["u2", "team2", "u3", "team1", "u1", "org1"]
    assert ids(sort_by="usageLimit") == ["org1", "team1", "u1", "u3", "team2", "u2"]
    assert ids(sort_by="usageLimit", order="asc") == ["team2", "u3", "u1", "team1", "org1", "u2"]
    assert ids(sort_by="id") == ["u3", "u2", "u1", "team2", "team1", "org1"]
    assert ids(sort_by="id", order="asc") == ["org1", "team1", "team2", "u1", "u2", "u3"]
    assert ids(sort_by="scopeSize") == ["org1", "team1", "team2", "u1", "u2", "u3"]
    # build_hierarchy writes every assignment in one call, so all share one createdAt and
    # the tie-break (entityId ascending) decides in both orders
    assert ids(sort_by="createdAt", order="asc") == ["org1", "team1", "team2", "u1", "u2", "u3"]
    assert ids(sort_by="createdAt") == ["org1", "team1", "team2", "u1", "u2", "u3"]
    emulator.advance_clock(1)
    assign(emulator, customer_id, {"entityId": "u2", "featureId": "ai-tokens", "usageLimit": 1, "cadence": "P1D",
                                   "scopeEntityIds": ["u1"]})
    assert ids(sort_by="createdAt")[0] == "u2"
    assert ids(sort_by="createdAt", order="asc")[-1] == "u2"
    assert ids(sort_by="scopeSize")[0] == "u2"


def test_it_filters_by_min_utilization_type_search_and_scope(emulator, stigg):
    """§9.5: minUtilization (Inferred: null rows dropped), entityTypeIds, entityIdSearch
    (case-insensitive on id or displayName, % and _ literal), scope."""
    customer_id = new_customer(emulator)
    build_hierarchy(stigg, emulator, customer_id)
    stigg.v1_beta.customers.entities.upsert(id=customer_id, entities=[
        {"id": "u1", "display_name": "Alice 100%"}, {"id": "u3", "display_name": "Bob_Smith"}])
    attribute_directly(emulator, customer_id, "ai-tokens", {"userId": "u1"}, 80)
    q = {"feature_ids": ["ai-tokens"]}

    def ids(**kw: Any) -> list[str]:
        return sorted(r.entity_id for r in walk_tree(stigg, customer_id, **q, **kw))

    assert ids(min_utilization=0.8) == ["team2", "u1"]
    assert ids(min_utilization=1) == ["team2"]
    assert ids(min_utilization=0) == ["org1", "team1", "team2", "u1", "u3"]
    assert ids(entity_type_ids=["team", "org"]) == ["org1", "team1", "team2"]
    assert ids(entity_type_ids=["user"]) == ["u1", "u2", "u3"]
    assert ids(entity_id_search="TEAM") == ["team1", "team2"]
    assert ids(entity_id_search="alice") == ["u1"]
    assert ids(entity_id_search="%") == ["u1"]
    assert ids(entity_id_search="_") == ["u3"]
    assert ids(entity_id_search="b_s") == ["u3"]
    assert ids(entity_id_search="bXs") == []
    assert ids(scope="scoped") == []
    # repeated array params work as well as comma-joined ones (guarantee 4)
    resp = tree(emulator, customer_id, featureIds="ai-tokens", entityTypeIds=["team", "org"])
    assert sorted(r["entityId"] for r in resp["data"]) == ["org1", "team1", "team2"]
    assert tree(emulator, customer_id, entityTypeIds="org")["data"][0]["entityId"] == "org1"


def test_it_walks_every_row_exactly_once_with_the_cursor(emulator, stigg):
    """Guarantee 3 for the tree: next only, and following it visits every row once, for
    every sort, including rows that tie."""
    customer_id = new_customer(emulator)
    ensure_types(stigg)
    ids = [f"w{i:02d}" for i in range(23)]
    entities(stigg, customer_id, *[(i, "user") for i in ids])
    assign(emulator, customer_id, *[{"entityId": i, "featureId": "f", "usageLimit": (n % 4) * 10 or None,
                                     "cadence": "P1M"} for n, i in enumerate(ids)])
    assign(emulator, customer_id, *[{"entityId": i, "featureId": "g", "usageLimit": 5, "cadence": "P1M"}
                                    for i in ids[:5]])
    for n, i in enumerate(ids):
        if n % 3:
            attribute_directly(emulator, customer_id, "f", {"userId": i}, n)
    for sort_by in ("utilization", "currentUsage", "usageLimit", "scopeSize", "id", "createdAt"):
        for order in ("asc", "desc"):
            rows = walk_tree(stigg, customer_id, feature_ids=["f", "g"], sort_by=sort_by, order=order, limit=4)
            keys = [(r.entity_id, r.feature_id) for r in rows]
            assert len(keys) == 28 and len(set(keys)) == 28, (sort_by, order)
            whole = tree(emulator, customer_id, featureIds="f,g", sortBy=sort_by, order=order, limit=100)
            assert [(r["entityId"], r["featureId"]) for r in whole["data"]] == keys
            assert whole["pagination"] == {"next": None}
    tree_rows = walk_tree(stigg, customer_id, limit=5)
    assert [r.entity_id for r in tree_rows] == ids


def test_it_rejects_bad_tree_parameters(emulator):
    """Bad input never yields 500: unknown sortBy/order/scope, bad limit, non-numeric
    minUtilization, a foreign cursor, or before (the tree pages forward only) → 400."""
    customer_id = new_customer(emulator)
    for query in ({"sortBy": "name"}, {"order": "up"}, {"scope": "some"}, {"limit": 0}, {"limit": 101},
                  {"minUtilization": "high"}, {"after": "not-a-cursor!"}, {"before": "abc"}):
        resp = emulator.call("GET", f"{BETA}/customers/{customer_id}/governance", params=query)
        assert resp.status_code == 400, (query, resp.text)
    # a cursor issued for one sort is refused by another
    emulator.data("PUT", f"{BETA}/entity-types",
                  json={"types": [{"id": "team", "displayName": "Team", "attributionKeys": ["teamId"]}]})
    emulator.data("PUT", f"{BETA}/customers/{customer_id}/entities",
                  json={"entities": [{"id": "a", "entityTypeId": "team"}, {"id": "b", "entityTypeId": "team"}]})
    nxt = tree(emulator, customer_id, limit=1)["pagination"]["next"]
    assert nxt is not None
    resp = emulator.call("GET", f"{BETA}/customers/{customer_id}/governance",
                         params={"limit": 1, "after": nxt, "sortBy": "id"})
    assert resp.status_code == 400


def test_it_pages_a_thousand_budget_tree(emulator, stigg):
    """§9.5: a customer with 1,000 budgets pages by utilization and the cursor walk sees
    every row once. (Its speed is measured in bench/, not asserted here.)"""
    customer_id = new_customer(emulator)
    ensure_types(stigg)
    ids = [f"p{i:04d}" for i in range(1000)]
    for chunk in range(0, 1000, 100):
        part = ids[chunk:chunk + 100]
        emulator.data("PUT", f"{BETA}/customers/{customer_id}/entities",
                      json={"entities": [{"id": i, "entityTypeId": "user"} for i in part]})
        assign(emulator, customer_id, *[{"entityId": i, "featureId": "f", "usageLimit": 100 + n, "cadence": "P1M",
                                         **({"parentId": ids[0]} if n else {})} for n, i in enumerate(part)])
    for i in ids[:50]:
        attribute_directly(emulator, customer_id, "f", {"userId": i}, 10)
    first = tree(emulator, customer_id, featureIds="f", limit=100)
    assert len(first["data"]) == 100 and first["pagination"]["next"]
    rows = walk_tree(stigg, customer_id, feature_ids=["f"], sort_by="utilization", limit=100)
    assert len(rows) == 1000 and len({r.entity_id for r in rows}) == 1000
    utilizations = [r.utilization for r in rows]
    assert utilizations == sorted(utilizations, reverse=True)
