"""The request loop under every Stigg call: one pooled HTTP connection pool, a slot from
the request-rate limiter before each attempt, explicit timeouts, and retries of transient
failures with backoff or after Stigg's ``Retry-After``.

Every attempt first takes a slot from the rate limiter it was given: in production the
one shared by all processes (``dashboard.ratelimit``, ``STIGG_MAX_RPS``, kept in Redis),
so no number of workers can exceed it. The limiter is passed in, never imported, so the
limiter can raise this package's errors without an import cycle. An answer is turned
into decoded JSON, or into one of the errors of ``errors``.
"""
from __future__ import annotations

import email.utils
import json
import logging
import math
import random
import time
from datetime import datetime, timezone
from typing import Any, Protocol

import httpx

from .errors import GovernanceNotEnabled, StiggError, StiggRequestError, StiggUnavailable
from .parsing import _malformed

logger = logging.getLogger(__name__)

BACKOFF_BASE = 0.5  # seconds; the SDK's schedule 0.5 s * 2^n ...
BACKOFF_CAP = 8.0  # ... capped at 8 s
BACKOFF_JITTER = 0.25  # up to 25% taken off, so workers throttled together spread out
RETRY_AFTER_MAX = 60.0  # a longer hint is ignored (the SDK's rule): backoff applies instead
DEFAULT_RATE_LIMIT_WAIT = 10.0  # seconds a call may queue for a rate-limit slot before giving up


class RateLimiter(Protocol):
    """What the transport needs of a request-rate limiter (``dashboard.ratelimit``)."""

    def acquire(self, max_wait: float) -> None:
        """Return once a request may be sent; raise ``StiggUnavailable`` (its subclass
        ``RateLimitExhausted`` when no slot comes within ``max_wait`` seconds)."""


class StiggTransport:
    """Thread-safe: one pooled ``httpx.Client`` shared by every call and thread."""

    def __init__(self, base_url: str, api_key: str, timeout: float, rate_limiter: RateLimiter | None,
                 max_attempts: int, *, rate_limit_wait: float, max_connections: int,
                 transport: httpx.BaseTransport | None) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self.rate_limiter = rate_limiter
        self.max_attempts = max_attempts
        self.rate_limit_wait = rate_limit_wait
        self._timeout = _timeout(timeout)
        self._http = httpx.Client(
            base_url=base_url,
            headers={"X-API-KEY": api_key, "Accept": "application/json"},
            timeout=self._timeout,
            # Sized so every worker thread keeps its own warm connection.
            limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections,
                                keepalive_expiry=30.0),
            follow_redirects=False,
            transport=transport,
        )

    def close(self) -> None:
        self._http.close()

    def request(self, method: str, path: str, *, params: dict[str, Any] | None = None,
                json_body: Any = None, timeout: float | None = None, attempts: int | None = None) -> dict[str, Any]:
        """One logical call: rate-limit slot, attempt, retry transient failures. Returns the
        decoded JSON object of a 2xx answer. ``timeout`` and ``attempts`` override the
        client's for this call (a write somebody waits for: short, and maybe no retry)."""
        last: StiggUnavailable | None = None
        per_call = self._timeout if timeout is None else _timeout(timeout)
        max_attempts = self.max_attempts if attempts is None else max(1, attempts)
        for attempt in range(max_attempts):
            if attempt:
                assert last is not None
                wait = last.retry_after if last.retry_after is not None else backoff_seconds(attempt - 1)
                logger.info("retrying %s %s in %.2fs after: %s", method, path, wait, last)
                time.sleep(wait)
            if self.rate_limiter is not None:
                # Every attempt, retries included, takes a slot: Stigg counts them all.
                self.rate_limiter.acquire(self.rate_limit_wait)
            try:
                resp = self._http.request(method, path, params=params, json=json_body, timeout=per_call)
            except httpx.TimeoutException as exc:
                last = StiggUnavailable(f"Stigg timed out on {method} {path}: {type(exc).__name__}")
                continue
            except httpx.TransportError as exc:
                last = StiggUnavailable(f"could not reach Stigg for {method} {path}: {type(exc).__name__}: {exc}")
                continue
            if resp.is_success:
                return self._decode(resp, method, path)
            error = self._error(resp, method, path)
            if isinstance(error, StiggRequestError):
                raise error
            last = error
        assert last is not None
        logger.warning("giving up on %s %s after %d attempts: %s", method, path, max_attempts, last)
        raise last

    @staticmethod
    def _decode(resp: httpx.Response, method: str, path: str) -> dict[str, Any]:
        try:
            body = json.loads(resp.content)
        except ValueError:
            raise _malformed(f"{method} {path} answered {resp.status_code} with a body that is not JSON") from None
        if not isinstance(body, dict) or "data" not in body:
            raise _malformed(f"{method} {path} answered without a data envelope")
        return body

    @staticmethod
    def _error(resp: httpx.Response, method: str, path: str) -> StiggError:
        status = resp.status_code
        code: str | None = None
        message = ""
        try:
            body = json.loads(resp.content)
        except ValueError:  # proxies and load balancers answer in HTML or plain text
            body = None
        if isinstance(body, dict):
            code = body.get("code") if isinstance(body.get("code"), str) else None
            message = body.get("message") if isinstance(body.get("message"), str) else ""
        if not message:
            message = resp.text[:200].strip() or resp.reason_phrase
        text = f"Stigg answered {status} to {method} {path}: {code + ': ' if code else ''}{message}"
        should_retry = (resp.headers.get("x-should-retry") or "").strip().lower()
        if status == 403 and code == "GovernanceNotEnabled":
            return GovernanceNotEnabled(text, status=status, code=code)
        if should_retry == "false":
            # Stigg says a retry cannot help (e.g. its opaque 500 for an illegal move), so
            # later retries would not either: the request itself is at fault.
            return StiggRequestError(text, status=status, code=code)
        if should_retry == "true" or status in (408, 429) or status >= 500:
            return StiggUnavailable(text, status=status, retry_after=_retry_after(resp.headers))
        return StiggRequestError(text, status=status, code=code)


def _timeout(seconds: float) -> httpx.Timeout:
    # Connecting is fast when Stigg is up; a shorter connect timeout fails fast when it
    # is not, leaving the rest of the timeout for slow answers.
    return httpx.Timeout(seconds, connect=min(seconds, max(0.5, seconds / 3)))


def _retry_after(headers: httpx.Headers) -> float | None:
    """Stigg's wait hint in seconds (``retry-after-ms``, else ``retry-after`` as seconds or
    an HTTP date), or None when absent, unreadable, not positive or over 60 s."""
    seconds: float | None = None
    raw_ms = headers.get("retry-after-ms")
    if raw_ms is not None:
        try:
            seconds = float(raw_ms) / 1000.0
        except ValueError:
            seconds = None
    if seconds is None and (raw := headers.get("retry-after")) is not None:
        try:
            seconds = float(raw)
        except ValueError:
            seconds = _seconds_until(raw)
    if seconds is None or not math.isfinite(seconds) or not 0 < seconds <= RETRY_AFTER_MAX:
        return None
    return seconds


def _seconds_until(http_date: str) -> float | None:
    try:
        when = email.utils.parsedate_to_datetime(http_date)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return (when - datetime.now(timezone.utc)).total_seconds()


def backoff_seconds(attempt: int) -> float:
    """The wait before retry number ``attempt + 1`` when Stigg gave no usable hint."""
    return min(BACKOFF_BASE * 2 ** attempt, BACKOFF_CAP) * (1 - BACKOFF_JITTER * random.random())

