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


def test_it_migrates_and_creates_the_demo_logins_on_postgresql():
    admin = _admin_connection()
    name = f"stiggadmin_test_{uuid.uuid4().hex[:8]}"
    admin.execute(f'CREATE DATABASE "{name}"')
    try:
        base = POSTGRES_ADMIN_URL.rsplit("/", 1)[0]
        env = {**os.environ, "DATABASE_URL": f"{base}/{name}", "DJANGO_SETTINGS_MODULE": "stiggadmin.settings"}
        migrated = _manage("migrate", "--noinput", env=env)
        assert migrated.returncode == 0, migrated.stderr
        created = _manage("ensure_demo_user", "demo", "pw-123456", "--group", "Customer success", "--staff", env=env)
        assert created.returncode == 0, created.stderr
        created = _manage("ensure_demo_user", "viewer", "pw-654321", "--group", "Viewers", env=env)
        assert created.returncode == 0, created.stderr
        created = _manage("ensure_demo_user", "lead", "pw-777777", "--group", "Customer success lead", "--staff",
                          env=env)
        assert created.returncode == 0, created.stderr
        unknown = _manage("ensure_demo_user", "x", "pw-x", "--group", "Admins", env=env)
        assert unknown.returncode != 0 and "no such group: Admins" in unknown.stderr
        import psycopg

        with psycopg.connect(env["DATABASE_URL"], autocommit=True) as db:
            rows = db.execute("SELECT u.username, u.is_staff, u.is_superuser, g.name FROM auth_user u "
                              "JOIN auth_user_groups ug ON ug.user_id = u.id JOIN auth_group g ON g.id = ug.group_id "
                              "ORDER BY u.username").fetchall()
            assert rows == [("demo", True, False, "Customer success"), ("lead", True, False, "Customer success lead"),
                            ("viewer", False, False, "Viewers")]
            perms = db.execute("SELECT g.name, p.codename FROM auth_group g JOIN auth_group_permissions gp "
                               "ON gp.group_id = g.id JOIN auth_permission p ON p.id = gp.permission_id "
                               "ORDER BY 1, 2").fetchall()
            assert perms == [("Customer success", "acknowledge_alert"), ("Customer success", "change_budget"),
                             ("Customer success", "grant_promotion"), ("Customer success", "view_alert"),
                             ("Customer success", "view_auditentry"), ("Customer success", "view_grantrequest"),
                             ("Customer success lead", "acknowledge_alert"), ("Customer success lead", "approve_grant"),
                             ("Customer success lead", "change_budget"), ("Customer success lead", "grant_promotion"),
                             ("Customer success lead", "view_alert"), ("Customer success lead", "view_auditentry"),
                             ("Customer success lead", "view_grantrequest"),
                             ("Viewers", "view_alert"), ("Viewers", "view_auditentry"), ("Viewers", "view_grantrequest")]
            _assert_the_audit_log_is_append_only(db)
            _assert_one_open_alert_per_subject(db)
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def _assert_the_audit_log_is_append_only(db) -> None:
    """The database itself refuses to rewrite the audit log, whoever asks."""
    import psycopg

    user_id = db.execute("SELECT id FROM auth_user WHERE username = 'demo'").fetchone()[0]
    db.execute("INSERT INTO dashboard_auditentry (at, user_id, username, customer_id, action, entity_id, capability, "
               "scope, reason, ticket, stigg_answer, outcome, idempotency_key) VALUES (now(), %s, 'demo', 'c', "
               "'budget.change', 'e', 'f', '[]', 'r', '', '', 'done', %s)", (user_id, uuid.uuid4()))
    for sql in ("UPDATE dashboard_auditentry SET outcome = 'failed'", "DELETE FROM dashboard_auditentry",
                "TRUNCATE dashboard_auditentry"):
        with pytest.raises(psycopg.errors.RestrictViolation, match="append-only"):
            db.execute(sql)
    assert db.execute("SELECT outcome FROM dashboard_auditentry").fetchall() == [("done",)]


def test_it_refuses_a_malformed_setting_with_a_clear_message():
    env = {**os.environ, "STIGG_MAX_RPS": "fast", "DJANGO_SETTINGS_MODULE": "stiggadmin.settings"}
    result = _manage("check", env=env)
    assert result.returncode != 0
    assert "STIGG_MAX_RPS must be a number, not 'fast'" in result.stderr


def _assert_one_open_alert_per_subject(db) -> None:
    """The conditional unique constraint: a second open alert for a subject is refused, a
    closed one beside it is not."""
    import psycopg

    insert = ("INSERT INTO dashboard_alert (customer_id, customer_name, account_owner, kind, subject, capability, "
              "feature_name, entity_id, entity_name, scope, level, worst_level, state, opened_at, closed_why, "
              "notified_level) VALUES ('c', '', '', 'entitlement', 'e|api', 'api', '', '', '', '[]', 'warning', "
              "'warning', %s, now(), '', '')")
    db.execute(insert, ("open",))
    db.execute(insert, ("closed",))
    with pytest.raises(psycopg.errors.UniqueViolation):
        db.execute(insert, ("open",))
