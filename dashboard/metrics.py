"""Prometheus metrics (GET /metrics): what an operator watches.

Two kinds, each multiprocess-safe in its own way:
- The fleet's state is read from Redis at scrape time by ``FleetCollector``: sync lag,
  customers behind and in error, refresh errors and 429s seen (the read model's counters,
  which every worker adds to), the Celery queues' lengths (the broker's lists) and the
  request budget (the rate limiter's counters and how far ahead it is reserved). Any web
  process, on any host, reports the same numbers, and a worker's restart loses none.
- This process's HTTP requests (a histogram by view, method and status) through the
  official client's multiprocess mode when PROMETHEUS_MULTIPROC_DIR is set (gunicorn with
  several workers: each writes its own file, the scrape sums them; the gunicorn config
  marks a dead worker's files), or in memory when it is not (one process: runserver, tests).
"""
from __future__ import annotations

import logging
import os
import time
from typing import Iterator
from urllib.parse import urlsplit

import redis
from django.conf import settings
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Histogram, generate_latest, multiprocess
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from . import ratelimit, tasks

log = logging.getLogger(__name__)

QUEUES = ("hot", "sweep")  # settings.CELERY_TASK_ROUTES and the default queue
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

# Not registered anywhere at import: a scrape builds its registry (``exposition``).
REQUEST_SECONDS = Histogram("stiggadmin_http_request_duration_seconds",
                            "Time to answer an HTTP request, by view (URL name), method and status.",
                            ["view", "method", "status"], buckets=BUCKETS, registry=None)


def observe_request(view: str, method: str, status: int, seconds: float) -> None:
    REQUEST_SECONDS.labels(view, method, str(status)).observe(seconds)


class FleetCollector(Collector):
    """The fleet's state, read from Redis when scraped (a handful of round trips)."""

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        up = GaugeMetricFamily("stiggadmin_read_model_up", "1 when the read model's Redis answered this scrape.")
        try:
            families = list(self._read_model_families())
        except redis.RedisError as exc:
            log.warning("metrics: read model unreadable: %s", exc)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from families
        yield from self._broker_families()

    def _read_model_families(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        rm = tasks.read_model()
        status = rm.sync_status(settings.SYNC_STALE_AFTER_SECONDS)
        oldest = rm.oldest_fetched_at()
        lag = GaugeMetricFamily("stiggadmin_sync_lag_seconds",
                                "Age of the customer read longest ago (absent before the first sync).")
        if oldest is not None:
            lag.add_metric([], max(0.0, time.time() - oldest))
        yield lag
        for name, text, value in (
                ("customers", "Customers in the read model.", status.customers_total),
                ("customers_behind", "Customers read longer ago than SYNC_STALE_AFTER_SECONDS.",
                 status.customers_behind),
                ("customers_in_error", "Customers whose last refresh failed (their last good data shown).",
                 status.customers_in_error)):
            yield GaugeMetricFamily(f"stiggadmin_{name}", text, value=value)
        yield CounterMetricFamily("stiggadmin_refresh_errors", "Refreshes that failed (Stigg down or refusing).",
                                  value=status.errors_seen)
        yield CounterMetricFamily("stiggadmin_stigg_rate_limited", "429 answers from Stigg seen by the sync.",
                                  value=status.rate_limited_seen)
        if status.last_sweep_duration is not None:
            yield GaugeMetricFamily("stiggadmin_last_sweep_duration_seconds", "How long the last full sweep took.",
                                    value=status.last_sweep_duration)
        if status.last_sweep_finished_at is not None:
            yield GaugeMetricFamily("stiggadmin_last_sweep_finished_timestamp_seconds",
                                    "When the last full sweep finished (Unix time).",
                                    value=status.last_sweep_finished_at.timestamp())
        built = rm.near_limit_csv_built_at()
        if built is not None:  # stops moving when beat or the hot worker stops building it
            yield GaugeMetricFamily("stiggadmin_near_limit_csv_built_timestamp_seconds",
                                    "When the near-limit CSV's last snapshot was built (Unix time).",
                                    value=built.timestamp())
        budget = redis.Redis.from_url(settings.REDIS_URL)  # where the rate limiter keeps its keys
        try:
            shares = ratelimit.usage(budget)
        finally:
            budget.close()
        granted = CounterMetricFamily("stiggadmin_stigg_requests",
                                      "Requests to Stigg granted by the request budget, by share "
                                      "(all: every request, the sweep's and the hot tier's included).", labels=["share"])
        ahead = GaugeMetricFamily("stiggadmin_request_budget_reserved_ahead_seconds",
                                  "How far ahead the request budget is reserved: above 0, callers queue for it.",
                                  labels=["share"])
        for share, (count, seconds) in shares.items():
            granted.add_metric([share], count)
            ahead.add_metric([share], seconds)
        yield granted
        yield ahead
        yield GaugeMetricFamily("stiggadmin_stigg_max_rps", "The request budget: STIGG_MAX_RPS.",
                                value=settings.STIGG_MAX_RPS)

    def _broker_families(self) -> Iterator[GaugeMetricFamily]:
        """Tasks waiting in each Celery queue (a Redis broker's lists)."""
        url = settings.CELERY_BROKER_URL
        if urlsplit(url).scheme not in ("redis", "rediss"):
            return
        lengths = GaugeMetricFamily("stiggadmin_queue_length", "Tasks waiting in a Celery queue.", labels=["queue"])
        broker = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
        try:
            pipe = broker.pipeline(transaction=False)
            for queue in QUEUES:
                pipe.llen(queue)
            for queue, length in zip(QUEUES, pipe.execute()):
                lengths.add_metric([queue], length)
        except redis.RedisError as exc:
            log.warning("metrics: broker unreadable: %s", exc)
            return
        finally:
            broker.close()
        yield lengths


def exposition() -> tuple[bytes, str]:
    """The text a scrape gets, and its content type."""
    registry = CollectorRegistry()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.MultiProcessCollector(registry)
    else:
        registry.register(REQUEST_SECONDS)
    registry.register(FleetCollector())
    return generate_latest(registry), CONTENT_TYPE_LATEST
