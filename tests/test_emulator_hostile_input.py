"""Bad input never gets a 500: every route the emulator serves is sent hostile bodies,
parameters and ids, and must answer a 4xx JSON {code, message} — or a 2xx where the
input happens to be acceptable — and never 5xx."""
from __future__ import annotations

import json

import pytest

from emulator import app  # noqa: F401  (registers every route)
from emulator.http import _routes

# What a careless client, a buggy integration or an attacker might send as a JSON body.
HOSTILE_BODIES: list[bytes] = [
    b"", b"null", b"[]", b"\"text\"", b"12", b"{", b"{\"a\":", b"\xff\xfe\x00",
    json.dumps({"id": None, "customerId": 5, "featureId": [], "usages": "x", "events": {}}).encode(),
    json.dumps({"usages": [None, 1, "x", {"value": "NaN"}]}).encode(),
    json.dumps({"events": [{"customerId": {"$ne": 1}, "eventName": None, "idempotencyKey": 3}]}).encode(),
    json.dumps({"entities": [{"id": "", "entityTypeId": ["t"], "metadata": {"a": 1}}]}).encode(),
    json.dumps({"assignments": [{"entityId": "e", "featureId": "f", "usageLimit": "lots", "cadence": "forever"}]}).encode(),
    json.dumps({"types": [{"id": "t", "displayName": 3, "attributionKeys": ["a", "b", "c"]}]}).encode(),
    json.dumps({"promotionalEntitlements": [{"featureId": "f", "period": "1 decade", "usageLimit": -1}]}).encode(),
    json.dumps({"entitlements": [{"id": "f", "type": "FEATURE", "usageLimit": "1e400"}]}).encode(),
    json.dumps({"id": "x" * 5000, "displayName": "<script>alert(1)</script>", "featureType": "NUMBER",
                "meter": {"aggregation": {"function": "SUM"}, "filters": [{"conditions": [{}]}]}}).encode(),
    json.dumps({"customerId": "c", "planId": "p", "addons": [{"id": "a", "quantity": -3}],
                "startDate": "not-a-date", "trialOverrideConfiguration": "yes"}).encode(),
    json.dumps({"cancellationTime": "SOMEDAY", "endDate": 12}).encode(),
    json.dumps({"ids": "a,b"}).encode(),
    b'{"value": 1e999}',
]
HOSTILE_QUERIES = [
    {}, {"limit": "-1"}, {"limit": "1e9"}, {"after": "%%%"}, {"before": "eyJ4Ijog"}, {"startDate": "yesterday"},
    {"featureId": "", "currencyId": ""}, {"requestedUsage": "lots"}, {"requestedUsage": "nan"},
    {"sortBy": "chaos", "order": "sideways"}, {"minUtilization": "inf"}, {"dimensions[userId]": "x" * 3000},
    {"createdAt[eq]": "2024-01-01"}, {"includeArchived": "maybe"}, {"status": ",,,"},
    {"featureIds": "nope", "entityIdSearch": "%_\\"}, {"groupBy": "model", "startDate": "2024-01-01T00:00:00Z",
                                                    "endDate": "2023-01-01T00:00:00Z"},
]
PATH_VALUES = ["hostile-customer", "does-not-exist", "%00", "a" * 300, "<script>"]


def concrete_paths() -> list[tuple[str, str]]:
    out = []
    for method, regex, _ in _routes:
        pattern = regex.pattern.lstrip("^").rstrip("$").replace("/?", "")
        names = regex.groupindex
        for value in PATH_VALUES:
            path = pattern
            for name in names:
                path = path.replace(f"(?P<{name}>[^/]+)", value)
            out.append((method, path))
    return out


@pytest.fixture(scope="module")
def world(emulator):
    emulator.data("POST", "/api/v1/customers", json={"id": "hostile-customer"})
    return emulator


@pytest.mark.parametrize("method, path", sorted(set(concrete_paths())))
def test_it_never_answers_5xx_to_hostile_input(world, method, path):
    emulator = world
    if path.startswith("/_emulator/"):
        bodies = HOSTILE_BODIES[:6]
    else:
        bodies = HOSTILE_BODIES
    if method == "GET":
        bodies = [b""]
    # every hostile body with no query, and every hostile query with each kind of body
    cases = [({}, body) for body in bodies] + [(query, bodies[0]) for query in HOSTILE_QUERIES]
    cases += [(query, bodies[-1]) for query in HOSTILE_QUERIES if method != "GET"]
    for query, body in cases:
        resp = emulator.call(method, path, params=query, content=body, headers={"Content-Type": "application/json"})
        assert resp.status_code < 500, (method, path, query, body[:80], resp.status_code, resp.text[:300])
        if resp.status_code >= 400:
            payload = resp.json()
            assert set(payload) == {"code", "message"} and payload["message"], payload
    # whatever was thrown at it, the emulator is healthy and its controls untouched
    emulator.clear_faults()
    assert emulator.call("GET", "/api/v1/customers/hostile-customer").status_code == 200
