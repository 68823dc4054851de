"""The emulator's storage: one SQLite file (WAL mode) shared by every worker process.

Everything that must be seen by all workers lives here: catalog, customers, usage,
governance, the control state (faults, clock, governance switch, webhook target) and
the webhook outbox. Connections are opened lazily, one per thread, after the fork.
"""
from __future__ import annotations

import json
import os
import sqlite3
import itertools
import threading
from contextlib import contextmanager
from typing import Any, Iterator

SCHEMA = """
CREATE TABLE IF NOT EXISTS control (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS products (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT UNIQUE NOT NULL, doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS features (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT UNIQUE NOT NULL, doc TEXT NOT NULL);
-- plans and add-ons share one table: kind is 'plan' or 'addon'
CREATE TABLE IF NOT EXISTS packages (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT UNIQUE NOT NULL, kind TEXT NOT NULL,
    product_id TEXT NOT NULL, status TEXT NOT NULL, doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS package_entitlements (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, package_id TEXT NOT NULL, feature_id TEXT NOT NULL,
    doc TEXT NOT NULL, UNIQUE (package_id, feature_id));
CREATE TABLE IF NOT EXISTS customers (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT UNIQUE NOT NULL, name TEXT, email TEXT,
    created_at TEXT NOT NULL, archived_at TEXT, doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS resources (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, customer_id TEXT NOT NULL, id TEXT NOT NULL,
    doc TEXT NOT NULL, UNIQUE (customer_id, id));
CREATE TABLE IF NOT EXISTS subscriptions (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT UNIQUE NOT NULL, customer_id TEXT NOT NULL,
    plan_id TEXT NOT NULL, resource_id TEXT, status TEXT NOT NULL, created_at TEXT NOT NULL,
    doc TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS subscriptions_customer ON subscriptions (customer_id);
CREATE TABLE IF NOT EXISTS promotions (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, customer_id TEXT NOT NULL, feature_id TEXT NOT NULL,
    created_at TEXT NOT NULL, doc TEXT NOT NULL, UNIQUE (customer_id, feature_id));
-- One row per usage report or per matched event and feature. Calculated usage stores
-- the delta in num; meters store the aggregated field (num) or the unique value (str).
CREATE TABLE IF NOT EXISTS measurements (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, customer_id TEXT NOT NULL, resource_id TEXT NOT NULL,
    feature_id TEXT NOT NULL, ts TEXT NOT NULL, num REAL, str TEXT);
CREATE INDEX IF NOT EXISTS measurements_lookup
    ON measurements (customer_id, feature_id, resource_id, ts);
-- The dimensions of a measurement, for usage history grouped by a dimension.
CREATE TABLE IF NOT EXISTS measurement_dimensions (
    measurement_seq INTEGER PRIMARY KEY, dimensions TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS usage_keys (
    customer_id TEXT NOT NULL, key TEXT NOT NULL, seen_at TEXT NOT NULL,
    PRIMARY KEY (customer_id, key));
CREATE TABLE IF NOT EXISTS event_keys (key TEXT PRIMARY KEY, seen_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, customer_id TEXT NOT NULL, event_name TEXT NOT NULL,
    ts TEXT NOT NULL, doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS entity_types (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT UNIQUE NOT NULL, doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS entities (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, customer_id TEXT NOT NULL, id TEXT NOT NULL,
    entity_type_id TEXT NOT NULL, display_name TEXT, parent_id TEXT, archived_at TEXT,
    doc TEXT NOT NULL, UNIQUE (customer_id, id));
CREATE INDEX IF NOT EXISTS entities_parent ON entities (customer_id, parent_id);
CREATE TABLE IF NOT EXISTS assignments (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT UNIQUE NOT NULL, customer_id TEXT NOT NULL,
    entity_id TEXT NOT NULL, capability TEXT NOT NULL, scope_key TEXT NOT NULL,
    doc TEXT NOT NULL, UNIQUE (customer_id, entity_id, capability, scope_key));
CREATE INDEX IF NOT EXISTS assignments_capability ON assignments (customer_id, capability);
-- Attributed usage per assignment and cadence window (window_start is ISO text).
CREATE TABLE IF NOT EXISTS assignment_usage (
    assignment_id TEXT NOT NULL, window_start TEXT NOT NULL, usage REAL NOT NULL,
    updated_at TEXT NOT NULL, PRIMARY KEY (assignment_id, window_start));
CREATE TABLE IF NOT EXISTS webhook_outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, message_id TEXT UNIQUE NOT NULL, doc TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0, next_attempt_at REAL NOT NULL,
    delivered_at REAL, last_error TEXT);
CREATE INDEX IF NOT EXISTS webhook_pending ON webhook_outbox (delivered_at, next_attempt_at);
"""

_local = threading.local()
_savepoints = itertools.count()
# Connections a forked child found in its parent's memory: kept, never used and never
# closed, because closing one in the child would release locks the parent holds.
_inherited: list[sqlite3.Connection] = []


def db_path() -> str:
    return os.environ.get("EMULATOR_DB_PATH", os.path.join("var", "emulator.sqlite3"))


def connect(path: str | None = None) -> sqlite3.Connection:
    path = path or db_path()
    if os.path.dirname(path):
        os.makedirs(os.path.dirname(path), exist_ok=True)
    conn = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA busy_timeout=30000")
    conn.execute("PRAGMA foreign_keys=OFF")
    conn.execute("PRAGMA cache_size=-65536")
    return conn


def init_db(path: str | None = None) -> None:
    conn = connect(path)
    try:
        conn.executescript(SCHEMA)
    finally:
        conn.close()


def conn() -> sqlite3.Connection:
    """This thread's connection (opened on first use, after any fork)."""
    c = getattr(_local, "conn", None)
    pid = os.getpid()
    if c is None or getattr(_local, "pid", None) != pid:
        if c is not None:
            _inherited.append(c)
        c = connect()
        _local.conn, _local.pid = c, pid
    return c


def close() -> None:
    """Close this thread's connection (the server's master does, before it forks)."""
    c = getattr(_local, "conn", None)
    if c is not None and getattr(_local, "pid", None) == os.getpid():
        c.close()
    _local.conn = None


@contextmanager
def write() -> Iterator[sqlite3.Connection]:
    """One write transaction. BEGIN IMMEDIATE takes the write lock up front, so two
    workers never interleave read-modify-write sequences on the same rows. Inside an
    open transaction (the bulk seeder runs many handlers in one) it nests as a
    savepoint: a failure undoes only its own part, and the outer commit keeps the rest."""
    c = conn()
    if c.in_transaction:
        name = f"nested_{next(_savepoints)}"
        c.execute(f"SAVEPOINT {name}")
        try:
            yield c
        except BaseException:
            c.execute(f"ROLLBACK TO {name}")
            c.execute(f"RELEASE {name}")
            raise
        else:
            c.execute(f"RELEASE {name}")
        return
    c.execute("BEGIN IMMEDIATE")
    try:
        yield c
    except BaseException:
        c.execute("ROLLBACK")
        raise
    else:
        c.execute("COMMIT")


def dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def loads(text: str | None) -> Any:
    return None if text is None else json.loads(text)


# --- control state -------------------------------------------------------------------

DEFAULT_CONTROL: dict[str, Any] = {
    "clockOffsetSeconds": 0.0,
    "governanceEnabled": True,
    "faults": {
        "latencyMs": 0,
        "errorRate": 0.0,
        "rateLimitPerSecond": 0,
        "retryAfterSeconds": 1,
        "outage": False,
        # Answers about these customers come back malformed (to prove a client marks
        # that one customer and carries on): "truncated" JSON or a wrong "shape".
        "malformedCustomerIds": [],
        "malformedMode": "truncated",
        # Every request about these customers answers 503 (a failure of some rows only).
        "failingCustomerIds": [],
    },
    "webhook": {"url": None, "secret": None, "retryDelaySeconds": 30.0},
    "eventAggregationDelaySeconds": 0.0,
    "seed": None,  # None | "running" | "done" | "failed" (runemulator --seed demo)
    "governanceLagSeconds": 0.0,
}


def get_control(c: sqlite3.Connection | None = None) -> dict[str, Any]:
    c = c or conn()
    row = c.execute("SELECT value FROM control WHERE key='state'").fetchone()
    state = json.loads(json.dumps(DEFAULT_CONTROL))
    if row:
        _merge(state, json.loads(row[0]))
    return state


def set_control(patch: dict[str, Any]) -> dict[str, Any]:
    with write() as c:
        state = get_control(c)
        _merge(state, patch)
        c.execute(
            "INSERT INTO control (key, value) VALUES ('state', ?) "
            "ON CONFLICT (key) DO UPDATE SET value=excluded.value",
            (dumps(state),),
        )
    return state


def _merge(into: dict[str, Any], patch: dict[str, Any]) -> None:
    for key, value in patch.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = value
