"""The near-limit rows as CSV (``/near-limit.csv``): the header, and one line per row,
with a link back to where the row is looked at, at the dashboard's public address
(DASHBOARD_URL, as notices link: the file travels). Text from Stigg is made safe for
spreadsheets (spreadsheet.py).

The CSV of the near-limit view as it opens (every row at or above 80 %, by utilization),
and of each account owner's rows ("My accounts"), is also built by a worker every
NEAR_LIMIT_CSV_SNAPSHOT_SECONDS (export_tasks.py) and kept whole, gzip-compressed, in the
read model (readmodel/snapshots.py). Read live, its 32,870 rows at 100,000 customers take
seconds; even fetching them whole from Redis took 15 ms for 9.4 MiB, compressed a tenth
of that. A client that accepts gzip (every browser, curl --compressed) gets the stored
bytes as they are; any other, them inflated as it reads. Its time-to-limit words are as of
the build (the file name and ``X-Snapshot-At`` say when), its rows as the read model had
them then; it is sent only while younger than SNAPSHOT_MAX_AGE_INTERVALS intervals, else
the rows are read live, as for every other filter."""
from __future__ import annotations

import gzip
import zlib
from dataclasses import replace
from datetime import datetime, timezone
from typing import Callable, Iterator
from urllib.parse import quote, urlencode

from django.conf import settings
from django.urls import reverse

from .codec import load
from .readmodel import CsvSnapshot, NearLimitQuery, NearLimitRow, ReadModel
from .rules.governance import TimeToLimit, describe_time_to_limit
from .spreadsheet import line_writer, safe_text

CSV_BATCH = 500
SNAPSHOT_QUERY = NearLimitQuery()  # the view as it opens; its owner filter is a body of its own
SNAPSHOT_MAX_AGE_INTERVALS = 3
INFLATE_PIECE = 256 * 1024  # bytes of a compressed snapshot inflated at a time, for a client without gzip

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


def _links() -> Callable[[NearLimitRow], str]:
    """A row's row_link at the dashboard's public address, each customer's URL reversed
    once (a governed customer has thousands of rows)."""
    customer_urls: dict[str, str] = {}
    base_url = settings.DASHBOARD_URL

    def link(row: NearLimitRow) -> str:
        url = customer_urls.get(row.customer_id)
        if url is None:
            url = customer_urls[row.customer_id] = reverse("customer", args=[row.customer_id])
        return base_url + row_link(row, url)

    return link


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


HEADER_LINE = line_writer().writerow(CSV_HEADER)


def _row_lines(rm: ReadModel, query: NearLimitQuery, now: datetime) -> Iterator[tuple[NearLimitRow, str]]:
    """Every row of ``query`` and its line, read from Redis CSV_BATCH at a time."""
    writer, link = line_writer(), _links()
    for row in rm.iter_near_limit(query, CSV_BATCH):
        yield row, writer.writerow(csv_cells(row, now, link(row)))


def csv_lines(rm: ReadModel, query: NearLimitQuery, now: datetime | None = None) -> Iterator[str]:
    """The header, then every row, read from Redis CSV_BATCH at a time as the client reads."""
    yield HEADER_LINE
    yield from (line for _, line in _row_lines(rm, query, now or datetime.now(timezone.utc)))


# --- the snapshot --------------------------------------------------------------------------------


def snapshot_bodies(rm: ReadModel, now: datetime) -> tuple[dict[str, bytes], int]:
    """The CSV of SNAPSHOT_QUERY (key ""), and of each account owner's rows (key: the
    owner), each gzip-compressed whole; and how many rows."""
    every: list[str] = [HEADER_LINE]
    owners: dict[str, list[str]] = {}
    for row, line in _row_lines(rm, SNAPSHOT_QUERY, now):
        every.append(line)
        if row.owner:
            owners.setdefault(row.owner, [HEADER_LINE]).append(line)
    return {owner: gzip.compress("".join(lines).encode(), mtime=0)
            for owner, lines in {"": every, **owners}.items()}, len(every) - 1


def fresh_snapshot(rm: ReadModel, query: NearLimitQuery, interval: float, now: datetime) -> CsvSnapshot | None:
    """The snapshot of ``query`` when there is one younger than SNAPSHOT_MAX_AGE_INTERVALS
    intervals (``interval`` 0: snapshots are off), else None: read the rows live. An owner
    with no row near its limit has the header alone."""
    if interval <= 0 or query.owner == "" or replace(query, owner=None) != SNAPSHOT_QUERY:
        return None
    snapshot = rm.near_limit_csv(query.owner)
    if snapshot is None or (now - snapshot.at).total_seconds() > interval * SNAPSHOT_MAX_AGE_INTERVALS:
        return None
    if not snapshot.body:
        return replace(snapshot, body=gzip.compress(HEADER_LINE.encode(), mtime=0))
    return snapshot


def inflated(body: bytes) -> Iterator[bytes]:
    """A compressed snapshot inflated a piece at a time, as the client reads."""
    inflate = zlib.decompressobj(wbits=31)  # gzip
    for start in range(0, len(body), INFLATE_PIECE):
        yield inflate.decompress(body[start:start + INFLATE_PIECE])
    yield inflate.flush()
