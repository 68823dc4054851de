"""/metrics (Prometheus) and structured logs: the fleet's numbers from Redis, each web
worker's request metrics summed under gunicorn (multiprocess mode), one JSON log line per
request and per task with the customer id. Real gunicorn, a real Celery worker, real Redis."""
from __future__ import annotations

import json
import re
import tempfile
import time

import httpx
import pytest
from celery import Celery
from django.test import Client
from django.urls import reverse

from .servers import CeleryWorker, RedisServer, WebServer, django_env


def sample(text: str, name: str, **labels: str) -> float | None:
    """The value of the sample ``name`` with exactly ``labels``, in Prometheus's text format."""
    for line in text.splitlines():
        found = re.fullmatch(r"([a-zA-Z_:][\w:]*)(?:\{(.*)\})?\s+(\S+)", line)
        if found and found.group(1) == name and dict(re.findall(r'(\w+)="([^"]*)"', found.group(2) or "")) == labels:
            return float(found.group(3))
    return None


@pytest.mark.django_db
def test_it_reports_the_fleet_and_its_own_requests(settings):
    settings.METRICS_TOKEN = ""
    c = Client()
    for _ in range(3):
        c.get(reverse("healthz"))
    response = c.get(reverse("metrics"))
    assert response.status_code == 200 and response["Content-Type"].startswith("text/plain")
    text = response.content.decode()
    assert sample(text, "stiggadmin_read_model_up") == 1
    for queue in ("hot", "sweep"):
        assert sample(text, "stiggadmin_queue_length", queue=queue) is not None
    for share in ("all", "sweep", "hot", "bulk"):
        assert sample(text, "stiggadmin_stigg_requests_total", share=share) is not None
        assert sample(text, "stiggadmin_request_budget_reserved_ahead_seconds", share=share) is not None
    assert sample(text, "stiggadmin_stigg_max_rps") == settings.STIGG_MAX_RPS
    assert sample(text, "stiggadmin_refresh_errors_total") is not None
    assert sample(text, "stiggadmin_stigg_rate_limited_total") is not None
    counted = sample(text, "stiggadmin_http_request_duration_seconds_count", view="healthz", method="GET",
                     status="200")
    assert counted is not None and counted >= 3


@pytest.mark.django_db
def test_it_asks_for_the_token_when_one_is_set(settings):
    settings.METRICS_TOKEN = "scrape-me-123"
    assert Client().get(reverse("metrics")).status_code == 401
    assert Client().get(reverse("metrics"), HTTP_AUTHORIZATION="Bearer wrong").status_code == 401
    ok = Client().get(reverse("metrics"), HTTP_AUTHORIZATION="Bearer scrape-me-123")
    assert ok.status_code == 200 and "stiggadmin_read_model_up" in ok.content.decode()


@pytest.fixture(scope="module")
def redis_here():
    server = RedisServer()
    yield server
    server.stop()


def test_two_gunicorn_workers_report_one_sum_and_log_json_lines(redis_here):
    metrics_dir = tempfile.mkdtemp(prefix="test-prometheus-")
    web = WebServer(django_env(redis_here.url, PROMETHEUS_MULTIPROC_DIR=metrics_dir, LOG_FORMAT="json",
                               STIGG_API_URL="http://127.0.0.1:9"), workers=2)
    try:
        with httpx.Client(base_url=web.url) as http:
            before = sample(http.get("/metrics").text, "stiggadmin_http_request_duration_seconds_count",
                            view="healthz", method="GET", status="200") or 0
            for _ in range(20):
                http.get("/healthz", headers={"Connection": "close"})
            http.get("/customers/acme%20co", headers={"Connection": "close"})  # signed out: 302 to sign-in
            # Whichever worker answers the scrape, it reports both workers' requests.
            counts = {sample(http.get("/metrics", headers={"Connection": "close"}).text,
                             "stiggadmin_http_request_duration_seconds_count", view="healthz", method="GET",
                             status="200") for _ in range(6)}
        assert counts == {before + 20}
        lines = [json.loads(line) for line in web.log().splitlines() if line.startswith("{")]
        visit = [line for line in lines if line.get("view") == "customer"]
        assert visit and visit[0]["customer_id"] == "acme co" and visit[0]["status"] == 302
        assert visit[0]["method"] == "GET" and visit[0]["logger"] == "dashboard.requests"
        assert {"at", "level", "message", "duration_ms", "user"} <= set(visit[0])
    finally:
        web.stop()


def test_a_worker_logs_one_json_line_per_task_with_its_customer(redis_here):
    worker = CeleryWorker(django_env(redis_here.url, LOG_FORMAT="json", STIGG_API_URL="http://127.0.0.1:9"),
                          queues="hot", concurrency=1)
    celery = Celery(broker=redis_here.url, set_as_current=False)
    try:
        celery.send_task("dashboard.tasks.refresh_usage_history", args=["json-log-co"], queue="hot")
        deadline = time.time() + 20
        runs = []
        while time.time() < deadline and not runs:
            runs = [json.loads(line) for line in worker.log().splitlines()
                    if line.startswith("{") and '"dashboard.tasks.runs"' in line]
            time.sleep(0.2)
        assert runs, worker.log()[-3000:]
        run = runs[0]
        assert run["task"] == "dashboard.tasks.refresh_usage_history" and run["customer_id"] == "json-log-co"
        assert run["state"] in ("RETRY", "SUCCESS", "FAILURE") and run["queue"] == "hot"
        assert isinstance(run["duration_ms"], float)
    finally:
        worker.stop()
