"""Typed values the read model's reads return (lists, rankings, counts, sync status), and
the time and text conversions shared by its modules."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

@dataclass(frozen=True)
class CustomerRow:
    id: str
    name: str | None
    email: str | None
    plan_id: str | None
    plan_name: str | None
    status: str | None
    highest_utilization: float | None
    archived: bool
    fetched_at: datetime | None
    error: str | None
    error_at: datetime | None


@dataclass(frozen=True)
class CustomerPage:
    rows: list[CustomerRow]
    total: int  # matching customers, across every page
    offset: int
    limit: int
    next_offset: int | None
    prev_offset: int | None
    more: bool = False  # a search matched more customers than ``total`` counts (search.COUNT_CAP)


@dataclass(frozen=True)
class EntitlementRank:
    customer_id: str
    customer_name: str | None
    feature_id: str
    feature_name: str
    usage: float | None
    limit: float | None
    soft_limit: bool
    utilization: float
    period_end: datetime | None


@dataclass(frozen=True)
class BudgetRank:
    customer_id: str
    customer_name: str | None
    entity_id: str
    entity_name: str | None
    feature_id: str | None
    currency_id: str | None
    scope: tuple[str, ...]
    cadence: str | None
    limit: float | None
    usage: float | None
    utilization: float | None
    period_end: datetime | None


@dataclass(frozen=True)
class HistogramBin:
    lower: float
    upper: float | None  # None: open-ended ("100 % and over")
    label: str
    count: int


@dataclass(frozen=True)
class ThresholdCounts:
    at_80: int  # utilization >= 0.8
    at_100: int  # utilization >= 1.0


@dataclass(frozen=True)
class Catalog:
    features: dict[str, dict[str, Any]]
    packages: dict[str, dict[str, Any]]
    fetched_at: datetime | None
    entity_types: dict[str, dict[str, Any]] = field(default_factory=dict)
    # False: Stigg said governance is not enabled; None: not known yet (never read).
    governance_enabled: bool | None = None


@dataclass(frozen=True)
class SyncStatus:
    last_sweep_started_at: datetime | None
    last_sweep_finished_at: datetime | None
    last_sweep_duration: float | None
    last_sweep_stats: dict[str, Any]
    sweep_running: bool
    customers_total: int
    customers_behind: int
    customers_in_error: int
    errors_seen: int
    rate_limited_seen: int

    @property
    def healthy(self) -> bool:
        """A sweep has finished and no customer's data is older than the stale limit."""
        return self.last_sweep_finished_at is not None and self.customers_behind == 0



# --- conversions -----------------------------------------------------------------------------


def iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is None:
        # Inferred: the client hands out UTC; naive values are taken as UTC, never local time.
        value = value.replace(tzinfo=timezone.utc)
    return value.isoformat()


def parse_time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def epoch(value: datetime) -> float:
    return (value if value.tzinfo else value.replace(tzinfo=timezone.utc)).timestamp()


def to_json(value: Any) -> str:
    """A stored value as JSON, without the spaces json.dumps puts after "," and ":" by
    default: they were ~7 % of every stored document (see bench/README.md, memory)."""
    return json.dumps(value, separators=(",", ":"))


def as_str(value: Any) -> Any:
    """A Redis reply as str (the read model works with or without decode_responses)."""
    return value.decode() if isinstance(value, bytes) else value


def json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, (tuple, set, frozenset)):
        return list(value)
    raise TypeError(f"cannot store {type(value).__name__} as JSON")
