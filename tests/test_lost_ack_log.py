"""A task that finishes while the broker is down cannot be acknowledged: the worker says
so in one warning line, not a critical error with a traceback (dashboard/logs.py
LostAckFilter, attached to celery.worker.request's logger by settings.LOGGING). The record
is made by kombu itself, acknowledging a message it received from a real Redis that has
since stopped; any other record of that logger keeps its traceback."""
from __future__ import annotations

import io
import logging

import pytest
from django.conf import settings
from kombu import Connection

from dashboard.logs import JsonFormatter

from .servers import RedisServer

LOGGER = "celery.worker.request"  # where Celery's worker logs a failed acknowledgement


@pytest.fixture
def worker_log():
    """What celery.worker.request's logger (as settings.LOGGING configured it) writes, in
    the plain format; the handler is ours, the logger and its filters are the settings'."""
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(logging.Formatter(settings.LOGGING["formatters"]["plain"]["format"]))
    logger = logging.getLogger(LOGGER)
    logger.addHandler(handler)
    yield logger, out
    logger.removeHandler(handler)


def lost_ack(logger: logging.Logger) -> None:
    """Receive a message from a real Redis broker, stop the broker, then acknowledge it as
    Celery's worker does when a task finishes (kombu logs the failure on ``logger``)."""
    broker = RedisServer()
    try:
        with Connection(broker.url, transport_options={"socket_timeout": 2, "socket_connect_timeout": 2}) as conn:
            queue = conn.SimpleQueue("lost-ack")
            queue.put({"task": "refresh"})
            message = queue.get(timeout=5)
            broker.stop()
            message.ack_log_error(logger, conn.connection_errors)
    finally:
        broker.stop()


def test_it_says_a_lost_acknowledgement_in_one_warning_line(worker_log):
    logger, out = worker_log
    lost_ack(logger)
    lines = out.getvalue().splitlines()
    assert len(lines) == 1, out.getvalue()
    assert "Traceback" not in out.getvalue()
    line = lines[0]
    assert f" WARNING {LOGGER}: the broker was unreachable when a task finished" in line
    assert "acknowledgement was lost" in line and "visibility timeout" in line
    assert "ConnectionError" in line  # the reason, in a few words


def test_it_keeps_the_traceback_of_any_other_record(worker_log):
    logger, out = worker_log
    try:
        raise ValueError("a task's own failure")
    except ValueError:
        logger.error("Task %s raised unexpected: %r", "refresh_customer", "ValueError", exc_info=True)
    text = out.getvalue()
    assert " ERROR celery.worker.request: Task refresh_customer raised" in text
    assert "Traceback (most recent call last)" in text and "ValueError: a task's own failure" in text


def test_the_json_line_of_a_lost_acknowledgement_has_no_exception_field(worker_log):
    logger, out = worker_log
    logger.handlers[-1].setFormatter(JsonFormatter())
    lost_ack(logger)
    lines = out.getvalue().splitlines()
    assert len(lines) == 1 and '"level": "WARNING"' in lines[0] and '"exception"' not in lines[0], lines
