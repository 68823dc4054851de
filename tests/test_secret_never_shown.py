"""The Stigg server key never reaches a browser or a log: the whole stack (gunicorn, a
Celery worker with beat, the emulator accepting only that key) with Stigg's data in it, then
every page a customer-success manager and a viewer can reach is crawled — every link and
every htmx URL, error pages, and pages while Stigg is down — and every response and every
process's log is searched for the key."""
from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import time
from collections import deque
from html import unescape
from urllib.parse import urljoin, urlsplit

import httpx
import pytest
from celery import Celery

from . import emulator_world as w
from . import governance_world
from .servers import ROOT, CeleryWorker, Emulator, RedisServer, WebServer, django_env

KEY = "server-never-show-9f3c2a7e"  # the emulator takes server keys by their prefix
MAX_PAGES = 250
LINK = re.compile(r'(?:href|hx-get|hx-post|action|src)="([^"#]+)')


@pytest.fixture(scope="module")
def stack():
    redis_server = RedisServer()
    emulator = Emulator(key=KEY)
    db = os.path.join(tempfile.mkdtemp(prefix="test-key-"), "db.sqlite3")
    env = django_env(redis_server.url, emulator, STIGG_API_KEY=KEY, DATABASE_URL=f"sqlite:///{db}",
                     SYNC_SWEEP_INTERVAL_SECONDS="3600", LOG_LEVEL="DEBUG")
    web = WebServer(env)
    for user, group in (("csm", "Customer success"), ("vera", "Viewers")):
        subprocess.run([sys.executable, "manage.py", "ensure_demo_user", user, "pw-crawl-12345", "--group", group],
                       cwd=ROOT, env=env, check=True, capture_output=True)
    worker = CeleryWorker(env, beat=True, concurrency=4)
    yield emulator, web, worker, redis_server.url
    for part in (worker, web, emulator, redis_server):
        part.stop()


@pytest.fixture(scope="module")
def world(stack):
    emulator, web, _, _ = stack
    governed = governance_world.build(emulator)
    calls = w.feature(emulator, displayName="API calls")
    plan = w.plan(emulator, w.product(emulator), [{"id": calls, "usageLimit": 100, "resetPeriod": "MONTH"}])
    busy = w.customer(emulator, name="Busy Co", metadata={"accountOwner": "Casey"})
    w.subscribe(emulator, busy, plan)
    w.report_usage(emulator, busy, calls, 95)
    w.grant(emulator, busy, calls, usageLimit=500)
    Celery(broker=stack[3], set_as_current=False).send_task("dashboard.tasks.sweep_customers", queue="sweep")
    deadline = time.time() + 90
    with httpx.Client(base_url=web.url) as http:
        while time.time() < deadline:
            if http.get("/healthz").json().get("sync", {}).get("customers_total", 0) >= 3:
                break
            time.sleep(0.5)
        else:
            pytest.fail("the first sweep did not fill the read model")
    return {"busy": busy, "acme": governed["acme"]}


def signed_in(web: WebServer, username: str) -> httpx.Client:
    # A new connection for every request: under a loaded CI box the crawler can pause past
    # gunicorn's 2 s keep-alive, and reusing the connection the server just closed reads as
    # "Server disconnected" — a race of the client, not an answer of the dashboard.
    http = httpx.Client(base_url=web.url, follow_redirects=True, timeout=30, headers={"Connection": "close"})
    page = http.get("/accounts/login/")
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
    signed = http.post("/accounts/login/", data={"csrfmiddlewaretoken": token, "username": username,
                                                 "password": "pw-crawl-12345"})
    assert signed.status_code == 200 and "/accounts/login/" not in str(signed.url), signed.text[:500]
    return http


def crawl(http: httpx.Client, starts: list[str]) -> dict[str, httpx.Response]:
    """Breadth-first over same-site GET links and htmx URLs (no logout, no admin writes)."""
    seen: dict[str, httpx.Response] = {}
    queue = deque(starts)
    while queue and len(seen) < MAX_PAGES:
        url = queue.popleft()
        if url in seen:
            continue
        response = http.get(url, headers={"HX-Request": "true"} if "hx" in url else {})
        seen[url] = response
        if "text/html" not in response.headers.get("content-type", ""):
            continue
        for found in LINK.findall(response.text):
            target = urljoin(url, unescape(found))
            parts = urlsplit(target)
            if parts.netloc and parts.netloc != urlsplit(str(http.base_url)).netloc:
                continue
            path = parts.path + (f"?{parts.query}" if parts.query else "")
            if path.startswith(("/accounts/logout", "/static/")) or path in seen:
                continue
            queue.append(path)
    return seen


def test_the_key_is_in_no_page_partial_error_page_or_log(stack, world):
    emulator, web, worker, _ = stack
    starts = ["/", "/customers/", "/near-limit/", "/promotions/expiring", "/alerts/", "/approvals/", "/audit/",
              f"/customers/{world['busy']}", f"/customers/{world['acme']}/governance", "/customers/no-such-co",
              "/near-limit/?threshold=banana", "/near-limit.csv", "/audit.csv", "/healthz", "/metrics",
              "/admin/"]
    crawled = {}
    for user in ("csm", "vera"):
        http = signed_in(web, user)
        try:
            crawled.update({f"{user} {u}": r for u, r in crawl(http, starts).items()})
            emulator.faults(outage=True)  # Stigg down: pages and error texts from the read model
            try:
                http.post(f"/refresh/{world['busy']}", headers={"HX-Request": "true",
                                                                 "X-CSRFToken": http.cookies.get("csrftoken", "")})
                time.sleep(2)
                crawled.update({f"{user} down {u}": r for u, r in crawl(http, starts[:8]).items()})
            finally:
                emulator.clear_faults()
        finally:
            http.close()
    assert len(crawled) > 60, sorted(crawled)
    assert not [u for u, r in crawled.items() if r.status_code >= 500], "a page answered 5xx"
    leaks = [u for u, r in crawled.items() if KEY in r.text or any(KEY in v for v in r.headers.values())]
    assert not leaks
    for name, log in (("web", web.log()), ("worker", worker.log()), ("emulator", emulator.log(tail=None))):
        assert KEY not in log, f"the {name} log holds the key"
