"""The audit log as CSV: a header, then every row the filters match, newest first, read
from the database CSV_CHUNK rows at a time as the client reads (``.iterator``), so 100,000
rows never sit in memory at once. Text cells a spreadsheet would run as a formula get a
quote first."""
from __future__ import annotations

import json
from typing import Any, Iterator

from ..models import AuditEntry
from ..spreadsheet import line_writer, safe_text
from .query import AuditFilters

CSV_CHUNK = 1000  # rows read from the database at a time
LINES_PER_PIECE = 200  # lines handed to the server at a time
HEADER = ("at", "user", "action", "customer_id", "entity_id", "capability", "scope", "before", "after", "reason",
          "ticket", "outcome", "stigg_status", "stigg_answer", "id", "batch")


def _json(value: Any) -> str:
    return "" if value is None else json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)


def cells(entry: AuditEntry) -> list[str]:
    scope = entry.scope if isinstance(entry.scope, list) else [entry.scope] if entry.scope else []
    return [entry.at.isoformat(), safe_text(entry.username), entry.action, safe_text(entry.customer_id),
            safe_text(entry.entity_id), safe_text(entry.capability), safe_text(";".join(str(s) for s in scope)),
            safe_text(_json(entry.before)), safe_text(_json(entry.after)), safe_text(entry.reason),
            safe_text(entry.ticket), entry.outcome, "" if entry.stigg_status is None else str(entry.stigg_status),
            safe_text(entry.stigg_answer), str(entry.pk), str(entry.batch_id or "")]


def csv_lines(filters: AuditFilters) -> Iterator[str]:
    """The CSV, LINES_PER_PIECE lines to a piece: the server writes pieces, not 100,000 lines."""
    writer = line_writer()
    piece = [writer.writerow(HEADER)]
    for entry in filters.queryset().order_by("-at", "-id").iterator(chunk_size=CSV_CHUNK):
        piece.append(writer.writerow(cells(entry)))
        if len(piece) >= LINES_PER_PIECE:
            yield "".join(piece)
            piece = []
    if piece:
        yield "".join(piece)
