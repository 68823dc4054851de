"""The test process's own environment: its own Redis, and no Stigg by accident.

Loaded as a plugin (pytest.ini: ``-p tests.process_env``), so it runs before
pytest-django sets Django up: REDIS_URL then points at a redis-server of our own on a
free port, and everything the test process does in-process (views reading the read
model, views queueing Celery tasks) uses it, never a Redis the machine happens to run.
The ``redis_server`` fixture hands out this same server.
"""
from __future__ import annotations

import os

from .servers import RedisServer, with_secret_key

server = RedisServer()
os.environ["REDIS_URL"] = server.url
# Both default to REDIS_URL; a value from the caller's shell must not win over ours.
os.environ.pop("CELERY_BROKER_URL", None)
os.environ.pop("READ_MODEL_REDIS_URL", None)
os.environ["READ_MODEL_PREFIX"] = "test-app:"
# In-process code that reaches for Stigg without a test pointing it at an emulator gets
# a refused connection, never a Stigg or emulator that happens to run on this machine.
os.environ["STIGG_API_URL"] = "http://127.0.0.1:9"
os.environ.pop("STIGG_API_KEY", None)
# One key for this process and every process it starts (Django refuses to start without one).
with_secret_key(os.environ)


def pytest_unconfigure(config) -> None:
    server.stop()
