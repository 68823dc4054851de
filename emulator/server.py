"""Serve the emulator with gunicorn: several worker processes with threads each, the
webhook dispatcher and the optional demo seed in a sidecar process started once the
port is open (see sidecar.py), and an optional watchdog that stops the server when the
process that started it is gone."""
from __future__ import annotations

import logging
import os
import threading
import time
from typing import Any

from gunicorn.app.base import BaseApplication

from . import store

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

log = logging.getLogger(__name__)


class EmulatorServer(BaseApplication):
    def __init__(self, options: dict[str, Any], sidecar_args: tuple[Any, ...], parent_pid: int | None = None):
        self.options = options
        self.sidecar_args = sidecar_args
        self.parent_pid = parent_pid
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)
        self.cfg.set("when_ready", self._when_ready)
        if "control_socket_disable" in self.cfg.settings:  # gunicorn 25.1+: see stiggadmin/gunicorn_conf.py
            self.cfg.set("control_socket_disable", True)

    def load(self):
        from .app import application

        return application

    def _when_ready(self, server: Any) -> None:
        # Background work runs in a process of its own: the master keeps no SQLite
        # connection, since it forks workers (see sidecar.py). A plain subprocess, not
        # multiprocessing, whose child registry forked workers would inherit.
        import subprocess
        import sys

        db_path, base_url, api_key, seed = self.sidecar_args
        self.sidecar = subprocess.Popen([sys.executable, "-m", "emulator.sidecar", db_path, base_url, api_key,
                                         "seed" if seed else "no-seed", str(os.getpid())], cwd=ROOT)
        if self.parent_pid:
            threading.Thread(target=self._watch_parent, args=(server,), daemon=True).start()

    def _watch_parent(self, server: Any) -> None:
        while True:
            time.sleep(0.5)
            # The parent's exit reparents us; kill(pid, 0) would still succeed on an
            # unreaped zombie, so the changed parent pid is the signal to stop.
            if os.getppid() != self.parent_pid:
                log.warning("Parent process %s is gone; stopping the emulator", self.parent_pid)
                import signal

                os.kill(os.getpid(), signal.SIGTERM)
                return


def serve(host: str, port: int, *, workers: int, threads: int, api_key: str, seed: bool = False,
          parent_pid: int | None = None) -> None:
    store.init_db()
    store.close()
    options = {
        "bind": f"{host}:{port}",
        "workers": workers,
        "threads": threads,
        "worker_class": "gthread",
        "preload_app": True,  # shared request counters are created before the fork
        "keepalive": 30,
        "timeout": 120,
        "graceful_timeout": 3,
        "accesslog": None,
        "errorlog": "-",
        "loglevel": "warning",
        "proc_name": "stigg-emulator",
    }
    sidecar_args = (os.path.abspath(store.db_path()), f"http://{host}:{port}", api_key, seed)
    EmulatorServer(options, sidecar_args, parent_pid=parent_pid).run()
