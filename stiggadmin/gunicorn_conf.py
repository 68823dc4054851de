"""gunicorn settings the dashboard's web needs whatever the command line says:
``gunicorn -c python:stiggadmin.gunicorn_conf stiggadmin.wsgi``.

With PROMETHEUS_MULTIPROC_DIR set (an empty folder, made before gunicorn starts), each
worker writes its metrics there and /metrics sums them; a worker that exits is marked dead
so its live gauges stop counting (dashboard/metrics.py)."""
from __future__ import annotations

import os
from typing import Any


def child_exit(server: Any, worker: Any) -> None:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
