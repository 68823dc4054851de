"""Production settings from the environment: a secret key required, HTTPS behind a
TLS-terminating proxy, ``check --deploy`` clean. Each case starts Django in its own
process with the environment chosen, as a deployment would."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile

import httpx
import pytest

from .servers import ROOT, WebServer, django_env

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
    """This process's environment with ``values`` set (None: removed), less the browser
    tests' switch that no deployment sets (check --deploy says so)."""
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "stiggadmin.settings"}
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
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


def test_it_refuses_a_stigg_elsewhere_without_its_key():
    """No key means the emulator on this machine; a Stigg anywhere else needs its key."""
    elsewhere = django_setup(environment(STIGG_API_URL="https://api.stigg.io", STIGG_API_KEY=None))
    assert elsewhere.returncode != 0
    assert "STIGG_API_KEY is required for the Stigg at https://api.stigg.io" in elsewhere.stderr
    keyed = django_setup(environment(STIGG_API_URL="https://api.stigg.io", STIGG_API_KEY="server-abc"))
    assert keyed.returncode == 0, keyed.stderr
    local = django_setup(environment(STIGG_API_URL="http://127.0.0.1:8700", STIGG_API_KEY=None))
    assert local.returncode == 0, local.stderr
    url = "from django.conf import settings; print(settings.STIGG_API_URL)"
    key_only = run(["-c", f"import django; django.setup(); {url}"], environment(STIGG_API_URL=None, STIGG_API_KEY="k"))
    assert key_only.stdout.strip() == "https://api.stigg.io"  # a key alone means Stigg itself


def check_deploy(env: dict[str, str]) -> subprocess.CompletedProcess:
    return run(["manage.py", "check", "--deploy", "--fail-level", "WARNING"], env)


def test_it_passes_check_deploy_with_production_settings():
    checked = check_deploy(environment(**PRODUCTION))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "System check identified no issues (0 silenced)." in checked.stdout
    assert "WARNING" not in checked.stdout + checked.stderr


def test_it_is_check_deploy_that_would_warn_without_the_https_settings():
    """The check above can fail: without the HTTPS settings the warnings of the issue come back."""
    checked = check_deploy(environment(**{**PRODUCTION, "DJANGO_SECURE_SSL_REDIRECT": None,
                                          "DJANGO_SECURE_HSTS_SECONDS": None, "DJANGO_SECURE_COOKIES": None}))
    assert checked.returncode != 0
    for warning in ("security.W004", "security.W008", "security.W012", "security.W016"):
        assert warning in checked.stderr


def test_it_refuses_a_trusted_origin_without_its_scheme():
    started = django_setup(environment(DJANGO_CSRF_TRUSTED_ORIGINS="https://ok.example.com, dash.example.com"))
    assert started.returncode != 0
    assert "DJANGO_CSRF_TRUSTED_ORIGINS: 'dash.example.com' needs its scheme, e.g. https://dash.example.com" in started.stderr


PUBLIC = "https://dash.example.com"


@pytest.fixture(scope="module")
def web_behind_proxy(redis_server):
    """The web app under gunicorn with the production settings, and a superuser made the
    way an operator makes one; requests reach it as a TLS-terminating proxy forwards them.
    The proxy is on another host, as a load balancer is: gunicorn itself trusts
    X-Forwarded-Proto only from FORWARDED_ALLOW_IPS (127.0.0.1 unless set), so here it is
    Django's DJANGO_SECURE_PROXY_SSL_HEADER that must make the request HTTPS."""
    tmp = tempfile.mkdtemp(prefix="test-https-")
    env = django_env(redis_server.url, **{**PRODUCTION, "DJANGO_ALLOWED_HOSTS": "dash.example.com,127.0.0.1",
                                          "DATABASE_URL": f"sqlite:///{os.path.join(tmp, 'db.sqlite3')}",
                                          "FORWARDED_ALLOW_IPS": "127.0.0.2"})
    web = WebServer(env)
    web.manage("createsuperuser", "--noinput", "--username", "operator", "--email", "op@example.com",
               DJANGO_SUPERUSER_PASSWORD="correct horse battery staple")
    yield web
    web.stop()
    shutil.rmtree(tmp, ignore_errors=True)


def forwarded(web: WebServer, method: str, path: str, *, host: str = "dash.example.com", **kwargs) -> httpx.Response:
    """A request as the proxy passes it on: plain HTTP to gunicorn, the browser's Host,
    X-Forwarded-Proto set by the proxy."""
    headers = {"Host": host, "X-Forwarded-Proto": "https", **kwargs.pop("headers", {})}
    return httpx.request(method, f"{web.url}{path}", headers=headers, timeout=30, follow_redirects=False, **kwargs)


def sign_in(web: WebServer, *, host: str = "dash.example.com") -> httpx.Response:
    page = forwarded(web, "GET", "/accounts/login/", host=host)
    assert page.status_code == 200
    csrf_cookie = next(c for c in page.headers.get_list("Set-Cookie") if c.startswith("csrftoken="))
    assert "; Secure" in csrf_cookie  # only ever sent back over HTTPS
    token = csrf_cookie.split(";", 1)[0].split("=", 1)[1]
    form_token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
    return forwarded(web, "POST", "/accounts/login/", host=host,
                     headers={"Origin": PUBLIC, "Referer": f"{PUBLIC}/accounts/login/", "Cookie": f"csrftoken={token}"},
                     data={"csrfmiddlewaretoken": form_token, "username": "operator",
                           "password": "correct horse battery staple", "next": "/"})


def test_it_signs_in_behind_a_tls_terminating_proxy(web_behind_proxy):
    signed_in = sign_in(web_behind_proxy)
    assert signed_in.status_code == 302, signed_in.text[:500]  # not 403 "Origin checking failed"
    assert signed_in.headers["Location"] == "/"
    session = next(c for c in signed_in.headers.get_list("Set-Cookie") if c.startswith("sessionid="))
    assert "; Secure" in session and "; HttpOnly" in session


def test_it_trusts_the_public_origin_when_the_proxy_passes_another_host(web_behind_proxy):
    """A proxy that forwards to 127.0.0.1:port without passing the browser's Host: the form
    posted from https://dash.example.com is trusted through DJANGO_CSRF_TRUSTED_ORIGINS."""
    signed_in = sign_in(web_behind_proxy, host=f"127.0.0.1:{web_behind_proxy.port}")
    assert signed_in.status_code == 302, signed_in.text[:500]


def test_it_sends_plain_http_to_https_but_answers_health_checks_and_scrapes(web_behind_proxy):
    page = forwarded(web_behind_proxy, "GET", "/accounts/login/")
    assert page.headers["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains; preload"
    plain = httpx.get(f"{web_behind_proxy.url}/accounts/login/", headers={"Host": "dash.example.com"}, timeout=30)
    assert plain.status_code == 301 and plain.headers["Location"] == f"{PUBLIC}/accounts/login/"
    health = httpx.get(f"{web_behind_proxy.url}/healthz", timeout=30)
    assert health.status_code in (200, 503) and "status" in health.json()
    scrape = httpx.get(f"{web_behind_proxy.url}/metrics", timeout=30)  # Prometheus on the host, plain HTTP
    assert scrape.status_code == 200 and "stiggadmin_" in scrape.text
