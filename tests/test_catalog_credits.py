"""Credit currencies in the catalog: plans' and add-ons' CREDIT entitlements, and the
governance sync asking for budgets in those currencies.

The emulator does not emulate CREDIT entitlements (it refuses to store them), so these
tests talk real HTTP to a tiny local server that answers fixed Stigg-shaped bodies, like
the malformed-answer tests of test_stigg_client.py; the read model is a real Redis."""
from __future__ import annotations

import http.server
import json
import threading
from typing import Any, Callable, Iterator
from urllib.parse import parse_qs, urlsplit

import pytest
import redis

from dashboard import sync
from dashboard.codec import load
from dashboard.readmodel import ReadModel
from dashboard.stigg import Package, PackageCredit, StiggClient, StiggRequestError

T = "2026-01-01T00:00:00.000Z"


def page(items: list[Any]) -> dict[str, Any]:
    return {"data": items, "pagination": {"next": None, "prev": None}}


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


class _Stigg(http.server.BaseHTTPRequestHandler):
    """Answers GETs from ``answer(path, query)``; records every request it saw."""

    answer: Callable[[str, dict[str, list[str]]], Any] = staticmethod(lambda path, query: None)
    seen: list[tuple[str, dict[str, list[str]]]] = []

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        url = urlsplit(self.path)
        query = parse_qs(url.query)
        self.seen.append((url.path, query))
        body = type(self).answer(url.path, query)
        status, raw = (200, json.dumps(body).encode()) if body is not None else (404, b'{"code":"NotFound"}')
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def log_message(self, *_: Any) -> None:
        pass


@pytest.fixture
def stigg_server() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Stigg)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _Stigg.seen = []
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def serve(answers: dict[str, Any]) -> None:
    _Stigg.answer = staticmethod(lambda path, query: answers.get(path))


def test_it_reads_credit_grants_of_plans_and_addons_beside_their_feature_entitlements(stigg_server: str) -> None:
    serve(catalog_answers(GOOD_PRO))
    with StiggClient(stigg_server, "server-x", timeout=5) as client:
        packages = {p.id: p for p in client.iter_packages()}
    pro, boost = packages["pro"], packages["boost"]
    assert pro.credits == (PackageCredit(currency_id="ai-credits", amount=500, cadence="MONTH"),)
    # the feature entitlements are what they were: the credit is not among them
    assert [(e.feature_id, e.usage_limit, e.reset_period) for e in pro.entitlements] == [("calls", 100, "MONTH")]
    assert (boost.kind, boost.entitlements, boost.credits) == (
        "addon", (), (PackageCredit(currency_id="gpu-hours", amount=10, cadence="YEAR"),))


def test_it_reads_a_credit_grant_without_amount_or_cadence(stigg_server: str) -> None:
    # Both are optional in Stigg's SDK; the currency is what the governance sync needs.
    serve(catalog_answers([credit_entitlement("ai-credits", amount=None)]))
    with StiggClient(stigg_server, "server-x", timeout=5) as client:
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
def test_it_rejects_a_malformed_credit_grant(stigg_server: str, bad: Any) -> None:
    serve(catalog_answers([feature_entitlement("calls"), bad]))
    with StiggClient(stigg_server, "server-x", timeout=5) as client:
        with pytest.raises(StiggRequestError, match="malformed answer from Stigg: /api/v1/plans/pro"):
            list(client.iter_packages())


@pytest.fixture
def rm(redis_server: Any) -> Iterator[ReadModel]:
    model = ReadModel(redis.Redis.from_url(redis_server.url, decode_responses=True), prefix="test-credits:")
    model.clear()
    yield model
    model.clear()


def test_it_asks_the_hierarchy_for_budgets_in_every_currency_of_the_catalog(stigg_server: str,
                                                                           rm: ReadModel) -> None:
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

    _Stigg.answer = staticmethod(answer)
    with StiggClient(stigg_server, "server-x", timeout=5) as client:
        cat = sync.refresh_catalog(client, rm)
        assert cat.currencies == frozenset({"ai-credits", "gpu-hours"})
        # stored through the codec: the read model's catalog gives the same packages back
        stored = rm.catalog()
        assert stored is not None
        assert {pid: load(Package, p) for pid, p in stored.packages.items()} == {
            p.id: p for p in cat.packages.values()}
        assert sync.refresh_customer(client, rm, "c1", discover=True)
    hydrated = [q for path, q in _Stigg.seen if path.endswith("/governance") and "currencyIds" in q]
    assert hydrated and hydrated[0]["currencyIds"] == ["ai-credits,gpu-hours"]
    assert hydrated[0]["featureIds"] == ["calls"]
    node, budget = rm.nearest_budgets("c1")[0]
    assert (node["id"], budget["currency_id"], budget["usage"], budget["limit"]) == ("ada", "ai-credits", 170, 200)
