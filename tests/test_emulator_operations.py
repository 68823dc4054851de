"""The emulator as a service: persistence across restarts, fault injection switched at
run time, webhooks with retries, control endpoints."""
from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from .servers import Emulator, free_port


def wait_for(predicate, timeout=10.0, interval=0.05):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError("condition not met in time")


class Receiver:
    """A webhook target: records every POST; fails the first ``fail_first`` of them."""

    def __init__(self, fail_first: int = 0):
        self.received: list[dict] = []
        self.fail_first = fail_first
        self.calls = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                receiver.calls += 1
                if receiver.calls <= receiver.fail_first:
                    self.send_response(500)
                    self.end_headers()
                    return
                receiver.received.append({"headers": dict(self.headers), "body": json.loads(body)})
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/webhooks/stigg"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def test_it_keeps_its_state_across_a_restart(emulator):
    emulator.data("POST", "/api/v1/customers", json={"id": "durable", "name": "Durable Inc"})
    emulator.restart()
    assert emulator.data("GET", "/api/v1/customers/durable")["name"] == "Durable Inc"


def test_it_simulates_an_outage_and_recovers_without_a_restart(emulator):
    emulator.faults(outage=True)
    resp = emulator.call("GET", "/api/v1/customers")
    assert resp.status_code == 503 and resp.json()["code"] == "ServiceUnavailable"
    assert emulator.call("GET", "/_emulator/state").status_code == 200  # control is never faulted
    emulator.clear_faults()
    assert emulator.call("GET", "/api/v1/customers").status_code == 200


def test_it_fails_a_share_of_requests_when_asked(emulator):
    emulator.faults(errorRate=0.5)
    try:
        statuses = [emulator.call("GET", "/api/v1/customers").status_code for _ in range(60)]
    finally:
        emulator.clear_faults()
    errors = [s for s in statuses if s >= 500]
    assert 10 <= len(errors) <= 50, statuses  # ~30 expected; bounds are ~5 sigma wide
    assert set(errors) <= {500, 502, 503}
    assert all(s == 200 for s in statuses if s < 500)


def test_it_adds_latency_when_asked(emulator):
    emulator.faults(latencyMs=250)
    try:
        started = time.monotonic()
        assert emulator.call("GET", "/api/v1/customers").status_code == 200
        elapsed = time.monotonic() - started
    finally:
        emulator.clear_faults()
    # Not a speed assertion: the fault must have delayed the answer at least this long.
    assert elapsed >= 0.25


def test_it_counts_the_requests_it_saw_but_not_the_harness(emulator):
    import httpx

    emulator.data("DELETE", "/_emulator/stats")
    for _ in range(7):
        httpx.get(f"{emulator.url}/api/v1/customers", headers={"X-API-KEY": emulator.key})
    for _ in range(3):
        emulator.call("GET", "/api/v1/customers")  # marked X-Emulator-Uncounted by the harness
    stats = emulator.data("GET", "/_emulator/stats")
    assert stats["requests"] == 7 and stats["maxPerSecond"] >= 1


@pytest.mark.parametrize(
    "path, body",
    [
        ("/_emulator/faults", {"errorRate": 2}),
        ("/_emulator/faults", {"retryAfterSeconds": 120}),
        ("/_emulator/faults", {"outage": "yes"}),
        ("/_emulator/faults", {"explode": True}),
        ("/_emulator/webhook", {"url": "ftp://x"}),
        ("/_emulator/settings", {"governanceEnabled": "no"}),
    ],
)
def test_it_rejects_bad_control_input(emulator, path, body):
    resp = emulator.call("PUT", path, json=body)
    assert resp.status_code == 400 and resp.json()["code"] == "BadUserInput"
    state = emulator.data("GET", "/_emulator/state")
    assert state["faults"]["outage"] is False and state["faults"]["errorRate"] == 0


def test_it_moves_its_clock_forward(emulator):
    before = emulator.data("GET", "/_emulator/state")["now"]
    emulator.advance_clock(86400 * 3)
    after = emulator.data("GET", "/_emulator/state")["now"]
    assert after[:10] > before[:10]
    assert emulator.call("POST", "/_emulator/clock", json={"advanceSeconds": -5}).status_code == 400
    # the clock may be set into the past (a world whose windows began earlier), up to a year
    state = emulator.data("POST", "/_emulator/clock", json={"offsetSeconds": -86400})
    assert state["clockOffsetSeconds"] == -86400
    assert emulator.call("POST", "/_emulator/clock", json={"offsetSeconds": -400 * 86400}).status_code == 400
    emulator.data("POST", "/_emulator/clock", json={"offsetSeconds": 0})


def test_it_delivers_webhooks_with_the_secret_and_retries_failures():
    receiver = Receiver(fail_first=2)
    emu = Emulator()
    try:
        emu.data("PUT", "/_emulator/webhook", json={"url": receiver.url, "secret": "s3cret", "retryDelaySeconds": 0.2})
        emu.data("POST", "/api/v1/customers", json={"id": "hooked", "name": "Hooked"})
        emu.data("PATCH", "/api/v1/customers/hooked", json={"name": "Hooked Again"})
        got = wait_for(lambda: len(receiver.received) >= 2 and receiver.received)
        types = [m["body"]["type"] for m in got]
        assert sorted(types) == ["customer.created", "customer.updated"]
        for message in got:
            assert message["headers"]["Stigg-Webhooks-Secret"] == "s3cret"
            assert set(message["body"]) == {"messageId", "type", "createdAt", "data"}
            assert message["body"]["data"]["customerId"] == "hooked"
        assert receiver.calls == 4  # two failures retried, then both delivered
        outbox = emu.data("GET", "/_emulator/webhooks")
        assert all(m["delivered"] for m in outbox)
    finally:
        emu.stop()
        receiver.close()


def test_it_gives_up_on_a_target_that_never_answers():
    receiver = Receiver(fail_first=10_000)
    emu = Emulator()
    try:
        emu.data("PUT", "/_emulator/webhook", json={"url": receiver.url, "secret": "x", "retryDelaySeconds": 0.1})
        emu.data("POST", "/api/v1/customers", json={"id": "unlucky"})
        wait_for(lambda: emu.data("GET", "/_emulator/webhooks")[0]["attempts"] == 7)
        time.sleep(0.5)
        assert receiver.calls == 7  # 1 try + 3 immediate retries + 3 delayed retries
        assert emu.data("GET", "/_emulator/webhooks")[0]["lastError"] == "HTTP 500"
    finally:
        emu.stop()
        receiver.close()


@pytest.mark.parametrize("mode", ["truncated", "shape"])
def test_it_breaks_answers_about_chosen_customers_only(emulator, mode):
    for cid in ("broken-one", "healthy-one"):
        emulator.call("POST", "/api/v1/customers", json={"id": cid})
    emulator.faults(malformedCustomerIds=["broken-one"], malformedMode=mode)
    try:
        broken = emulator.call("GET", "/api/v1/customers/broken-one/entitlements")
        assert broken.status_code == 200
        if mode == "truncated":
            with pytest.raises(ValueError):
                broken.json()
        else:
            assert broken.json()["data"]["entitlements"] == "not-a-list"
        healthy = emulator.call("GET", "/api/v1/customers/healthy-one/entitlements")
        assert healthy.json()["data"]["entitlements"] == []
    finally:
        emulator.clear_faults()
    assert emulator.call("GET", "/api/v1/customers/broken-one/entitlements").json()["data"]["entitlements"] == []


def test_it_fails_requests_about_chosen_customers_only(emulator):
    for cid in ("failing-one", "fine-one"):
        emulator.call("POST", "/api/v1/customers", json={"id": cid})
    emulator.faults(failingCustomerIds=["failing-one"])
    try:
        failing = emulator.call("POST", "/api/v1/customers/failing-one/promotional-entitlements",
                                json={"promotionalEntitlements": []})
        assert failing.status_code == 503 and failing.json()["code"] == "ServiceUnavailable"
        assert emulator.call("GET", "/api/v1/customers/fine-one/entitlements").status_code == 200
        assert emulator.call("PUT", "/_emulator/faults", json={"failingCustomerIds": "failing-one"}).status_code == 400
    finally:
        emulator.clear_faults()
    assert emulator.call("GET", "/api/v1/customers/failing-one/entitlements").status_code == 200
