"""Request parsing, errors, routing and pagination shared by every endpoint module."""
from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Callable, Iterable
from urllib.parse import parse_qsl

from . import clock

MAX_BODY_BYTES = 64 * 1024 * 1024
DEFAULT_LIMIT = 20
MAX_LIMIT = 100


class ApiError(Exception):
    """An error answer: status code, Stigg error code and a human message."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.headers = headers or {}


def bad_input(message: str) -> ApiError:
    return ApiError(400, "BadUserInput", message)


def not_found(code: str, message: str) -> ApiError:
    return ApiError(404, code, message)


@dataclass
class Request:
    method: str
    path: str
    query: list[tuple[str, str]]
    headers: dict[str, str]  # lower-cased names
    raw_body: bytes
    params: dict[str, str] = field(default_factory=dict)  # path parameters
    api_key: str = ""

    # -- query ------------------------------------------------------------------------
    def arg(self, name: str) -> str | None:
        for key, value in self.query:
            if key == name:
                return value
        return None

    def arg_list(self, name: str) -> list[str] | None:
        """Arrays both comma-joined (how the SDK sends them) and repeated (guarantee 4),
        also accepting the ``name[]`` spelling."""
        values = [v for k, v in self.query if k in (name, name + "[]")]
        if not values:
            return None
        out: list[str] = []
        for value in values:
            out.extend(part for part in value.split(",") if part != "")
        return out

    def arg_object(self, name: str) -> dict[str, str]:
        """Bracket-form objects: ``dimensions[userId]=u1``, ``createdAt[gte]=…``."""
        prefix = name + "["
        return {k[len(prefix):-1]: v for k, v in self.query if k.startswith(prefix) and k.endswith("]")}

    def arg_bool(self, name: str, default: bool = False) -> bool:
        value = self.arg(name)
        if value is None or value == "":
            return default
        if value.lower() in ("true", "1"):
            return True
        if value.lower() in ("false", "0"):
            return False
        raise bad_input(f"{name} must be true or false, not {value!r}")

    def arg_number(self, name: str, default: float | None = None) -> float | None:
        value = self.arg(name)
        if value is None or value == "":
            return default
        try:
            number = float(value)
        except ValueError:
            raise bad_input(f"{name} must be a number, not {value!r}") from None
        if number != number or number in (float("inf"), float("-inf")):
            raise bad_input(f"{name} must be a finite number")
        return number

    # -- body -------------------------------------------------------------------------
    def json(self) -> dict[str, Any]:
        if not self.raw_body.strip():
            raise bad_input("Request body is required and must be a JSON object")
        try:
            body = json.loads(self.raw_body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise bad_input(f"Malformed JSON body: {exc}") from None
        if not isinstance(body, dict):
            raise bad_input("Request body must be a JSON object")
        return body

    def json_or_empty(self) -> dict[str, Any]:
        return self.json() if self.raw_body.strip() else {}


@dataclass
class Response:
    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)


def ok(data: Any, status: int = 200) -> Response:
    return Response(status, {"data": data})


# --- routing -------------------------------------------------------------------------

Handler = Callable[[Request], Response]
_routes: list[tuple[str, re.Pattern[str], Handler]] = []


def route(method: str, pattern: str) -> Callable[[Handler], Handler]:
    """Register a handler. ``{name}`` in the pattern matches one path segment."""
    regex = re.compile("^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", pattern) + "/?$")

    def register(fn: Handler) -> Handler:
        _routes.append((method, regex, fn))
        return fn

    return register


def resolve(method: str, path: str) -> tuple[Handler, dict[str, str]]:
    from urllib.parse import unquote

    allowed = False
    for route_method, regex, fn in _routes:
        match = regex.match(path)
        if match:
            if route_method == method:
                return fn, {k: unquote(v) for k, v in match.groupdict().items()}
            allowed = True
    if allowed:
        raise ApiError(405, "MethodNotAllowed", f"{method} is not allowed on {path}")
    raise ApiError(404, "NotFound", f"No route for {method} {path}")


def parse_query(query_string: str) -> list[tuple[str, str]]:
    return parse_qsl(query_string, keep_blank_values=True)


# --- body validation -----------------------------------------------------------------


def check_keys(obj: dict[str, Any], allowed: Iterable[str], where: str) -> None:
    unknown = sorted(set(obj) - set(allowed))
    if unknown:
        raise bad_input(f"{where}: unknown field(s) {', '.join(unknown)}")


def req_str(obj: dict[str, Any], key: str, where: str) -> str:
    value = obj.get(key)
    if not isinstance(value, str) or not value.strip():
        raise bad_input(f"{where}: {key} is required and must be a non-empty string")
    return value


def opt_str(obj: dict[str, Any], key: str, where: str) -> str | None:
    value = obj.get(key)
    if value is not None and not isinstance(value, str):
        raise bad_input(f"{where}: {key} must be a string")
    return value


def opt_bool(obj: dict[str, Any], key: str, where: str) -> bool | None:
    value = obj.get(key)
    if value is not None and not isinstance(value, bool):
        raise bad_input(f"{where}: {key} must be true or false")
    return value


def opt_number(obj: dict[str, Any], key: str, where: str, *, minimum: float | None = None) -> float | None:
    value = obj.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
        raise bad_input(f"{where}: {key} must be a number")
    if minimum is not None and value < minimum:
        raise bad_input(f"{where}: {key} must be at least {minimum:g}")
    return value


def opt_enum(obj: dict[str, Any], key: str, choices: Iterable[str], where: str) -> str | None:
    value = obj.get(key)
    if value is None:
        return None
    choices = list(choices)
    if value not in choices:
        raise bad_input(f"{where}: {key} must be one of {', '.join(choices)}; got {value!r}")
    return value


def opt_str_map(obj: dict[str, Any], key: str, where: str) -> dict[str, str] | None:
    value = obj.get(key)
    if value is None:
        return None
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise bad_input(f"{where}: {key} must be an object of string values")
    return value


def opt_datetime(obj: dict[str, Any], key: str, where: str) -> datetime | None:
    value = obj.get(key)
    if value is None:
        return None
    try:
        return clock.parse(value)
    except (ValueError, TypeError):
        raise bad_input(f"{where}: {key} must be an ISO-8601 timestamp") from None


def req_list(obj: dict[str, Any], key: str, where: str, *, max_items: int, min_items: int = 1) -> list[Any]:
    value = obj.get(key)
    if not isinstance(value, list):
        raise bad_input(f"{where}: {key} is required and must be an array")
    if len(value) < min_items:
        raise bad_input(f"{where}: {key} must hold at least {min_items} item(s)")
    if len(value) > max_items:
        raise bad_input(f"{where}: {key} holds {len(value)} items; at most {max_items} are allowed")
    return value


def dimensions(obj: dict[str, Any], key: str, where: str) -> dict[str, Any]:
    value = obj.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and (isinstance(v, (str, bool)) or (isinstance(v, (int, float)) and v == v))
        for k, v in value.items()
    ):
        raise bad_input(f"{where}: {key} must map strings to strings, numbers or booleans")
    return value


# --- pagination ----------------------------------------------------------------------


def encode_cursor(value: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(value, separators=(",", ":")).encode()).decode().rstrip("=")


def decode_cursor(token: str, name: str) -> Any:
    try:
        return json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except (ValueError, UnicodeDecodeError):
        raise bad_input(f"{name} is not a cursor this API issued") from None


def page_limit(req: Request) -> int:
    value = req.arg("limit")
    if value is None or value == "":
        return DEFAULT_LIMIT
    try:
        limit = int(value)
    except ValueError:
        raise bad_input(f"limit must be a whole number, not {value!r}") from None
    if not 1 <= limit <= MAX_LIMIT:
        raise bad_input(f"limit must be between 1 and {MAX_LIMIT}")
    return limit


def created_at_filter(req: Request, column: str = "created_at") -> tuple[str, list[Any]]:
    """``createdAt[gt|gte|lt|lte]`` as an SQL fragment over an ISO text column."""
    ops = {"gt": ">", "gte": ">=", "lt": "<", "lte": "<="}
    clauses, params = [], []
    for op, value in req.arg_object("createdAt").items():
        if op not in ops:
            raise bad_input(f"createdAt[{op}] is not a supported comparison (gt, gte, lt, lte)")
        try:
            params.append(clock.iso(clock.parse(value)))
        except ValueError:
            raise bad_input(f"createdAt[{op}] must be an ISO-8601 timestamp") from None
        clauses.append(f"{column} {ops[op]} ?")
    return " AND ".join(clauses), params


def paginate(req: Request, sql: str, params: list[Any], render: Callable[[Any], Any]) -> Response:
    """Keyset pagination over ``seq``. ``sql`` selects rows with a ``seq`` column and
    must end in a WHERE clause (``WHERE 1=1`` is fine). Cursors are opaque tokens of
    the edge item's seq, so deleting that item never breaks a walk (guarantee 3)."""
    from .store import conn

    limit = page_limit(req)
    after, before = req.arg("after"), req.arg("before")
    if after and before:
        raise bad_input("Use either after or before, not both")
    c = conn()
    if before:
        edge = decode_cursor(before, "before")
        if not isinstance(edge, int):
            raise bad_input("before is not a cursor this API issued")
        rows = c.execute(f"{sql} AND seq < ? ORDER BY seq DESC LIMIT ?", [*params, edge, limit + 1]).fetchall()
        more_before = len(rows) > limit
        rows = list(reversed(rows[:limit]))
        has_prev, has_next = more_before, True
    else:
        edge = decode_cursor(after, "after") if after else 0
        if not isinstance(edge, int):
            raise bad_input("after is not a cursor this API issued")
        rows = c.execute(f"{sql} AND seq > ? ORDER BY seq ASC LIMIT ?", [*params, edge, limit + 1]).fetchall()
        has_next = len(rows) > limit
        rows = rows[:limit]
        has_prev = bool(after)
    if rows and has_prev and not before:
        # a walk that started at the first page has nothing before it
        has_prev = c.execute(f"{sql} AND seq < ? LIMIT 1", [*params, rows[0]["seq"]]).fetchone() is not None
    if rows and before and has_next:
        has_next = c.execute(f"{sql} AND seq > ? LIMIT 1", [*params, rows[-1]["seq"]]).fetchone() is not None
    data = [render(row) for row in rows]
    return Response(
        200,
        {
            "data": data,
            "pagination": {
                "next": encode_cursor(rows[-1]["seq"]) if rows and has_next else None,
                "prev": encode_cursor(rows[0]["seq"]) if rows and has_prev else None,
            },
        },
    )
