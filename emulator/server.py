"""Serve the emulator with gunicorn: several worker processes with threads each, the
webhook dispatcher in the master, optional demo seeding once the port is open, and an
optional watchdog that stops the server when the process that started it is gone."""
from __future__ import annotations

import logging
import os
import threading
import time
from typing import Any, Callable

from gunicorn.app.base import BaseApplication

from . import store

log = logging.getLogger(__name__)


class EmulatorServer(BaseApplication):
    def __init__(self, options: dict[str, Any], on_ready: Callable[[], None] | None = None,
                 parent_pid: int | None = None):
        self.options = options
        self.on_ready = on_ready
        self.parent_pid = parent_pid
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)
        self.cfg.set("when_ready", self._when_ready)

    def load(self):
        from .app import application

        return application

    def _when_ready(self, server: Any) -> None:
        from . import webhooks

        webhooks.start_dispatcher()
        if self.parent_pid:
            threading.Thread(target=self._watch_parent, args=(server,), daemon=True).start()
        if self.on_ready:
            threading.Thread(target=self.on_ready, name="emulator-on-ready", daemon=True).start()

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


def serve(host: str, port: int, *, workers: int, threads: int, on_ready: Callable[[], None] | None = None,
          parent_pid: int | None = None) -> None:
    store.init_db()
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
    EmulatorServer(options, on_ready=on_ready, parent_pid=parent_pid).run()
