"""Transport guarantees 1–7 of stigg-api.md §0, plus bad input and persistence."""
from __future__ import annotations

import httpx
import pytest
import stigg as stigg_sdk

from .servers import CLIENT_KEY


@pytest.fixture(scope="module")
def customers(emulator):
    ids = [f"cust-{i:03d}" for i in range(47)]
    for i, cid in enumerate(ids):
        emulator.data("POST", "/api/v1/customers", json={"id": cid, "name": f"Customer {i}", "email": f"c{i}@example.com"})
    return ids


def test_it_refuses_a_missing_or_unknown_key(emulator):
    """Guarantee 1: missing or unknown X-API-KEY → 401."""
    assert httpx.get(f"{emulator.url}/api/v1/customers").status_code == 401
    resp = httpx.get(f"{emulator.url}/api/v1/customers", headers={"X-API-KEY": "server-wrong"})
    assert resp.status_code == 401
    assert resp.json() == {"code": "Unauthenticated", "message": "Missing or unknown X-API-KEY"}


def test_it_reads_the_key_header_case_insensitively(emulator):
    """Guarantee 1: header names are case-insensitive."""
    for name in ("x-api-key", "X-Api-Key", "X-API-KEY"):
        assert httpx.get(f"{emulator.url}/api/v1/customers", headers={name: emulator.key}).status_code == 200


def test_it_refuses_401_through_the_sdk(emulator):
    """Guarantee 1 through the official client."""
    from stigg import Stigg

    bad = Stigg(base_url=emulator.url, api_key="server-nope", _strict_response_validation=True, max_retries=0)
    with pytest.raises(stigg_sdk.AuthenticationError):
        bad.v1.customers.list()


def test_it_wraps_objects_and_lists_in_data(emulator, customers):
    """Guarantee 2: every 2xx is an object with data; lists add pagination {next, prev}."""
    one = emulator.call("GET", f"/api/v1/customers/{customers[0]}").json()
    assert set(one) == {"data"} and one["data"]["id"] == customers[0]
    page = emulator.call("GET", "/api/v1/customers", params={"limit": 100}).json()
    assert set(page) == {"data", "pagination"}
    assert page["pagination"] == {"next": None, "prev": None}  # one page holds everything


def test_it_walks_every_customer_exactly_once_forwards(stigg, customers):
    """Guarantee 3: after=pagination.next visits every item once, in a stable order (SDK auto-paging)."""
    seen = [c.id for c in stigg.v1.customers.list(limit=10)]
    assert seen == customers
    again = [c.id for c in stigg.v1.customers.list(limit=7)]
    assert again == seen


def test_it_walks_backwards_with_before(emulator, customers):
    """Guarantee 3: before=pagination.prev walks backwards."""
    pages, params = [], {"limit": 10}
    while True:
        body = emulator.call("GET", "/api/v1/customers", params=params).json()
        pages.append(body)
        if not body["pagination"]["next"]:
            break
        params = {"limit": 10, "after": body["pagination"]["next"]}
    assert pages[-1]["pagination"]["next"] is None and len(pages) == 5
    back, cursor = [], pages[-1]["pagination"]["prev"]
    while cursor:
        body = emulator.call("GET", "/api/v1/customers", params={"limit": 10, "before": cursor}).json()
        back = [c["id"] for c in body["data"]] + back
        cursor = body["pagination"]["prev"]
    assert back + [c["id"] for c in pages[-1]["data"]] == customers


def test_it_rejects_limits_out_of_range_and_foreign_cursors(emulator, customers):
    """Inferred: limit > 100 → 400; a cursor this API did not issue → 400."""
    assert emulator.call("GET", "/api/v1/customers", params={"limit": 101}).status_code == 400
    assert emulator.call("GET", "/api/v1/customers", params={"limit": "ten"}).status_code == 400
    resp = emulator.call("GET", "/api/v1/customers", params={"after": "not-a-cursor!"})
    assert resp.status_code == 400 and resp.json()["code"] == "BadUserInput"


def test_it_accepts_arrays_comma_joined_and_repeated(emulator):
    """Guarantee 4: status=a,b and featureType=a&featureType=b mean the same."""
    for fid, ftype in (("t-flag", "BOOLEAN"), ("t-num", "NUMBER"), ("t-enum", "ENUM")):
        body = {"id": fid, "displayName": fid, "featureType": ftype}
        if ftype == "ENUM":
            body["enumConfiguration"] = [{"value": "eu", "displayName": "EU"}]
        emulator.data("POST", "/api/v1/features", json=body)
    joined = emulator.data("GET", "/api/v1/features?featureType=BOOLEAN,ENUM&limit=100")
    repeated = emulator.data("GET", "/api/v1/features?featureType=BOOLEAN&featureType=ENUM&limit=100")
    assert [f["id"] for f in joined] == [f["id"] for f in repeated] == ["t-flag", "t-enum"]


def test_it_answers_404_with_a_json_error_for_unknown_ids(emulator, stigg):
    """Guarantee 5: unknown path id → 404 with {code, message} (Inferred body)."""
    resp = emulator.call("GET", "/api/v1/customers/nobody-here")
    assert resp.status_code == 404
    assert resp.json()["code"] == "CustomerNotFound" and "nobody-here" in resp.json()["message"]
    with pytest.raises(stigg_sdk.NotFoundError):
        stigg.v1.customers.retrieve("nobody-here")
    assert emulator.call("GET", "/api/v1/no-such-endpoint").status_code == 404


def test_it_tells_the_sdk_not_to_retry_a_conflict(emulator, customers):
    """Guarantee 6 (Inferred): a 409 carries x-should-retry: false."""
    resp = emulator.call("POST", "/api/v1/customers", json={"id": customers[0]})
    assert resp.status_code == 409
    assert resp.headers["x-should-retry"] == "false"
    assert resp.json()["code"] == "DuplicatedEntityNotAllowed"


def test_it_throttles_with_429_and_retry_after(emulator):
    """Guarantee 7 (Inferred): rate limiting on → 429 with Retry-After in whole seconds ≤ 60."""
    emulator.faults(rateLimitPerSecond=3, retryAfterSeconds=2)
    try:
        statuses = [emulator.call("GET", "/api/v1/customers").status_code for _ in range(12)]
        throttled = [s for s in statuses if s == 429]
        assert throttled, statuses
        resp = next(r for r in (emulator.call("GET", "/api/v1/customers") for _ in range(12)) if r.status_code == 429)
        assert resp.headers["Retry-After"] == "2"
        assert resp.json()["code"] == "RateLimitExceeded"
    finally:
        emulator.clear_faults()
    assert emulator.call("GET", "/api/v1/customers").status_code == 200


def test_it_keeps_a_publishable_key_read_only(emulator, customers):
    """Conventions (Inferred): a client- key may read but a write → 403."""
    headers = {"X-API-KEY": CLIENT_KEY}
    assert httpx.get(f"{emulator.url}/api/v1/customers/{customers[0]}", headers=headers).status_code == 200
    resp = httpx.patch(f"{emulator.url}/api/v1/customers/{customers[0]}", headers=headers, json={"name": "x"})
    assert resp.status_code == 403


@pytest.mark.parametrize(
    "body, fragment",
    [
        (b"{not json", "Malformed JSON"),
        (b"[1, 2]", "JSON object"),
        (b'{"id": 42}', "id is required"),
        (b'{"id": "x-1", "email": 7}', "email must be a string"),
        (b'{"id": "x-1", "favouriteColour": "blue"}', "unknown field"),
        (b'{"id": "x-1", "metadata": {"a": 1}}', "metadata"),
        (b'{"id": "x-1", "billingCurrency": "US Dollar"}', "billingCurrency"),
    ],
)
def test_it_rejects_bad_customer_input_clearly_and_stores_nothing(emulator, body, fragment):
    """Bad input → 400 {code, message}; nothing stored."""
    before = emulator.call("GET", "/api/v1/customers", params={"limit": 100}).json()
    resp = emulator.call("POST", "/api/v1/customers", content=body, headers={"Content-Type": "application/json"})
    assert resp.status_code == 400, resp.text
    assert resp.json()["code"] == "BadUserInput" and fragment in resp.json()["message"]
    assert emulator.call("GET", "/api/v1/customers", params={"limit": 100}).json() == before


def test_it_replaces_metadata_on_patch_and_keeps_it_when_left_out(stigg, customers):
    """§2: a PATCH that sends metadata replaces the map; leaving it out keeps it; {} clears it."""
    cid = customers[1]
    stigg.v1.customers.update(cid, metadata={"tier": "gold", "region": "eu"})
    stigg.v1.customers.update(cid, metadata={"tier": "silver"})
    assert stigg.v1.customers.retrieve(cid).data.metadata == {"tier": "silver"}
    stigg.v1.customers.update(cid, name="Renamed")
    got = stigg.v1.customers.retrieve(cid).data
    assert got.metadata == {"tier": "silver"} and got.name == "Renamed"
    stigg.v1.customers.update(cid, metadata={})
    assert stigg.v1.customers.retrieve(cid).data.metadata == {}


def test_it_archives_and_unarchives_a_customer(stigg, customers):
    """§2: archive sets archivedAt; unarchive clears it."""
    cid = customers[2]
    assert stigg.v1.customers.archive(cid).data.archived_at is not None
    assert stigg.v1.customers.retrieve(cid).data.archived_at is not None
    assert stigg.v1.customers.unarchive(cid).data.archived_at is None


def test_it_filters_customers_by_email_name_and_creation_time(emulator, stigg, customers):
    """§2: email and name are exact filters; createdAt[gte] bounds the list."""
    assert [c.id for c in stigg.v1.customers.list(email="c5@example.com")] == ["cust-005"]
    assert [c.id for c in stigg.v1.customers.list(name="Customer 6")] == ["cust-006"]
    future = emulator.data("GET", "/api/v1/customers", params={"createdAt[gte]": "2999-01-01T00:00:00Z"})
    assert future == []
    assert emulator.call("GET", "/api/v1/customers", params={"createdAt[gte]": "yesterday"}).status_code == 400
