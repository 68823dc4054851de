from __future__ import annotations

import shutil
from importlib import import_module

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test import Client

from . import process_env
from .browser import CHROMIUM, CHROMIUM_ARGS
from .servers import Emulator, RedisServer


@pytest.fixture(scope="session")
def redis_server() -> RedisServer:
    """The test process's own redis-server (started before Django's settings were read)."""
    return process_env.server


@pytest.fixture
def rm(redis_server):
    """An empty read model of its own (a fresh key prefix) on the session's Redis, emptied after."""
    import uuid

    import redis

    from dashboard.readmodel import ReadModel

    client = redis.Redis.from_url(redis_server.url, decode_responses=True)
    model = ReadModel(client, prefix=f"test:{uuid.uuid4().hex[:8]}:")
    yield model
    model.clear()
    client.close()


@pytest.fixture(scope="module")
def emulator():
    """The emulator as a real HTTP server with fresh storage for each test module."""
    server = Emulator()
    yield server
    log = server.log(tail=None)
    server.stop()
    # A 500 the tests did not look at is still a bug: fail the module that caused it.
    if "Unhandled error" in log or "Traceback" in log:
        pytest.fail(f"the emulator logged an unhandled error:\n{log[-5000:]}")


@pytest.fixture(scope="module")
def stigg(emulator):
    """Stigg's own generated client, validating every response strictly."""
    from stigg import Stigg

    client = Stigg(base_url=emulator.url, api_key=emulator.key, _strict_response_validation=True, max_retries=0)
    yield client
    client.close()


@pytest.fixture
def browser(db) -> Client:
    """Django's test client, signed in as an ordinary user."""
    user = get_user_model().objects.create_user("casey", password="pw-casey-1")
    c = Client()
    c.force_login(user)
    return c


@pytest.fixture(scope="module")
def chromium():
    if not shutil.which(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: apt-get install -y chromium (.ci/run does)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def app_read_model(emulator):
    """The app's own read model (the one the views read), emptied, with the task code's
    Stigg client pointed at this module's emulator; both put back after the module."""
    from django.test import override_settings

    from dashboard import tasks

    stigg_here = override_settings(STIGG_API_URL=emulator.url)
    stigg_here.enable()
    tasks._clients.clear()  # the task code's clients are built from the settings on first use
    rm = tasks.read_model()
    rm.clear()
    yield rm
    rm.clear()
    stigg_here.disable()
    tasks._clients.clear()


def role_migrations() -> list:
    """The forward functions of the dashboard's data migrations that make roles (groups and
    their permissions), in migration order; each is idempotent."""
    import inspect
    import pkgutil

    from django.db.migrations import RunPython

    from dashboard import migrations

    found = []
    for module in sorted(m.name for m in pkgutil.iter_modules(migrations.__path__)):
        for op in import_module(f"dashboard.migrations.{module}").Migration.operations:
            if isinstance(op, RunPython) and '"Group"' in inspect.getsource(op.code):
                found.append(op.code)
    return found


@pytest.fixture(autouse=True)
def roles_as_migrated(request):
    """The roles the migrations make, there for every test that uses the database. A
    transactional test empties the database after it, roles included (Django makes the
    permissions again, not the groups): run in one process, pytest-django puts those tests
    last, but with ``pytest -n`` a worker can run one before another file's tests that
    sign in by role."""
    names = set(request.fixturenames)
    marker = request.node.get_closest_marker("django_db")
    if marker is None and "db" not in names and "transactional_db" not in names:
        return
    transactional = "transactional_db" in names or (marker is not None and marker.kwargs.get("transaction"))
    request.getfixturevalue("transactional_db" if transactional else "db")
    from django.apps import apps
    from django.contrib.auth.models import Group

    if not Group.objects.exists():  # an emptied database: every role is gone at once
        for make in role_migrations():
            make(apps, None)


@pytest.fixture
def audit_log_emptied_after(transactional_db):
    """A transactional test's database is emptied after it, and the audit log refuses
    that (its triggers): lift them, empty it, put them back, as an operator would."""
    yield
    append_only = import_module("dashboard.migrations.0002_audit_log_append_only")
    with connection.schema_editor() as editor:
        append_only.allow_changes(None, editor)
        editor.execute("DELETE FROM dashboard_auditentry")
        append_only.append_only(None, editor)
