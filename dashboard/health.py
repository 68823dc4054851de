"""What /healthz checks, each a function returning a ``Check``: the read model's Redis (a
write read back, not a ping), the database, Stigg (one request, at most every
STIGG_PROBE_SECONDS across all processes, within the shared request budget) and the sync's
lag (the oldest customer's age).

Which failures make the instance unhealthy (503) is a rule of its own (``status_of``): only
what stops *this* instance serving pages — its Redis or its database. Stigg unreachable or
the sync behind are "degraded" (200): pages still render from the read model with each
number's age, and a load balancer that pulled every instance out because Stigg is down would
turn an outage of Stigg into an outage of the dashboard."""
from __future__ import annotations

import os
import socket
import time
from dataclasses import asdict, dataclass
from typing import Any

from django.conf import settings
from django.db import DatabaseError, connection

from .readmodel import ReadModel
from .stigg import StiggClient, StiggError

STIGG_PROBE_SECONDS = 30.0  # a load balancer probing every second costs Stigg one request per this
STIGG_PROBE_TIMEOUT_SECONDS = 3.0
WHO = f"{socket.gethostname()}:{os.getpid()}"


@dataclass(frozen=True)
class Check:
    ok: bool
    detail: str
    critical: bool  # failing it means this instance cannot serve pages


def read_model_check(rm: ReadModel) -> Check:
    try:
        written = rm.write_probe(WHO)
    except Exception as exc:  # any Redis failure, reachable or not, is this check's answer
        return Check(False, f"{type(exc).__name__}: {exc}", critical=True)
    return Check(written, "wrote and read back" if written else "read back something else", critical=True)


def database_check() -> Check:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except DatabaseError as exc:
        return Check(False, f"{type(exc).__name__}: {exc}", critical=True)
    return Check(True, connection.vendor, critical=True)


def stigg_check(rm: ReadModel, client: StiggClient) -> Check:
    """Stigg's last probe result while it is fresh; a new probe by one process when not."""
    try:
        cached = rm.cached_stigg_health()
        if cached is None and rm.claim_stigg_probe(STIGG_PROBE_TIMEOUT_SECONDS * 2):
            cached = _probe(client)
            rm.store_stigg_health(cached, STIGG_PROBE_SECONDS)
    except Exception as exc:  # Redis: the read-model check says what
        return Check(False, f"not checked ({type(exc).__name__})", critical=False)
    if cached is None:
        return Check(True, "being checked by another process", critical=False)
    age = max(0.0, time.time() - cached["at"])
    return Check(cached["ok"], f"{cached['detail']} ({age:.0f} s ago)", critical=False)


def _probe(client: StiggClient) -> dict[str, Any]:
    started = time.monotonic()
    try:
        client.check_reachable()
    except StiggError as exc:  # the error's text: a status and Stigg's message, never the key
        return {"ok": False, "detail": f"{type(exc).__name__}: {exc}", "at": time.time()}
    return {"ok": True, "detail": f"answered in {1000 * (time.monotonic() - started):.0f} ms", "at": time.time()}


def sync_lag_check(rm: ReadModel, now: float) -> tuple[Check, float | None]:
    """The age of the customer read longest ago, against SYNC_STALE_AFTER_SECONDS."""
    try:
        oldest = rm.oldest_fetched_at()
    except Exception as exc:
        return Check(False, f"not checked ({type(exc).__name__})", critical=False), None
    if oldest is None:
        return Check(False, "nothing synced yet", critical=False), None
    lag = max(0.0, now - oldest)
    within = lag <= settings.SYNC_STALE_AFTER_SECONDS
    return Check(within, f"oldest customer read {lag:.0f} s ago "
                         f"(behind after {settings.SYNC_STALE_AFTER_SECONDS:.0f} s)", critical=False), lag


def status_of(checks: dict[str, Check]) -> tuple[str, int]:
    """("ok" | "degraded" | "unavailable", HTTP status)."""
    if any(c.critical and not c.ok for c in checks.values()):
        return "unavailable", 503
    return ("ok" if all(c.ok for c in checks.values()) else "degraded"), 200


def as_json(checks: dict[str, Check]) -> dict[str, Any]:
    return {name: asdict(check) for name, check in checks.items()}
