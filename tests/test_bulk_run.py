"""A bulk grant's job against the emulator over real HTTP, with the app's real Redis: the
grants and their audit rows, Stigg failing some rows (a partial report, no false audit
row), a retried job granting nothing twice, undo leaving what was replaced since, and the
approval policy for a batch (more than 20 customers, a lifetime row; self-approval
refused; rejection; expiry). The job is the Celery task's own body, run here; the browser
test runs it in a real worker."""
from __future__ import annotations

import csv
import io
import time
from datetime import datetime, timedelta, timezone

import pytest
from django.urls import reverse

from dashboard import bulk_tasks, sync, tasks
from dashboard.actions import bulk, bulk_run
from dashboard.models import AuditEntry, BulkBatch, BulkRow

from . import bulk_world as bw
from . import emulator_world as w
from .bulk_world import fresh, world  # noqa: F401 (fixtures)
from .pages import htmx, signed_in, text_of

pytestmark = pytest.mark.django_db


def confirmed(client, world, cids, **choice) -> BulkBatch:
    batch = bw.batch_of(bw.select(client, world, cids, **choice)[1])
    assert bw.confirm(client, batch).status_code == 302
    batch.refresh_from_db()
    return batch


def limits(world, cids) -> dict[str, list]:
    return {cid: [p["usageLimit"] for p in bw.promotions(world, cid)] for cid in cids}


def test_a_bulk_grant_runs_row_by_row_with_an_audit_row_each(fresh):
    cids = fresh["cids"][:3]
    cs = signed_in("Customer success", "cassie")
    batch = confirmed(cs, fresh, cids)
    assert batch.status == "queued" and limits(fresh, cids) == {cid: [] for cid in cids}
    running = cs.get(reverse("bulk-batch", args=[batch.pk]))
    assert 'hx-get="/bulk/%d/progress"' % batch.pk in running.content.decode() and "0 of 3" in text_of(running)
    assert bulk_tasks.run_bulk_batch(batch.pk) == "finished"
    batch.refresh_from_db()
    assert batch.status == "finished" and limits(fresh, cids) == {cid: [5000] for cid in cids}
    entries = AuditEntry.objects.filter(batch=batch).order_by("id")
    assert [(e.action, e.customer_id, e.outcome, e.username, e.reason, e.ticket) for e in entries] == [
        ("promotion.grant", cid, "done", "cassie", "Quarter-end crunch", "T-100") for cid in cids]
    # each customer was read back within the job: the read model shows the promotion
    for cid in cids:
        doc = fresh["rm"].customer(cid)
        assert [p["usage_limit"] for p in doc["stigg"]["promotions"]] == [5000]
    # the progress poll now reloads the page, which is the result
    assert cs.get(reverse("bulk-progress", args=[batch.pk]), **htmx("bulk-progress"))["HX-Refresh"] == "true"
    page = text_of(cs.get(reverse("bulk-batch", args=[batch.pk])))
    assert "3 granted · 0 not granted" in page and "Download the result (CSV)" in page
    # the audit log ties each grant to its batch, on the page and in its CSV
    log = cs.get(reverse("audit-log")).content.decode()
    assert log.count(f'<a href="/bulk/{batch.pk}/">bulk grant #{batch.pk}</a>') == 3
    exported = list(csv.DictReader(io.StringIO(b"".join(cs.get(reverse("audit-log-csv")).streaming_content).decode())))
    assert [r["batch"] for r in exported] == [str(batch.pk)] * 3


def test_stigg_failing_some_rows_gives_a_partial_report_and_no_false_audit_row(fresh, settings):
    settings.STIGG_WRITE_TIMEOUT_SECONDS = 2
    a, b, c, d = fresh["cids"][:4]
    cs = signed_in("Customer success", "cassie")
    batch = confirmed(cs, fresh, [a, b, c, d])
    fresh["emu"].faults(failingCustomerIds=[b])  # Stigg answers 503 for b
    fresh["emu"].data("POST", f"/api/v1/customers/{c}/archive", json={})  # in Stigg only: it refuses c's grant
    try:
        bulk_tasks.run_bulk_batch(batch.pk)
    finally:
        fresh["emu"].clear_faults()
        fresh["emu"].data("POST", f"/api/v1/customers/{c}/unarchive", json={})
    rows = {r.customer_id: r for r in batch.rows.all()}
    assert {cid: rows[cid].state for cid in (a, b, c, d)} == {a: "done", b: "failed", c: "failed", d: "done"}
    assert "Stigg did not answer in time or is unavailable" in rows[b].message and "503" in rows[b].message
    assert rows[c].message.startswith("Stigg refused the change") and "archived" in rows[c].message
    done = set(AuditEntry.objects.filter(batch=batch, outcome="done").values_list("customer_id", flat=True))
    assert done == {a, d}  # no row says done for a grant Stigg did not make
    assert limits(fresh, [a, b, d]) == {a: [5000], b: [], d: [5000]}
    report = cs.get(reverse("bulk-csv", args=[batch.pk]))
    lines = list(csv.DictReader(io.StringIO(report.content.decode())))
    assert report["Content-Disposition"] == f'attachment; filename="bulk-grant-{batch.pk}.csv"'
    assert [(r["customer_id"], r["outcome"]) for r in lines] == [(a, "Granted"), (b, "Not granted"),
                                                                (c, "Not granted"), (d, "Granted")]
    assert "503" in lines[1]["message"]
    page = text_of(cs.get(reverse("bulk-batch", args=[batch.pk])))
    assert "2 granted · 2 not granted" in page
    failed = AuditEntry.objects.filter(batch=batch, outcome="failed").values_list("customer_id", "stigg_status")
    assert sorted(failed) == sorted([(b, 503), (c, 400)])  # each attempt is on record, as failed


def test_a_retried_job_grants_nothing_twice(fresh):
    cids = fresh["cids"][:2]
    cs = signed_in("Customer success", "cassie")
    batch = confirmed(cs, fresh, cids)
    assert bulk_tasks.run_bulk_batch(batch.pk) == "finished"
    made = {cid: [p["id"] for p in bw.promotions(fresh, cid)] for cid in cids}
    audit = AuditEntry.objects.count()
    # the task delivered again (a redelivery after a lost worker, a second queueing)
    assert bulk_tasks.run_bulk_batch(batch.pk) == "finished"
    resumed = cs.post(reverse("bulk-resume", args=[batch.pk]))  # "Start it again" on a finished batch
    assert "Nothing of this batch is waiting to run." in text_of(cs.get(resumed.url))
    # a row sent again, as after a crash between Stigg's answer and the row's own update,
    # replays the first grant's audit row: Stigg is not asked again
    row = batch.rows.get(customer_id=cids[0])
    assert bulk_run.grant_row(batch, row, client=fresh["client"], rm=fresh["rm"]) is True
    assert {cid: [p["id"] for p in bw.promotions(fresh, cid)] for cid in cids} == made  # a new grant: a new id
    assert AuditEntry.objects.count() == audit
    row.refresh_from_db()
    assert row.state == "done" and row.granted_promotion_id == made[cids[0]][0]


def test_two_runs_at_once_send_each_row_once(fresh):
    cids = fresh["cids"][:2]
    cs = signed_in("Customer success", "cassie")
    batch = confirmed(cs, fresh, cids)
    lock = fresh["rm"].acquire_sweep_lock(60, what=f"bulk-grant-{batch.pk}")  # another worker's slice
    try:
        assert bulk_tasks.run_bulk_batch(batch.pk) == "busy"
    finally:
        lock.release()
    assert limits(fresh, cids) == {cid: [] for cid in cids} and AuditEntry.objects.count() == 0


def test_undo_revokes_what_is_still_the_batchs_and_leaves_what_was_replaced(fresh):
    a, b, c = fresh["cids"][:3]
    cs = signed_in("Customer success", "cassie")
    batch = confirmed(cs, fresh, [a, b, c])
    bulk_tasks.run_bulk_batch(batch.pk)
    w.grant(fresh["emu"], b, fresh["calls"], usageLimit=7000)  # somebody replaced b's since
    assert sync.refresh_customer(fresh["client"], fresh["rm"], b)
    no_reason = cs.post(reverse("bulk-undo", args=[batch.pk]), {"reason": ""})
    assert "Say why" in text_of(cs.get(no_reason.url))
    lead = signed_in("Customer success lead", "lena")
    lead.post(reverse("bulk-undo", args=[batch.pk]), {"reason": "Crunch is over"})
    batch.refresh_from_db()
    assert (batch.undo_status, batch.undo_by.username) == ("queued", "lena")
    assert bulk_tasks.undo_bulk_batch(batch.pk) == "finished"
    assert limits(fresh, [a, b, c]) == {a: [], b: [7000], c: []}
    rows = {r.customer_id: r for r in batch.rows.all()}
    assert {cid: rows[cid].undo_state for cid in (a, b, c)} == {a: "done", b: "skipped", c: "done"}
    assert "replaced since the batch granted it" in rows[b].undo_message
    revokes = AuditEntry.objects.filter(batch=batch, action="promotion.revoke")
    assert sorted((e.customer_id, e.username, e.reason, e.outcome) for e in revokes) == sorted(
        [(a, "lena", "Crunch is over", "done"), (c, "lena", "Crunch is over", "done")])
    page = text_of(cs.get(reverse("bulk-batch", args=[batch.pk])))
    assert "2 revoked, 1 left as they are" in page and "Undo this batch" not in page
    again = cs.post(reverse("bulk-undo", args=[batch.pk]), {"reason": "twice"})
    assert "being undone already" in text_of(cs.get(again.url))
    assert bulk_tasks.undo_bulk_batch(batch.pk) == "finished" and revokes.count() == 2  # nothing twice


def test_a_batch_of_more_than_20_customers_waits_for_another_lead(world):
    cids = world["cids"][:21]
    bw.reset(world, cids)
    lead, other_lead = signed_in("Customer success lead", "lena"), signed_in("Customer success lead", "leo")
    batch = bw.batch_of(bw.select(lead, world, cids)[1])
    dry = text_of(lead.get(reverse("bulk-batch", args=[batch.pk])))
    assert "As ticked now, this batch needs approval" in dry and "more than 20 customers" in dry
    bw.confirm(lead, batch)
    batch.refresh_from_db()
    assert batch.status == "pending" and batch.why == ["it is part of a bulk grant to more than 20 customers"]
    assert bulk_tasks.run_bulk_batch(batch.pk) == "finished"  # a queued task of a pending batch grants nothing
    assert all(not p for p in limits(world, cids).values())
    listed = text_of(other_lead.get(reverse("approvals")))
    assert f"Bulk grant #{batch.pk}" in listed and "21 rows, 21 customers" in listed
    assert "your batch: another lead decides" in text_of(lead.get(reverse("approvals")))
    refused = lead.post(reverse("bulk-approve", args=[batch.pk]), {"reason": "mine"})
    assert "Nobody approves their own bulk grant" in text_of(lead.get(refused.url))
    batch.refresh_from_db()
    assert batch.status == "pending"
    other_lead.post(reverse("bulk-approve", args=[batch.pk]), {"reason": "Quarter end, fine"})
    batch.refresh_from_db()
    assert (batch.status, batch.decided_by.username) == ("queued", "leo")
    bulk_tasks.run_bulk_batch(batch.pk)
    assert limits(world, cids) == {cid: [5000] for cid in cids}
    steps = list(AuditEntry.objects.filter(batch=batch).exclude(action="promotion.grant")
                 .order_by("id").values_list("action", "username"))
    assert steps == [("bulk.request", "lena"), ("bulk.approve", "leo")]
    grants = AuditEntry.objects.filter(batch=batch, action="promotion.grant")
    assert grants.count() == 21 and set(grants.values_list("username", flat=True)) == {"lena"}
    bw.reset(world, cids)


def test_a_lifetime_row_makes_a_small_batch_wait_and_a_lead_may_reject_it(fresh):
    cs, lead = signed_in("Customer success", "cassie"), signed_in("Customer success lead", "lena")
    batch = confirmed(cs, fresh, fresh["cids"][:2], period="lifetime")
    assert batch.status == "pending" and batch.why == ["a row is lifetime"]
    no_reason = lead.post(reverse("bulk-reject", args=[batch.pk]), {"reason": " "})
    assert "Say why it is rejected" in text_of(lead.get(no_reason.url))
    lead.post(reverse("bulk-reject", args=[batch.pk]), {"reason": "Lifetime is too much"})
    batch.refresh_from_db()
    assert (batch.status, batch.decision_reason) == ("rejected", "Lifetime is too much")
    assert bulk_tasks.run_bulk_batch(batch.pk) == "finished" and all(
        not p for p in limits(fresh, fresh["cids"][:2]).values())
    assert "Lifetime is too much" in text_of(cs.get(reverse("bulk-batch", args=[batch.pk])))
    assert AuditEntry.objects.filter(batch=batch, action="bulk.reject", username="lena").count() == 1


def test_an_undecided_batch_expires_after_72_hours(fresh):
    cs = signed_in("Customer success", "cassie")
    batch = confirmed(cs, fresh, fresh["cids"][:2], period="lifetime")
    now = datetime.now(timezone.utc)
    assert bulk.expire_due(now + timedelta(hours=71)) == 0
    assert bulk.expire_due(now + timedelta(hours=73)) == 1
    assert bulk.expire_due(now + timedelta(hours=74)) == 0
    batch.refresh_from_db()
    assert batch.status == "expired"
    assert AuditEntry.objects.filter(batch=batch, action="bulk.expire", username="cassie").count() == 1
    lead = signed_in("Customer success lead", "lena")
    late = lead.post(reverse("bulk-approve", args=[batch.pk]), {"reason": "late"})
    assert "already decided: expired undecided" in text_of(lead.get(late.url))


def test_a_row_the_read_model_no_longer_allows_is_not_sent(fresh):
    """On approval (maybe days later) each row is checked again, as a single grant is."""
    a, b = fresh["cids"][:2]
    cs = signed_in("Customer success", "cassie")
    batch = confirmed(cs, fresh, [a, b])
    fresh["emu"].data("POST", f"/api/v1/customers/{b}/archive", json={})
    assert sync.refresh_customer(fresh["client"], fresh["rm"], b)
    try:
        bulk_tasks.run_bulk_batch(batch.pk)
    finally:
        fresh["emu"].data("POST", f"/api/v1/customers/{b}/unarchive", json={})
        sync.refresh_customer(fresh["client"], fresh["rm"], b)
    row = batch.rows.get(customer_id=b)
    assert row.state == BulkRow.State.FAILED and row.message.startswith("Not sent: This customer is archived")
    assert not AuditEntry.objects.filter(batch=batch, customer_id=b).exists()


def test_a_webhook_about_a_customer_read_since_it_arrived_asks_stigg_nothing(fresh):
    """Each grant of a batch makes Stigg send webhooks, and the job reads the customer back
    itself (within its share): the webhook's refresh then finds it read already."""
    cid = fresh["cids"][0]
    arrived = time.time()
    assert sync.refresh_customer(fresh["client"], fresh["rm"], cid)  # the job's read-back, just after
    fresh["emu"].data("DELETE", "/_emulator/stats")
    reason = "webhook:promotional_entitlement.granted"
    assert tasks.refresh_customer_now.apply(args=(cid, reason, arrived)).get() == "fresh"
    assert fresh["emu"].data("GET", "/_emulator/stats")["requests"] == 0
    assert tasks.refresh_customer_now.apply(args=(cid, reason, time.time() + 1)).get() == "refreshed"
    assert fresh["emu"].data("GET", "/_emulator/stats")["requests"] > 0
