"""Emulator-only control endpoints under /_emulator/: faults, clock, governance switch,
webhook target, request statistics. Real Stigg has none of these; they take the same
X-API-KEY and are never subject to injected faults."""
from __future__ import annotations

from typing import Any

from .. import clock, stats, store
from ..http import Request, Response, bad_input, check_keys, ok, opt_bool, opt_enum, opt_number, opt_str, route

FAULT_KEYS = {"latencyMs", "errorRate", "rateLimitPerSecond", "retryAfterSeconds", "outage", "malformedCustomerIds",
              "malformedMode", "failingCustomerIds"}


def _public_state(state: dict[str, Any]) -> dict[str, Any]:
    out = dict(state)
    out["webhook"] = dict(state["webhook"], secret="***" if state["webhook"].get("secret") else None)
    out["now"] = clock.iso(clock.now())
    return out


@route("GET", "/_emulator/state")
def get_state(req: Request) -> Response:
    return ok(_public_state(store.get_control()))


@route("PUT", "/_emulator/faults")
def put_faults(req: Request) -> Response:
    """Switch faults at run time: {latencyMs, errorRate (0..1), rateLimitPerSecond
    (0 = off), retryAfterSeconds (1..60), outage, malformedCustomerIds + malformedMode,
    failingCustomerIds (every request about these customers answers 503)}. Keys left out
    are unchanged."""
    body = req.json()
    where = "faults"
    check_keys(body, FAULT_KEYS, where)
    opt_number(body, "latencyMs", where, minimum=0)
    rate = opt_number(body, "errorRate", where, minimum=0)
    if rate is not None and rate > 1:
        raise bad_input("faults: errorRate must be between 0 and 1")
    opt_number(body, "rateLimitPerSecond", where, minimum=0)
    retry = opt_number(body, "retryAfterSeconds", where, minimum=1)
    if retry is not None and retry > 60:
        raise bad_input("faults: retryAfterSeconds must be at most 60")
    opt_bool(body, "outage", where)
    for key in ("malformedCustomerIds", "failingCustomerIds"):
        ids = body.get(key)
        if ids is not None and (not isinstance(ids, list) or not all(isinstance(i, str) for i in ids)):
            raise bad_input(f"faults: {key} must be an array of customer ids")
    opt_enum(body, "malformedMode", ("truncated", "shape"), where)
    return ok(_public_state(store.set_control({"faults": body})))


@route("DELETE", "/_emulator/faults")
def clear_faults(req: Request) -> Response:
    state = store.set_control({"faults": dict(store.DEFAULT_CONTROL["faults"])})
    return ok(_public_state(state))


@route("PUT", "/_emulator/settings")
def put_settings(req: Request) -> Response:
    """{governanceEnabled, eventAggregationDelaySeconds, governanceLagSeconds}."""
    body = req.json()
    where = "settings"
    check_keys(body, {"governanceEnabled", "eventAggregationDelaySeconds", "governanceLagSeconds"}, where)
    opt_bool(body, "governanceEnabled", where)
    opt_number(body, "eventAggregationDelaySeconds", where, minimum=0)
    opt_number(body, "governanceLagSeconds", where, minimum=0)
    return ok(_public_state(store.set_control(body)))


@route("PUT", "/_emulator/webhook")
def put_webhook(req: Request) -> Response:
    """{url, secret, retryDelaySeconds}: where Stigg-style events are POSTed. url null = off."""
    body = req.json()
    where = "webhook"
    check_keys(body, {"url", "secret", "retryDelaySeconds"}, where)
    url = opt_str(body, "url", where)
    if url is not None and not url.startswith(("http://", "https://")):
        raise bad_input("webhook: url must start with http:// or https://")
    opt_str(body, "secret", where)
    opt_number(body, "retryDelaySeconds", where, minimum=0)
    return ok(_public_state(store.set_control({"webhook": body})))


MAX_PAST_SECONDS = 366 * 86400


@route("POST", "/_emulator/clock")
def move_clock(req: Request) -> Response:
    """{advanceSeconds} moves the emulator's clock forward, {offsetSeconds} sets its offset
    from real time: up to a year into the past too, so a test or a demo can create what it
    needs "earlier" (a budget whose window began ten days ago) and come back to now."""
    body = req.json()
    where = "clock"
    check_keys(body, {"advanceSeconds", "offsetSeconds"}, where)
    advance = opt_number(body, "advanceSeconds", where, minimum=0)
    offset = opt_number(body, "offsetSeconds", where, minimum=-MAX_PAST_SECONDS)
    if (advance is None) == (offset is None):
        raise bad_input("clock: send exactly one of advanceSeconds or offsetSeconds")
    current = float(store.get_control()["clockOffsetSeconds"])
    state = store.set_control({"clockOffsetSeconds": offset if offset is not None else current + advance})
    clock.set_request_offset(state["clockOffsetSeconds"])
    return ok(_public_state(state))


@route("GET", "/_emulator/stats")
def get_stats(req: Request) -> Response:
    data = stats.snapshot()
    c = store.conn()
    row = c.execute(
        "SELECT COUNT(*) AS pending FROM webhook_outbox WHERE delivered_at IS NULL"
    ).fetchone()
    data["webhooksPending"] = row["pending"]
    data["webhooksDelivered"] = c.execute(
        "SELECT COUNT(*) FROM webhook_outbox WHERE delivered_at IS NOT NULL"
    ).fetchone()[0]
    return ok(data)


@route("DELETE", "/_emulator/stats")
def reset_stats(req: Request) -> Response:
    stats.reset()
    return ok(stats.snapshot())


@route("GET", "/_emulator/webhooks")
def list_webhooks(req: Request) -> Response:
    """The outbox, newest first (for tests and for debugging a receiver)."""
    rows = store.conn().execute(
        "SELECT doc, attempts, delivered_at, last_error FROM webhook_outbox ORDER BY seq DESC LIMIT 200"
    ).fetchall()
    return ok([
        {"message": store.loads(r["doc"]), "attempts": r["attempts"], "delivered": r["delivered_at"] is not None,
         "lastError": r["last_error"]}
        for r in rows
    ])
