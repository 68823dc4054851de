"""gunicorn settings the dashboard's web needs whatever the command line says:
``gunicorn -c python:stiggadmin.gunicorn_conf stiggadmin.wsgi``.

With PROMETHEUS_MULTIPROC_DIR set, each worker writes its metrics there and /metrics sums
them (dashboard/metrics.py): the folder is made, or emptied of a previous run's files, as
gunicorn starts, and a worker that exits is marked dead so its live gauges stop counting."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

# gunicorn 25.1+ opens a control socket by default, at one path per user
# ($XDG_RUNTIME_DIR/gunicorn.ctl, else $HOME/.gunicorn/gunicorn.ctl):
# two gunicorns of one user (the web and the emulator under `make run`) would take each
# other's, and a service user without a writable home may have none. Nothing here uses it.
# (An older gunicorn ignores a setting it does not know.)
control_socket_disable = True


def on_starting(server: Any) -> None:
    folder = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        for old in Path(folder).glob("*.db"):
            old.unlink()


def child_exit(server: Any, worker: Any) -> None:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
