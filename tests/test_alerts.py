"""Alerts end to end through real parts: usage reported to the emulator over HTTP, synced
into the test process's real Redis, evaluated by the task (run here, or eagerly behind a
refresh), and read, acknowledged and snoozed through `/alerts/`."""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from dashboard import sync, tasks
from dashboard.models import Alert
from dashboard.stigg import StiggClient
from stiggadmin.celery import app as celery_app

from . import emulator_world as w
from . import governance_world
from .pages import signed_in, text_of

pytestmark = pytest.mark.django_db
HOSTILE = "acme:alerts/ü %41|x,y<b>"
DAY = 86400


@pytest.fixture(scope="module")
def base(emulator, app_read_model):
    e, rm = emulator, app_read_model
    calls = w.feature(e, "NUMBER", displayName="API calls")
    seats = w.feature(e, "NUMBER", displayName="Seats")  # only ever granted by a promotion
    plan = w.plan(e, w.product(e), [{"id": calls, "usageLimit": 100, "resetPeriod": "MONTH"}])
    governed = governance_world.build(e)
    client = StiggClient(e.url, e.key, timeout=10)
    sync.refresh_catalog(client, rm)
    yield {"emu": e, "rm": rm, "client": client, "calls": calls, "seats": seats, "plan": plan, "governed": governed}
    client.close()


def customer(base: dict[str, Any], name: str, usage: float | None = None, began_days_ago: float = 0,
             cid: str | None = None) -> str:
    e = base["emu"]
    if began_days_ago:
        e.set_clock_offset(-began_days_ago * DAY)  # its usage window began that long ago
    try:
        if cid is None:
            cid = w.customer(e, name=name)
        else:
            e.data("POST", "/api/v1/customers", json={"id": cid, "name": name})
        w.subscribe(e, cid, base["plan"])
    finally:
        e.set_clock_offset(0)
    if usage is not None:
        set_usage(base, cid, usage)
    return cid


def set_usage(base: dict[str, Any], cid: str, value: float, feature: str = "calls") -> None:
    w.report_usage(base["emu"], cid, base[feature], value, updateBehavior="SET")


def sync_and_evaluate(base: dict[str, Any], cid: str) -> dict:
    assert sync.refresh_customer(base["client"], base["rm"], cid, discover=True)
    return tasks.evaluate_alerts(cid)


def alerts_of(cid: str) -> list[Alert]:
    return list(Alert.objects.filter(customer_id=cid).order_by("id"))


@pytest.fixture
def cs(db) -> Client:
    return signed_in("Customer success", "cassie")


def test_usage_teetering_around_80_percent_opens_one_alert_and_below_70_it_closes(base):
    cid = customer(base, "Teeter Co")
    for usage in (79, 81, 79, 82, 78, 80, 75, 83, 71, 80):
        set_usage(base, cid, usage)
        sync_and_evaluate(base, cid)
    [alert] = alerts_of(cid)
    assert (alert.state, alert.level, alert.kind, alert.capability) == ("open", "warning", "entitlement", base["calls"])
    assert (alert.opened_utilization, alert.utilization, alert.usage, alert.usage_limit) == (0.81, 0.8, 80, 100)
    assert alert.customer_name == "Teeter Co" and alert.window_end > datetime.now(timezone.utc)
    set_usage(base, cid, 69)
    assert sync_and_evaluate(base, cid)["closed"] == {"cleared": 1}
    alert.refresh_from_db()
    assert (alert.state, alert.closed_why, alert.utilization) == ("closed", "cleared", 0.69)
    set_usage(base, cid, 85)
    sync_and_evaluate(base, cid)
    assert [a.state for a in alerts_of(cid)] == ["closed", "open"]


def test_reaching_the_limit_escalates_the_same_alert_and_brings_it_back_from_acknowledged(base, cs):
    cid = customer(base, "Climb Co", usage=85)
    sync_and_evaluate(base, cid)
    [alert] = alerts_of(cid)
    assert cs.post(reverse("alert-acknowledge", args=[alert.pk])).status_code == 302
    set_usage(base, cid, 100)
    assert sync_and_evaluate(base, cid)["escalated"] == 1
    [alert] = alerts_of(cid)
    assert (alert.level, alert.worst_level, alert.acknowledged_at) == ("limit", "limit", None)
    assert alert.escalated_at is not None and alert.opened_utilization == 0.85 and alert.utilization == 1.0


def test_a_window_reset_closes_it(base):
    cid = customer(base, "Reset Co", usage=90)
    sync_and_evaluate(base, cid)
    base["emu"].set_clock_offset(31 * DAY)  # the month is over: usage counts from 0 again
    try:
        assert sync_and_evaluate(base, cid)["closed"] == {"reset": 1}
    finally:
        base["emu"].set_clock_offset(0)
    [alert] = alerts_of(cid)
    assert (alert.state, alert.closed_why) == ("closed", "reset")


def test_usage_that_runs_out_before_reset_opens_a_runout_alert_below_the_warning_level(base):
    cid = customer(base, "Sprint Co", usage=50, began_days_ago=10)  # 50 in 10 days of 30: 150 at reset
    sync_and_evaluate(base, cid)
    [alert] = alerts_of(cid)
    assert (alert.level, alert.utilization, alert.ttl["state"]) == ("runout", 0.5, "before_reset")
    slow = customer(base, "Slow Co", usage=20, began_days_ago=10)  # 60 at reset: nothing
    assert sync_and_evaluate(base, slow)["opened"] == 0


def test_budgets_open_alerts_and_an_archived_entity_closes_its_alert(base):
    e, gov = base["emu"], base["governed"]
    acme = gov["acme"]
    sync_and_evaluate(base, acme)
    found = {(a.entity_id, tuple(a.scope)): a.level for a in alerts_of(acme) if a.kind == "budget"}
    # eng 100/100; platform 8/10, on pace for 24; research's budget for ada 40/80, on pace for 120
    assert found == {("eng", ()): "limit", ("platform", ()): "runout", ("research", ("ada",)): "runout"}
    e.data("POST", f"/api/v1-beta/customers/{acme}/entities/archive", json={"ids": ["platform"]})
    try:
        assert sync_and_evaluate(base, acme)["closed"] == {"gone": 1}
    finally:
        e.data("POST", f"/api/v1-beta/customers/{acme}/entities/unarchive", json={"ids": ["platform"]})
    assert Alert.objects.get(customer_id=acme, entity_id="platform").closed_why == "gone"


def test_evaluating_twice_opens_and_writes_nothing_twice(base):
    cid = customer(base, "Twice Co", usage=95)
    assert sync_and_evaluate(base, cid)["opened"] == 1
    again = tasks.evaluate_alerts(cid)
    assert (again["opened"], again["updated"], again["escalated"], again["closed"]) == (0, 0, 0, {})
    base["rm"].record_sweep_finished(sync.now(), {})
    tasks.evaluate_all_alerts()
    tasks.evaluate_all_alerts()
    assert len(alerts_of(cid)) == 1
    # the constraint itself: a second open alert for the subject is refused by the database
    from django.db import IntegrityError, transaction

    a = alerts_of(cid)[0]
    a.pk = None
    with pytest.raises(IntegrityError), transaction.atomic():
        a.save()


def test_a_vanished_subject_closes_its_alert(base):
    e = base["emu"]
    cid = customer(base, "Promo Co")
    w.grant(e, cid, base["seats"], usageLimit=10)
    set_usage(base, cid, 9, feature="seats")
    sync_and_evaluate(base, cid)
    [alert] = alerts_of(cid)
    assert alert.capability == base["seats"] and alert.feature_name == "Seats"
    e.data("DELETE", f"/api/v1/customers/{cid}/promotional-entitlements/{base['seats']}")
    assert sync_and_evaluate(base, cid)["closed"] == {"gone": 1}
    # a customer removed from Stigg: the fleet pass closes its alerts
    gone = customer(base, "Gone Co", usage=99)
    sync_and_evaluate(base, gone)
    base["rm"].remove_customers([gone])
    base["rm"].record_sweep_finished(sync.now(), {})
    assert tasks.evaluate_all_alerts()["closed"].get("gone", 0) >= 1
    assert alerts_of(gone)[0].closed_why == "gone"


def test_a_refresh_queues_the_evaluation(base):
    cid = customer(base, "Queued Co", usage=90)
    celery_app.conf.task_always_eager = True
    try:
        assert tasks.refresh_customer_now.apply(args=(cid, "manual")).get() == "refreshed"
    finally:
        celery_app.conf.task_always_eager = False
    assert [a.level for a in alerts_of(cid)] == ["warning"]


def rows(response) -> list[str]:
    return re.findall(r'<tr data-alert="(\d+)"', response.content.decode())


def test_the_page_lists_open_alerts_newest_first_with_links_and_actions(base, cs):
    first = customer(base, "Older Co", usage=90)
    sync_and_evaluate(base, first)
    hostile = customer(base, "Hostile <b>Ltd</b>", usage=100, cid=HOSTILE)
    sync_and_evaluate(base, hostile)
    sync_and_evaluate(base, base["governed"]["acme"])
    page = cs.get(reverse("alerts"))
    assert page.status_code == 200
    html, text = page.content.decode(), text_of(page)
    ids = [int(i) for i in rows(page)]
    assert ids == sorted(ids, reverse=True) and len(ids) == 5
    assert "<b>Ltd</b>" not in html and "Hostile <b>Ltd</b>" in text
    assert "Limit reached" in text and "Runs out before reset" in text and "Warning" in text
    customer_url = reverse("customer", args=[HOSTILE])
    assert f'href="{customer_url}#metered"' in html
    assert f'{customer_url}/promotions/new?feature={base["calls"]}' in html
    acme = base["governed"]["acme"]
    assert f'href="/customers/{acme}/governance?node=eng"' in html
    assert f"/customers/{acme}/governance/budget?entity=eng&amp;capability={base['governed']['calls']}&amp;scope=" in html
    assert re.search(r"Alerts\s*<span class=\"count\"[^>]*>5</span>", html)
    only = cs.get(reverse("alerts"), {"customer": HOSTILE})
    assert len(rows(only)) == 1 and "Hostile <b>Ltd</b>" in text_of(only)
    assert 'value="acme:alerts/ü %41|x,y&lt;b&gt;"' in only.content.decode()


def test_acknowledge_and_snooze_take_it_off_the_open_list(base, cs):
    a_id = customer(base, "Ack Co", usage=90)
    s_id = customer(base, "Snooze Co", usage=90)
    r_id = customer(base, "Reset Snooze Co", usage=90)
    for cid in (a_id, s_id, r_id):
        sync_and_evaluate(base, cid)
    ack, snz, rst = (alerts_of(c)[0] for c in (a_id, s_id, r_id))
    here = reverse("alerts") + "?customer=x"
    done = cs.post(reverse("alert-acknowledge", args=[ack.pk]), {"next": here})
    assert done.status_code == 302 and done.url == here
    assert cs.post(reverse("alert-snooze", args=[snz.pk]), {"snooze": "1d"}).status_code == 302
    assert cs.post(reverse("alert-snooze", args=[rst.pk]), {"snooze": "reset"}).status_code == 302
    listed = [int(i) for i in rows(cs.get(reverse("alerts")))]
    assert not {ack.pk, snz.pk, rst.pk} & set(listed)
    assert [int(i) for i in rows(cs.get(reverse("alerts"), {"state": "acknowledged"}))] == [ack.pk]
    assert {int(i) for i in rows(cs.get(reverse("alerts"), {"state": "snoozed"}))} == {snz.pk, rst.pk}
    snz.refresh_from_db()
    rst.refresh_from_db()
    assert timedelta(hours=23) < snz.snoozed_until - datetime.now(timezone.utc) <= timedelta(days=1)
    assert rst.snoozed_until == rst.window_end
    # the day passes: it is back
    Alert.objects.filter(pk=snz.pk).update(snoozed_until=datetime.now(timezone.utc) - timedelta(seconds=1))
    assert snz.pk in [int(i) for i in rows(cs.get(reverse("alerts")))]
    # an evaluation keeps the acknowledgement while nothing gets worse
    set_usage(base, a_id, 92)
    sync_and_evaluate(base, a_id)
    assert Alert.objects.get(pk=ack.pk).acknowledged_at is not None
    # off-site "next" goes back to the list
    away = cs.post(reverse("alert-snooze", args=[snz.pk]), {"snooze": "1w", "next": "https://evil.example/"})
    assert away.url == reverse("alerts")


def test_viewers_read_alerts_but_may_not_acknowledge_or_snooze(base):
    cid = customer(base, "Viewed Co", usage=90)
    sync_and_evaluate(base, cid)
    [alert] = alerts_of(cid)
    viewer = signed_in("Viewers", "vera")
    page = viewer.get(reverse("alerts"))
    html = page.content.decode()
    assert str(alert.pk) in rows(page) and "/acknowledge" not in html and "/snooze" not in html
    assert "<button" not in html.split("<tbody>")[1].split("</tbody>")[0]
    assert viewer.post(reverse("alert-acknowledge", args=[alert.pk])).status_code == 403
    assert viewer.post(reverse("alert-snooze", args=[alert.pk]), {"snooze": "1d"}).status_code == 403
    alert.refresh_from_db()
    assert alert.acknowledged_at is None and alert.snoozed_until is None
    assert Client().get(reverse("alerts")).status_code == 302  # signed out: the sign-in page


def test_bad_input_is_answered_in_words(base, cs):
    cid = customer(base, "Bad Input Co", usage=90)
    sync_and_evaluate(base, cid)
    [alert] = alerts_of(cid)
    missing = cs.post(reverse("alert-acknowledge", args=[999_999]))
    assert missing.status_code == 404 and "There is no alert #999999" in text_of(missing)
    assert cs.post(reverse("alert-snooze", args=[999_999]), {"snooze": "1d"}).status_code == 404
    assert cs.post("/alerts/abc/acknowledge").status_code == 404
    assert cs.get(reverse("alert-acknowledge", args=[alert.pk])).status_code == 405
    for bad in ("", "1y", "forever", "1d\x00", "x" * 5000):
        answer = cs.post(reverse("alert-snooze", args=[alert.pk]), {"snooze": bad}, follow=True)
        assert answer.status_code == 200 and "Snooze for 1 day, 1 week or until reset." in text_of(answer)
    alert.refresh_from_db()
    assert alert.snoozed_until is None
    for query in ({"state": "bogus"}, {"state": "open\x00"}, {"customer": "a\x00b"}, {"customer": "x" * 5000},
                  {"page": "-1"}, {"page": "9" * 40}, {"customer": "../../etc"}, {"state": ["open", "closed"]}):
        page = cs.get(reverse("alerts"), query)
        assert page.status_code == 200, query
    assert "“state” is open, acknowledged, snoozed or closed" in text_of(cs.get(reverse("alerts"), {"state": "x"}))
    assert "That customer id cannot be one" in text_of(cs.get(reverse("alerts"), {"customer": "a\x00b"}))
    Alert.objects.filter(pk=alert.pk).update(state="closed", closed_why="cleared")
    closed = cs.post(reverse("alert-acknowledge", args=[alert.pk]), follow=True)
    assert "already closed" in text_of(closed)
    assert str(alert.pk) in rows(cs.get(reverse("alerts"), {"state": "closed"}))


def _open_alerts(how_many: int) -> None:
    Alert.objects.bulk_create(
        Alert(customer_id=f"count-{i}", kind="entitlement", subject="e|calls", capability="calls", level="warning",
              worst_level="warning", utilization=0.85) for i in range(how_many))


def test_the_count_stops_at_its_cap_unless_a_page_asks_further():
    from dashboard.views.alerts import counted

    _open_alerts(120)
    found = Alert.objects.filter(customer_id__startswith="count-")
    assert counted(found, 1, cap=60) == (60, False, 1)  # "60+": there is more, and a next page
    assert counted(found, 2, cap=60) == (100, False, 2)  # page 2 ends at 100: counted as far
    assert counted(found, 3, cap=60) == (120, True, 3)  # the end reached: exact
    assert counted(found, 9, cap=60) == (120, True, 3)  # past the end: the last page
    assert counted(found, 1, cap=500) == (120, True, 1)
    assert counted(found.none(), 4) == (0, True, 1)


def test_past_ten_thousand_open_alerts_the_list_says_so_and_still_pages(cs):
    _open_alerts(10_001)
    page = cs.get(reverse("alerts"))
    assert "10,000+ open alerts" in text_of(page) and len(rows(page)) == 50
    assert 'rel="next"' in page.content.decode()
    deep = cs.get(reverse("alerts"), {"page": 201})  # past the cap: counted to its end, exactly
    assert "10,001 open alerts" in text_of(deep) and len(rows(deep)) == 1 and 'rel="next"' not in deep.content.decode()
