"""The ``measurements`` table: one row per usage report or per matched event and feature
(calculated usage stores the delta in ``num``; meters store the aggregated field in
``num`` or the unique value in ``str``), with the row's dimensions kept aside in
``measurement_dimensions`` for usage history grouped by a dimension. Written by
metering.py; summed over a period here, by the feature's meter function and unit
transformation."""
from __future__ import annotations

import math
import sqlite3
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from .. import clock, store

AGGREGATES = {"SUM": "SUM(num)", "MAX": "MAX(num)", "MIN": "MIN(num)", "AVG": "AVG(num)", "COUNT": "COUNT(*)",
              "UNIQUE": "COUNT(DISTINCT str)"}


def usage_in_period(c: sqlite3.Connection, customer_id: str, resource_id: str | None, feature: dict[str, Any],
                    start: datetime | None, end: datetime | None) -> float:
    """Usage of one feature in [start, end). Calculated usage stores deltas, so it sums;
    meters aggregate by their function. FLUCTUATING features never reset."""
    meter = feature.get("meter")
    expression = AGGREGATES[meter["aggregation"]["function"]] if meter else "SUM(num)"
    sql = f"SELECT {expression} FROM measurements WHERE customer_id=? AND resource_id=? AND feature_id=?"
    params: list[Any] = [customer_id, resource_id or "", feature["id"]]
    if feature.get("meterType") != "FLUCTUATING":
        if start is not None:
            sql += " AND ts >= ?"
            params.append(clock.iso(start))
        if end is not None:
            sql += " AND ts < ?"
            params.append(clock.iso(end))
    value = c.execute(sql, params).fetchone()[0] or 0
    return _transform(float(value), feature.get("unitTransformation"))


def _transform(value: float, transformation: dict[str, Any] | None) -> float:
    if not transformation or not transformation.get("divide"):
        return value
    divided = value / transformation["divide"]
    return float(math.ceil(divided) if transformation.get("round") == "UP" else math.floor(divided))


def insert_measurement(c: sqlite3.Connection, customer_id: str, resource_id: str | None, feature_id: str,
                        ts: datetime, num: float | None, text: str | None, dims: dict[str, Any]) -> None:
    cur = c.execute("INSERT INTO measurements (customer_id, resource_id, feature_id, ts, num, str) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    (customer_id, resource_id or "", feature_id, clock.iso(ts), num, text))
    if dims:
        c.execute("INSERT INTO measurement_dimensions (measurement_seq, dimensions) VALUES (?, ?)",
                  (cur.lastrowid, store.dumps(dims)))


@dataclass
class Measured:
    ts: datetime
    num: float | None
    text: str | None
    dims: dict[str, Any]


def history_rows(c: sqlite3.Connection, customer_id: str, feature_id: str, resource_id: str | None,
                  end: datetime) -> list[Measured]:
    rows = c.execute(
        "SELECT m.ts, m.num, m.str, d.dimensions FROM measurements m "
        "LEFT JOIN measurement_dimensions d ON d.measurement_seq = m.seq "
        "WHERE m.customer_id=? AND m.feature_id=? AND m.resource_id=? AND m.ts <= ? ORDER BY m.ts",
        (customer_id, feature_id, resource_id or "", clock.iso(end)),
    ).fetchall()
    return [Measured(clock.parse(r["ts"]), r["num"], r["str"], store.loads(r["dimensions"]) or {}) for r in rows]
