"""The near-limit rows as CSV (``/near-limit.csv``): the header, and one line per row,
with a link back to where the row is looked at. Text from Stigg is made safe for
spreadsheets (spreadsheet.py)."""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Iterator
from urllib.parse import quote, urlencode

from django.urls import reverse

from .codec import load
from .readmodel import NearLimitQuery, NearLimitRow, ReadModel
from .rules.governance import TimeToLimit, describe_time_to_limit
from .spreadsheet import line_writer, safe_text

CSV_BATCH = 500

CSV_HEADER = ("kind", "customer_id", "customer_name", "plan", "account_owner", "entity_id", "entity_name",
              "entity_type", "capability", "feature_name", "scope", "usage", "limit", "utilization",
              "time_to_limit", "reaches_limit_at", "period", "period_end", "data_read_at", "link")


def time_to_limit_words(row: NearLimitRow, now: datetime) -> str:
    return describe_time_to_limit(load(TimeToLimit, row.ttl), now) if row.ttl else "not enough usage yet to project"


def _reaches_at(row: NearLimitRow) -> datetime | None:
    when = (row.ttl or {}).get("reaches_at")
    return datetime.fromisoformat(when) if when else None


def row_link(row: NearLimitRow, customer_url: str | None = None) -> str:
    """Where a row is looked at: a budget in its customer's governance tree, opened at its
    entity; an entitlement on its customer's page."""
    customer_url = customer_url or reverse("customer", args=[row.customer_id])
    if row.kind == "budget":
        return f"{customer_url}/governance?{urlencode({'node': row.entity_id}, quote_via=quote)}"
    return f"{customer_url}#metered"


def _number(value: float | None) -> str:
    if value is None:
        return ""
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _iso(value: datetime | None) -> str:
    return value.isoformat() if value else ""


def csv_cells(row: NearLimitRow, now: datetime, link: str) -> list[str]:
    return [row.kind, safe_text(row.customer_id), safe_text(row.customer_name), safe_text(row.plan_id),
            safe_text(row.owner), safe_text(row.entity_id), safe_text(row.entity_name), safe_text(row.entity_type),
            safe_text(row.capability), safe_text(row.feature_name), safe_text(";".join(row.scope)),
            _number(row.usage), _number(row.limit), _number(row.utilization), time_to_limit_words(row, now),
            _iso(_reaches_at(row)), safe_text(row.period), _iso(row.period_end), _iso(row.fetched_at), link]


def csv_lines(rm: ReadModel, query: NearLimitQuery, base_url: str) -> Iterator[str]:
    """The header, then every row, read from Redis CSV_BATCH at a time as the client reads."""
    writer = line_writer()
    now = datetime.now(timezone.utc)
    yield writer.writerow(CSV_HEADER)
    for row in rm.iter_near_limit(query, CSV_BATCH):
        yield writer.writerow(csv_cells(row, now, base_url + row_link(row)))
