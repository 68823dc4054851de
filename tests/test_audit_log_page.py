"""The audit log page (/audit/) and its CSV (/audit.csv), through Django's test client:
who may read it, what a row shows, the filters, keyset paging, bad input and hostile text."""
from __future__ import annotations

import csv
import io
import re
from datetime import timedelta
from html import unescape
from urllib.parse import parse_qs, urlsplit

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.test import Client
from django.urls import reverse

from dashboard.models import AuditEntry

from .audit_rows import GRANT, T, grant, many, record
from .pages import htmx, text_of

pytestmark = pytest.mark.django_db
HOSTILE = '<script>alert("x")</script>'


@pytest.fixture
def viewer(db) -> Client:
    """Signed in as a member of Viewers, who may read the audit log and change nothing."""
    user = get_user_model().objects.create_user("vera", password="pw-vera-1")
    user.groups.add(Group.objects.get(name="Viewers"))
    c = Client()
    c.force_login(user)
    return c


def page(client: Client, **query: str):
    response = client.get(reverse("audit-log"), query)
    assert response.status_code == 200
    return response


def ids_of(response) -> list[int]:
    return [int(i) for i in re.findall(r'<tr data-audit-id="(\d+)">', response.content.decode())]


def link(response, rel: str) -> str | None:
    found = re.search(rf'<a href="([^"]*)"[^>]*rel="{rel}"', response.content.decode(), re.S)
    return unescape(found[1]) if found else None


def read_csv(response) -> list[dict[str, str]]:
    assert response.streaming
    return list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))


def test_it_sends_anonymous_visitors_to_sign_in():
    c = Client()
    for url in (reverse("audit-log"), reverse("audit-log-csv")):
        response = c.get(url)
        assert response.status_code == 302 and response["Location"].startswith(reverse("login"))
    response = c.get(reverse("audit-log"), **htmx("audit-table"))
    assert response["HX-Redirect"].startswith(reverse("login"))


def test_it_refuses_a_signed_in_user_without_the_permission(browser):
    record(reason="secret reason")
    for url in (reverse("audit-log"), reverse("audit-log-csv")):
        response = browser.get(url)
        assert response.status_code == 403 and b"secret reason" not in response.content
    assert reverse("audit-log") not in browser.get(reverse("near-limit")).content.decode()  # no link in the nav


def test_it_is_in_the_navigation_for_both_roles(viewer):
    assert f'href="{reverse("audit-log")}"' in page(viewer).content.decode()
    user = get_user_model().objects.create_user("cs", password="pw-cs-1")
    user.groups.add(Group.objects.get(name="Customer success"))
    c = Client()
    c.force_login(user)
    assert 'aria-current="page">Audit log' in page(c).content.decode()


def test_it_says_when_nothing_is_recorded_yet(viewer):
    assert "Nothing recorded yet" in text_of(page(viewer))


def test_it_shows_a_budget_change_with_who_when_what_before_after_reason_ticket_and_stiggs_answer(viewer):
    row = record(customer_id="acme", entity_id="research", capability="api-calls", scope=["ada", "bot"],
                 ticket="https://support.example.com/t/42", stigg_answer='{"id": "assign-1"}')
    response = page(viewer)
    body, text = response.content.decode(), text_of(response)
    assert ids_of(response) == [row.pk]
    assert "2026-11-20 12:00 UTC" in text and "cassie" in text and "Budget changed" in text
    assert f'href="{reverse("customer", args=["acme"])}"' in body
    assert "research" in text and "api-calls" in text and "scope ada, bot" in text
    assert "limit 10 → 25" in text and "unchanged: cadence P1W" in text
    assert "launch week" in text
    assert '<a href="https://support.example.com/t/42" rel="noopener noreferrer nofollow"' in body
    assert "Done" in text and "HTTP 200" in text
    assert re.search(r"<details><summary>Stigg's answer</summary><pre class=\"answer\">\{&quot;id&quot;: "
                     r"&quot;assign-1&quot;\}</pre>", body.replace("&#x27;", "'"))


def test_it_shows_promotion_grants_extensions_and_revokes_field_by_field(viewer):
    granted = grant(at=T - timedelta(hours=3), ticket="ZD-1234")
    extended = record(at=T - timedelta(hours=2), action=AuditEntry.Action.PROMOTION_EXTEND, before=dict(GRANT),
                      after={**GRANT, "end_date": "2027-01-20T12:00:00+00:00"})
    revoked = record(at=T - timedelta(hours=1), action=AuditEntry.Action.PROMOTION_REVOKE,
                     before={"feature": "api-calls", "limit": None, "unlimited": True}, after=None,
                     outcome=AuditEntry.Outcome.FAILED, stigg_status=None, stigg_answer="timed out after 5 s")
    response = page(viewer)
    assert ids_of(response) == [revoked.pk, extended.pk, granted.pk]
    text = text_of(response)
    assert "Promotion granted acme filter api-calls new feature api-calls limit 1,000 unlimited no " \
           "soft limit no reset period MONTH enum values none period 1 month end date 2026-12-20 12:00 UTC" in text
    assert "ZD-1234" in text and 'href="ZD-1234"' not in response.content.decode()  # not a URL: text
    assert "end date 2026-12-20 12:00 UTC → 2027-01-20 12:00 UTC" in text
    assert "unchanged: feature api-calls; limit 1,000" in text
    assert "Promotion revoked acme filter api-calls removed feature api-calls limit — unlimited yes" \
        in text
    assert "Failed no answer" in text and "timed out after 5 s" in text


@pytest.mark.parametrize("before, after, shown", [
    (None, None, "nothing recorded"),
    ("ten", 25, "ten → 25"),
    ([1, 2], [1, 2, 3], "1, 2 → 1, 2, 3"),
    ({"limit": 5}, {"cadence": "P1M"}, "limit 5 → — cadence — → P1M"),
    ({"nested": {"a": [1, {"b": None}]}}, {}, "nested {\"a\": [1, {\"b\": null}]} → —"),
    ({"flag": True, "x": 1.5}, {"flag": False, "x": 1.5}, "flag yes → no unchanged: x 1.5"),
    ({"limit": 5}, {"limit": 5}, "no field changed"),
])
def test_it_renders_any_json_before_and_after(viewer, before, after, shown):
    record(before=before, after=after)
    assert shown in text_of(page(viewer))


def test_it_filters_by_customer_user_action_and_dates_alone_and_together(viewer):
    a = record(customer_id="acme", username="cassie", at=T)
    b = grant(customer_id="acme", username="dev", at=T - timedelta(days=1))
    c = record(customer_id="globex", username="dev", at=T - timedelta(days=2))
    d = grant(customer_id="acme/eu west", username="cassie", at=T - timedelta(days=3))

    def shown(**query: str) -> list[int]:
        return ids_of(page(viewer, **query))

    assert shown() == [a.pk, b.pk, c.pk, d.pk]
    assert shown(customer="acme") == [a.pk, b.pk]  # exact, not a prefix
    assert shown(customer="acme/eu west") == [d.pk]
    assert shown(user="dev") == [b.pk, c.pk]
    assert shown(action="promotion.grant") == [b.pk, d.pk]
    assert shown(since="2026-11-19") == [a.pk, b.pk]
    assert shown(until="2026-11-18") == [c.pk, d.pk]
    assert shown(since="2026-11-18", until="2026-11-19") == [b.pk, c.pk]
    assert shown(customer="acme", user="dev") == [b.pk]
    assert shown(user="cassie", action="promotion.grant", until="2026-11-19") == [d.pk]
    assert shown(customer="acme", action="promotion.grant", since="2026-11-19", until="2026-11-19") == [b.pk]
    empty = page(viewer, customer="acme", user="nobody")
    assert "No rows match these filters" in text_of(empty)
    assert f'<a href="{reverse("audit-log")}">Clear the filters</a>' in empty.content.decode()


def test_it_takes_since_and_until_as_whole_utc_days_inclusive(viewer):
    day = T.replace(hour=0, minute=0)
    first, last = record(at=day), record(at=day + timedelta(days=1) - timedelta(microseconds=1))
    record(at=day - timedelta(microseconds=1))
    record(at=day + timedelta(days=1))
    assert ids_of(page(viewer, since="2026-11-20", until="2026-11-20")) == [last.pk, first.pk]


def test_it_pages_back_and_forth_without_losing_or_repeating_a_row(viewer):
    # 130 rows, five to each timestamp: page boundaries fall inside groups of equal times
    rows = many(130, same_time_every=5, action=AuditEntry.Action.PROMOTION_GRANT)
    record(action=AuditEntry.Action.BUDGET_ADD, at=T - timedelta(minutes=10))  # filtered out throughout
    newest_first = [r.pk for r in sorted(rows, key=lambda r: (r.at, r.pk), reverse=True)]
    first = page(viewer, action="promotion.grant")
    assert link(first, "prev") is None and "Nothing older" not in text_of(first)
    assert "⇤ Newest" in viewer.get(link(first, "next")).content.decode()
    pages, response = [ids_of(first)], first
    while (older := link(response, "next")) is not None:
        assert parse_qs(urlsplit(older).query)["action"] == ["promotion.grant"]  # the filter rides along
        response = viewer.get(older)
        pages.append(ids_of(response))
    assert [len(p) for p in pages] == [50, 50, 30]
    assert [pk for p in pages for pk in p] == newest_first
    # and back again: the same pages, in reverse
    for expected in reversed(pages[:-1]):
        newer = link(response, "prev")
        assert newer is not None and parse_qs(urlsplit(newer).query)["action"] == ["promotion.grant"]
        response = viewer.get(newer)
        assert ids_of(response) == expected
    assert link(response, "prev") is None
    assert "⇤ Newest" not in response.content.decode() and "(an older page)" not in text_of(response)


def test_it_neither_repeats_nor_skips_a_row_when_rows_arrive_while_paging(viewer):
    rows = many(60)
    response = page(viewer)
    seen = ids_of(response)
    late = record(at=T + timedelta(minutes=5))
    seen += ids_of(viewer.get(link(response, "next")))
    assert seen == [r.pk for r in rows] and late.pk not in seen


def test_it_says_when_a_cursor_points_past_the_oldest_row(viewer):
    record()
    response = page(viewer, cursor="older.0.1")
    assert ids_of(response) == [] and "Nothing older here" in text_of(response)


@pytest.mark.parametrize("query, message", [
    ({"since": "2026-13-01"}, "Since: “2026-13-01” is not a date. Use YYYY-MM-DD"),
    ({"until": "2026-02-30"}, "Until: “2026-02-30” is not a date"),
    ({"since": "yesterday"}, "Since: “yesterday” is not a date"),
    ({"since": "20261120"}, "Since: “20261120” is not a date"),
    ({"since": "2026-11-21", "until": "2026-11-20"}, "Until (2026-11-20) is before since (2026-11-21)"),
    ({"action": "promotion.delete"}, "Action: “promotion.delete” is not one of budget.change, budget.add"),
    ({"customer": "x" * 5000}, "Customer id: at most 1,000 characters; this one has 5,000."),
    ({"user": "u" * 5000}, "User: at most 150 characters; this one has 5,000."),
    ({"customer": "acme\x00"}, "Customer id: a NUL character"),
    ({"cursor": "older.1.2; DROP TABLE x"}, "This page link is damaged"),
    ({"cursor": "older.999999999999999999.1"}, "This page link is damaged"),
    ({"cursor": "older.1.99999999999999999999"}, "This page link is damaged"),
])
def test_it_names_bad_filters_and_lists_nothing_instead_of_a_wrong_list(viewer, query, message):
    row = record()
    response = page(viewer, **query)
    text = text_of(response)
    assert message in text and "could not be used, so no rows are shown" in text
    assert ids_of(response) == [] and row.pk not in ids_of(response) and 'aria-label="Pages"' not in response.content.decode()
    csv_response = viewer.get(reverse("audit-log-csv"), query)
    assert csv_response.status_code == 400 and message in csv_response.content.decode()


def test_it_keeps_hostile_text_as_text(viewer):
    hostile_id = '"><img src=x onerror=alert(1)>'
    record(customer_id=hostile_id, username="<b>mallory</b>", reason=HOSTILE, ticket="javascript:alert(1)",
           before={HOSTILE: HOSTILE}, after={"x": "<i>y</i>"}, stigg_answer="</pre></details>" + HOSTILE)
    for query in ({}, {"customer": hostile_id}, {"user": "<b>mallory</b>"}, {"customer": HOSTILE * 3}):
        body = page(viewer, **query).content.decode()
        assert "<script>alert" not in body and "<img src=x" not in body and "<b>mallory" not in body
        assert 'href="javascript:' not in body
    body = page(viewer, customer=hostile_id).content.decode()
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in body and "&lt;b&gt;mallory&lt;/b&gt;" in body
    assert len(ids_of(page(viewer, customer=hostile_id))) == 1


def test_it_renders_only_the_table_for_htmx(viewer):
    row = record()
    response = viewer.get(reverse("audit-log"), **htmx("audit-table"))
    body = response.content.decode()
    assert body.lstrip().startswith('<div id="audit-table">') and "<html" not in body
    assert ids_of(response) == [row.pk] and response["Vary"].count("HX-Request") == 1


def test_it_streams_every_matching_row_as_csv_with_a_header(viewer):
    rows = many(120, same_time_every=3)
    grant(customer_id="globex", at=T - timedelta(days=9))
    response = viewer.get(reverse("audit-log-csv"), {"customer": "acme"})
    assert response.status_code == 200 and response["Content-Type"] == "text/csv; charset=utf-8"
    assert re.fullmatch(r'attachment; filename="audit-log-\d{8}-\d{4}\.csv"', response["Content-Disposition"])
    found = read_csv(response)
    assert [int(r["id"]) for r in found] == [r.pk for r in sorted(rows, key=lambda r: (r.at, r.pk), reverse=True)]
    first = found[0]
    assert first["at"] == "2026-11-20T12:00:00+00:00" and first["user"] == "cassie"
    assert first["action"] == "budget.change" and first["customer_id"] == "acme" and first["outcome"] == "done"
    assert first["before"] == '{"limit":10,"cadence":"P1W","scope":[]}' and first["stigg_status"] == "200"
    everything = read_csv(viewer.get(reverse("audit-log-csv")))
    assert len(everything) == 121 and everything[-1]["customer_id"] == "globex"
    assert read_csv(viewer.get(reverse("audit-log-csv"), {"user": "nobody"})) == []


def test_it_defuses_formulas_in_the_csv(viewer):
    record(customer_id="=cmd|' /C calc'!A0", username="@evil", reason="+SUM(A1)", ticket="-2+3",
           entity_id="@team", scope=["=x"], stigg_answer="=HYPERLINK(\"http://x\")")
    row = read_csv(viewer.get(reverse("audit-log-csv")))[0]
    assert row["customer_id"] == "'=cmd|' /C calc'!A0" and row["user"] == "'@evil"
    assert row["reason"] == "'+SUM(A1)" and row["ticket"] == "'-2+3" and row["entity_id"] == "'@team"
    assert row["scope"] == "'=x" and row["stigg_answer"].startswith("'=HYPERLINK")
    # the filter takes the id as it is stored, not as escaped
    assert len(read_csv(viewer.get(reverse("audit-log-csv"), {"customer": "=cmd|' /C calc'!A0"}))) == 1


def test_it_is_linked_from_the_customer_page_filtered_to_that_customer(viewer, browser):
    from dashboard import tasks

    from .near_limit_world import customer_snapshot

    odd = "acme/eu west&x=1"
    rm = tasks.read_model()
    rm.write_customer(*customer_snapshot(odd, name="Acme EU"))
    try:
        body = viewer.get(reverse("customer", args=[odd])).content.decode()
        href = re.search(r'<a href="([^"]*)">Changes made to this customer \(audit log\)</a>', body)[1]
        assert parse_qs(urlsplit(unescape(href)).query) == {"customer": [odd]}
        mine = record(customer_id=odd)
        record(customer_id="acme")
        assert ids_of(viewer.get(unescape(href))) == [mine.pk]
        # no link for someone who could not open it
        assert "(audit log)" not in browser.get(reverse("customer", args=[odd])).content.decode()
    finally:
        rm.remove_customers([odd])


@pytest.mark.parametrize("raw", [
    "customer=%FF%FE&user=%ED%A0%80", "since=%00&until=%00", "action=%00", "cursor=%00", "user=%0A%0D",
    "customer=a&customer=b&cursor=older.1.1&cursor=x", "since=9999-12-31&until=9999-12-31",
    "since=0001-01-01&cursor=older.0.0", "cursor=newer.250000000000000000.9223372036854775807",
    "customer=" + "%F0%9F%92%A5" * 400, "until=" + "9" * 5000,
])
def test_it_never_answers_odd_input_with_a_500(viewer, raw):
    record()
    assert viewer.get(reverse("audit-log"), QUERY_STRING=raw).status_code == 200
    assert viewer.get(reverse("audit-log"), QUERY_STRING=raw, **htmx("audit-table")).status_code == 200
    response = viewer.get(reverse("audit-log-csv"), QUERY_STRING=raw)
    assert response.status_code in (200, 400)
    if response.status_code == 200:
        b"".join(response.streaming_content)
