"""Log lines as JSON (LOG_FORMAT=json): one object a line, for a log shipper. The message,
its level, logger and time, the fields a line was given (``extra=``: a request's method,
path, status and duration, a task's name and state, the customer id where there is one),
and a traceback as one string field."""
from __future__ import annotations

import json
import logging
from datetime import datetime, timezone

# The ``extra=`` fields a line may carry; anything else a library attaches is left out.
FIELDS = ("method", "path", "view", "status", "duration_ms", "started_at", "user", "customer_id", "task", "task_id",
          "state", "queue", "retries")


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
