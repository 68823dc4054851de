"""The audit log is append-only (in the model and in the database), read-only in Django's
admin, and the roles that decide who may change budgets come with the migrations.
(PostgreSQL's triggers: tests/test_settings_database.py.)"""
from __future__ import annotations

import uuid

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management import CommandError, call_command
from django.db import DatabaseError, connection, transaction
from django.test import Client

from dashboard.models import AppendOnlyError, AuditEntry

pytestmark = pytest.mark.django_db


def entry(**values) -> AuditEntry:
    user = get_user_model().objects.get_or_create(username="cassie")[0]
    fields = {"user": user, "username": "cassie", "customer_id": "acme", "action": AuditEntry.Action.BUDGET_CHANGE,
              "entity_id": "ada", "capability": "calls", "scope": [], "before": {"limit": 10, "cadence": "P1W"},
              "after": {"limit": 25, "cadence": "P1W"}, "reason": "launch", "stigg_status": 200,
              "stigg_answer": "{}", "outcome": AuditEntry.Outcome.DONE, "idempotency_key": uuid.uuid4(), **values}
    return AuditEntry.objects.create(**fields)


def test_it_refuses_to_change_or_delete_a_recorded_row_through_the_orm():
    row = entry()
    row.outcome = AuditEntry.Outcome.FAILED
    with pytest.raises(AppendOnlyError):
        row.save()
    with pytest.raises(AppendOnlyError):
        row.delete()
    with pytest.raises(AppendOnlyError):
        AuditEntry.objects.filter(pk=row.pk).update(outcome="failed")
    with pytest.raises(AppendOnlyError):
        AuditEntry.objects.all().delete()
    assert AuditEntry.objects.get().outcome == "done"


def test_it_refuses_to_change_or_delete_a_row_in_the_database_itself():
    row = entry()
    for sql in ("UPDATE dashboard_auditentry SET outcome = 'failed'", "DELETE FROM dashboard_auditentry"):
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(), connection.cursor() as cur:
            cur.execute(sql)
    assert AuditEntry.objects.get(pk=row.pk).outcome == "done"


def test_it_keeps_one_row_per_form_token():
    token = uuid.uuid4()
    entry(idempotency_key=token)
    with pytest.raises(DatabaseError), transaction.atomic():
        entry(idempotency_key=token)
    assert AuditEntry.objects.count() == 1


def test_it_keeps_the_person_who_made_a_change():
    row = entry()
    with pytest.raises(DatabaseError), transaction.atomic():  # PROTECT: deactivate them instead
        row.user.delete()


def test_it_shows_the_audit_log_read_only_in_the_admin():
    row = entry(reason="Ada ships the launch")
    staff = get_user_model().objects.create_user("lead", password="pw-lead-1", is_staff=True)
    staff.groups.add(Group.objects.get(name="Customer success"))
    c = Client()
    c.force_login(staff)
    listing = c.get("/admin/dashboard/auditentry/")
    assert listing.status_code == 200 and "acme" in listing.content.decode()
    detail = c.get(f"/admin/dashboard/auditentry/{row.pk}/change/")
    body = detail.content.decode()
    assert detail.status_code == 200 and "Ada ships the launch" in body
    assert 'name="_save"' not in body and "Delete" not in body
    assert c.get("/admin/dashboard/auditentry/add/").status_code == 403
    assert c.post(f"/admin/dashboard/auditentry/{row.pk}/delete/", {"post": "yes"}).status_code == 403
    assert c.post(f"/admin/dashboard/auditentry/{row.pk}/change/", {"reason": "rewritten"}).status_code == 403
    assert AuditEntry.objects.get().reason == "Ada ships the launch"
    # a signed-in person who is not staff does not get into the admin at all
    viewer = get_user_model().objects.create_user("vic", password="pw-vic-1")
    c.force_login(viewer)
    assert c.get("/admin/dashboard/auditentry/").status_code == 302


def test_it_comes_with_the_three_roles():
    cs, viewers = Group.objects.get(name="Customer success"), Group.objects.get(name="Viewers")
    lead = Group.objects.get(name="Customer success lead")
    assert set(cs.permissions.values_list("codename", flat=True)) == {
        "change_budget", "grant_promotion", "view_auditentry", "view_grantrequest", "view_alert", "acknowledge_alert"}
    assert set(viewers.permissions.values_list("codename", flat=True)) == {"view_auditentry", "view_grantrequest",
                                                                            "view_alert"}
    assert set(lead.permissions.values_list("codename", flat=True)) == {
        "change_budget", "grant_promotion", "view_auditentry", "view_grantrequest", "approve_grant", "view_alert",
        "acknowledge_alert"}
    # no permission to add, change or delete audit rows exists for anybody to be given
    from django.contrib.auth.models import Permission

    assert set(Permission.objects.filter(content_type__app_label="dashboard").values_list("codename", flat=True)) \
        == {"change_budget", "grant_promotion", "view_auditentry", "view_grantrequest", "approve_grant",
            "view_alert", "acknowledge_alert"}


def test_it_puts_the_demo_logins_in_their_roles():
    call_command("ensure_demo_user", "demo", "pw-demo-1", "--group", "Customer success", "--staff")
    call_command("ensure_demo_user", "viewer", "pw-viewer-1", "--group", "Viewers")
    demo, viewer = (get_user_model().objects.get(username=u) for u in ("demo", "viewer"))
    assert demo.has_perm("dashboard.change_budget") and demo.is_staff and not demo.is_superuser
    assert not viewer.has_perm("dashboard.change_budget") and not viewer.is_staff
    # running it again (make run does, every time) keeps exactly the role given
    call_command("ensure_demo_user", "viewer", "pw-viewer-1", "--group", "Viewers")
    assert list(get_user_model().objects.get(username="viewer").groups.values_list("name", flat=True)) == ["Viewers"]
    with pytest.raises(CommandError, match="no such group: Admins"):
        call_command("ensure_demo_user", "x", "pw-x", "--group", "Admins")
