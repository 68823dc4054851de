"""Every form field and query parameter fed generated bad input (hypothesis): never a 500.

The targets are found, not listed: the pages a customer-success lead reaches are read for
their forms (action, method, field names) and their links' query names, so a form or a
filter added later is fuzzed the day it lands. Ids in the URL are fuzzed too. The read model
holds a small world synced from the emulator; writes that happen to be valid really go to
the emulator (and are fine)."""
from __future__ import annotations

from html.parser import HTMLParser
from typing import Any
from urllib.parse import parse_qsl, quote, urlsplit

import pytest
import redis
from django.contrib.auth import get_user_model
from django.test import Client
from hypothesis import HealthCheck, given, settings as hypothesis_settings, strategies as st

from dashboard import sync
from dashboard.stigg import StiggClient

from . import emulator_world as w
from . import governance_world

pytestmark = pytest.mark.django_db

EXAMPLES = 1200
NASTY = ["", " ", "0", "-1", "1e309", "-0", "NaN", "inf", "1" * 40, "0x10", "½", "٣", "1,000", "10%",
         "\x00", "\x1b[31m", "a\nb", "../../etc/passwd", "%00", "%", "%%", "<script>alert(1)</script>",
         "' OR 1=1 --", "{{ 7*7 }}", "😀" * 10, "true", "null", "[]", "{}", "2026-02-30", "9999-12-31",
         "0001-01-01", "T" * 5000, "customer", "$", "|", ",,,", "é/ü:ß"]
TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=60)
VALUE = st.one_of(st.sampled_from(NASTY), TEXT, st.integers().map(str), st.floats().map(str))


class Forms(HTMLParser):
    """Forms (method, action, field names) and link targets of one page."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[tuple[str, str, set[str]]] = []
        self.links: list[str] = []
        self._form: tuple[str, str, set[str]] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self._form = (a.get("method", "get").lower(), a.get("action", "") or a.get("hx-post", "")
                          or a.get("hx-get", ""), set())
            self.forms.append(self._form)
        elif tag in ("input", "select", "textarea", "button") and self._form is not None and a.get("name"):
            if a["name"] != "csrfmiddlewaretoken":
                self._form[2].add(a["name"])
        for attr in ("href", "hx-get"):
            if a.get(attr, "").startswith(("/", "?")):
                self.links.append(a[attr])

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._form = None


@pytest.fixture(scope="module")
def world(emulator, app_read_model):
    e, rm = emulator, app_read_model
    calls = w.feature(e, "NUMBER", displayName="API calls")
    runs = w.feature(e, "NUMBER", displayName="Agent runs")
    tier = w.feature(e, "ENUM", displayName="Support tier")
    plan = w.plan(e, w.product(e), [{"id": calls, "usageLimit": 1000, "resetPeriod": "MONTH"},
                                    {"id": runs, "usageLimit": 100, "resetPeriod": "MONTH"},
                                    {"id": tier, "enumValues": ["a"]}])
    busy = w.customer(e, name="Busy Co", metadata={"accountOwner": "Casey"})
    w.subscribe(e, busy, plan)
    w.report_usage(e, busy, calls, 950)
    w.report_usage(e, busy, runs, 99)  # an open alert: its acknowledge and snooze forms
    w.grant(e, busy, calls, usageLimit=2000)
    governed = governance_world.build(e)
    with StiggClient(e.url, e.key, timeout=10) as client:
        sync.refresh_catalog(client, rm)
        for cid in (busy, governed["acme"]):
            sync.refresh_customer(client, rm, cid, discover=True)
    return {"busy": busy, "calls": calls, "acme": governed["acme"]}


def targets(c: Client, world: dict[str, Any]) -> list[tuple[str, str, tuple[str, ...]]]:
    """(method, path, field names) of every form and every link's query on the pages below."""
    busy, acme = world["busy"], world["acme"]
    pages = ["/", "/customers/", "/near-limit/", "/promotions/expiring", "/alerts/", "/alerts/?state=closed", "/approvals/",
             "/audit/", "/settings/", "/governance/entity-types", f"/customers/{busy}",
             f"/customers/{busy}/promotions/new?feature={world['calls']}",
             f"/customers/{busy}/promotions/extend?feature={world['calls']}",
             f"/customers/{busy}/promotions/revoke?feature={world['calls']}",
             f"/customers/{acme}/governance", f"/customers/{acme}/governance?view=ranked",
             f"/customers/{acme}/governance/budget?entity=eng&capability=&scope="]
    found: dict[tuple[str, str], set[str]] = {}
    for page in pages:
        response = c.get(page)
        assert response.status_code == 200, page
        parser = Forms()
        parser.feed(response.content.decode())
        for method, action, names in parser.forms:
            path = urlsplit(action).path or urlsplit(page).path
            found.setdefault((method if method in ("get", "post") else "get", path), set()).update(names)
        for link in parser.links:
            parts = urlsplit(link)
            path = parts.path or urlsplit(page).path
            if path.startswith(("/accounts/logout", "/static/", "/admin")):
                continue
            found.setdefault(("get", path), set()).update(k for k, _ in parse_qsl(parts.query, keep_blank_values=True))
    return sorted((m, p, tuple(sorted(n))) for (m, p), n in found.items() if not p.startswith("/accounts/logout"))


@pytest.fixture
def lead(db, world, app_read_model, settings):
    from datetime import datetime, timezone

    from dashboard.alerts.evaluate import evaluate_customer
    from dashboard.rules.alerts import Thresholds

    evaluate_customer(app_read_model, world["busy"], datetime.now(timezone.utc), Thresholds())
    user = get_user_model().objects.create_superuser("fuzz-lead", password="pw-fuzz-12345")
    c = Client()
    c.force_login(user)
    yield c
    # Pages and Refresh now queued refreshes no worker here runs: none is left for later modules.
    redis.Redis.from_url(settings.CELERY_BROKER_URL).delete("hot", "sweep")


def test_generated_bad_input_never_answers_500(lead, world, settings):
    found = targets(lead, world)
    fields = sum(len(names) for _, _, names in found)
    assert len(found) >= 25 and fields >= 65, found  # the discovery itself must keep finding the forms
    customers = [world["busy"], world["acme"]]
    failures: list[str] = []

    @hypothesis_settings(max_examples=EXAMPLES, deadline=None, database=None,
                         suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
    @given(st.data())
    def one(data):
        method, path, names = data.draw(st.sampled_from(found))
        if data.draw(st.booleans()) and "/customers/" in path:  # an id from nowhere in the path
            known = next((c for c in customers if f"/customers/{c}" in path), None)
            if known:
                path = path.replace(f"/customers/{known}", "/customers/" + quote(data.draw(VALUE) or "x", safe=""), 1)
        values = {name: data.draw(st.one_of(VALUE, st.lists(VALUE, min_size=2, max_size=3)))
                  for name in names if data.draw(st.booleans())}
        response = getattr(lead, method)(path, values)
        if response.status_code >= 500:
            failures.append(f"{method.upper()} {path} {values!r} → {response.status_code}")
        assert response.status_code < 500, failures[-1]

    one()
