"""DATABASE_URL: the dashboard's own database is SQLite by default and PostgreSQL when
DATABASE_URL says so. Proven against a throwaway database on a real PostgreSQL server."""
from __future__ import annotations

import os
import subprocess
import sys
import uuid

import pytest

from .servers import ROOT

POSTGRES_ADMIN_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


def _admin_connection():
    psycopg = pytest.importorskip("psycopg")
    try:
        return psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True, connect_timeout=2)
    except psycopg.OperationalError as exc:
        pytest.skip(f"no PostgreSQL server at {POSTGRES_ADMIN_URL}: {exc}")


def _manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120)


def test_it_migrates_and_creates_the_demo_login_on_postgresql():
    admin = _admin_connection()
    name = f"stiggadmin_test_{uuid.uuid4().hex[:8]}"
    admin.execute(f'CREATE DATABASE "{name}"')
    try:
        base = POSTGRES_ADMIN_URL.rsplit("/", 1)[0]
        env = {**os.environ, "DATABASE_URL": f"{base}/{name}", "DJANGO_SETTINGS_MODULE": "stiggadmin.settings"}
        migrated = _manage("migrate", "--noinput", env=env)
        assert migrated.returncode == 0, migrated.stderr
        created = _manage("ensure_demo_user", "demo", "pw-123456", env=env)
        assert created.returncode == 0, created.stderr
        import psycopg

        with psycopg.connect(env["DATABASE_URL"]) as db:
            row = db.execute("SELECT username, is_staff FROM auth_user").fetchone()
        assert row == ("demo", True)
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def test_it_refuses_a_malformed_setting_with_a_clear_message():
    env = {**os.environ, "STIGG_MAX_RPS": "fast", "DJANGO_SETTINGS_MODULE": "stiggadmin.settings"}
    result = _manage("check", env=env)
    assert result.returncode != 0
    assert "STIGG_MAX_RPS must be a number, not 'fast'" in result.stderr
