"""A small REST client for the emulator, with retries: what the demo seed, the bulk
seeder's API path and the traffic simulator speak. Also the API's batch limits and
Stigg's timestamp format, as a client sees them."""
from __future__ import annotations

import logging
import random
import threading
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from email.utils import parsedate_to_datetime
from typing import Any, Iterator, Sequence
from urllib.parse import urlsplit

import httpx

LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}
MAX_USAGES_PER_CALL = 100
MAX_EVENTS_PER_CALL = 1000
MAX_GOVERNANCE_ITEMS = 100


class RequestRejected(Exception):
    """The emulator said no (4xx other than 429): retrying would not help."""

    def __init__(self, method: str, path: str, status: int, body: str):
        super().__init__(f"{method} {path} -> {status}: {body[:300]}")
        self.status = status


class ServiceUnavailable(Exception):
    """Still 429/5xx/connection errors after every retry."""


def require_local(base_url: str) -> None:
    """The seed and the simulator only ever write to a local emulator, never to a
    real Stigg account reached by a mistyped URL."""
    host = urlsplit(base_url).hostname or ""
    if host not in LOCAL_HOSTS:
        raise ValueError(f"refusing to talk to {base_url!r}: only 127.0.0.1 is allowed")


def retry_after_seconds(resp: httpx.Response) -> float | None:
    """Honour retry-after-ms, then Retry-After (seconds or an HTTP date), like the SDK:
    only when > 0 and ≤ 60 s."""
    raw_ms = resp.headers.get("retry-after-ms")
    if raw_ms:
        try:
            value = float(raw_ms) / 1000.0
            if 0 < value <= 60:
                return value
        except ValueError:
            pass
    raw = resp.headers.get("retry-after")
    if not raw:
        return None
    try:
        value = float(raw)
    except ValueError:
        try:
            value = (parsedate_to_datetime(raw) - datetime.now(timezone.utc)).total_seconds()
        except (TypeError, ValueError):
            return None
    return value if 0 < value <= 60 else None


class RestClient:
    """One pooled httpx client (thread-safe) with retry and backoff on 429, 5xx and
    connection errors, so the seed and the simulator survive injected faults."""

    def __init__(self, base_url: str, api_key: str, *, timeout: float = 30.0, max_retries: int = 8,
                 pool: int = 16, stop: threading.Event | None = None, rng: random.Random | None = None):
        require_local(base_url)
        self.max_retries = max_retries
        self.stop = stop or threading.Event()
        self._rng = rng or random.Random(0)
        self._lock = threading.Lock()
        self.requests = 0
        self.retries = 0
        self._http = httpx.Client(
            base_url=base_url.rstrip("/"),
            headers={"X-API-KEY": api_key, "Accept": "application/json"},
            timeout=timeout,
            limits=httpx.Limits(max_connections=pool, max_keepalive_connections=pool),
        )

    def close(self) -> None:
        self._http.close()

    def _backoff(self, attempt: int) -> float:
        with self._lock:
            jitter = self._rng.random()
        # the SDK's curve: 0.5 s·2^n capped at 8 s, with up to 25 % taken off
        return min(8.0, 0.5 * 2 ** attempt) * (1 - 0.25 * jitter)

    def request(self, method: str, path: str, *, json: Any = None, params: Any = None,
                envelope: bool = False) -> Any:
        """The response's ``data`` (or the whole body with ``envelope``, for paging)."""
        for attempt in range(self.max_retries + 1):
            if self.stop.is_set():
                raise ServiceUnavailable("stopped")
            with self._lock:
                self.requests += 1
            wait: float | None
            try:
                resp = self._http.request(method, path, json=json, params=params)
            except httpx.TransportError as exc:
                wait, reason = self._backoff(attempt), f"{type(exc).__name__}"
            else:
                should_retry = resp.headers.get("x-should-retry")
                transient = resp.status_code == 429 or resp.status_code >= 500
                if resp.is_success:
                    body = resp.json() if resp.content else {}
                    return body if envelope else body.get("data")
                if not transient or should_retry == "false":
                    raise RequestRejected(method, path, resp.status_code, resp.text)
                wait = retry_after_seconds(resp) or self._backoff(attempt)
                reason = str(resp.status_code)
            if attempt == self.max_retries:
                raise ServiceUnavailable(f"{method} {path}: gave up after {attempt + 1} attempts ({reason})")
            with self._lock:
                self.retries += 1
            if self.stop.wait(wait):
                raise ServiceUnavailable("stopped")
        raise AssertionError("unreachable")

    def get(self, path: str, **params: Any) -> Any:
        return self.request("GET", path, params=params or None)

    def post(self, path: str, body: Any = None) -> Any:
        return self.request("POST", path, json=body if body is not None else {})

    def put(self, path: str, body: Any) -> Any:
        return self.request("PUT", path, json=body)


@contextmanager
def clock_back(api: RestClient, by: timedelta) -> Iterator[None]:
    """The emulator's clock ``by`` earlier while the block runs, so what it creates is
    created then (an emulator control, POST /_emulator/clock), and where it was again
    afterwards, whatever happened in the block. The clock is the whole emulator's: nothing
    else may run meanwhile."""
    offset = float(api.get("/_emulator/state")["clockOffsetSeconds"] or 0)
    api.post("/_emulator/clock", {"offsetSeconds": offset - by.total_seconds()})
    try:
        yield
    finally:
        api.post("/_emulator/clock", {"offsetSeconds": offset})


def quiet_http_logs() -> None:
    """httpx logs every request at INFO; thousands of seed and traffic calls would bury
    the progress lines (and the emulator's own log when seeding runs inside it)."""
    for name in ("httpx", "httpcore"):
        logging.getLogger(name).setLevel(logging.WARNING)


def chunks(items: Sequence[Any], size: int) -> list[Sequence[Any]]:
    return [items[i:i + size] for i in range(0, len(items), size)]


def iso(value: datetime) -> str:
    """Stigg's timestamp format: UTC with milliseconds and a Z."""
    return value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def parse_time(text: Any) -> datetime | None:
    """A timestamp from an answer, in UTC; None when absent or unreadable."""
    if not isinstance(text, str) or not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(timezone.utc)
    except ValueError:
        return None
