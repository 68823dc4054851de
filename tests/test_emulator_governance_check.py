"""The v1-beta check with dimensions (§9.6, guarantees 24, 32, 33) and roll-up of usage
reported over HTTP (§9.4, guarantee 31), against a real subscription."""
from __future__ import annotations

import uuid
from typing import Any

import pytest

BETA = "/api/v1-beta"
FEATURE = "gov-tokens"
UNENTITLED = "gov-unentitled"
PLAN = "gov-plan"


@pytest.fixture(scope="module")
def catalog(emulator):
    """One product, two metered features, a published plan entitling only FEATURE."""
    emulator.data("POST", "/api/v1/products", json={"id": "gov-product", "displayName": "Governed"}, expect=201)
    for feature_id in (FEATURE, UNENTITLED):
        emulator.data("POST", "/api/v1/features", json={
            "id": feature_id, "displayName": feature_id, "featureType": "NUMBER", "meterType": "INCREMENTAL"},
            expect=201)
    emulator.data("POST", "/api/v1/plans", json={"id": PLAN, "displayName": "Plan", "productId": "gov-product"},
                  expect=201)
    emulator.data("POST", f"/api/v1/plans/{PLAN}/entitlements", json={"entitlements": [
        {"type": "FEATURE", "id": FEATURE, "usageLimit": 100000}]}, expect=201)
    emulator.data("POST", f"/api/v1/plans/{PLAN}/publish", json={})
    emulator.data("PUT", f"{BETA}/entity-types", json={"types": [
        {"id": "org", "displayName": "Org", "attributionKeys": ["orgId"]},
        {"id": "team", "displayName": "Team", "attributionKeys": ["teamId"]},
        {"id": "user", "displayName": "User", "attributionKeys": ["userId"]}]})


def subscribed_customer(emulator: Any, *, subscribe: bool = True) -> str:
    """org1 ← team1 ← (u1, u2); budgets org1 100, team1 50, u1 10, u2 unlimited; plus a
    scoped budget on team1 that applies only when u2 is resolved."""
    customer_id = f"govchk-{uuid.uuid4().hex[:8]}"
    emulator.data("POST", "/api/v1/customers", json={"id": customer_id}, expect=201)
    if subscribe:
        emulator.data("POST", "/api/v1/subscriptions", json={"customerId": customer_id, "planId": PLAN}, expect=201)
    emulator.data("PUT", f"{BETA}/customers/{customer_id}/entities", json={"entities": [
        {"id": "org1", "entityTypeId": "org"}, {"id": "team1", "entityTypeId": "team"},
        {"id": "u1", "entityTypeId": "user"}, {"id": "u2", "entityTypeId": "user"}]})
    emulator.data("PUT", f"{BETA}/customers/{customer_id}/assignments", json={"assignments": [
        {"entityId": "org1", "featureId": FEATURE, "usageLimit": 100, "cadence": "P1M"},
        {"entityId": "team1", "featureId": FEATURE, "usageLimit": 50, "cadence": "P1M", "parentId": "org1"},
        {"entityId": "team1", "featureId": FEATURE, "usageLimit": 5, "cadence": "P1M", "scopeEntityIds": ["u2"]},
        {"entityId": "u1", "featureId": FEATURE, "usageLimit": 10, "cadence": "P1D", "parentId": "team1"},
        {"entityId": "u2", "featureId": FEATURE, "usageLimit": None, "cadence": "P1D", "parentId": "team1"}]})
    return customer_id


def report(emulator: Any, customer_id: str, value: float, dims: dict[str, Any] | None = None,
           feature_id: str = FEATURE) -> Any:
    usage: dict[str, Any] = {"customerId": customer_id, "featureId": feature_id, "value": value}
    if dims:
        usage["dimensions"] = dims
    return emulator.data("POST", "/api/v2/usage", json={"usages": [usage]}, expect=201)


def check(stigg: Any, customer_id: str, **kwargs: Any) -> Any:
    return stigg.v1_beta.customers.entitlements.check(customer_id, **kwargs).data


def test_it_leaves_chains_out_without_dimensions(emulator, stigg, catalog):
    """Guarantee 32: chains appear only when dimensions are sent."""
    customer_id = subscribed_customer(emulator)
    plain = check(stigg, customer_id, feature_id=FEATURE)
    assert plain.is_granted and plain.chains is None
    raw = emulator.data("GET", f"{BETA}/customers/{customer_id}/entitlements/check", params={"featureId": FEATURE})
    assert "chains" not in raw
    with_dims = check(stigg, customer_id, feature_id=FEATURE, dimensions={"userId": "u1"})
    assert with_dims.is_granted
    assert [[n.entity_id for n in chain] for chain in with_dims.chains] == [["u1", "team1", "org1"]]
    assert [n.usage_limit for n in with_dims.chains[0]] == [10, 50, 100]


def test_it_rolls_reported_usage_up_to_every_ancestor(emulator, stigg, catalog):
    """Guarantee 31 over HTTP: usage reported with dimensions counts against the entity
    and every ancestor; the v2 response lists the touched budgets."""
    customer_id = subscribed_customer(emulator)
    out = report(emulator, customer_id, 7, {"userId": "u1"})
    touched = {e["entityId"]: e["currentUsage"] for e in out["entities"]}
    assert touched == {"u1": 7, "team1": 7, "org1": 7}
    report(emulator, customer_id, 3, {"userId": "u2"})
    report(emulator, customer_id, 100)  # no dimensions: reaches no entity (§9.4 step 3)
    rows = stigg.v1.events.beta.customers.retrieve_governance(customer_id, feature_ids=[FEATURE], scope="nodeWide")
    usage = {r.entity_id: r.current_usage for r in rows.data}
    assert usage == {"org1": 10, "team1": 10, "u1": 7, "u2": 3}
    scoped = stigg.v1.events.beta.customers.retrieve_governance(customer_id, feature_ids=[FEATURE], scope="scoped")
    assert [(r.entity_id, r.current_usage) for r in scoped.data] == [("team1", 3)]


def test_it_denies_when_any_node_of_the_chain_denies(emulator, stigg, catalog):
    """Guarantee 32: denied if any node of any chain denies; the node says which.
    Reason: RequestedUsageExceedingLimit when the request overshoots, BudgetExceeded when
    the budget is already spent."""
    customer_id = subscribed_customer(emulator)
    report(emulator, customer_id, 8, {"userId": "u1"})
    ok_ = check(stigg, customer_id, feature_id=FEATURE, dimensions={"userId": "u1"}, requested_usage=2)
    assert ok_.is_granted and ok_.access_denied_reason is None
    over = check(stigg, customer_id, feature_id=FEATURE, dimensions={"userId": "u1"}, requested_usage=3)
    assert not over.is_granted and over.access_denied_reason == "RequestedUsageExceedingLimit"
    assert [(n.entity_id, n.is_granted) for n in over.chains[0]] == [("u1", False), ("team1", True), ("org1", True)]
    report(emulator, customer_id, 2, {"userId": "u1"})
    spent = check(stigg, customer_id, feature_id=FEATURE, dimensions={"userId": "u1"}, requested_usage=1)
    assert not spent.is_granted and spent.access_denied_reason == "BudgetExceeded"
    # u1's spent budget does not block its sibling u2, whose own budget is unlimited
    sibling = check(stigg, customer_id, feature_id=FEATURE, dimensions={"userId": "u2"}, requested_usage=1)
    assert sibling.is_granted
    # the team budget (50) blocks every member once the request overshoots it
    team = check(stigg, customer_id, feature_id=FEATURE, dimensions={"teamId": "team1"}, requested_usage=41)
    assert not team.is_granted and team.chains[0][0].entity_id == "team1" and not team.chains[0][0].is_granted
    # two dimensions → two chains; the denying one decides
    both = check(stigg, customer_id, feature_id=FEATURE, dimensions={"userId": "u2", "teamId": "team1"},
                 requested_usage=1)
    assert len(both.chains) == 2


def test_it_applies_a_scoped_budget_only_when_every_scope_id_is_resolved(emulator, stigg, catalog):
    """Guarantee 33: team1's scoped budget (limit 5, scope [u2]) applies to u2's requests
    only, and shows its scopeEntityIds in the chain."""
    customer_id = subscribed_customer(emulator)
    u1 = check(stigg, customer_id, feature_id=FEATURE, dimensions={"userId": "u1"}, requested_usage=6)
    assert all(n.scope_entity_ids == [] for n in u1.chains[0])
    assert u1.is_granted  # 6 fits u1 (10), team1 (50) and org1 (100); the scoped 5 is not applied
    assert [n.entity_id for n in u1.chains[0]] == ["u1", "team1", "org1"]
    u2 = check(stigg, customer_id, feature_id=FEATURE, dimensions={"userId": "u2"}, requested_usage=6)
    assert not u2.is_granted
    scoped = [n for n in u2.chains[0] if n.scope_entity_ids]
    assert [(n.entity_id, n.scope_entity_ids, n.usage_limit, n.is_granted) for n in scoped] == [
        ("team1", ["u2"], 5, False)]
    assert check(stigg, customer_id, feature_id=FEATURE, dimensions={"userId": "u2"}, requested_usage=5).is_granted


def test_it_consults_governance_only_after_the_base_entitlement(emulator, stigg, catalog):
    """§9.6: without an active subscription the base reason wins (NoActiveSubscription);
    an unentitled feature answers NoFeatureEntitlementInSubscription even with budgets."""
    customer_id = subscribed_customer(emulator, subscribe=False)
    out = check(stigg, customer_id, feature_id=FEATURE, dimensions={"userId": "u1"}, requested_usage=1)
    assert not out.is_granted and out.access_denied_reason == "NoActiveSubscription"
    subscribed = subscribed_customer(emulator)
    out = check(stigg, subscribed, feature_id=UNENTITLED, dimensions={"userId": "u1"})
    assert not out.is_granted and out.access_denied_reason == "NoFeatureEntitlementInSubscription"


def test_it_keeps_the_check_open_when_governance_is_off(emulator, stigg, catalog):
    """Guarantee 24: the v1-beta check is not gated. Inferred: with governance off the
    budgets are not consulted and chains is empty when dimensions are sent."""
    customer_id = subscribed_customer(emulator)
    report(emulator, customer_id, 10, {"userId": "u1"})
    emulator.data("PUT", "/_emulator/settings", json={"governanceEnabled": False})
    try:
        out = check(stigg, customer_id, feature_id=FEATURE, dimensions={"userId": "u1"}, requested_usage=5)
        assert out.is_granted and out.chains == []
        resp = emulator.call("GET", f"{BETA}/customers/{customer_id}/governance")
        assert resp.status_code == 403
        usage = report(emulator, customer_id, 1, {"userId": "u1"})
        assert "entities" not in usage  # §7: absent when governance is off
    finally:
        emulator.data("PUT", "/_emulator/settings", json={"governanceEnabled": True})
    rows = stigg.v1.events.beta.customers.retrieve_governance(customer_id, feature_ids=[FEATURE], sort_by="id")
    assert {r.entity_id: r.current_usage for r in rows.data if not r.scope_entity_ids}["u1"] == 10


def test_it_rejects_a_check_without_exactly_one_capability(emulator, catalog):
    """Bad input never yields 500: featureId xor currencyId; requestedUsage a number ≥ 0."""
    customer_id = subscribed_customer(emulator)
    path = f"{BETA}/customers/{customer_id}/entitlements/check"
    for query in ({}, {"featureId": FEATURE, "currencyId": "credits"}, {"featureId": FEATURE, "requestedUsage": "x"},
                  {"featureId": FEATURE, "requestedUsage": -1}):
        assert emulator.call("GET", path, params=query).status_code == 400, query


def test_it_answers_an_unfunded_currency_with_a_credit_entitlement(emulator, stigg, catalog):
    """Inferred: the emulator models no credit pools, so a currencyId check is the CREDIT
    shape, denied with NoActiveSubscription; chains still follow dimensions."""
    customer_id = subscribed_customer(emulator)
    out = check(stigg, customer_id, currency_id="credits", dimensions={"userId": "u1"})
    assert out.type == "CREDIT" and not out.is_granted
    assert out.access_denied_reason == "NoActiveSubscription"
    assert [n.usage_limit for n in out.chains[0]] == [None, None, None]
