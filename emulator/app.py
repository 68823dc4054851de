"""The WSGI application: authentication, fault injection, dispatch, error answers."""
from __future__ import annotations

import json
import logging
import random
import re
import time
from typing import Any, Callable, Iterable
from urllib.parse import unquote, urlsplit

from . import clock, config, stats, store
from .http import MAX_BODY_BYTES, ApiError, Request, Response, parse_query, resolve

# Endpoint modules register their routes on import.
from .api import (  # noqa: F401
    catalog, control, customers, entitlements, governance, packages, promotions, subscriptions, usage,
)

log = logging.getLogger(__name__)

REASONS = {
    200: "OK", 201: "Created", 202: "Accepted", 204: "No Content", 400: "Bad Request",
    401: "Unauthorized", 403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed",
    409: "Conflict", 413: "Payload Too Large", 422: "Unprocessable Entity",
    429: "Too Many Requests", 500: "Internal Server Error", 502: "Bad Gateway",
    503: "Service Unavailable",
}
WRITE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}


def _error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> Response:
    headers = dict(headers or {})
    if status == 409:
        # Guarantee 6 (Inferred): the SDK retries 409s unless told not to.
        headers.setdefault("x-should-retry", "false")
    return Response(status, {"code": code, "message": message}, headers)


def _read_body(environ: dict[str, Any]) -> bytes:
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if length > MAX_BODY_BYTES:
        raise ApiError(413, "BadUserInput", f"Request body over {MAX_BODY_BYTES} bytes")
    return environ["wsgi.input"].read(length) if length > 0 else b""


def _counted(req: Request) -> bool:
    return req.headers.get("x-emulator-uncounted", "").lower() != "true"


def _faults(req: Request, faults: dict[str, Any]) -> Response | None:
    if faults.get("outage"):
        return _error(503, "ServiceUnavailable", "Stigg emulator: simulated outage")
    failing = faults.get("failingCustomerIds") or []
    match = CUSTOMER_PATH.match(req.path) if failing else None
    if match and unquote(match.group(1)) in failing:
        return _error(503, "ServiceUnavailable", "Stigg emulator: simulated failure for this customer")
    latency = float(faults.get("latencyMs") or 0)
    if latency > 0:
        time.sleep(latency / 1000.0)
    limit = int(faults.get("rateLimitPerSecond") or 0)
    seen = stats.record(counted=_counted(req))
    if limit and seen > limit:
        retry_after = max(1, min(60, int(faults.get("retryAfterSeconds") or 1)))
        return _error(429, "RateLimitExceeded", "Rate limit exceeded", {"Retry-After": str(retry_after)})
    rate = float(faults.get("errorRate") or 0)
    if rate > 0 and random.random() < rate:
        status = random.choice((500, 502, 503))
        return _error(status, "InternalServerError", "Stigg emulator: simulated server error")
    return None


CUSTOMER_PATH = re.compile(r"^/api/v1(?:-beta)?/(?:customers|usage)/([^/]+)")


def _malformed(req: Request, resp: Response, faults: dict[str, Any]) -> Response | bytes:
    """The malformed-answer fault: a 2xx about a chosen customer comes back broken."""
    ids = faults.get("malformedCustomerIds") or []
    match = CUSTOMER_PATH.match(req.path) if ids and resp.status < 300 else None
    if not match or unquote(match.group(1)) not in ids:
        return resp
    if faults.get("malformedMode") == "shape":
        return Response(resp.status, {"data": {"unexpected": "shape", "entitlements": "not-a-list"}})
    return b'{"data": {"truncated by the emulator'


def handle(req: Request) -> Response | bytes:
    control_path = req.path.startswith("/_emulator/")
    if not req.api_key or req.api_key not in config.api_keys():
        return _error(401, "Unauthenticated", "Missing or unknown X-API-KEY")
    state = store.get_control()
    clock.set_request_offset(float(state.get("clockOffsetSeconds") or 0))
    if not control_path:
        fault = _faults(req, state["faults"])
        if fault is not None:
            return fault
    if req.method in WRITE_METHODS and req.api_key.startswith("client-"):
        return _error(403, "Forbidden", "A publishable (client-) key is read-only")
    handler, req.params = resolve(req.method, req.path)
    req.control = state  # type: ignore[attr-defined]
    resp = handler(req)
    return resp if control_path else _malformed(req, resp, state["faults"])


def application(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    headers = {k[5:].replace("_", "-").lower(): v for k, v in environ.items() if k.startswith("HTTP_")}
    if environ.get("CONTENT_TYPE"):
        headers["content-type"] = environ["CONTENT_TYPE"]
    raw_uri = environ.get("RAW_URI") or environ.get("REQUEST_URI")
    if raw_uri:
        # The path as sent, still percent-encoded (gunicorn): an id holding "/" arrives as
        # %2F and stays one segment; resolve() decodes each segment once matched.
        path = urlsplit(raw_uri).path or "/"
    else:
        path = environ.get("PATH_INFO") or "/"
        try:
            path = path.encode("latin-1").decode("utf-8")
        except UnicodeError:
            pass
    req = Request(
        method=environ.get("REQUEST_METHOD", "GET").upper(),
        path=path,
        query=parse_query(environ.get("QUERY_STRING", "")),
        headers=headers,
        raw_body=b"",
        api_key=headers.get("x-api-key", ""),
    )
    try:
        req.raw_body = _read_body(environ)
        resp = handle(req)
    except ApiError as exc:
        resp = _error(exc.status, exc.code, exc.message, exc.headers)
    except Exception:  # a bug in the emulator, never the client's fault
        log.exception("Unhandled error in %s %s", req.method, req.path)
        resp = _error(500, "InternalServerError", "The emulator failed; see its log")
    if isinstance(resp, bytes):
        resp, body = Response(200, None), resp
    else:
        body = b"" if resp.status == 204 else json.dumps(resp.body, separators=(",", ":")).encode()
    if resp.status >= 500 or resp.status == 429:
        stats.record(resp.status, counted=_counted(req))
    out_headers = [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
    out_headers += list(resp.headers.items())
    start_response(f"{resp.status} {REASONS.get(resp.status, 'Status')}", out_headers)
    return [body]
