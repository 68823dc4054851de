"""Changing and adding governance budgets from the dashboard: the form, its confirmation
step, the write through Stigg (the emulator over real HTTP), the audit row, and the
refresh that brings the new figures into the read model (the test process's real Redis).
No mocks: Stigg's failures are the emulator's own faults."""
from __future__ import annotations

import json
import re
import time
import uuid
from html import unescape
from typing import Any
from urllib.parse import urlencode

import pytest
import redis
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse

from dashboard import sync, tasks
from dashboard.actions import budgets
from dashboard.models import AuditEntry
from dashboard.stigg import StiggClient, StiggUnavailable

from . import emulator_world as w
from .pages import signed_in, text_of, user_in

pytestmark = pytest.mark.django_db
# What the world starts with, and every test starts from: (entity, limit, cadence, parent).
BUDGETS = (("research", 50, "P1M", None), ("ada", 10, "P1W", "research"), ("bot-7", 40, "PT1H", "research"))


@pytest.fixture(scope="module")
def world(emulator, app_read_model):
    rm = app_read_model
    e = emulator
    calls = w.feature(e, "NUMBER", displayName="API calls")
    tokens = w.feature(e, "NUMBER", displayName="AI tokens")
    plan = w.plan(e, w.product(e), [{"id": calls, "usageLimit": 1000, "resetPeriod": "MONTH"},
                                    {"id": tokens, "usageLimit": 10**6, "resetPeriod": "MONTH"}])
    cid = w.customer(e, name="Acme Rockets")
    w.subscribe(e, cid, plan)
    e.data("PUT", "/api/v1-beta/entity-types", json={"types": [
        {"id": "team", "displayName": "Team", "attributionKeys": ["teamId"]},
        {"id": "user", "displayName": "User", "attributionKeys": ["userId"]},
        {"id": "agent", "displayName": "Agent", "attributionKeys": ["agentId"]}]})
    e.data("PUT", f"/api/v1-beta/customers/{cid}/entities", json={"entities": [
        {"id": "research", "entityTypeId": "team", "displayName": "Research"},
        {"id": "ada", "entityTypeId": "user", "displayName": "Ada"},
        {"id": "bot-7", "entityTypeId": "agent", "displayName": "Bot 7"}]})
    client = StiggClient(e.url, e.key, timeout=10)
    world = {"rm": rm, "emu": e, "cid": cid, "calls": calls, "tokens": tokens, "client": client}
    reset(world)
    w.report_usage(e, cid, calls, 12, dimensions={"userId": "ada"})
    sync.refresh_catalog(client, rm)
    refresh(world)
    yield world
    client.close()


def reset(world: dict[str, Any]) -> None:
    """Every budget back to how the world began (in Stigg; the read model follows on refresh)."""
    items = [{"entityId": eid, "featureId": world["calls"], "usageLimit": limit, "cadence": cadence,
              **({"parentId": parent} if parent else {})} for eid, limit, cadence, parent in BUDGETS]
    world["emu"].data("PUT", f"/api/v1-beta/customers/{world['cid']}/assignments", json={"assignments": items})


def refresh(world: dict[str, Any]) -> None:
    assert sync.refresh_customer(world["client"], world["rm"], world["cid"], discover=True)


@pytest.fixture
def fresh(world, settings):
    """The world as it began, in Stigg and in the read model, and an empty refresh queue."""
    world["emu"].clear_faults()
    reset(world)
    refresh(world)
    world["rm"].release_queued(world["cid"])
    broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    broker.delete("hot")
    yield world
    world["emu"].clear_faults()
    broker.delete("hot")




@pytest.fixture
def cs(db) -> Client:
    return signed_in("Customer success", "cassie")


def url(world: dict[str, Any], entity: str = "ada", capability: str | None = "calls", scope: str = "") -> str:
    query = {"entity": entity}
    if capability:
        query["capability"] = world["calls"] if capability == "calls" else capability
    query["scope"] = scope
    return f"{reverse('budget-change', args=[world['cid']])}?{urlencode(query)}"


def form_token(response) -> str:
    return re.search(r'name="token" value="([0-9a-f-]{36})"', response.content.decode()).group(1)


def assignment(world: dict[str, Any], entity: str, scope: tuple[str, ...] = ()) -> dict[str, Any] | None:
    items = world["emu"].data("GET", f"/api/v1-beta/customers/{world['cid']}/assignments",
                              params={"entityId": entity, "limit": 100})
    return next((a for a in items if a["featureId"] == world["calls"] and tuple(a["scopeEntityIds"]) == scope), None)


def node_budget(world: dict[str, Any], entity: str, scope: tuple[str, ...] = ()) -> dict[str, Any] | None:
    node = world["rm"].governance_node(world["cid"], entity)
    return budgets.find_budget(node, world["calls"], scope) if node else None


def submit(c: Client, world: dict[str, Any], data: dict[str, str], page: str | None = None, **extra: Any):
    """The form as a person sends it: open it, fill it in, review, confirm."""
    page = page or url(world)
    token = form_token(c.get(page))
    review = c.post(page, {"token": token, **data}, **extra)
    assert review.status_code == 200 and "Check the change, then confirm it" in text_of(review), text_of(review)
    return c.post(page, {"token": token, **data, "confirm": "yes"}, **extra)


def queued_refreshes(settings) -> list[list[Any]]:
    broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    messages = [json.loads(m) for m in broker.lrange("hot", 0, -1)]
    return [m["headers"]["argsrepr"] for m in messages if m["headers"]["task"] == "dashboard.tasks.refresh_customer_now"]


# --- the round trip ---------------------------------------------------------------------------


def test_it_changes_a_limit_in_stigg_records_it_and_shows_it_after_the_refresh(fresh, cs, settings):
    world = fresh
    form = cs.get(url(world))
    assert form.status_code == 200
    text = text_of(form)
    assert "Now: 10 weekly (P1W) · whole node · used 12 (120 %)" in text
    assert 'name="limit" value="10"' in form.content.decode() and "Reason" in text
    token = form_token(form)
    data = {"token": token, "limit": "25", "cadence": "P1W", "reason": "Ada ships the launch this week",
            "ticket": "CS-1234"}
    review = cs.post(url(world), data)
    text = text_of(review)
    assert "Limit 10 → 25" in text and "Cadence weekly (P1W) → weekly (P1W)" in text
    assert "Scope whole node → whole node" in text and "Reason: Ada ships the launch this week" in text
    assert assignment(world, "ada")["usageLimit"] == 10  # nothing is sent before the confirmation
    done = cs.post(url(world), {**data, "confirm": "yes"})
    assert done.status_code == 302
    assert done["Location"] == f"/customers/{world['cid']}/governance?node=ada"
    assert assignment(world, "ada")["usageLimit"] == 25
    assert assignment(world, "ada")["cadence"] == "P1W"
    assert assignment(world, "ada")["parentId"] == "research"  # the hierarchy is left alone
    entry = AuditEntry.objects.get()
    assert (entry.username, entry.customer_id, entry.action, entry.entity_id, entry.capability, entry.scope) == (
        "cassie", world["cid"], "budget.change", "ada", world["calls"], [])
    assert entry.before == {"limit": 10, "cadence": "P1W", "scope": []}
    assert entry.after == {"limit": 25, "cadence": "P1W", "scope": []}
    assert (entry.reason, entry.ticket, entry.outcome, entry.stigg_status) == (
        "Ada ships the launch this week", "CS-1234", "done", 200)
    assert json.loads(entry.stigg_answer)["usage_limit"] == 25 and str(entry.idempotency_key) == token
    # a targeted refresh of that customer is queued, and the customer stays hot a while
    assert queued_refreshes(settings) == [repr((world["cid"], "budget-change"))]
    assert world["cid"] in world["rm"].hot_customers(now=time.time() + 60)
    assert node_budget(world, "ada")["limit"] == 10  # until the refresh lands, and the form says so
    waiting = text_of(cs.get(url(world)))
    assert "Now: 10 weekly (P1W)" in waiting and "cassie changed it to 25 weekly" in waiting
    world["rm"].release_queued(world["cid"])
    assert tasks.refresh_customer_now.apply(args=(world["cid"], "budget-change")).get() == "refreshed"
    assert node_budget(world, "ada")["limit"] == 25 and node_budget(world, "ada")["utilization"] == 0.48
    again = text_of(cs.get(url(world)))
    assert "Now: 25 weekly (P1W)" in again
    assert "Recent changes to this budget" in again and "cassie 10 → 25 P1W → P1W done Ada ships" in again
    assert "changed it to" not in again


def test_it_makes_a_budget_unlimited_but_still_tracked(fresh, cs):
    world = fresh
    done = submit(cs, world, {"limit": "10", "unlimited": "on", "cadence": "P1W", "reason": "Unblock Ada"})
    assert done.status_code == 302
    assert assignment(world, "ada")["usageLimit"] is None
    assert AuditEntry.objects.get().after == {"limit": None, "cadence": "P1W", "scope": []}
    refresh(world)
    budget = node_budget(world, "ada")
    assert budget["limit"] is None and budget["usage"] == 12 and budget["utilization"] is None
    assert "Now: unlimited weekly (P1W)" in text_of(cs.get(url(world)))


def test_it_changes_the_cadence_and_keeps_the_limit(fresh, cs):
    world = fresh
    review = cs.post(url(world), {"token": str(uuid.uuid4()), "limit": "10", "cadence": "p1d", "reason": "Daily"})
    assert "Cadence weekly (P1W) → daily (P1D)" in text_of(review)
    assert submit(cs, world, {"limit": "10", "cadence": "p1d", "reason": "Daily"}).status_code == 302
    stored = assignment(world, "ada")
    assert (stored["cadence"], stored["usageLimit"]) == ("P1D", 10)
    assert AuditEntry.objects.get().after == {"limit": 10, "cadence": "P1D", "scope": []}
    refresh(world)
    assert node_budget(world, "ada")["cadence"] == "P1D"


def test_it_adds_a_scoped_budget(fresh, cs):
    world = fresh
    team = w.uid("lab")  # a new team each run: Stigg has no way to remove a budget again
    world["emu"].data("PUT", f"/api/v1-beta/customers/{world['cid']}/entities", json={"entities": [
        {"id": team, "entityTypeId": "team"}]})
    refresh(world)
    page = url(world, capability=None)
    form = cs.get(page)
    assert "New budget" in text_of(form) and "Ada has budgets for API calls 10 weekly." in text_of(form)
    assert f'<option value="{world["calls"]}">API calls</option>' in form.content.decode()
    done = submit(cs, world, {"capability": world["calls"], "scope": f" {team} ", "limit": "5", "cadence": "PT1H",
                              "reason": "Cap Ada's usage for the lab"}, page=page)
    assert done.status_code == 302 and done["Location"].endswith("/governance?node=ada")
    scoped = assignment(world, "ada", (team,))
    assert scoped is not None and (scoped["usageLimit"], scoped["cadence"]) == (5, "PT1H")
    assert assignment(world, "ada")["usageLimit"] == 10  # the node-wide budget is another budget
    entry = AuditEntry.objects.get()
    assert (entry.action, entry.scope, entry.before) == ("budget.add", [team], None)
    assert entry.after == {"limit": 5, "cadence": "PT1H", "scope": [team]}
    refresh(world)
    assert node_budget(world, "ada", (team,))["limit"] == 5
    # it can now be changed like any other budget, and cannot be added twice
    assert f"Now: 5 hourly (PT1H) · scope {team}" in text_of(cs.get(url(world, scope=team)))
    twice = cs.post(page, {"token": str(uuid.uuid4()), "capability": world["calls"], "scope": team,
                           "limit": "6", "cadence": "PT1H", "reason": "again"})
    assert "already has that budget for the same scope: change it instead" in text_of(twice)


# --- what people may type, and what ids a URL may hold --------------------------------------------


@pytest.mark.parametrize(("data", "words", "kept"), [
    ({"limit": "-5"}, "A limit is a number of 0 or more.", 'value="-5"'),
    ({"limit": "lots"}, "“lots” is not a number. A limit is a number of 0 or more", 'value="lots"'),
    ({"limit": "nan"}, "A limit is a number of 0 or more.", 'value="nan"'),
    ({"limit": "1e300"}, "A limit can be at most 9,007,199,254,740,991.", 'value="1e300"'),
    ({"limit": ""}, "Give a limit, or tick Unlimited.", 'name="reason"'),
    ({"cadence": "P1M10D"}, "“P1M10D” is not a cadence. Use one unit of ISO-8601", 'value="P1M10D"'),
    ({"cadence": "monthly"}, "“monthly” is not a cadence.", 'value="monthly"'),
    ({"cadence": "P0D"}, "“P0D” is not a cadence.", 'value="P0D"'),
    ({"reason": "   "}, "Say why the budget changes: the audit log keeps it.", 'value="30"'),
    ({"limit": "10"}, "Nothing would change: the limit and the cadence are what they are now.", 'value="10"'),
    ({"token": "not-a-token"}, "This form is out of date; open it again.", 'value="30"'),
])
def test_it_explains_bad_input_and_keeps_what_was_typed(fresh, cs, data, words, kept):
    world = fresh
    sent = {"token": str(uuid.uuid4()), "limit": "30", "cadence": "P1W", "reason": "Because", **data}
    for step in ({}, {"confirm": "yes"}):  # a tampered confirmation is checked again, too
        response = cs.post(url(world), {**sent, **step})
        assert response.status_code == 200
        assert words in text_of(response) and kept in response.content.decode()
        assert "Check the change, then confirm it" not in text_of(response)
    assert assignment(world, "ada")["usageLimit"] == 10 and not AuditEntry.objects.exists()


def test_it_refuses_a_scope_naming_an_entity_that_does_not_exist(fresh, cs):
    world = fresh
    page = url(world, capability=None)
    response = cs.post(page, {"token": str(uuid.uuid4()), "capability": world["calls"], "scope": "research, ghost",
                              "limit": "5", "cadence": "P1M", "reason": "x", "confirm": "yes"})
    assert response.status_code == 200
    assert "No entity “ghost” in this customer's hierarchy" in text_of(response)
    assert 'value="research, ghost"' in response.content.decode()
    nothing = cs.post(page, {"token": str(uuid.uuid4()), "scope": "", "limit": "5", "cadence": "P1M", "reason": "x"})
    assert "Choose the feature or currency the budget is for." in text_of(nothing)
    unknown = cs.post(page, {"token": str(uuid.uuid4()), "capability": "$gold", "limit": "5", "cadence": "P1M",
                             "reason": "x"})
    assert "Select a valid choice. $gold is not one of the available choices." in text_of(unknown)
    assert assignment(world, "ada", ("ghost",)) is None and not AuditEntry.objects.exists()


@pytest.mark.parametrize(("path", "words"), [
    ("customer:nobody-here", "No customer “nobody-here”"),
    ("entity=ghost&capability=calls", "No entity “ghost” in this customer's governance hierarchy."),
    ("capability=calls", "No entity given"),
    ("entity=ada&capability=no-such-feature", "Ada has no budget for “no-such-feature”."),
    ("entity=ada&capability=calls&scope=bot-7", "Ada has no budget for “calls” scoped to bot-7."),
    ("entity=ada%00&capability=calls&scope=%2C%2C", "No entity “ada\x00”"),
])
def test_it_answers_unknown_ids_with_a_404_page(fresh, cs, path, words):
    world = fresh
    if path.startswith("customer:"):
        page = reverse("budget-change", args=[path.split(":", 1)[1]]) + f"?entity=ada&capability={world['calls']}"
    else:
        page = reverse("budget-change", args=[world["cid"]]) + "?" + path.replace("calls", world["calls"])
    for response in (cs.get(page), cs.post(page, {"limit": "5", "cadence": "P1M", "reason": "x", "confirm": "yes"})):
        assert response.status_code == 404
        assert words.replace("calls", world["calls"]).replace("\x00", "") in text_of(response).replace("\x00", "")
    assert not AuditEntry.objects.exists()


# --- Stigg says no, or says nothing --------------------------------------------------------------


def test_it_shows_stiggs_refusal_in_the_form_and_records_it_as_failed(fresh, cs):
    world, emu = fresh, fresh["emu"]
    # Stigg no longer has the entity the read model still shows: a 400 with Stigg's words
    emu.data("POST", f"/api/v1-beta/customers/{world['cid']}/entities/archive", json={"ids": ["bot-7"]})
    try:
        response = submit(cs, world, {"limit": "99", "cadence": "PT1H", "reason": "More for the bot"},
                          page=url(world, entity="bot-7"))
    finally:
        emu.data("POST", f"/api/v1-beta/customers/{world['cid']}/entities/unarchive", json={"ids": ["bot-7"]})
    assert response.status_code == 200
    text = text_of(response)
    assert "Not changed. Stigg refused the change: Stigg answered 400" in text
    assert "entity 'bot-7' does not exist" in text
    assert 'value="99"' in response.content.decode() and 'More for the bot' in response.content.decode()
    entry = AuditEntry.objects.get()
    assert (entry.outcome, entry.stigg_status) == ("failed", 400) and "does not exist" in entry.stigg_answer
    assert not AuditEntry.objects.filter(outcome="done").exists()
    # the form carries a new token: confirming again is a new attempt, not a replay
    assert form_token(response) != str(entry.idempotency_key)


def test_it_records_a_failure_when_stigg_is_down(fresh, cs, settings):
    world, emu = fresh, fresh["emu"]
    emu.faults(outage=True)
    response = submit(cs, world, {"limit": "77", "cadence": "P1W", "reason": "Outage drill"})
    emu.clear_faults()
    assert response.status_code == 200
    text = text_of(response)
    assert "Not changed. Stigg did not answer in time or is unavailable" in text and "503" in text
    assert 'value="77"' in response.content.decode()
    entry = AuditEntry.objects.get()
    assert (entry.outcome, entry.stigg_status) == ("failed", 503)
    assert assignment(world, "ada")["usageLimit"] == 10
    # Stigg may or may not hold a change it did not confirm: the dashboard looks again
    assert queued_refreshes(settings) == [repr((world["cid"], "budget-change"))]


def test_it_records_a_failure_when_stigg_times_out(fresh, cs, settings):
    world, emu = fresh, fresh["emu"]
    settings.STIGG_WRITE_TIMEOUT_SECONDS = 0.5
    token = form_token(cs.get(url(world)))
    data = {"token": token, "limit": "66", "cadence": "P1W", "reason": "Slow Stigg"}
    emu.faults(latencyMs=1500)
    started = time.monotonic()
    response = cs.post(url(world), {**data, "confirm": "yes"})
    assert time.monotonic() - started < 1.4  # one attempt, the write timeout, no retries
    assert "Not changed. Stigg did not answer in time" in text_of(response)
    assert "the change may still have reached Stigg" in text_of(response)
    entry = AuditEntry.objects.get()
    assert entry.outcome == "failed" and entry.stigg_status is None and "timed out" in entry.stigg_answer
    # ... and it did reach Stigg, late: which is why the page never calls it done
    deadline = time.monotonic() + 10
    while assignment(world, "ada")["usageLimit"] != 66 and time.monotonic() < deadline:
        time.sleep(0.2)
    emu.clear_faults()
    assert assignment(world, "ada")["usageLimit"] == 66
    assert AuditEntry.objects.filter(outcome="done").count() == 0


# --- who may, and sending twice ---------------------------------------------------------------------


def test_it_refuses_people_who_may_not_change_budgets(fresh, db):
    world = fresh
    viewer, nobody = Client(), Client()
    viewer.force_login(user_in("Viewers", "vic"))
    nobody.force_login(user_in(None, "norole"))
    data = {"token": str(uuid.uuid4()), "limit": "500", "cadence": "P1W", "reason": "sneaky", "confirm": "yes"}
    for c in (viewer, nobody):
        assert c.get(url(world)).status_code == 403
        refused = c.post(url(world), data)
        assert refused.status_code == 403 and "Your role does not allow this" in text_of(refused)
        assert c.post(url(world), data, HTTP_HX_REQUEST="true").status_code == 403
    assert assignment(world, "ada")["usageLimit"] == 10 and not AuditEntry.objects.exists()
    anonymous = Client().post(url(world), data)
    assert anonymous.status_code == 302 and anonymous["Location"].startswith(reverse("login"))


def test_it_shows_the_change_button_only_to_people_who_may_use_it(fresh, cs, rf):
    from django.template.loader import render_to_string

    world = fresh

    def button_for(user, **context: Any) -> str:
        request = rf.get("/")
        request.user = user
        return render_to_string("dashboard/_budget_button.html", {"customer_id": world["cid"], "entity_id": "ada",
                                                                  **context}, request=request)

    cassie = get_user_model().objects.get(username="cassie")
    shown = button_for(cassie, capability=world["calls"], scope=["research", "lab"])
    href = unescape(re.search(r'href="([^"]+)"', shown).group(1))
    assert "Change budget" in shown and href == url(world, scope="research,lab")
    assert button_for(user_in("Viewers", "vic"), capability=world["calls"]).strip() == ""
    add = button_for(cassie)
    assert "Add a budget" in add and "capability" not in unescape(add)


def test_it_makes_one_change_for_a_form_sent_twice(fresh, cs):
    world, emu = fresh, fresh["emu"]
    token = form_token(cs.get(url(world)))
    data = {"token": token, "limit": "31", "cadence": "P1W", "reason": "Double click", "confirm": "yes"}
    emu.call("DELETE", "/_emulator/stats")
    first, second = cs.post(url(world), data), cs.post(url(world), data)
    assert first.status_code == second.status_code == 302 and first["Location"] == second["Location"]
    assert AuditEntry.objects.count() == 1 and AuditEntry.objects.get().outcome == "done"
    assert emu.data("GET", "/_emulator/stats")["requests"] == 1  # one PUT reached Stigg
    # the same token cannot be spent on another budget
    other = cs.post(url(world, entity="bot-7"), {**data, "cadence": "PT1H"})
    assert "This form was already used for another change" in text_of(other)
    assert AuditEntry.objects.count() == 1 and assignment(world, "bot-7")["usageLimit"] == 40


# --- htmx ----------------------------------------------------------------------------------------


def test_it_works_in_place_with_htmx_and_announces_the_change(fresh, cs):
    world = fresh
    hx = {"HTTP_HX_REQUEST": "true", "HTTP_HX_TARGET": "modal"}
    form = cs.get(url(world), **hx)
    body = form.content.decode()
    assert "<html" not in body and body.lstrip().startswith('<div id="budget-form"')
    assert f'hx-post="{url(world)}"'.replace("&", "&amp;") in body and "HX-Request" in form["Vary"]
    bad = cs.post(url(world), {"token": form_token(form), "limit": "-1", "cadence": "P1W", "reason": "x"}, **hx)
    assert "<html" not in bad.content.decode() and "A limit is a number of 0 or more." in text_of(bad)
    done = submit(cs, world, {"limit": "12", "cadence": "P1W", "reason": "htmx"}, **hx)
    assert done.status_code == 200
    assert done["HX-Redirect"] == f"/customers/{world['cid']}/governance?node=ada"
    assert json.loads(done["HX-Trigger"]) == {"budgetChanged": {"customer": world["cid"], "entity": "ada",
                                                                "audit": AuditEntry.objects.get().pk}}
    assert assignment(world, "ada")["usageLimit"] == 12


def test_it_says_the_change_is_done_on_the_next_page(fresh, cs):
    world = fresh
    done = submit(cs, world, {"limit": "13", "cadence": "P1W", "reason": "flash"})
    landing = cs.get(reverse("customer", args=[world["cid"]]))  # any page shows it, once
    assert "Budget changed in Stigg for Ada." in text_of(landing)
    assert done.status_code == 302 and "Budget changed" not in text_of(cs.get(reverse("overview")))


# --- the action, without HTTP ----------------------------------------------------------------------


def test_it_changes_a_budget_through_the_action_alone(fresh, db):
    world = fresh
    user = user_in("Customer success", "ana")
    target = budgets.BudgetTarget(world["cid"], "research", world["calls"])
    change = budgets.BudgetChange(target, budgets.BudgetValues(50, "P1M"), budgets.BudgetValues(80, "P1M"), "Q4")
    with pytest.raises(budgets.BudgetInputError) as bad:
        budgets.change_budget(budgets.BudgetChange(target, change.before, budgets.BudgetValues(80, "P1M2D"), "Q4"),
                              user=user, token=uuid.uuid4(), client=world["client"])
    assert bad.value.field == "cadence" and not AuditEntry.objects.exists()
    result = budgets.change_budget(change, user=user, token=uuid.uuid4(), client=world["client"])
    assert result.done and result.message is None and not result.replayed
    assert assignment(world, "research")["usageLimit"] == 80
    again = budgets.change_budget(change, user=user, token=result.entry.idempotency_key, client=world["client"])
    assert again.replayed and again.entry.pk == result.entry.pk and AuditEntry.objects.count() == 1


def test_it_writes_currency_budgets_and_one_attempt_only_when_asked(fresh):
    world, emu = fresh, fresh["emu"]
    emu.data("PUT", f"/api/v1-beta/customers/{world['cid']}/entities", json={"entities": [
        {"id": "lab", "entityTypeId": "team"}]})
    written = world["client"].upsert_assignment(world["cid"], "lab", None, 7, cadence="P1M", currency_id="credits")
    assert (written.currency_id, written.feature_id, written.usage_limit) == ("credits", None, 7)
    with pytest.raises(ValueError):
        world["client"].upsert_assignment(world["cid"], "lab", "f", 7, currency_id="credits")
    emu.faults(errorRate=1)  # every answer a 5xx, each one counted
    emu.call("DELETE", "/_emulator/stats")
    with pytest.raises(StiggUnavailable):
        world["client"].upsert_assignment(world["cid"], "lab", None, 8, currency_id="credits", attempts=1, timeout=2)
    emu.clear_faults()
    assert emu.data("GET", "/_emulator/stats")["requests"] == 1
