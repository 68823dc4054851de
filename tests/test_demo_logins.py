"""`make run`'s logins: the demo logins (none of them staff) with the emulator only;
against real Stigg none is made, and those an emulator run left in the same database are
locked. Run through scripts/run.py's own step, its manage.py commands in their own
processes, on a throwaway SQLite database."""
from __future__ import annotations

import importlib.util
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from django.contrib.auth.hashers import check_password

from .servers import ROOT


@pytest.fixture(scope="module")
def run_script():
    spec = importlib.util.spec_from_file_location("make_run", ROOT / "scripts" / "run.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def migrated(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("migrated") / "db.sqlite3"
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "stiggadmin.settings", "DATABASE_URL": f"sqlite:///{path}"}
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True)
    return path


@pytest.fixture
def database(migrated: Path, tmp_path: Path) -> tuple[dict[str, str], Path]:
    """A new migrated database (a copy of one migrated once) and the environment naming it."""
    path = tmp_path / "db.sqlite3"
    shutil.copyfile(migrated, path)
    return {**os.environ, "DJANGO_SETTINGS_MODULE": "stiggadmin.settings", "DATABASE_URL": f"sqlite:///{path}"}, path


def users(path: Path) -> dict[str, tuple[str, bool, bool]]:
    with sqlite3.connect(path) as db:
        rows = db.execute("SELECT username, password, is_staff, is_superuser FROM auth_user").fetchall()
    return {name: (password, bool(staff), bool(superuser)) for name, password, staff, superuser in rows}


def test_it_makes_the_demo_logins_with_the_emulator_none_of_them_staff(run_script, database):
    env, path = database
    run_script.ensure_logins(env, uses_emulator=True)
    made = users(path)
    assert sorted(made) == ["demo", "lead", "viewer"]
    for username, password, _, _, _ in run_script.DEMO_USERS:
        hashed, staff, superuser = made[username]
        assert check_password(password, hashed) and not staff and not superuser


def test_it_makes_no_login_against_real_stigg(run_script, database):
    env, path = database
    run_script.ensure_logins(env, uses_emulator=False)
    assert users(path) == {}


def test_it_locks_the_demo_logins_an_emulator_run_left_when_real_stigg_is_used(run_script, database):
    env, path = database
    run_script.ensure_logins(env, uses_emulator=True)
    # The operator's own "lead", with a password of its own, is not a demo login.
    subprocess.run([sys.executable, "manage.py", "ensure_demo_user", "lead", "a-password-of-their-own",
                    "--group", "Customer success lead"], cwd=ROOT, env=env, check=True, capture_output=True)
    run_script.ensure_logins(env, uses_emulator=False)
    after = users(path)
    assert not check_password("demo-password", after["demo"][0]) and after["demo"][0].startswith("!")
    assert not check_password("viewer-password", after["viewer"][0]) and after["viewer"][0].startswith("!")
    assert check_password("a-password-of-their-own", after["lead"][0])
