"""The ``measurements`` table read back as usage: one row per usage report or per matched
event and feature (calculated usage stores the delta in ``num``; meters store the
aggregated field in ``num`` or the unique value in ``str``), summed over a period by the
feature's meter function and unit transformation."""
from __future__ import annotations

import math
import sqlite3
from datetime import datetime
from typing import Any

from .. import clock

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
