"""Credit currencies in the catalog: plans' and add-ons' CREDIT entitlements, and the
governance sync asking for budgets in those currencies.

The emulator does not emulate CREDIT entitlements (it refuses to store them), so these
tests talk real HTTP to a tiny local server that answers fixed Stigg-shaped bodies, like
the malformed-answer tests of test_stigg_client.py (tests/stub_stigg.py); the read model
is a real Redis."""
from __future__ import annotations

from typing import Any, Iterator

import pytest
import redis

from dashboard import sync
from dashboard.codec import load
from dashboard.readmodel import ReadModel
from dashboard.stigg import Package, PackageCredit, StiggClient, StiggRequestError

from .stub_stigg import StubStigg, page, running

T = "2026-01-01T00:00:00.000Z"


def feature_entitlement(feature_id: str, **extra: Any) -> dict[str, Any]:
    return {"type": "FEATURE", "id": feature_id, "behavior": "Increment", "isGranted": True,
            "hiddenFromWidgets": [], "createdAt": T, "updatedAt": T, **extra}


def credit_entitlement(currency_id: str, **extra: Any) -> dict[str, Any]:
    # The SDK's DataCredit shape (stigg.types.v1.plans.EntitlementListResponse)
    return {"type": "CREDIT", "id": currency_id, "behavior": "Increment", "isGranted": True,
            "hiddenFromWidgets": [], "createdAt": T, "updatedAt": T, **extra}


def package_head(package_id: str, *credit_ids: str, **extra: Any) -> dict[str, Any]:
    return {"id": package_id, "displayName": package_id.title(), "productId": "prod", "status": "PUBLISHED",
            "entitlements": [{"id": c, "type": "CREDIT"} for c in credit_ids], "createdAt": T, "updatedAt": T,
            **extra}


def catalog_answers(pro_entitlements: list[Any]) -> dict[str, Any]:
    return {
        "/api/v1/features": page([{"id": "calls", "displayName": "API calls", "featureType": "NUMBER",
                                   "meterType": "INCREMENTAL", "featureStatus": "ACTIVE", "metadata": {},
                                   "createdAt": T, "updatedAt": T}]),
        "/api/v1/plans": page([package_head("pro", "ai-credits", parentPlanId=None)]),
        "/api/v1/plans/pro/entitlements": page(pro_entitlements),
        "/api/v1/addons": page([package_head("boost", "gpu-hours")]),
        "/api/v1/addons/boost/entitlements": page([credit_entitlement("gpu-hours", amount=10, cadence="YEAR")]),
        "/api/v1-beta/entity-types": page([]),
    }


GOOD_PRO = [
    feature_entitlement("calls", usageLimit=100, resetPeriod="MONTH"),
    credit_entitlement("ai-credits", amount=500, cadence="MONTH", dependencyFeatureId=None),
    {"type": "SOMETHING_NEW", "id": "later"},  # a kind this dashboard does not know: left out
]


@pytest.fixture
def stub() -> Iterator[StubStigg]:
    yield from running()


def test_it_reads_credit_grants_of_plans_and_addons_beside_their_feature_entitlements(stub: StubStigg) -> None:
    stub.serve(catalog_answers(GOOD_PRO))
    with StiggClient(stub.url, "server-x", timeout=5) as client:
        packages = {p.id: p for p in client.iter_packages()}
    pro, boost = packages["pro"], packages["boost"]
    assert pro.credits == (PackageCredit(currency_id="ai-credits", amount=500, cadence="MONTH"),)
    # the feature entitlements are what they were: the credit is not among them
    assert [(e.feature_id, e.usage_limit, e.reset_period) for e in pro.entitlements] == [("calls", 100, "MONTH")]
    assert (boost.kind, boost.entitlements, boost.credits) == (
        "addon", (), (PackageCredit(currency_id="gpu-hours", amount=10, cadence="YEAR"),))


def test_it_reads_a_credit_grant_without_amount_or_cadence(stub: StubStigg) -> None:
    # Both are optional in Stigg's SDK; the currency is what the governance sync needs.
    stub.serve(catalog_answers([credit_entitlement("ai-credits", amount=None)]))
    with StiggClient(stub.url, "server-x", timeout=5) as client:
        pro = next(p for p in client.iter_packages() if p.id == "pro")
    assert (pro.entitlements, pro.credits) == ((), (PackageCredit(currency_id="ai-credits", amount=None,
                                                                  cadence=None),))


@pytest.mark.parametrize("bad", [
    credit_entitlement("ai-credits", amount="lots"),
    credit_entitlement("ai-credits", amount=True),
    credit_entitlement("ai-credits", cadence=1),
    {k: v for k, v in credit_entitlement("ai-credits").items() if k != "id"},
    {**credit_entitlement("ai-credits"), "type": ["CREDIT"]},
    "CREDIT",
])
def test_it_rejects_a_malformed_credit_grant(stub: StubStigg, bad: Any) -> None:
    stub.serve(catalog_answers([feature_entitlement("calls"), bad]))
    with StiggClient(stub.url, "server-x", timeout=5) as client:
        with pytest.raises(StiggRequestError, match="malformed answer from Stigg: /api/v1/plans/pro"):
            list(client.iter_packages())


@pytest.fixture
def rm(redis_server: Any) -> Iterator[ReadModel]:
    model = ReadModel(redis.Redis.from_url(redis_server.url, decode_responses=True), prefix="test-credits:")
    model.clear()
    yield model
    model.clear()


def test_it_asks_the_hierarchy_for_budgets_in_every_currency_of_the_catalog(stub: StubStigg, rm: ReadModel) -> None:
    customer = {"id": "c1", "name": "Credit Co", "email": None, "createdAt": T, "updatedAt": T,
                "archivedAt": None, "metadata": {}}
    ada = {"entityId": "ada", "entityTypeId": "user", "displayName": "Ada", "parentId": None,
           "scopeEntityIds": []}
    answers = {
        **catalog_answers(GOOD_PRO),
        "/api/v1/customers/c1": {"data": customer},
        "/api/v1/subscriptions": page([]),
        "/api/v1/customers/c1/entitlements": {"data": {"entitlements": [], "accessDeniedReason": None}},
        "/api/v1/customers/c1/promotional-entitlements": page([]),
    }

    def answer(path: str, query: dict[str, list[str]]) -> Any:
        if path == "/api/v1-beta/customers/c1/governance":
            if "currencyIds" not in query:  # tree mode: the entities
                return page([ada])
            return page([{**ada, "currencyId": "ai-credits", "cadence": "P1M", "usageLimit": 200,
                          "currentUsage": 170, "utilization": 0.85}])
        return answers.get(path)

    stub.answer = answer
    with StiggClient(stub.url, "server-x", timeout=5) as client:
        cat = sync.refresh_catalog(client, rm)
        assert cat.currencies == frozenset({"ai-credits", "gpu-hours"})
        # stored through the codec: the read model's catalog gives the same packages back
        stored = rm.catalog()
        assert stored is not None
        assert {pid: load(Package, p) for pid, p in stored.packages.items()} == {
            p.id: p for p in cat.packages.values()}
        assert sync.refresh_customer(client, rm, "c1", discover=True)
    hydrated = [q for path, q in stub.seen if path.endswith("/governance") and "currencyIds" in q]
    assert hydrated and hydrated[0]["currencyIds"] == ["ai-credits,gpu-hours"]
    assert hydrated[0]["featureIds"] == ["calls"]
    node, budget = rm.nearest_budgets("c1")[0]
    assert (node["id"], budget["capability"], budget["usage"], budget["limit"]) == ("ada", "$ai-credits", 170, 200)
