"""The audit log's plain parts, called directly: reading the filters and the cursor, keyset
pages, what a row shows of any JSON, the CSV's cells, and the page's queries using the
indexes of migration 0005 (SQLite here; PostgreSQL: bench/bench_audit.py --explain)."""
from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest
from django.db import connection

from dashboard.auditlog import AuditFilters, Cursor, parse, read_page
from dashboard.auditlog.export import cells
from dashboard.spreadsheet import safe_text
from dashboard.auditlog.present import describe_change, ticket_url, value_text, what
from dashboard.models import AuditEntry

from .audit_rows import T, grant, many, record


def test_it_reads_the_filters_it_is_given_and_only_those():
    parsed = parse({"customer": " acme ", "user": " cassie ", "action": "promotion.revoke", "since": "2026-11-01",
                    "until": "2026-11-30", "other": "x"})
    assert parsed.errors == {} and parsed.cursor is None
    # a customer id is taken exactly (ids may hold any character); a username is trimmed
    assert parsed.filters == AuditFilters(" acme ", "cassie", "promotion.revoke", date(2026, 11, 1), date(2026, 11, 30))
    assert parsed.filters.params() == {"customer": " acme ", "user": "cassie", "action": "promotion.revoke",
                                       "since": "2026-11-01", "until": "2026-11-30"}
    empty = parse({"customer": "", "user": "  ", "action": "", "since": "", "until": "", "cursor": ""})
    assert empty.errors == {} and not empty.filters.active and empty.filters.params() == {}


@pytest.mark.parametrize("query, field", [
    ({"since": "2026-1-1"}, "since"), ({"until": "2026-11-31"}, "until"), ({"since": "２０２６-11-01"}, "since"),
    ({"since": "2026-11-02", "until": "2026-11-01"}, "until"), ({"action": "BUDGET.CHANGE"}, "action"),
    ({"customer": "c" * 1001}, "customer"), ({"user": "u" * 151}, "user"), ({"user": "a\x00b"}, "user"),
    ({"cursor": "older.1"}, "cursor"), ({"cursor": "sideways.1.1"}, "cursor"), ({"cursor": "older.-1.1"}, "cursor"),
    ({"cursor": "older.1.9223372036854775808"}, "cursor"),
])
def test_it_names_each_value_it_cannot_use(query, field):
    parsed = parse(query)
    assert list(parsed.errors) == [field]
    assert parsed.typed[field] == query[field][:2000] if field != "cursor" else True


def test_it_keeps_the_extreme_dates_without_overflowing():
    assert parse({"since": "0001-01-01", "until": "9999-12-31"}).errors == {}
    assert str(AuditFilters(until=date.max).queryset().query).count("WHERE") == 0


def test_it_writes_a_cursor_it_reads_back_to_the_microsecond():
    at = datetime(2026, 11, 29, 10, 11, 12, 345678, tzinfo=timezone.utc)
    for newer in (True, False):
        cursor = Cursor(newer, at, 4821)
        assert Cursor.parse(str(cursor)) == cursor
    assert str(Cursor(False, at, 7)).startswith("older.") and str(Cursor(True, at, 7)).startswith("newer.")


@pytest.mark.django_db
def test_it_pages_rows_with_equal_times_by_id():
    rows = many(23, same_time_every=7)  # groups of seven rows at one time
    order = [r.pk for r in sorted(rows, key=lambda r: (r.at, r.pk), reverse=True)]
    seen, page = [], read_page(AuditFilters(), size=5)
    while True:
        seen.append([e.pk for e in page.entries])
        if page.older is None:
            break
        page = read_page(AuditFilters(), page.older, size=5)
    assert [pk for p in seen for pk in p] == order and [len(p) for p in seen] == [5, 5, 5, 5, 3]
    for expected in reversed(seen[:-1]):  # back towards the newest, the same pages
        page = read_page(AuditFilters(), page.newer, size=5)
        assert [e.pk for e in page.entries] == expected
    assert page.newer is None


@pytest.mark.django_db
def test_it_has_no_newer_page_on_an_older_page_whose_newer_rows_are_filtered_out():
    mine = record(customer_id="acme", at=T - timedelta(hours=1))
    other = record(customer_id="globex", at=T)
    page = read_page(AuditFilters(customer="acme"), Cursor.older_than(other))
    assert [e.pk for e in page.entries] == [mine.pk] and page.newer is None and page.older is None


@pytest.mark.parametrize("value, text", [
    (None, "—"), (True, "yes"), (False, "no"), (1000, "1,000"), (2.5, "2.5"), (1e6, "1,000,000"), ("", ""),
    ([], "none"), (["a", "b"], "a, b"), ("2026-12-29T14:05:09.5+01:00", "2026-12-29 13:05 UTC"),
    ("2026-12-29T14:05Z", "2026-12-29 14:05 UTC"), ("2026-12-29T14:05", "2026-12-29 14:05"),
    ("2026-13-29T14:05", "2026-13-29T14:05"), ("2026-12-29", "2026-12-29"), ([True], "[true]"), ({"a": None}, '{"a": null}'), ("x" * 500, "x" * 159 + "…"),
])
def test_it_says_any_json_value_in_words(value, text):
    assert value_text(value) == text


def test_it_describes_a_change_of_any_shape():
    change = describe_change({"limit": 10, "cadence": "P1W"}, {"limit": 25, "cadence": "P1W", "extra": 1})
    assert change.kind == "changed"
    assert [(f.label, f.before, f.after) for f in change.fields] == [("limit", "10", "25"), ("extra", "—", "1")]
    assert [(f.label, f.after) for f in change.same] == [("cadence", "P1W")]
    assert describe_change(None, {"end_date": "x", "feature": "f"}).kind == "added"
    # known keys first, in a fixed order, then the others as recorded
    assert [f.label for f in describe_change(None, {"zeta": 1, "end_date": "x", "feature": "f"}).fields] == \
        ["feature", "end date", "zeta"]
    assert describe_change({"feature": "f"}, None).kind == "removed"
    assert describe_change(None, None).kind == "none"
    assert describe_change("a", ["b"]).fields[0].after == "b"
    assert describe_change({}, 3).kind == "value"


@pytest.mark.parametrize("ticket, url", [
    ("https://support.example.com/t/1", "https://support.example.com/t/1"), ("HTTP://x.example/a", "HTTP://x.example/a"),
    ("ZD-1234", None), ("javascript:alert(1)", None), ("https://", None), ("ftp://x.example/a", None),
    ("//evil.example", None), ("https://x.example/a b", None), ("http://[::1", None), ("", None),
])
def test_it_links_a_ticket_only_when_it_is_an_http_url(ticket, url):
    assert ticket_url(ticket) == url


@pytest.mark.django_db
def test_it_says_what_was_changed():
    assert what(grant(before=None, after={"limit": 5}, capability="seats")) == {"kind": "promotion", "feature": "seats"}
    assert what(grant(after={"feature": "ai-tokens"}))["feature"] == "ai-tokens"
    assert what(record(capability="$credits", scope=["ada", "bot"], entity_id="research")) == {
        "kind": "budget", "entity": "research", "capability": "credits", "is_currency": True, "scope": "ada, bot"}


@pytest.mark.django_db
def test_it_quotes_every_text_cell_a_spreadsheet_would_run():
    assert [safe_text(v) for v in ("=1", "+1", "-1", "@a", "\tx", "a=b", "", None)] == \
        ["'=1", "'+1", "'-1", "'@a", "'\tx", "a=b", "", ""]
    row = cells(record(reason="=2+2", before=None, after=-5, stigg_status=None))
    assert row[7:10] == ["", "'-5", "'=2+2"] and row[12] == ""


def _plans(run) -> list[str]:
    """EXPLAIN QUERY PLAN of every query ``run`` sends to the audit table."""
    sent: list[tuple[str, tuple]] = []

    def keep(execute, sql, params, many, context):
        if "dashboard_auditentry" in sql and not sql.startswith("EXPLAIN"):
            sent.append((sql, params))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(keep):
        run()
    plans = []
    with connection.cursor() as cursor:
        for sql, params in sent:
            cursor.execute("EXPLAIN QUERY PLAN " + sql, params)
            plans.append(" / ".join(str(row[-1]) for row in cursor.fetchall()))
    return plans


@pytest.mark.django_db
@pytest.mark.skipif(connection.vendor != "sqlite", reason="SQLite's plans; PostgreSQL's: bench/bench_audit.py")
@pytest.mark.parametrize("filters, index", [
    (AuditFilters(), "dashboard_auditentry_at_"),  # 0001's index on at: SQLite's indexes end with the rowid, our id
    (AuditFilters(since=date(2026, 11, 1), until=date(2026, 11, 20)), "dashboard_auditentry_at_"),
    (AuditFilters(customer="acme"), "audit_customer_at_idx"),
    (AuditFilters(customer="acme", since=date(2026, 11, 1)), "audit_customer_at_idx"),
    (AuditFilters(user="cassie"), "audit_user_at_idx"),
    (AuditFilters(action="promotion.grant", until=date(2026, 11, 20)), "audit_action_at_idx"),
    (AuditFilters(customer="acme", action="promotion.grant"), "audit_customer_action_idx"),
    (AuditFilters(user="nobody", action="budget.add", since=date(2026, 11, 1)), "audit_user_action_idx"),
])
def test_it_reads_each_page_through_an_index_in_the_pages_order(filters, index):
    many(3)
    at = T - timedelta(minutes=1)
    plans = _plans(lambda: [read_page(filters, cursor) for cursor in
                            (None, Cursor(False, at, 10**6), Cursor(True, at, 1))])
    assert len(plans) >= 4
    for plan in plans:
        assert "TEMP B-TREE" not in plan and "USING" in plan and "INDEX" in plan and index in plan, plan
