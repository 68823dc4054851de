"""What the tests that drive Debian's Chromium (Playwright) share; the ``chromium``
fixture is in conftest.py."""
from __future__ import annotations

import os
import threading
import time

from django.core.signals import request_finished, request_started

# Playwright's sync API runs an event loop in this thread; Django's ORM refuses to run
# under one unless told it is safe (it is: the test is the only user of this thread).
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic"]
TIMEOUT_MS = 20_000


class _InFlight:
    """Requests the in-process live server is answering, counted by Django's own signals.
    A page's last poll can still be on the server when its browser context closes, and the
    transactional test's database is emptied right after: the two at once lock SQLite, the
    emptying fails and the next test finds the last one's users still there.

    The live server answers each request in a thread of its own; the test's thread (where
    Django's test client sends the same signals, and a streamed response it never reads
    never finishes) is not counted. A thread is busy from its request's start to its
    finish, however many times the response is closed."""

    def __init__(self) -> None:
        self.busy: set[int] = set()
        self.lock = threading.Lock()
        request_started.connect(self.started, weak=False)
        request_finished.connect(self.finished, weak=False)

    def started(self, **_: object) -> None:
        if threading.current_thread() is not threading.main_thread():
            with self.lock:
                self.busy.add(threading.get_ident())

    def finished(self, **_: object) -> None:
        with self.lock:
            self.busy.discard(threading.get_ident())

    def wait_quiet(self, timeout: float = 10.0, quiet: float = 0.2) -> None:
        """Until no request has been in progress for ``quiet`` seconds; a request still
        answering after ``timeout`` seconds is a failure of its own."""
        deadline = time.monotonic() + timeout
        calm_since = time.monotonic()
        while time.monotonic() < deadline:
            if self.busy:
                calm_since = time.monotonic()
            elif time.monotonic() - calm_since >= quiet:
                return
            time.sleep(0.02)
        raise AssertionError(f"the live server was still answering {len(self.busy)} request(s) after {timeout:.0f} s")


_in_flight = _InFlight()


def close(context) -> None:
    """Close a browser context and wait for the live server to finish what it sent."""
    context.close()
    _in_flight.wait_quiet()
