"""Log lines as JSON (LOG_FORMAT=json): one object a line, for a log shipper. The message,
its level, logger and time, the fields a line was given (``extra=``: a request's method,
path, status and duration, a task's name and state, the customer id where there is one),
and a traceback as one string field. And ``LostAckFilter``: a task's acknowledgement lost
to an unreachable broker said in one line, not a critical error with a traceback."""
from __future__ import annotations

import json
import logging
from datetime import datetime, timezone

# The ``extra=`` fields a line may carry; anything else a library attaches is left out.
FIELDS = ("method", "path", "view", "status", "duration_ms", "started_at", "user", "customer_id", "task", "task_id",
          "state", "queue", "retries")


# kombu.message.Message.ack_log_error (kombu 5), which Celery's worker calls on
# celery.worker.request's logger when a task finishes (acks_late): the delivery tag and the
# connection error, logged CRITICAL with its traceback.
LOST_ACK_MESSAGE = "Couldn't ack %r, reason:%r"


class LostAckFilter(logging.Filter):
    """A task that finished while the broker was unreachable could not be acknowledged.
    Nothing is broken and nobody can act on it: the worker reconnects by itself, and the
    message, if the broker kept it, comes back after the visibility timeout and runs again
    (every task is safe to run twice). So that record becomes one warning line without its
    traceback (one per task finishing during a broker outage: dozens of tracebacks in a
    minute's outage, found by bench/bench_faults.py scenario 4). Any other record passes
    unchanged. Attached to celery.worker.request's logger in settings.LOGGING."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.msg == LOST_ACK_MESSAGE and isinstance(record.args, tuple) and len(record.args) == 2:
            tag, reason = record.args
            record.msg = ("the broker was unreachable when a task finished (delivery tag %s): its acknowledgement "
                          "was lost; if the broker kept the message it delivers it again after the visibility "
                          "timeout (%s)")
            if isinstance(reason, BaseException):
                reason = f"{type(reason).__name__}: {reason}"
            record.args = (tag, reason)
            record.levelno, record.levelname = logging.WARNING, logging.getLevelName(logging.WARNING)
            record.exc_info, record.exc_text, record.stack_info = None, None, None
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = {"at": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
                "level": record.levelname, "logger": record.name, "message": record.getMessage()}
        for name in FIELDS:
            if name in record.__dict__:
                line[name] = record.__dict__[name]
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str, ensure_ascii=False)
