"""What the tests that drive Debian's Chromium (Playwright) share; the ``chromium``
fixture is in conftest.py."""
from __future__ import annotations

import os

# Playwright's sync API runs an event loop in this thread; Django's ORM refuses to run
# under one unless told it is safe (it is: the test is the only user of this thread).
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic"]
TIMEOUT_MS = 20_000
