"""What the benchmarks share: an emulator serving a bulk-seeded world; for the page
benchmarks, this process's Django pointed at the benchmark's own Redis and a throwaway
database, a signed-in test client, and timing one page."""
from __future__ import annotations

import os
import shutil
import statistics
import time
from typing import Any, Callable

from bench.figures import pct, reference_loop_ms, say
from tests.servers import Emulator, with_secret_key

TARGET_P95_MS = 30.0


def stop_parts(parts: list, tmp: str) -> None:
    """Stop what a benchmark started, last first, and remove its temporary folder."""
    for part in reversed(parts):
        part.stop()
    shutil.rmtree(tmp, ignore_errors=True)


def bulk_emulator(tmp: str, customers: int, nodes: int) -> Emulator:
    """The emulator on a free port, serving a world bulk-seeded in ``tmp`` (the seed's time printed)."""
    from emulator.demo import bulk

    db_path = os.path.join(tmp, "emulator.sqlite3")
    t = time.monotonic()
    bulk.seed_bulk(db_path, customers=customers, nodes=nodes, log=lambda m: None)
    say(f"bulk seed: {customers:,} customers, {nodes:,} nodes in {time.monotonic() - t:.1f} s")
    return Emulator(db_path=db_path, workers=2, threads=32)


def django_here(redis_url: str, tmp: str, prefix: str = "stiggadmin:rm:", database_url: str = "") -> None:
    """Set up Django in this process on ``redis_url`` and a new SQLite database in ``tmp``
    (or the empty database at ``database_url``), migrated; no Stigg key, broker or
    read-model URL inherited from the environment."""
    os.environ.update({"DJANGO_SETTINGS_MODULE": "stiggadmin.settings", "REDIS_URL": redis_url,
                       "DATABASE_URL": database_url or f"sqlite:///{os.path.join(tmp, 'db.sqlite3')}",
                       "READ_MODEL_PREFIX": prefix, "LOG_LEVEL": "WARNING"})
    for name in ("CELERY_BROKER_URL", "READ_MODEL_REDIS_URL", "STIGG_API_KEY"):
        os.environ.pop(name, None)
    with_secret_key(os.environ)
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def signed_in_client(username: str = "bench", account_owner: str = "") -> Any:
    """Django's test client, signed in as a benchmark user, with a Host the settings allow;
    ``account_owner``: the customers' owner name they go by (their lists open on My accounts)."""
    from django.contrib.auth import get_user_model
    from django.test import Client

    from dashboard.models import profile_of

    user = get_user_model().objects.create_user(username, password="bench-password")
    if account_owner:
        profile = profile_of(user)
        profile.account_owner = account_owner
        profile.save()
    browser = Client(HTTP_HOST="127.0.0.1")
    browser.force_login(user)
    return browser


def say_header(what: str, requests: int, cpu: bool = False) -> None:
    extra = f" {'cpu p50':>8} {'cpu p95':>8}" if cpu else ""
    say(f"\n{what:<46} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}{extra}   (n={requests}; target p95 < "
        f"{TARGET_P95_MS:.0f} ms; this machine's reference loop: {reference_loop_ms():.0f} ms)")


def time_page(label: str, browser: Any, url_of: Callable[[], str], headers: dict[str, str], requests: int,
              cpu: bool = False) -> None:
    """Server time of one page through Django's full request handling: ``requests`` GETs
    after ten to warm up; p50, p95 and max printed, and whether p95 is over the target.
    ``cpu``: also this thread's CPU time per request (the server's own work, whatever else
    the machine runs; a database server's work is not in it)."""
    def get() -> Any:
        url = url_of()
        return browser.get(url, **headers), url

    time_requests(label, get, requests, cpu=cpu)


def time_requests(label: str, send: Callable[[], tuple[Any, str]], requests: int, expect: int = 200,
                  cpu: bool = False) -> None:
    """Time ``send`` (one request; returns the response and what it asked) ``requests``
    times after ten to warm up; p50, p95 and max printed (and CPU time, see time_page),
    and whether p95 is over the target."""
    for _ in range(10):  # warm-up: connections, template and script caches
        send()
    times, cpu_times = [], []
    for _ in range(requests):
        t0, c0 = time.perf_counter(), time.thread_time()
        response, what = send()
        times.append((time.perf_counter() - t0) * 1000)
        cpu_times.append((time.thread_time() - c0) * 1000)
        if response.status_code != expect:
            raise SystemExit(f"{label}: {what} answered {response.status_code}")
    p95 = pct(times, .95)
    flag = "" if p95 < TARGET_P95_MS else "  OVER TARGET"
    extra = f" {statistics.median(cpu_times):>8.1f} {pct(cpu_times, .95):>8.1f}" if cpu else ""
    say(f"{label:<46} {statistics.median(times):>8.1f} {p95:>8.1f} {max(times):>8.1f}{extra}{flag}")
