"""The governance tree query (stigg-api.md §9.5): one row per live entity, or, with
featureIds/currencyIds, one row per matching budget with its usage in the current
cadence window; filtered, then sorted with nulls last and stable tie-breakers, so a
keyset cursor over the sort key pages without gaps or repeats.
"""
from __future__ import annotations

import sqlite3
from datetime import datetime
from typing import Any

from .. import clock, periods
from .governance import SCOPE_SEPARATOR, capability_key, usage_in, utilization, window_key

SORT_KEYS = ("utilization", "currentUsage", "usageLimit", "scopeSize", "id", "createdAt")
SCOPES = ("all", "nodeWide", "scoped")
ORDERS = ("asc", "desc")


class _Desc:
    """Reverses the order of one sort component."""

    __slots__ = ("v",)

    def __init__(self, v: Any) -> None:
        self.v = v

    def __lt__(self, other: "_Desc") -> bool:
        return other.v < self.v

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Desc) and self.v == other.v


def sort_raw(node: dict[str, Any], sort_by: str) -> Any:
    if sort_by == "id":
        return node["entityId"]
    if sort_by == "scopeSize":
        return len(node["scopeEntityIds"])
    if sort_by == "createdAt":
        return node["_createdAt"]
    return node[sort_by]


def sort_key(raw: Any, entity_id: str, tie: str, desc: bool) -> tuple[Any, ...]:
    # Inferred: nulls last in both directions, ties by entityId ascending, then by
    # assignment id so hydrated rows of one entity have a stable order too.
    if raw is None:
        return (1, 0, entity_id, tie)
    if desc:
        raw = _Desc(raw) if isinstance(raw, str) else -raw
    return (0, raw, entity_id, tie)


def _entity_filters(p: dict[str, Any]) -> tuple[str, list[Any]]:
    sql, args = "", []
    if p["entityTypeIds"] is not None:
        sql += f" AND e.entity_type_id IN ({','.join('?' * len(p['entityTypeIds']))})"
        args += p["entityTypeIds"]
    if p["search"]:
        # instr, not LIKE, so % and _ in the search text match literally.
        sql += " AND (instr(lower(e.id), ?) > 0 OR instr(lower(coalesce(e.display_name, '')), ?) > 0)"
        args += [p["search"], p["search"]]
    return sql, args


def tree_nodes(c: sqlite3.Connection, customer_id: str, p: dict[str, Any]) -> list[dict[str, Any]]:
    where, args = _entity_filters(p)
    capabilities = [capability_key(f, None) for f in p["featureIds"]] + [capability_key(None, x) for x in p["currencyIds"]]
    if not capabilities:
        # Tree mode (guarantee 35): one row per live entity, no configuration.
        if p["scope"] == "scoped":
            return []
        rows = c.execute(
            "SELECT e.id, e.entity_type_id, e.display_name, e.parent_id, json_extract(e.doc, '$.createdAt') AS created_at "
            f"FROM entities e WHERE e.customer_id = ? AND e.archived_at IS NULL{where}", [customer_id, *args])
        return [{
            "entityId": r["id"], "entityTypeId": r["entity_type_id"], "displayName": r["display_name"],
            "parentId": r["parent_id"], "scopeEntityIds": [], "cadence": None, "usageLimit": None,
            "currentUsage": None, "utilization": None, "usagePeriodStart": None, "usagePeriodEnd": None,
            "_createdAt": r["created_at"], "_tie": "",
        } for r in rows]
    # Hydrated mode (Inferred): one row per matching assignment of a live entity.
    if p["scope"] == "nodeWide":
        where += " AND a.scope_key = ''"
    elif p["scope"] == "scoped":
        where += " AND a.scope_key != ''"
    latest = "(SELECT {col} FROM assignment_usage u WHERE u.assignment_id = a.id ORDER BY u.window_start DESC LIMIT 1)"
    rows = c.execute(
        "SELECT a.id, a.entity_id, a.capability, a.scope_key, "
        "json_extract(a.doc, '$.usageLimit') AS usage_limit, json_extract(a.doc, '$.cadence') AS cadence, "
        "json_extract(a.doc, '$.createdAt') AS created_at, e.entity_type_id, e.display_name, e.parent_id, "
        f"{latest.format(col='window_start')} AS last_window, {latest.format(col='usage')} AS last_usage "
        "FROM assignments a JOIN entities e ON e.customer_id = a.customer_id AND e.id = a.entity_id "
        f"WHERE a.customer_id = ? AND a.capability IN ({','.join('?' * len(capabilities))}) "
        f"AND e.archived_at IS NULL{where}",
        [customer_id, *capabilities, *args]).fetchall()
    now = clock.now()
    # Assignments written together share cadence and createdAt, so windows repeat a lot;
    # computing each once keeps a large tree fast. Period text is rendered per page only.
    windows: dict[tuple[str, str], tuple[datetime, datetime, str] | None] = {}
    nodes = []
    for r in rows:
        wkey = (r["cadence"], r["created_at"])
        if wkey not in windows:
            try:
                start, end = periods.cadence_window(r["cadence"], clock.parse(r["created_at"]), now)
                windows[wkey] = (start, end, window_key(start))
            except (ValueError, TypeError):
                windows[wkey] = None  # per the SDK: null period when a stored cadence can't be parsed
        window = windows[wkey]
        usage = 0.0
        if window is not None and r["last_window"] is not None:
            # The newest window is nearly always the current one; otherwise look it up.
            usage = float(r["last_usage"]) if r["last_window"] == window[2] else usage_in(c, r["id"], window[0])
        kind, _, cap_id = r["capability"].partition(":")
        nodes.append({
            "entityId": r["entity_id"], "entityTypeId": r["entity_type_id"], "displayName": r["display_name"],
            "parentId": r["parent_id"],
            "scopeEntityIds": r["scope_key"].split(SCOPE_SEPARATOR) if r["scope_key"] else [],
            ("featureId" if kind == "feature" else "currencyId"): cap_id,
            "cadence": r["cadence"], "usageLimit": r["usage_limit"], "currentUsage": usage,
            "utilization": utilization(r["usage_limit"], usage),
            "usagePeriodStart": window[0] if window else None, "usagePeriodEnd": window[1] if window else None,
            "_createdAt": r["created_at"], "_tie": r["id"],
        })
    return nodes


def ranked(c: sqlite3.Connection, customer_id: str, p: dict[str, Any]) -> list[tuple[tuple[Any, ...], dict[str, Any]]]:
    """The rows of the query ``p`` that pass minUtilization, as (sort key, row) in order."""
    nodes = tree_nodes(c, customer_id, p)
    if p["minUtilization"] is not None:
        # Inferred: rows without a utilization never pass a minimum.
        nodes = [n for n in nodes if n["utilization"] is not None and n["utilization"] >= p["minUtilization"]]
    desc = p["order"] == "desc"
    return sorted(((sort_key(sort_raw(n, p["sortBy"]), n["entityId"], n["_tie"], desc), n) for n in nodes),
                  key=lambda kn: kn[0])


def render_node(node: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in node.items() if not k.startswith("_")}
    for key in ("usagePeriodStart", "usagePeriodEnd"):
        if isinstance(out[key], datetime):
            out[key] = clock.iso(out[key])
    return out
