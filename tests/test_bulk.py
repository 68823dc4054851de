"""Bulk grants through the pages, before anything is sent: rows ticked on the near-limit
view (or every row its filter matches), the one choice, the dry run (rows that change
nothing are not ticked), a CSV upload with bad rows and bad files, and who may do what.
The read model is the app's own, filled from the emulator over real HTTP."""
from __future__ import annotations

import io
import json
import re

import pytest
from django.urls import reverse

from dashboard import sync
from dashboard.models import AuditEntry, BulkBatch, BulkRow

from . import bulk_world as bw
from . import emulator_world as w
from .bulk_world import fresh, world  # noqa: F401 (fixtures)
from .pages import htmx, signed_in, text_of

pytestmark = pytest.mark.django_db


def upload(client, text: str | bytes, name: str = "grants.csv", **fields):
    get = client.get(reverse("bulk"))
    data = text.encode() if isinstance(text, str) else text
    file = io.BytesIO(data)
    file.name = name
    return client.post(reverse("bulk"), {"file": file, "reason": "Renewals", "ticket": "", "token": bw.token_of(get),
                                         **fields})


def test_the_dry_run_ticks_only_rows_that_change_something(fresh):
    a, b, c, d = fresh["cids"][:4]
    e, calls = fresh["emu"], fresh["calls"]
    w.grant(e, b, calls, usageLimit=8000)  # more than the batch gives: the grant would take away
    w.grant(e, c, calls, usageLimit=5000, resetPeriod="MONTH")  # exactly what the batch gives: nothing changes
    for cid in (b, c):
        assert sync.refresh_customer(fresh["client"], fresh["rm"], cid)
    cs = signed_in("Customer success", "cassie")
    form, sent = bw.select(cs, fresh, [a, b, c, d])
    assert "4 entitlements of 4 customers : API calls (4)." in text_of(form)
    batch = bw.batch_of(sent)
    page = text_of(cs.get(reverse("bulk-batch", args=[batch.pk])))
    assert "Dry run" in page and "4 rows · 2 ticked" in page and "Nothing has been sent to Stigg" in page
    rows = {r.customer_id: r for r in batch.rows.all()}
    assert set(bw.ticked(cs, batch)) == {rows[a].pk, rows[d].pk}
    assert (rows[a].before, rows[a].after, rows[a].grant_text) == ("1,000 calls", "5,000 calls",
                                                                    "5,000 calls for 1 month")
    # a winning grant that resets counts usage from its own start (rules.promotions): 0 % after
    assert rows[a].utilization_before == pytest.approx(0.9) and rows[a].utilization_after == 0
    assert "The customer gets less than now: 8,000 calls → 5,000 calls." in page
    assert "This grant changes nothing the customer gets now" in page
    assert "It replaces the active promotion granting 8,000 calls" in page
    assert [p["usageLimit"] for p in bw.promotions(fresh, a)] == [] and AuditEntry.objects.count() == 0
    # the same form sent again is the same batch
    again = bw.batch_of(cs.post(reverse("bulk-select"), {
        "row": [json.dumps([cid, calls]) for cid in (a, b, c, d)], "dry_run": "1", "amount": "to", "limit": "5000",
        "period": "1 month", "reason": "Quarter-end crunch", "token": str(batch.token)}))
    assert again.pk == batch.pk and BulkBatch.objects.count() == 1


def test_every_entitlement_that_matches_the_filter(fresh):
    cs = signed_in("Customer success", "cassie")
    page = cs.get(reverse("near-limit"), {"capability": fresh["calls"]})
    assert page.status_code == 200
    boxes = re.findall(r'<input type="checkbox" name="row" value="([^"]+)"', page.content.decode())
    assert len(boxes) == 3  # the three customers at 90 %
    filter_params = re.search(r'name="filter" value="([^"]*)"', page.content.decode()).group(1)
    form = cs.post(reverse("bulk-select"), {"select_all": "1", "filter": filter_params.replace("&amp;", "&")})
    assert "3 entitlements of 3 customers" in text_of(form)
    sent = cs.post(reverse("bulk-select"), {"select_all": "1", "filter": filter_params.replace("&amp;", "&"),
                                            "dry_run": "1", "amount": "percent", "percent": "50",
                                            "period": "1 week", "reason": "Launch week", "token": bw.token_of(form)})
    batch = bw.batch_of(sent)
    assert sorted(r.customer_id for r in batch.rows.all()) == sorted(fresh["cids"][:3])
    assert {r.after for r in batch.rows.all()} == {"1,500 calls"}  # the plan's 1,000 + 50 %
    assert batch.summary == "the plan's limit + 50 %, 1 week: 3 near-limit rows"


def test_the_choice_form_says_what_is_wrong(fresh):
    cs = signed_in("Customer success", "cassie")
    cid = fresh["cids"][0]
    for choice, message in [({"limit": ""}, "Give the limit to raise to"),
                            ({"limit": "-3"}, "A limit is a whole number of 0 or more."),
                            ({"amount": "percent", "percent": ""}, "Give the percentage to add"),
                            ({"amount": "percent", "percent": "lots"}, "“lots” is not a number"),
                            ({"amount": "percent", "percent": "0"}, "A percentage is a number above 0"),
                            ({"period": "custom", "end_date": ""}, "Give the end date of a custom period."),
                            ({"period": "custom", "end_date": "2001-01-01"}, "The end date is in the past"),
                            ({"reason": ""}, "Say why")]:
        _, answer = bw.select(cs, fresh, [cid], **choice)
        assert answer.status_code == 200 and message in text_of(answer), message
    assert BulkBatch.objects.count() == 0
    nothing = cs.post(reverse("bulk-select"), {"row": ["not json", json.dumps(["only-one"])]})
    assert nothing.status_code == 400 and "Nothing was selected" in text_of(nothing)


def test_a_csv_upload_shows_each_bad_row_with_its_message(fresh):
    a, b = fresh["cids"][:2]
    calls, sso = fresh["calls"], fresh["sso"]
    csv = (f"customer,feature,limit,period,end_date\n{a},{calls},\"20,000\",1 month,\n{b},{sso},,1 year,\n"
           f"nobody-here,{calls},5,1 month,\n{a},no-such-feature,5,1 month,\n{b},{calls},lots,1 month,\n"
           f"{a},{sso},5,1 year,\n{a},{calls},9000,1 week,\n{b},{calls},5,custom,\n")
    cs = signed_in("Customer success", "cassie")
    batch = bw.batch_of(upload(cs, csv))
    page = cs.get(reverse("bulk-batch", args=[batch.pk]))
    assert page.status_code == 200
    text = text_of(page)
    rows = list(batch.rows.order_by("position"))
    assert [r.state for r in rows] == ["pending", "pending"] + ["bad"] * 6
    assert (rows[0].after, rows[1].after, rows[1].grant_text) == ("20,000 calls", "on", "on for 1 year")
    for message in ("There is no customer with this id in the dashboard's data",
                    "There is no feature “no-such-feature” in the catalog.",
                    "Line 6: Limit: “lots” is not a number.", "SSO is on or off: it takes no limit.",
                    "The same customer and feature as row 1", "Line 9: A custom period needs an end date"):
        assert message in text, message
    assert "This is more than 10× what the plan gives" in text and "a row gives more than 10×" in text
    assert len(bw.ticked(cs, batch)) == 2 and batch.summary == "grants.csv: 8 rows"


@pytest.mark.parametrize("body, message", [
    ("name,amount\nacme,5\n", "The header must name exactly the columns customer, feature, limit, period, end_date"),
    ("customer,feature,limit,period,end_date\n", "a header but no rows"),
    ("customer,feature,limit,period,end_date\n" + "a,b,1,1 month,\n" * 4, "more than 3 rows"),
    (b"\xff\xfe\x00b\x00i\x00n", "not UTF-8"),
])
def test_a_csv_wrong_as_a_whole_is_refused_with_a_clear_message(world, settings, body, message):
    settings.BULK_MAX_ROWS = 3
    answer = upload(signed_in("Customer success", "cassie"), body)
    assert answer.status_code == 400 and message in text_of(answer)
    assert BulkBatch.objects.count() == 0


def test_a_huge_csv_is_refused_before_it_is_read(world, settings):
    settings.BULK_CSV_MAX_BYTES = 5000
    answer = upload(signed_in("Customer success", "cassie"), "customer,feature,limit,period,end_date\n" + "x" * 6000)
    assert answer.status_code == 400 and "The file is 6,039 bytes; at most 5,000 are read." in text_of(answer)
    no_file = signed_in("Customer success", "carl").post(reverse("bulk"), {"reason": "x", "token": "x"})
    assert no_file.status_code == 400 and "Choose the CSV file to upload." in text_of(no_file)
    assert BulkBatch.objects.count() == 0


def test_the_template_downloads_and_the_upload_page_explains_the_format(world):
    cs = signed_in("Customer success", "cassie")
    template = cs.get(reverse("bulk-template"))
    assert template["Content-Type"].startswith("text/csv") and template.content.decode().startswith(
        "customer,feature,limit,period,end_date\r\n")
    page = text_of(cs.get(reverse("bulk")))
    assert "customer,feature,limit,period,end_date" in page and "Download the template" in page
    assert "at most 1,000 rows" in page


def test_viewers_are_refused_every_write(fresh):
    cs = signed_in("Customer success", "cassie")
    batch = bw.batch_of(bw.select(cs, fresh, fresh["cids"][:2])[1])
    row_ids = [r.pk for r in batch.rows.all()]
    viewer = signed_in("Viewers", "vera")
    file = io.BytesIO(b"customer,feature,limit,period,end_date\n")
    file.name = "x.csv"
    writes = [(reverse("bulk"), {"file": file, "reason": "x", "token": str(batch.token)}),
              (reverse("bulk-select"), {"row": [json.dumps([fresh["cids"][0], fresh["calls"]])]}),
              (reverse("bulk-batch", args=[batch.pk]), {"row": row_ids}),
              (reverse("bulk-undo", args=[batch.pk]), {"reason": "x"}),
              (reverse("bulk-resume", args=[batch.pk]), {}),
              (reverse("bulk-approve", args=[batch.pk]), {"reason": "x"}),
              (reverse("bulk-reject", args=[batch.pk]), {"reason": "x"})]
    for url, data in writes:
        assert viewer.post(url, data).status_code == 403, url
    for url in (reverse("bulk-approve", args=[batch.pk]), reverse("bulk-reject", args=[batch.pk])):
        assert cs.post(url, {"reason": "x"}).status_code == 403, url  # deciding is for leads
    batch.refresh_from_db()
    assert batch.status == "draft" and AuditEntry.objects.count() == 0
    # viewers may look: the dry run without its checkboxes and confirm button, no nav link
    page = viewer.get(reverse("bulk-batch", args=[batch.pk]))
    assert page.status_code == 200 and 'name="row"' not in page.content.decode()
    assert "Confirm: grant" not in text_of(page) and ">Bulk grants</a>" not in viewer.get(reverse("bulk")).content.decode()
    assert "Upload a CSV" not in text_of(viewer.get(reverse("bulk")))
    near = viewer.get(reverse("near-limit"), {"capability": fresh["calls"]}).content.decode()
    assert 'name="row"' not in near and "bulk-select" not in near


def test_only_the_author_confirms_a_dry_run(fresh):
    cs = signed_in("Customer success", "cassie")
    batch = bw.batch_of(bw.select(cs, fresh, fresh["cids"][:2])[1])
    other = signed_in("Customer success", "carl")
    assert 'name="row"' not in other.get(reverse("bulk-batch", args=[batch.pk])).content.decode()
    refused = other.post(reverse("bulk-batch", args=[batch.pk]), {"row": [r.pk for r in batch.rows.all()]})
    assert "Only cassie, who made this dry run, can confirm it" in text_of(other.get(refused.url))
    none = cs.post(reverse("bulk-batch", args=[batch.pk]), {"row": []})
    assert "Tick at least one row to grant." in text_of(cs.get(none.url))
    batch.refresh_from_db()
    assert batch.status == "draft"


def test_the_near_limit_poll_pauses_while_rows_are_ticked_and_a_missing_batch_is_a_404(world):
    cs = signed_in("Customer success", "cassie")
    page = cs.get(reverse("near-limit"), {"capability": world["calls"]}).content.decode()
    assert 'data-poll-unless="input[name=row]:checked"' in page  # app.js skips the poll while one is ticked
    assert 'data-check-all' in page and "or to every entitlement that matches this filter" in page
    assert cs.get("/bulk/999999/").status_code == 404
    assert cs.get("/bulk/999999.csv").status_code == 404
    assert cs.get("/bulk/999999/progress", **htmx("bulk-progress")).status_code == 404
    assert cs.get("/bulk/not-a-number/").status_code == 404


def test_rows_from_a_stale_selection_are_bad_rows_not_errors(fresh):
    cs = signed_in("Customer success", "cassie")
    _, sent = bw.select(cs, fresh, [fresh["cids"][0], "gone-customer"], feature=fresh["calls"])
    batch = bw.batch_of(sent)
    states = dict(batch.rows.values_list("customer_id", "state"))
    assert states == {fresh["cids"][0]: BulkRow.State.PENDING, "gone-customer": BulkRow.State.BAD}
