"""The Stigg client against the emulator over real HTTP, and its request-rate limiter in
a real Redis shared by threads and by separate OS processes."""
from __future__ import annotations

import http.server
import json
import multiprocessing
import threading
import time
from datetime import datetime, timedelta
from typing import Any, Iterator

import pytest
import redis

from dashboard.ratelimit import RequestRateLimiter
from dashboard.stigg import (
    Assignment,
    Customer,
    GovernanceNotEnabled,
    PromotionGrant,
    StiggClient,
    StiggRequestError,
    StiggUnavailable,
)

from . import emulator_world as w
from .servers import Emulator


@pytest.fixture
def client(emulator: Emulator) -> Iterator[StiggClient]:
    c = StiggClient(emulator.url, emulator.key, timeout=10, max_attempts=3)
    yield c
    c.close()


@pytest.fixture(autouse=True)
def no_faults(emulator: Emulator) -> Iterator[None]:
    emulator.clear_faults()
    yield
    emulator.clear_faults()


def stats(emu: Emulator) -> dict[str, Any]:
    return emu.data("GET", "/_emulator/stats")


def reset_stats(emu: Emulator) -> None:
    emu.call("DELETE", "/_emulator/stats")


@pytest.fixture(scope="module")
def world(emulator: Emulator) -> dict[str, Any]:
    emu = emulator
    seats = w.feature(emu, "NUMBER", metered=False, featureUnits="seat", featureUnitsPlural="seats")
    calls = w.feature(emu, "NUMBER", featureUnits="call", featureUnitsPlural="calls")
    sso = w.feature(emu, "BOOLEAN")
    tier = w.feature(emu, "ENUM")
    prod = w.product(emu)
    base = w.plan(emu, prod, [{"id": sso, "behavior": "Increment"},
                              {"id": calls, "usageLimit": 100, "resetPeriod": "MONTH", "behavior": "Increment"}])
    pro = w.plan(emu, prod, [{"id": seats, "usageLimit": 5},
                             {"id": tier, "enumValues": ["a", "b"]}], parentPlanId=base)
    extra = w.addon(emu, prod, [{"id": calls, "usageLimit": 50}])
    cust = w.customer(emu, name="Acme", email="ops@acme.test", metadata={"tier": "gold"})
    sub = w.subscribe(emu, cust, pro, addons=[{"id": extra, "quantity": 2}])
    w.report_usage(emu, cust, calls, 30)
    return {"seats": seats, "calls": calls, "sso": sso, "tier": tier, "product": prod, "base": base, "pro": pro,
            "extra": extra, "customer": cust, "subscription": sub}


# --- calls return typed values -----------------------------------------------------------


def test_it_iterates_customers_past_one_page(emulator: Emulator, client: StiggClient, world: dict[str, Any]) -> None:
    made = {w.customer(emulator) for _ in range(205)}
    reset_stats(emulator)
    customers = list(client.iter_customers())
    ids = [c.id for c in customers]
    assert made <= set(ids)
    assert len(ids) == len(set(ids))
    assert all(isinstance(c, Customer) and c.created_at.tzinfo for c in customers)
    # 100 per page: the 206+ customers take exactly ceil(n/100) requests.
    assert stats(emulator)["requests"] == -(-len(ids) // 100)


def test_it_gets_one_customer(client: StiggClient, world: dict[str, Any]) -> None:
    c = client.get_customer(world["customer"])
    assert (c.id, c.name, c.email, c.metadata, c.archived_at) == (world["customer"], "Acme", "ops@acme.test",
                                                                    {"tier": "gold"}, None)
    assert isinstance(c.created_at, datetime)


def test_it_lists_subscriptions_with_addons(client: StiggClient, world: dict[str, Any]) -> None:
    subs = list(client.iter_subscriptions(world["customer"]))
    assert len(subs) == 1
    s = subs[0]
    assert (s.customer_id, s.plan_id, s.status) == (world["customer"], world["pro"], "ACTIVE")
    assert [(a.addon_id, a.quantity) for a in s.addons] == [(world["extra"], 2)]
    assert s.current_billing_period_end is not None and s.current_billing_period_end > s.start_date
    assert world["customer"] in {s.customer_id for s in client.iter_subscriptions()}


def test_it_lists_features_of_every_shape(client: StiggClient, world: dict[str, Any]) -> None:
    features = {f.id: f for f in client.iter_features()}
    seats, calls, sso, tier = (features[world[k]] for k in ("seats", "calls", "sso", "tier"))
    assert (seats.feature_type, seats.metered, seats.units, seats.units_plural) == ("NUMBER", False, "seat", "seats")
    assert (calls.feature_type, calls.meter_type, calls.metered) == ("NUMBER", "INCREMENTAL", True)
    assert (sso.feature_type, sso.metered) == ("BOOLEAN", False)
    assert tier.feature_type == "ENUM"
    assert [(o.value, o.display_name) for o in tier.enum_options] == [("a", "A"), ("b", "B"), ("c", "C")]


def test_it_lists_plans_and_addons_with_entitlements(client: StiggClient, world: dict[str, Any]) -> None:
    packages = {p.id: p for p in client.iter_packages()}
    pro, base, extra = packages[world["pro"]], packages[world["base"]], packages[world["extra"]]
    assert (pro.kind, pro.parent_plan_id, pro.product_id, pro.status) == ("plan", world["base"], world["product"],
                                                                          "PUBLISHED")
    assert (extra.kind, extra.parent_plan_id) == ("addon", None)
    pro_ents = {e.feature_id: e for e in pro.entitlements}
    assert pro_ents[world["seats"]].usage_limit == 5
    assert pro_ents[world["tier"]].enum_values == ("a", "b")
    base_ents = {e.feature_id: e for e in base.entitlements}
    assert base_ents[world["calls"]].reset_period == "MONTH" and base_ents[world["calls"]].usage_limit == 100
    assert base_ents[world["sso"]].is_granted is True
    assert [(e.feature_id, e.usage_limit) for e in extra.entitlements] == [(world["calls"], 50)]


def test_it_reads_effective_entitlements_with_usage_and_periods(client: StiggClient, world: dict[str, Any]) -> None:
    result = client.customer_entitlements(world["customer"])
    assert result.access_denied_reason is None
    ents = {e.feature_id: e for e in result.entitlements}
    calls = ents[world["calls"]]
    # plan 100 + add-on 50 x 2
    assert (calls.is_granted, calls.current_usage, calls.usage_limit, calls.reset_period) == (True, 30, 200, "MONTH")
    assert calls.usage_period_start is not None and calls.usage_period_end is not None
    assert calls.usage_period_start < calls.usage_period_end
    assert ents[world["sso"]].is_granted and ents[world["sso"]].feature_type == "BOOLEAN"
    assert ents[world["seats"]].usage_limit == 5


def test_it_reports_why_a_customer_without_subscription_has_nothing(emulator: Emulator, client: StiggClient) -> None:
    result = client.customer_entitlements(w.customer(emulator))
    assert (result.access_denied_reason, result.entitlements) == ("NoActiveSubscription", ())


def test_it_grants_lists_expires_and_revokes_promotions(emulator: Emulator, client: StiggClient,
                                                        world: dict[str, Any]) -> None:
    cust = w.customer(emulator)
    w.subscribe(emulator, cust, world["pro"])
    granted = client.grant_promotions(cust, [
        PromotionGrant(feature_id=world["calls"], period="1 week", usage_limit=1000),
        PromotionGrant(feature_id=world["tier"], period="lifetime", enum_values=("c",)),
    ])
    by_feature = {p.feature_id: p for p in granted}
    week = by_feature[world["calls"]]
    assert (week.status, week.period, week.usage_limit) == ("Active", "1 week", 1000)
    assert week.end_date is not None and week.end_date - week.start_date == timedelta(days=7)
    assert by_feature[world["tier"]].enum_values == ("c",) and by_feature[world["tier"]].end_date is None
    ents = {e.feature_id: e for e in client.customer_entitlements(cust).entitlements}
    assert ents[world["calls"]].usage_limit == 1000

    emulator.advance_clock(8 * 86400)  # the emulator's clock only moves forward
    statuses = {p.feature_id: p.status for p in client.iter_promotions(cust)}
    assert statuses == {world["calls"]: "Expired", world["tier"]: "Active"}
    assert [p.feature_id for p in client.iter_promotions(cust, statuses=("Expired",))] == [world["calls"]]

    revoked = client.revoke_promotion(cust, world["tier"])
    assert revoked.feature_id == world["tier"]
    assert world["tier"] not in {p.feature_id for p in client.iter_promotions(cust)}


def test_it_sends_every_grant_key_with_custom_end_date(emulator: Emulator, client: StiggClient,
                                                       world: dict[str, Any]) -> None:
    cust = w.customer(emulator)
    end = datetime.fromisoformat(w.now(emulator)) + timedelta(days=3)
    [promo] = client.grant_promotions(cust, [PromotionGrant(feature_id=world["seats"], period="custom",
                                                            custom_end_date=end, has_unlimited_usage=True)])
    assert promo.has_unlimited_usage and promo.end_date is not None
    assert abs((promo.end_date - end).total_seconds()) < 1


def test_it_reads_usage_history(emulator: Emulator, client: StiggClient, world: dict[str, Any]) -> None:
    cust = w.customer(emulator)
    w.subscribe(emulator, cust, world["pro"])
    w.report_usage(emulator, cust, world["calls"], 7)
    start = datetime.fromisoformat(w.now(emulator)) - timedelta(days=2)
    history = client.usage_history(cust, world["calls"], start)
    assert len(history.series) == 1 and history.series[0].tags == ()
    points = history.series[0].points
    assert points and points[-1].value == 7
    assert all(p.timestamp.tzinfo for p in points)


def test_it_raises_a_request_error_without_retrying(emulator: Emulator, client: StiggClient) -> None:
    reset_stats(emulator)
    with pytest.raises(StiggRequestError) as caught:
        client.get_customer("no-such-customer")
    assert caught.value.status == 404 and caught.value.code == "CustomerNotFound"
    with pytest.raises(StiggRequestError) as caught:
        client.revoke_promotion(w.customer(emulator), "no-such-feature")
    assert caught.value.status == 404
    # two calls, one attempt each (the harness creating the customer is not counted)
    assert stats(emulator)["requests"] == 2


# --- governance ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def governed(emulator: Emulator, world: dict[str, Any]) -> dict[str, Any]:
    emu = emulator
    etype = w.uid("team")
    emu.data("PUT", "/api/v1-beta/entity-types",
             json={"types": [{"id": etype, "displayName": "Team", "attributionKeys": ["teamId"]}]})
    cust = w.customer(emu)
    w.subscribe(emu, cust, world["pro"])
    entities = [{"id": f"e{i:03d}", "entityTypeId": etype, "displayName": f"Team {i}"} for i in range(120)]
    for chunk in (entities[:100], entities[100:]):
        emu.data("PUT", f"/api/v1-beta/customers/{cust}/entities", json={"entities": chunk})
    assignments = [{"entityId": "e000", "featureId": world["calls"], "usageLimit": 1000, "cadence": "P1M"}] + [
        {"entityId": e["id"], "featureId": world["calls"], "usageLimit": 100, "cadence": "P1M", "parentId": "e000"}
        for e in entities[1:]
    ]
    for i in range(0, len(assignments), 100):
        emu.data("PUT", f"/api/v1-beta/customers/{cust}/assignments", json={"assignments": assignments[i:i + 100]})
    w.report_usage(emu, cust, world["calls"], 90, dimensions={"teamId": "e005"})
    w.report_usage(emu, cust, world["calls"], 40, dimensions={"teamId": "e007"})
    return {"customer": cust, "type": etype}


def test_it_pages_through_the_governance_tree(emulator: Emulator, client: StiggClient, world: dict[str, Any],
                                              governed: dict[str, Any]) -> None:
    reset_stats(emulator)
    nodes = list(client.iter_governance(governed["customer"], feature_ids=(world["calls"],)))
    assert stats(emulator)["requests"] == 2  # 120 rows, 100 a page
    assert len(nodes) == 120 and len({n.entity_id for n in nodes}) == 120
    top = nodes[0]
    assert (top.entity_id, top.utilization, top.current_usage, top.usage_limit, top.parent_id) == (
        "e005", 0.9, 90, 100, "e000")
    assert (top.feature_id, top.cadence, top.entity_type_id, top.display_name) == (
        world["calls"], "P1M", governed["type"], "Team 5")
    assert top.usage_period_start is not None and top.usage_period_end is not None
    root = next(n for n in nodes if n.entity_id == "e000")
    assert root.current_usage == 130 and root.parent_id is None

    hot = list(client.iter_governance(governed["customer"], feature_ids=[world["calls"]], min_utilization=0.4))
    assert [n.entity_id for n in hot] == ["e005", "e007"]
    by_usage = list(client.iter_governance(governed["customer"], feature_ids=[world["calls"]],
                                           sort_by="currentUsage", order="desc"))
    assert by_usage[0].entity_id == "e000"
    tree = list(client.iter_governance(governed["customer"]))
    assert len(tree) == 120 and all(n.usage_limit is None and n.cadence is None for n in tree)


def test_it_lists_and_upserts_assignments(emulator: Emulator, client: StiggClient, world: dict[str, Any],
                                          governed: dict[str, Any]) -> None:
    cust = governed["customer"]
    assignments = list(client.iter_assignments(cust))
    assert len(assignments) == 120 and all(isinstance(a, Assignment) for a in assignments)
    before = next(a for a in assignments if a.entity_id == "e005")
    assert (before.usage_limit, before.cadence, before.parent_id, before.scope_entity_ids) == (100, "P1M", "e000", ())

    raised = client.upsert_assignment(cust, "e005", world["calls"], 250)
    # same natural key: same record, cadence kept because it was left out
    assert (raised.id, raised.usage_limit, raised.cadence) == (before.id, 250, "P1M")
    weekly = client.upsert_assignment(cust, "e005", world["calls"], 250, cadence="P1W")
    assert (weekly.id, weekly.cadence) == (before.id, "P1W")
    unlimited = client.upsert_assignment(cust, "e005", world["calls"], None)
    assert unlimited.usage_limit is None
    node = next(n for n in client.iter_governance(cust, feature_ids=[world["calls"]]) if n.entity_id == "e005")
    assert node.usage_limit is None and node.utilization is None


def test_it_raises_governance_not_enabled(emulator: Emulator, client: StiggClient, governed: dict[str, Any]) -> None:
    emulator.data("PUT", "/_emulator/settings", json={"governanceEnabled": False})
    try:
        reset_stats(emulator)
        with pytest.raises(GovernanceNotEnabled) as caught:
            list(client.iter_governance(governed["customer"]))
        assert isinstance(caught.value, StiggRequestError) and caught.value.status == 403
        with pytest.raises(GovernanceNotEnabled):
            list(client.iter_assignments(governed["customer"]))
        assert stats(emulator)["requests"] == 2  # not retried
    finally:
        emulator.data("PUT", "/_emulator/settings", json={"governanceEnabled": True})


# --- failures and retries -------------------------------------------------------------------


def test_it_raises_unavailable_after_max_attempts_on_outage(emulator: Emulator, world: dict[str, Any]) -> None:
    emulator.faults(outage=True)
    reset_stats(emulator)
    with StiggClient(emulator.url, emulator.key, timeout=5, max_attempts=3) as c:
        with pytest.raises(StiggUnavailable) as caught:
            c.get_customer(world["customer"])
    assert caught.value.status == 503
    emulator.clear_faults()
    assert stats(emulator)["errors"] == 3  # the emulator counts outage answers as errors


def test_it_retries_server_errors_until_one_succeeds(emulator: Emulator, world: dict[str, Any]) -> None:
    emulator.faults(errorRate=0.3)
    reset_stats(emulator)
    calls = 0
    with StiggClient(emulator.url, emulator.key, timeout=5, max_attempts=8) as c:
        # until Stigg has failed at least once, and every call still answered
        while calls < 5 or (stats(emulator)["errors"] == 0 and calls < 40):
            assert c.get_customer(world["customer"]).id == world["customer"]
            calls += 1
    seen = stats(emulator)
    assert seen["errors"] > 0 and seen["requests"] == calls + seen["errors"]


def test_it_raises_unavailable_when_stigg_is_unreachable() -> None:
    from .servers import free_port

    with StiggClient(f"http://127.0.0.1:{free_port()}", "server-x", timeout=1, max_attempts=2) as c:
        with pytest.raises(StiggUnavailable, match="could not reach Stigg"):
            c.get_customer("anyone")


def test_it_raises_unavailable_on_timeout(emulator: Emulator, world: dict[str, Any]) -> None:
    emulator.faults(latencyMs=1500)
    with StiggClient(emulator.url, emulator.key, timeout=0.3, max_attempts=1) as c:
        with pytest.raises(StiggUnavailable, match="timed out"):
            c.get_customer(world["customer"])


def test_it_honours_retry_after_on_429(emulator: Emulator, world: dict[str, Any]) -> None:
    emulator.faults(rateLimitPerSecond=1, retryAfterSeconds=2)
    with StiggClient(emulator.url, emulator.key, timeout=5, max_attempts=1) as c:
        # one request a second: within five calls one is throttled, with the hint
        with pytest.raises(StiggUnavailable) as caught:
            for _ in range(5):
                c.get_customer(world["customer"])
    assert (caught.value.status, caught.value.retry_after) == (429, 2.0)

    time.sleep(1.1)
    reset_stats(emulator)
    with StiggClient(emulator.url, emulator.key, timeout=5, max_attempts=3) as c:
        c.get_customer(world["customer"])
        assert c.get_customer(world["customer"]).id == world["customer"]  # throttled once, then waited 2 s
    seen = stats(emulator)
    assert seen["throttled"] >= 1
    # after a 429 the retry came Retry-After (2 s) later, not in the next second
    busy = [s["second"] for s in seen["perSecond"] if s["requests"]]
    assert max(busy) - min(busy) >= 2


def test_it_rides_out_a_429_storm_within_its_rate_limit(emulator: Emulator, redis_server: Any,
                                                        world: dict[str, Any]) -> None:
    emulator.faults(rateLimitPerSecond=3, retryAfterSeconds=1)
    limiter = RequestRateLimiter(redis.Redis.from_url(redis_server.url), max_rps=10, key=w.uid("budget"))
    reset_stats(emulator)
    errors: list[BaseException] = []
    with StiggClient(emulator.url, emulator.key, timeout=5, max_attempts=10, rate_limiter=limiter) as c:
        def work() -> None:
            try:
                for _ in range(3):
                    assert c.get_customer(world["customer"]).id == world["customer"]
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

        threads = [threading.Thread(target=work) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert errors == []
    seen = stats(emulator)
    assert seen["throttled"] > 0  # there really was a storm
    assert seen["maxPerSecond"] <= 10


# --- malformed answers ------------------------------------------------------------------------


class _Garbage(http.server.BaseHTTPRequestHandler):
    """Answers each path with a fixed (status, body[, headers]) and counts the hits."""

    answers: dict[str, tuple[Any, ...]] = {}
    hits: dict[str, int] = {}

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        path = self.path.split("?")[0]
        self.hits[path] = self.hits.get(path, 0) + 1
        status, body, *rest = self.answers.get(path, (404, b"<html>nope</html>"))
        self.send_response(status)
        for name, value in (rest[0] if rest else {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: Any) -> None:
        pass


@pytest.fixture
def garbage_server() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Garbage)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _customer_doc(**overrides: Any) -> dict[str, Any]:
    doc = {"id": "c1", "name": None, "email": None, "createdAt": "2026-01-01T00:00:00.000Z",
           "updatedAt": "2026-01-01T00:00:00.000Z", "archivedAt": None, "metadata": {}}
    return {**doc, **overrides}


@pytest.mark.parametrize("body", [
    b"{not json",
    b"[1, 2]",
    json.dumps({"customer": _customer_doc()}).encode(),  # no envelope
    json.dumps({"data": "c1"}).encode(),
    json.dumps({"data": {k: v for k, v in _customer_doc().items() if k != "createdAt"}}).encode(),
    json.dumps({"data": _customer_doc(createdAt="yesterday")}).encode(),
    json.dumps({"data": _customer_doc(id=7)}).encode(),
    json.dumps({"data": _customer_doc(metadata=["x"])}).encode(),
])
def test_it_rejects_a_malformed_answer(garbage_server: str, body: bytes) -> None:
    _Garbage.answers = {"/api/v1/customers/c1": (200, body)}
    with StiggClient(garbage_server, "server-x", timeout=5) as c:
        with pytest.raises(StiggRequestError, match="malformed answer from Stigg"):
            c.get_customer("c1")


def test_it_rejects_malformed_list_items_and_pages(garbage_server: str) -> None:
    good = _customer_doc()
    _Garbage.answers = {"/api/v1/customers": (200, json.dumps(
        {"data": [good, {**good, "updatedAt": 5}], "pagination": {"next": None}}).encode())}
    with StiggClient(garbage_server, "server-x", timeout=5) as c:
        with pytest.raises(StiggRequestError, match="malformed answer from Stigg"):
            list(c.iter_customers())
        _Garbage.answers = {"/api/v1/customers": (200, json.dumps({"data": [good], "pagination": "x"}).encode())}
        with pytest.raises(StiggRequestError, match="malformed answer from Stigg"):
            list(c.iter_customers())
        _Garbage.answers = {"/api/v1/customers": (200, json.dumps(
            {"data": [good], "pagination": {"next": "same"}}).encode())}
        with pytest.raises(StiggRequestError, match="cursor repeats"):
            list(c.iter_customers())
        _Garbage.answers = {"/api/v1-beta/customers/c1/governance": (200, json.dumps(
            {"data": [{"entityId": "e", "entityTypeId": "t", "utilization": "high"}], "pagination": {}}).encode())}
        with pytest.raises(StiggRequestError, match="malformed answer from Stigg"):
            list(c.iter_governance("c1"))


def test_it_copes_with_non_json_error_bodies(garbage_server: str) -> None:
    _Garbage.answers = {"/api/v1/customers/c1": (502, b"<html>Bad gateway</html>"),
                        "/api/v1/customers/c2": (400, b"plain text")}
    with StiggClient(garbage_server, "server-x", timeout=5, max_attempts=1) as c:
        with pytest.raises(StiggUnavailable, match="Bad gateway"):
            c.get_customer("c1")
        with pytest.raises(StiggRequestError, match="plain text"):
            c.get_customer("c2")


def test_it_follows_retry_hints_and_x_should_retry(garbage_server: str) -> None:
    _Garbage.hits = {}
    _Garbage.answers = {
        "/api/v1/customers/ms": (503, b"{}", {"retry-after-ms": "1500"}),
        "/api/v1/customers/long": (429, b"{}", {"retry-after": "120"}),
        "/api/v1/customers/date": (429, b"{}", {"retry-after": "Thu, 01 Jan 2099 00:00:00 GMT"}),
        "/api/v1/customers/stop": (500, b'{"code":"InternalServerError","message":"cannot move"}',
                                   {"x-should-retry": "false"}),
        "/api/v1/customers/dup": (409, b'{"code":"DuplicatedEntityNotAllowed","message":"dup"}',
                                  {"x-should-retry": "false"}),
        "/api/v1/customers/bad": (400, b'{"code":"BadUserInput","message":"no"}'),
    }
    with StiggClient(garbage_server, "server-x", timeout=5, max_attempts=1) as c:
        with pytest.raises(StiggUnavailable) as caught:
            c.get_customer("ms")
        assert caught.value.retry_after == 1.5
        for over_a_minute in ("long", "date"):  # ignored: the backoff schedule applies
            with pytest.raises(StiggUnavailable) as caught:
                c.get_customer(over_a_minute)
            assert caught.value.retry_after is None
    with StiggClient(garbage_server, "server-x", timeout=5, max_attempts=3) as c:
        for told_not_to in ("stop", "dup", "bad"):
            with pytest.raises(StiggRequestError) as refused:
                c.get_customer(told_not_to)
            assert refused.value.status in (500, 409, 400)
    assert [_Garbage.hits[f"/api/v1/customers/{p}"] for p in ("stop", "dup", "bad")] == [1, 1, 1]


def test_it_rejects_the_emulators_malformed_customer(emulator: Emulator, client: StiggClient,
                                                     world: dict[str, Any]) -> None:
    for mode in ("truncated", "shape"):
        emulator.faults(malformedCustomerIds=[world["customer"]], malformedMode=mode)
        with pytest.raises(StiggRequestError, match="malformed answer from Stigg"):
            client.customer_entitlements(world["customer"])
    emulator.clear_faults()


# --- the shared request-rate limiter -------------------------------------------------------------


def _hammer(url: str, key: str, redis_url: str, limiter_key: str, customer_id: str, seconds: float) -> int:
    limiter = RequestRateLimiter(redis.Redis.from_url(redis_url), max_rps=10, key=limiter_key)
    done = 0
    with StiggClient(url, key, timeout=5, rate_limiter=limiter, rate_limit_wait=30) as c:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            c.get_customer(customer_id)
            done += 1
    return done


def _per_second_max(emu: Emulator) -> int:
    per_second = stats(emu)["perSecond"]
    return max((s["requests"] for s in per_second), default=0)


def test_it_keeps_four_threads_within_the_rate_limit(emulator: Emulator, redis_server: Any,
                                                     world: dict[str, Any]) -> None:
    key = w.uid("budget")
    reset_stats(emulator)
    results: list[int] = []
    threads = [threading.Thread(target=lambda: results.append(
        _hammer(emulator.url, emulator.key, redis_server.url, key, world["customer"], 3.0))) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 4 and sum(results) >= 20  # they really did hammer
    assert stats(emulator)["requests"] == sum(results)
    assert _per_second_max(emulator) <= 10


def test_it_keeps_separate_processes_within_the_rate_limit(emulator: Emulator, redis_server: Any,
                                                           world: dict[str, Any]) -> None:
    key = w.uid("budget")
    reset_stats(emulator)
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(2) as pool:
        results = pool.starmap(_hammer, [(emulator.url, emulator.key, redis_server.url, key, world["customer"], 3.0)]
                               * 2)
    assert sum(results) >= 20 and all(results)
    assert stats(emulator)["requests"] == sum(results)
    assert _per_second_max(emulator) <= 10


def test_it_refuses_a_slot_beyond_max_wait_without_reserving(redis_server: Any) -> None:
    limiter = RequestRateLimiter(redis.Redis.from_url(redis_server.url), max_rps=1, key=w.uid("budget"))
    limiter.acquire(0)  # the first slot is free now
    with pytest.raises(StiggUnavailable, match="request budget exhausted") as caught:
        limiter.acquire(0.1)
    assert caught.value.retry_after is not None and 0.5 < caught.value.retry_after <= 1.06
    # the refusal reserved nothing: the next slot is still about one interval away
    with pytest.raises(StiggUnavailable) as again:
        limiter.acquire(0.1)
    assert again.value.retry_after is not None and again.value.retry_after <= caught.value.retry_after


def test_it_fails_closed_when_redis_is_unreachable() -> None:
    from .servers import free_port

    limiter = RequestRateLimiter(redis.Redis.from_url(f"redis://127.0.0.1:{free_port()}/0", socket_connect_timeout=0.5),
                                 max_rps=10)
    with pytest.raises(StiggUnavailable, match="request budget unavailable"):
        limiter.acquire(1)


def test_it_holds_the_hot_tier_to_its_share_and_leaves_the_rest(emulator: Emulator, redis_server: Any,
                                                                 world: dict[str, Any], settings: Any) -> None:
    """The hot tier's polls take at most SYNC_HOT_BUDGET_SHARE of STIGG_MAX_RPS; a refresh
    somebody waits for, on the full rate, gets the rest, and together they keep it."""
    settings.STIGG_MAX_RPS, settings.SYNC_HOT_RATE_SHARE = 10, 0.3
    reset_stats(emulator)
    counts: dict[str, int] = {}

    def hammer(name: str, limiter: Any) -> None:
        done = 0
        with StiggClient(emulator.url, emulator.key, timeout=5, rate_limiter=limiter, rate_limit_wait=30) as c:
            deadline = time.monotonic() + 3.0
            while time.monotonic() < deadline:
                c.get_customer(world["customer"])
                done += 1
        counts[name] = done

    threads = [threading.Thread(target=hammer, args=("hot", RequestRateLimiter.for_hot_tier())),
               threading.Thread(target=hammer, args=("waited-for", RequestRateLimiter.from_settings()))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert counts["hot"] <= 3 * 3 + 2  # 3 req/s for 3 s, and the request in flight at the end
    assert counts["waited-for"] >= 2 * counts["hot"]  # the other 70 % stayed free for it
    assert stats(emulator)["requests"] == sum(counts.values())
    assert _per_second_max(emulator) <= 10
