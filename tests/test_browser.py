"""What only a browser shows, in real Chromium: sign in, live search, a drawn chart, and
"Refresh now" updating the page after Stigg (the emulator) changed, through a real
Celery worker and a real Redis."""
from __future__ import annotations

import re

import pytest
from django.contrib.auth import get_user_model

from dashboard import sync, tasks
from dashboard.stigg import StiggClient

from . import emulator_world as w
from .browser import TIMEOUT_MS, close
from .servers import CeleryWorker, django_env

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def stack(emulator, redis_server, app_read_model):
    """The emulator with one customer worth looking at, synced into the app's read model,
    and a real Celery worker serving the refreshes the pages queue."""
    rm = app_read_model
    e = emulator
    calls = w.feature(e, "NUMBER", displayName="API calls", featureUnitsPlural="calls")
    flag = w.feature(e, "BOOLEAN", displayName="Single sign-on")
    plan = w.plan(e, w.product(e), [{"id": calls, "usageLimit": 100, "resetPeriod": "MONTH"}, {"id": flag}],
                  displayName="Growth")
    acme = w.customer(e, name="Acme Rockets", email="ops@acme.example")
    w.subscribe(e, acme, plan)
    w.report_usage(e, acme, calls, 42)
    for name in ("Globex", "Initech", "Umbrella"):
        w.subscribe(e, w.customer(e, name=name), plan)
    client = StiggClient(e.url, e.key, timeout=10)
    sync.refresh_catalog(client, rm)
    for cid in client.iter_customers():
        sync.refresh_customer(client, rm, cid.id, discover=True)
    worker = CeleryWorker(django_env(redis_server.url, emulator, READ_MODEL_PREFIX=rm.prefix), queues="hot")
    yield {"acme": acme, "calls": calls, "worker": worker}
    worker.stop()
    client.close()


@pytest.fixture
def page(chromium, live_server, transactional_db):
    get_user_model().objects.create_user("casey", password="pw-casey-1")
    context = chromium.new_context(viewport={"width": 1366, "height": 768})
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    yield page
    close(context)


def sign_in(page, live_server) -> None:
    page.goto(f"{live_server.url}/")
    assert "/accounts/login/" in page.url
    page.get_by_label("Username").fill("casey")
    page.get_by_label("Password").fill("pw-casey-1")
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{live_server.url}/")


def set_tab_hidden(page, hidden: bool) -> None:
    """What the browser does when the tab goes to the background, or comes back."""
    page.evaluate("""(hidden) => {
        Object.defineProperty(document, 'hidden', {value: hidden, configurable: true});
        Object.defineProperty(document, 'visibilityState', {value: hidden ? 'hidden' : 'visible',
                                                            configurable: true});
        document.dispatchEvent(new Event('visibilitychange'));
    }""", hidden)


def test_it_signs_in_searches_and_opens_a_customer_with_its_chart(page, live_server, stack):
    sign_in(page, live_server)
    assert page.get_by_role("heading", name="Overview").is_visible()
    page.get_by_role("link", name="Customers", exact=True).click()
    page.wait_for_selector("text=1–4 of 4 customers")
    # live search: typing filters the table in place and the address follows
    page.get_by_label("Search").type("acme", delay=30)
    page.wait_for_selector("text=1–1 of 1 customer")
    assert "q=acme" in page.url
    assert page.locator("#customer-table tbody tr").count() == 1
    page.get_by_role("link", name="Acme Rockets").click()
    page.wait_for_selector("h1:has-text('Acme Rockets')")
    # the usage history is fetched by the worker; the placeholder swaps in the chart
    page.wait_for_selector("#usage-charts .js-plotly-plot .main-svg", timeout=30_000)
    points = page.evaluate("() => document.querySelector('#usage-charts .js-plotly-plot').data[0].y")
    assert points and max(points) == 42


def test_it_refreshes_now_and_updates_the_badge_and_numbers(page, live_server, emulator, stack):
    sign_in(page, live_server)
    page.goto(f"{live_server.url}/customers/{stack['acme']}")
    row = page.locator("#metered tbody tr", has_text="API calls")
    assert "42 / 100" in row.inner_text()
    badge_before = page.locator("#customer-live .badge").inner_text()
    w.report_usage(emulator, stack["acme"], stack["calls"], 50)  # Stigg changed: 92 of 100
    page.get_by_role("button", name="Refresh now").click()
    page.wait_for_selector("#refresh-status :text('Refreshing from Stigg')")
    page.wait_for_selector("#refresh-status :text('Refreshed')", timeout=30_000)
    # the live section reloaded in place: the new number, its words, and a fresh badge
    page.wait_for_function("() => document.querySelector('#metered').innerText.includes('92 / 100')")
    assert "Near limit" in row.inner_text()
    assert re.match(r"Data from \d+ s ago", page.locator("#customer-live .badge").inner_text())
    assert page.get_by_role("button", name="Refresh now").is_visible()
    assert badge_before.startswith("Data from")


def test_it_updates_numbers_in_place_and_stops_polling_when_hidden(page, live_server, emulator, stack, settings):
    settings.PAGE_POLL_SECONDS = 1
    sign_in(page, live_server)
    page.goto(f"{live_server.url}/customers/{stack['acme']}")
    usage = page.locator("#metered tbody tr", has_text="API calls").locator("td").first
    before = usage.inner_text()
    page.evaluate("() => { window.sameDocument = true; }")
    # Stigg changes and a sync writes it (no button pressed, no reload): the cell follows
    w.report_usage(emulator, stack["acme"], stack["calls"], 1)
    with StiggClient(emulator.url, emulator.key, timeout=10) as client:
        sync.refresh_customer(client, tasks.read_model(), stack["acme"])
    page.wait_for_function("""(before) => document.querySelector('#metered tbody tr td').innerText !== before""",
                           arg=before)
    assert page.evaluate("() => window.sameDocument === true")  # updated in place, not reloaded
    # a hidden tab asks for nothing
    polls: list[str] = []
    page.on("request", lambda request: polls.append(request.url) if "/customers/" in request.url else None)
    set_tab_hidden(page, True)
    page.wait_for_timeout(3500)
    assert polls == []
    # visible again: it asks at once, and keeps polling
    set_tab_hidden(page, False)
    page.wait_for_timeout(2500)
    assert len(polls) >= 2


@pytest.fixture(scope="module")
def governed(stack, emulator):
    """A governance hierarchy (tests/governance_world.py) synced into the same read model."""
    from . import governance_world

    world = governance_world.build(emulator)
    with StiggClient(emulator.url, emulator.key, timeout=10) as client:
        sync.refresh_catalog(client, tasks.read_model())
        sync.refresh_customer(client, tasks.read_model(), world["acme"], discover=True)
    return world


def node_order(page) -> list[str]:
    return page.eval_on_selector_all("tbody.tnode", "els => els.map(e => e.dataset.entityId)")


def test_it_expands_the_tree_and_reorders_it_in_place(page, live_server, governed):
    sign_in(page, live_server)
    page.goto(f"{live_server.url}/customers/{governed['acme']}/governance")
    assert node_order(page) == ["eng", "sales", "lonely"]
    url = page.url
    page.locator('tbody[data-entity-id="eng"] a.toggle').click()  # one level, loaded by htmx
    page.wait_for_selector('tbody[data-entity-id="platform"]')
    assert node_order(page) == ["eng", "platform", "research", "sales", "lonely"] and page.url == url
    page.locator('tbody[data-entity-id="research"] a.toggle').click()
    page.wait_for_selector('tbody[data-entity-id="bot/7:x"]')
    assert page.locator('tbody[data-entity-id="research"]').inner_text().count("Blocked by") >= 1
    page.select_option("#id_order", "usage")  # the order changes, the address follows
    page.wait_for_url(re.compile(r"order=usage"))
    page.wait_for_function("() => document.querySelectorAll('tbody.tnode')[1].dataset.entityId === 'research'")
    assert node_order(page)[:3] == ["eng", "research", "bot/7:x"]


# Every violation of the Content-Security-Policy the page meets, and every script error.
CSP_WATCH = """
window.__violations = [];
document.addEventListener('securitypolicyviolation', (e) => {
  window.__violations.push(e.violatedDirective + ' ' + (e.blockedURI || 'inline') + ' ' + (e.sample || '') + ' at ' + e.sourceFile + ':' + e.lineNumber);
});
"""


def test_every_page_runs_under_the_content_security_policy(page, live_server, stack, governed):
    """No inline script or style, no eval: pages, charts (plotly), the tree's htmx, the
    promotion modal and the polling all work with the policy on, and nothing is refused."""
    from django.contrib.auth.models import Group, Permission

    # A customer-success manager (the Grant promotion modal below); groups are made again
    # here because transactional tests empty the tables the migrations filled.
    role, _ = Group.objects.get_or_create(name="Customer success")
    role.permissions.add(*Permission.objects.filter(codename="grant_promotion"))
    get_user_model().objects.get(username="casey").groups.add(role)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.add_init_script(CSP_WATCH)
    sign_in(page, live_server)
    header = page.request.get(f"{live_server.url}/").headers["content-security-policy"]
    assert "script-src 'self'" in header and "unsafe-inline" not in header and "unsafe-eval" not in header
    visits = {
        "/": "#overview-chart .main-svg, .js-plotly-plot",
        "/customers/": "table",
        f"/customers/{stack['acme']}": ".js-plotly-plot",
        f"/customers/{governed['acme']}/governance?chart=sunburst": ".js-plotly-plot",
        "/near-limit/": "table, .empty",
        "/promotions/expiring": "main",
        "/alerts/": "main",
        "/audit/": "main",
        "/bulk/": "main",
        "/settings/": "main",
    }
    for path, ready in visits.items():
        page.goto(f"{live_server.url}{path}")
        page.wait_for_selector(ready, state="attached")
        page.wait_for_timeout(300)
        assert page.evaluate("window.__violations") == [], path
    page.goto(f"{live_server.url}/customers/{governed['acme']}/governance")
    page.locator('tbody[data-entity-id="eng"] a.toggle').click()  # htmx, with eval off
    page.wait_for_selector('tbody[data-entity-id="platform"]')
    page.goto(f"{live_server.url}/customers/{stack['acme']}")
    page.get_by_role("link", name=re.compile("Grant promotion")).first.click()  # the modal, by htmx
    page.wait_for_selector("dialog#modal[open] form")
    assert page.evaluate("window.__violations") == [] and errors == []
