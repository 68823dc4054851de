"""One log line and one metric per HTTP request (``RequestObservationMiddleware``), one log
line per Celery task (``connect_task_logging``, from the app's ready()). The lines carry
their fields as ``extra=`` (dashboard/logs.py prints them as JSON with LOG_FORMAT=json),
with the customer id where the URL or the task names one."""
from __future__ import annotations

import inspect
import logging
import time
from typing import Any, Callable

from django.http import HttpRequest, HttpResponse

from . import metrics

requests_log = logging.getLogger("dashboard.requests")
tasks_log = logging.getLogger("dashboard.tasks.runs")

QUIET_VIEWS = ("healthz", "metrics")  # probed every few seconds: DEBUG, not INFO


class RequestObservationMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        response = self.get_response(request)
        seconds = time.perf_counter() - started
        match = getattr(request, "resolver_match", None)
        view = (match.url_name or match.view_name) if match else "unmatched"
        metrics.observe_request(view, request.method or "", response.status_code, seconds)
        user = getattr(request, "user", None)
        fields = {"method": request.method, "path": request.path, "view": view, "status": response.status_code,
                  "duration_ms": round(seconds * 1000, 1),
                  "user": user.get_username() if user is not None and user.is_authenticated else None}
        if match and "customer_id" in match.kwargs:
            fields["customer_id"] = match.kwargs["customer_id"]
        requests_log.log(logging.DEBUG if view in QUIET_VIEWS else logging.INFO,
                         "%s %s %s %.1f ms", request.method, request.path, response.status_code,
                         seconds * 1000, extra=fields)
        return response


_started: dict[str, float] = {}


def _customer_of(task: Any, args: tuple, kwargs: dict) -> str | None:
    """The task's ``customer_id`` argument, when its signature has one."""
    try:
        bound = inspect.signature(task.run).bind_partial(*args, **kwargs)
    except (TypeError, ValueError):
        return None
    value = bound.arguments.get("customer_id")
    return value if isinstance(value, str) else None


def _prerun(task_id: str, **_: Any) -> None:
    _started[task_id] = time.perf_counter()


def _postrun(task_id: str, task: Any, args: tuple = (), kwargs: dict | None = None, state: str | None = None,
             **_: Any) -> None:
    started = _started.pop(task_id, None)
    seconds = time.perf_counter() - started if started is not None else 0.0
    request = getattr(task, "request", None)
    fields = {"task": task.name, "task_id": task_id, "state": state, "duration_ms": round(seconds * 1000, 1),
              "retries": getattr(request, "retries", 0),
              "queue": (getattr(request, "delivery_info", None) or {}).get("routing_key")}
    customer = _customer_of(task, args, kwargs or {})
    if customer is not None:
        fields["customer_id"] = customer
    tasks_log.info("%s %s %.1f ms", task.name, state, seconds * 1000, extra=fields)


def connect_task_logging() -> None:
    from celery.signals import task_postrun, task_prerun

    task_prerun.connect(_prerun, weak=False, dispatch_uid="dashboard-task-prerun")
    task_postrun.connect(_postrun, weak=False, dispatch_uid="dashboard-task-postrun")
