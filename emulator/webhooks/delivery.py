"""Webhook delivery: the dispatcher thread (in the emulator's sidecar process, see
sidecar.py) that POSTs each message the outbox recorded, and the clock-driven notices
(promotion expiry) that no request would otherwise trigger.

Delivery follows stigg-api.md §10: header ``Stigg-Webhooks-Secret``, envelope
``{messageId, type, createdAt, data}``; a failed delivery gets 3 immediate retries,
then 3 more ``retryDelaySeconds`` apart (30 s by default), then it is given up.
"""
from __future__ import annotations

import logging
import threading
import time

import httpx

from .. import store
from ..domain.promotions import expire_due_promotions

log = logging.getLogger(__name__)

IMMEDIATE_RETRIES = 3
DELAYED_RETRIES = 3
GIVEN_UP = 1e18  # next_attempt_at of a message nobody will try again
DELIVERY_TIMEOUT = 10.0


def _deliver(client: httpx.Client, url: str, secret: str | None, doc: str) -> str | None:
    headers = {"Content-Type": "application/json"}
    if secret:
        headers["Stigg-Webhooks-Secret"] = secret
    try:
        resp = client.post(url, content=doc, headers=headers, timeout=DELIVERY_TIMEOUT)
    except httpx.HTTPError as exc:
        return f"{type(exc).__name__}: {exc}"
    if 200 <= resp.status_code < 300:
        return None
    return f"HTTP {resp.status_code}"


def dispatch_once(client: httpx.Client, batch: int = 50) -> int:
    """Try every message that is due. Returns how many were attempted."""
    c = store.conn()
    target = store.get_control(c)["webhook"]
    now = time.time()
    rows = c.execute(
        "SELECT seq, doc, attempts FROM webhook_outbox WHERE delivered_at IS NULL AND next_attempt_at <= ? "
        "ORDER BY seq LIMIT ?",
        (now, batch),
    ).fetchall()
    if not rows:
        return 0
    if not target.get("url"):
        c.execute("UPDATE webhook_outbox SET next_attempt_at=? WHERE delivered_at IS NULL", (GIVEN_UP,))
        return 0
    for row in rows:
        error = _deliver(client, target["url"], target.get("secret"), row["doc"])
        attempts = row["attempts"] + 1
        if error is None:
            c.execute("UPDATE webhook_outbox SET attempts=?, delivered_at=?, last_error=NULL WHERE seq=?",
                      (attempts, time.time(), row["seq"]))
            continue
        if attempts <= IMMEDIATE_RETRIES:
            next_at = time.time()
        elif attempts <= IMMEDIATE_RETRIES + DELAYED_RETRIES:
            next_at = time.time() + float(target.get("retryDelaySeconds") or 30)
        else:
            next_at = GIVEN_UP
            log.warning("Webhook %s given up after %d attempts: %s", row["seq"], attempts, error)
        c.execute("UPDATE webhook_outbox SET attempts=?, next_attempt_at=?, last_error=? WHERE seq=?",
                  (attempts, next_at, error, row["seq"]))
    return len(rows)


def notice_expirations() -> None:
    """Promotions expire by the clock, not by a request: queue their .expired events.
    Runs whether or not a target is set, so configuring one later sends no backlog."""
    expire_due_promotions(store.conn())


def run_dispatcher(stop: threading.Event, interval: float = 0.1, expiry_interval: float = 1.0) -> None:
    last_expiry_scan = 0.0
    with httpx.Client() as client:
        while not stop.is_set():
            try:
                if time.monotonic() - last_expiry_scan >= expiry_interval:
                    last_expiry_scan = time.monotonic()
                    notice_expirations()
                busy = dispatch_once(client)
            except Exception:  # keep delivering whatever one bad row did
                log.exception("Webhook dispatcher failed; retrying")
                busy = 0
            if not busy:
                stop.wait(interval)


def start_dispatcher(stop: threading.Event) -> threading.Thread:
    thread = threading.Thread(target=run_dispatcher, args=(stop,), name="webhook-dispatcher", daemon=True)
    thread.start()
    return thread
