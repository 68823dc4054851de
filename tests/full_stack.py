"""The whole product on this machine, started as the Procfile runs it, for the fault
scenarios (bench/bench_faults.py and tests/test_faults.py): the web under gunicorn, a
``hot`` and a ``sweep`` Celery worker, one beat, the read model's redis-server and the
broker's own redis-server (CELERY_BROKER_URL), all against an emulator the caller
started. Each part can be stopped, restarted on the same port, or killed on its own;
``stop`` ends everything that is still running."""
from __future__ import annotations

import re
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import httpx
import redis
from celery import Celery

from dashboard.readmodel import ReadModel

from .servers import CeleryBeat, CeleryWorker, Emulator, RedisServer, ServerProcess, WebServer, django_env

WEBHOOK_SECRET = "full-stack-webhook-secret"
USERNAME, PASSWORD = "casey-cs", "pw-casey-full-stack-1"
_QUEUE_LENGTH = re.compile(r'^stiggadmin_queue_length\{queue="(\w+)"\} ([0-9.e+]+)$', re.M)


def wait_until(predicate: Callable[[], Any], timeout: float, interval: float = 0.25) -> bool:
    """Poll ``predicate`` until it is truthy (True) or ``timeout`` seconds pass (False)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return False


@dataclass
class StackSettings:
    """What the scenarios tune: the request rate, the beat's intervals, process sizes."""

    max_rps: float = 100.0
    sweep_interval: float = 60.0
    hot_interval: float = 15.0
    web_workers: int = 2
    hot_threads: int = 8
    sweep_threads: int = 8
    # its minimum: a killed worker's tasks come back within minutes
    visibility_timeout: int = 300
    extra_env: dict[str, str] = field(default_factory=dict)


class FullStack:
    """Every process of the product, each on a free port of 127.0.0.1."""

    def __init__(self, emulator: Emulator, settings: StackSettings | None = None) -> None:
        self.emulator = emulator
        self.settings = settings = settings or StackSettings()
        self.metrics_dir = tempfile.mkdtemp(prefix="full-stack-metrics-")
        self.redis = self.broker = None
        self.web = self.hot = self.sweep = self.beat = None
        try:
            self.redis, self.broker = RedisServer(), RedisServer()
            self.env = django_env(
                self.redis.url, emulator, CELERY_BROKER_URL=self.broker.url, STIGG_WEBHOOK_SECRET=WEBHOOK_SECRET,
                STIGG_MAX_RPS=str(settings.max_rps), SYNC_SWEEP_INTERVAL_SECONDS=str(settings.sweep_interval),
                SYNC_HOT_INTERVAL_SECONDS=str(settings.hot_interval),
                CELERY_BROKER_VISIBILITY_TIMEOUT_SECONDS=str(settings.visibility_timeout),
                PROMETHEUS_MULTIPROC_DIR=self.metrics_dir, LOG_LEVEL="INFO", **settings.extra_env)
            self.web = WebServer(self.env, workers=settings.web_workers)
            self.env = self.web.env  # with the web's database: workers and beat share it (alerts, audit)
            self.web.manage("ensure_demo_user", USERNAME, PASSWORD, "--group", "Customer success")
            self.hot = self.start_worker("hot")
            self.sweep = self.start_worker("sweep")
            self.beat = CeleryBeat(self.env)
        except BaseException:
            self.stop()
            raise
        self.rm = ReadModel(redis.Redis.from_url(self.redis.url, socket_timeout=5, socket_connect_timeout=2))
        # Not the current app: nothing in this process must send to it by accident.
        self.celery = Celery(broker=self.broker.url, set_as_current=False)
        self.celery.conf.broker_transport_options = {"socket_timeout": 5, "socket_connect_timeout": 2}
        self.http = httpx.Client(base_url=self.web.url, timeout=30)

    # --- the parts -----------------------------------------------------------------------

    def start_worker(self, queue: str) -> CeleryWorker:
        threads = self.settings.hot_threads if queue == "hot" else self.settings.sweep_threads
        return CeleryWorker(self.env, concurrency=threads, queues=queue)

    def processes(self) -> dict[str, ServerProcess]:
        """The dashboard's own processes (started; maybe exited since), by name."""
        found = {"web": self.web, "worker-hot": self.hot, "worker-sweep": self.sweep, "beat": self.beat}
        return {name: p for name, p in found.items() if p is not None}

    def exited(self) -> list[str]:
        """Those of the dashboard's processes that are no longer running (nothing stopped them)."""
        return [name for name, p in self.processes().items() if p.proc.poll() is not None]

    def stop_read_model(self) -> None:
        self.redis.stop()

    def start_read_model(self) -> None:
        """The read model's Redis again, on its port, empty (as after a restart without persistence)."""
        self.redis = RedisServer(port=self.redis.port)

    def stop_broker(self) -> None:
        self.broker.stop()

    def start_broker(self) -> None:
        self.broker = RedisServer(port=self.broker.port)

    def broker_client(self) -> redis.Redis:
        """A Redis client of the broker as it runs now (the bench reads kombu's unacked messages)."""
        return redis.Redis.from_url(self.broker.url, socket_timeout=5, socket_connect_timeout=2)

    def kill_sweep_worker(self) -> None:
        """SIGKILL the sweep worker's process group and start a new one in its place."""
        self.sweep.kill()
        self.sweep.stop()  # its files
        self.sweep = self.start_worker("sweep")

    # --- talking to it -------------------------------------------------------------------

    def send_task(self, name: str, *args: Any, queue: str) -> None:
        self.celery.send_task(f"dashboard.tasks.{name}", args=args, queue=queue)

    def sweep_now(self) -> None:
        self.send_task("sweep_customers", queue="sweep")

    def sign_in(self, timeout: float = 30.0) -> httpx.Client:
        """A client signed in through the real sign-in form (CSRF token, session cookie)."""
        client = httpx.Client(base_url=self.web.url, timeout=timeout)
        try:
            page = client.get("/accounts/login/")
            token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
            answer = client.post("/accounts/login/", data={"csrfmiddlewaretoken": token, "username": USERNAME,
                                                           "password": PASSWORD, "next": "/"})
            if answer.status_code != 302:
                raise RuntimeError(f"sign-in answered {answer.status_code}: {answer.text[:300]}")
        except BaseException:
            client.close()
            raise
        return client

    def deliver_webhook(self, message: dict[str, Any]) -> httpx.Response:
        """POST one Stigg event to /webhooks/stigg as Stigg sends it."""
        return self.http.post("/webhooks/stigg", json=message, headers={"Stigg-Webhooks-Secret": WEBHOOK_SECRET})

    def send_webhooks_to_us(self, retry_delay: float = 30.0) -> None:
        """The emulator's webhook target: this stack's endpoint."""
        self.emulator.data("PUT", "/_emulator/webhook", json={"url": f"{self.web.url}/webhooks/stigg",
                                                              "secret": WEBHOOK_SECRET,
                                                              "retryDelaySeconds": retry_delay})

    def no_webhooks(self) -> None:
        self.emulator.data("PUT", "/_emulator/webhook", json={"url": None})

    def metrics(self, timeout: float = 10.0) -> str | None:
        """/metrics as a scraper reads it (with its token when METRICS_TOKEN is set); None: no answer."""
        token = self.env.get("METRICS_TOKEN")
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        try:
            answer = self.http.get("/metrics", headers=headers, timeout=timeout)
        except (httpx.HTTPError, RuntimeError):  # RuntimeError: the stack stopped (its client closed)
            return None
        return answer.text if answer.status_code == 200 else None

    def queue_lengths(self) -> dict[str, int] | None:
        """Tasks waiting in each Celery queue, as /metrics reports them (None: not reported)."""
        found = {queue: int(float(n)) for queue, n in _QUEUE_LENGTH.findall(self.metrics() or "")}
        return found or None

    def log_marks(self) -> dict[int, int]:
        """Where each process's log ends now, by process id (``tracebacks_since`` reads on from there)."""
        return {p.proc.pid: len(p.log()) for p in self.processes().values()}

    def tracebacks_since(self, marks: dict[int, int]) -> dict[str, int]:
        """Tracebacks each process logged after ``marks`` (one started since: all of its log)."""
        return {name: p.log()[marks.get(p.proc.pid, 0):].count("Traceback") for name, p in self.processes().items()}

    def first_traceback(self, marks: dict[int, int], lines: int = 14) -> str:
        """The first traceback logged after ``marks`` (its process, the lines before it and
        its last ``lines`` lines), to say what failed; "" when there is none."""
        for name, p in self.processes().items():
            text = p.log()[marks.get(p.proc.pid, 0):]
            at = text.find("Traceback")
            if at >= 0:
                before = text[:at].splitlines()[-2:]
                after = text[at:].split("\n\n")[0].splitlines()
                return "\n".join([f"[{name}]", *before, *after[:3], "...", *after[-lines:]])
        return ""

    def stop(self) -> None:
        for part in (self.beat, self.hot, self.sweep, self.web, self.broker, self.redis):
            if part is not None:
                part.stop()
        if hasattr(self, "http"):
            self.http.close()
        shutil.rmtree(self.metrics_dir, ignore_errors=True)
