"""Production settings from the environment: a secret key required, HTTPS behind a
TLS-terminating proxy, ``check --deploy`` clean. Each case starts Django in its own
process with the environment chosen, as a deployment would."""
from __future__ import annotations

import os
import subprocess
import sys

from .servers import ROOT

# What an operator sets behind a TLS proxy (README, Configuration).
PRODUCTION = {
    "DJANGO_DEBUG": "false",
    "DJANGO_SECRET_KEY": "Q3vX9m-2kLp8RtZ0wYc4Hn6Jd1Fs7Gb5Va3Ne9Uq2Ko8Ti4Mr6Ex0Cz1By7Wh5Dj3Pl",
    "DJANGO_ALLOWED_HOSTS": "dash.example.com",
    "DJANGO_CSRF_TRUSTED_ORIGINS": "https://dash.example.com",
    "DJANGO_SECURE_PROXY_SSL_HEADER": "true",
    "DJANGO_SECURE_SSL_REDIRECT": "true",
    "DJANGO_SECURE_HSTS_SECONDS": "31536000",
    "DJANGO_SECURE_HSTS_PRELOAD": "true",
    "DJANGO_SECURE_COOKIES": "true",
}


def environment(**values: str | None) -> dict[str, str]:
    """This process's environment with ``values`` set (None: removed)."""
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "stiggadmin.settings"}
    for name, value in values.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return env


def run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


def django_setup(env: dict[str, str]) -> subprocess.CompletedProcess:
    return run(["-c", "import django; django.setup()"], env)


def test_it_refuses_to_start_without_a_secret_key_when_debug_is_off():
    for missing in (None, ""):
        started = django_setup(environment(DJANGO_SECRET_KEY=missing, DJANGO_DEBUG="false"))
        assert started.returncode != 0
        assert "ImproperlyConfigured: DJANGO_SECRET_KEY is not set" in started.stderr
        assert "secrets.token_urlsafe(50)" in started.stderr  # says how to make one


def test_it_starts_with_a_secret_key_or_in_debug():
    assert django_setup(environment(DJANGO_SECRET_KEY="k" * 50, DJANGO_DEBUG="false")).returncode == 0
    debug = django_setup(environment(DJANGO_SECRET_KEY=None, DJANGO_DEBUG="true"))
    assert debug.returncode == 0, debug.stderr
