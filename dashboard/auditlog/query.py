"""The audit log's query: its filters read from a query string, the keyset cursor, and one
page of rows, newest first.

Paging is by keyset, never OFFSET: a page is "the 50 rows older (or newer) than this row",
found by the index on (filter, at, id) whatever the page's depth, and a row recorded while
someone pages is neither shown twice nor skipped. Rows with the same ``at`` are told apart
by ``id``, so the order (``-at, -id``) is total.

    parsed = parse(request.GET)        # filters, cursor, and what was not understood
    page = read_page(parsed.filters, parsed.cursor)
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from typing import Mapping

from django.db.models import Q, QuerySet

from ..models import AuditEntry

PAGE_SIZE = 50
MAX_CUSTOMER_ID = 1000  # as the near-limit filter: Stigg's ids have no documented length
MAX_USERNAME = 150  # Django's username field
MAX_ECHO = 2000  # a value too long to use is shown back this far, no further
FILTERS = ("customer", "user", "action", "since", "until")
ACTIONS = dict(AuditEntry.Action.choices)

_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_CURSOR = re.compile(r"(older|newer)\.(\d{1,18})\.(\d{1,19})")
_MAX_ID = 2**63 - 1  # a bigint: anything larger cannot be a row, and PostgreSQL would refuse it
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


@dataclass(frozen=True)
class AuditFilters:
    """What the person asked for; empty or None: no filter."""

    customer: str = ""  # a customer id, exactly
    user: str = ""  # the username as it was when the change was made, exactly
    action: str = ""  # one of AuditEntry.Action
    since: date | None = None  # inclusive, UTC
    until: date | None = None  # inclusive, UTC

    @property
    def active(self) -> bool:
        return any(self.params())

    def params(self) -> dict[str, str]:
        """The filters as query parameters, only those in use (for links)."""
        values = {"customer": self.customer, "user": self.user, "action": self.action,
                  "since": self.since.isoformat() if self.since else "",
                  "until": self.until.isoformat() if self.until else ""}
        return {name: value for name, value in values.items() if value}

    def queryset(self) -> QuerySet[AuditEntry]:
        rows = AuditEntry.objects.all()
        if self.customer:
            rows = rows.filter(customer_id=self.customer)
        if self.user:
            rows = rows.filter(username=self.user)
        if self.action:
            rows = rows.filter(action=self.action)
        if self.since:
            rows = rows.filter(at__gte=datetime.combine(self.since, time.min, tzinfo=timezone.utc))
        if self.until and self.until < date.max:  # until 9999-12-31: no end at all
            rows = rows.filter(at__lt=datetime.combine(self.until + timedelta(days=1), time.min, tzinfo=timezone.utc))
        return rows


@dataclass(frozen=True)
class Cursor:
    """A position in the log: the rows older (or newer) than the row at (at, id).
    In a URL: ``older.<microseconds since 1970>.<id>``, or ``newer.…``."""

    newer: bool
    at: datetime
    id: int

    def __str__(self) -> str:
        micros = (self.at - _EPOCH) // timedelta(microseconds=1)
        return f"{'newer' if self.newer else 'older'}.{micros}.{self.id}"

    @classmethod
    def older_than(cls, entry: AuditEntry) -> Cursor:
        return cls(False, entry.at, entry.pk)

    @classmethod
    def newer_than(cls, entry: AuditEntry) -> Cursor:
        return cls(True, entry.at, entry.pk)

    @classmethod
    def parse(cls, text: str) -> Cursor:
        """Raises ValueError for anything this class did not write."""
        match = _CURSOR.fullmatch(text)
        if not match or int(match[3]) > _MAX_ID:
            raise ValueError(text)
        try:
            at = _EPOCH + timedelta(microseconds=int(match[2]))
        except OverflowError:
            raise ValueError(text) from None
        if at.year > 9999:
            raise ValueError(text)
        return cls(match[1] == "newer", at, int(match[3]))

    def condition(self) -> Q:
        """The rows beyond this position, written so that the index's range on ``at``
        bounds the scan (``at <= T``), and ``id`` only breaks ties within the same ``at``."""
        if self.newer:
            return Q(at__gte=self.at) & (Q(at__gt=self.at) | Q(id__gt=self.id))
        return Q(at__lte=self.at) & (Q(at__lt=self.at) | Q(id__lt=self.id))


@dataclass(frozen=True)
class ParsedQuery:
    filters: AuditFilters
    cursor: Cursor | None
    errors: dict[str, str] = field(default_factory=dict)  # parameter -> what is wrong, in words
    typed: dict[str, str] = field(default_factory=dict)  # what was typed, to show it back in the form


def parse(data: Mapping[str, str]) -> ParsedQuery:
    """The query string's filters and cursor. A value that cannot be used is named in
    ``errors`` (and then no rows are read at all: a list that ignored it would be wrong)."""
    typed = {name: str(data.get(name) or "")[:MAX_ECHO] for name in FILTERS}
    errors: dict[str, str] = {}
    customer = _text(data, "customer", "Customer id", MAX_CUSTOMER_ID, errors, strip=False)
    user = _text(data, "user", "User", MAX_USERNAME, errors, strip=True)
    action = str(data.get("action") or "")
    if action and action not in ACTIONS:
        errors["action"] = f"Action: “{_shown(action)}” is not one of {', '.join(ACTIONS)}."
        action = ""
    since, until = _date(data, "since", "Since", errors), _date(data, "until", "Until", errors)
    if since and until and since > until:
        errors["until"] = f"Until ({until.isoformat()}) is before since ({since.isoformat()}): no day is in between."
    cursor = None
    if data.get("cursor"):
        try:
            cursor = Cursor.parse(str(data["cursor"]))
        except ValueError:
            errors["cursor"] = "This page link is damaged (its cursor is not one the page writes). " \
                               "Start again from the newest rows."
    return ParsedQuery(AuditFilters(customer, user, action, since, until), cursor, errors, typed)


def _shown(value: str, limit: int = 80) -> str:
    return value if len(value) <= limit else value[:limit] + "…"


def _text(data: Mapping[str, str], name: str, label: str, limit: int, errors: dict[str, str], strip: bool) -> str:
    value = str(data.get(name) or "")
    value = value.strip() if strip else value
    if len(value) > limit:
        errors[name] = f"{label}: at most {limit:,} characters; this one has {len(value):,}."
        return ""
    if "\x00" in value:  # no id or name holds one, and PostgreSQL refuses it in a query
        errors[name] = f"{label}: a NUL character (\\x00) is never part of one."
        return ""
    return value


def _date(data: Mapping[str, str], name: str, label: str, errors: dict[str, str]) -> date | None:
    value = str(data.get(name) or "").strip()
    if not value:
        return None
    try:
        if not _DATE.fullmatch(value):
            raise ValueError(value)
        return date.fromisoformat(value)
    except ValueError:
        errors[name] = f"{label}: “{_shown(value)}” is not a date. Use YYYY-MM-DD, e.g. 2026-11-29."
        return None


@dataclass(frozen=True)
class AuditPage:
    entries: list[AuditEntry]
    older: Cursor | None  # the next page towards the oldest rows, when there is one
    newer: Cursor | None  # the previous page towards the newest rows, when there is one
    newest: bool = False  # the first page (also when a newer cursor led back to it)


def read_page(filters: AuditFilters, cursor: Cursor | None = None, size: int = PAGE_SIZE) -> AuditPage:
    rows = filters.queryset()
    if cursor is None:
        return _newest(rows, size)
    if cursor.newer:
        found = list(rows.filter(cursor.condition()).order_by("at", "id")[:size + 1])
        if len(found) <= size:
            # Back at the newest rows: show the first page itself, so the pages line up
            # with the ones the person walked through (and none is short).
            return _newest(rows, size)
        entries = found[:size][::-1]
        return AuditPage(entries, Cursor.older_than(entries[-1]), Cursor.newer_than(entries[0]))
    found = list(rows.filter(cursor.condition()).order_by("-at", "-id")[:size + 1])
    entries = found[:size]
    if not entries:  # past the oldest row (a link kept while filters changed, or typed)
        return AuditPage([], None, None)
    newer = Cursor.newer_than(entries[0])
    # Is there a newer row? Asked in the page's order, not with exists(): without an order
    # PostgreSQL may answer by a sequential scan from the oldest rows up.
    newer_exists = bool(rows.filter(newer.condition()).order_by("at", "id").values_list("id", flat=True)[:1])
    return AuditPage(entries, Cursor.older_than(entries[-1]) if len(found) > size else None,
                     newer if newer_exists else None)


def _newest(rows: QuerySet[AuditEntry], size: int) -> AuditPage:
    found = list(rows.order_by("-at", "-id")[:size + 1])
    entries = found[:size]
    return AuditPage(entries, Cursor.older_than(entries[-1]) if len(found) > size else None, None, newest=True)
