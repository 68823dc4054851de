"""python manage.py runemulator [--port 8700] [--seed demo|none]"""
from __future__ import annotations

import os
import sys

from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = "Run the Stigg API emulator (a real multi-process HTTP server on 127.0.0.1)."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=int(os.environ.get("EMULATOR_PORT", 8700)))
        parser.add_argument("--db", default=None, help="SQLite file (default $EMULATOR_DB_PATH or var/emulator.sqlite3)")
        parser.add_argument("--seed", choices=("demo", "none"), default="none",
                            help="demo: build the demo company through the REST API when the store is empty")
        parser.add_argument("--workers", type=int, default=int(os.environ.get("EMULATOR_WORKERS", 2)))
        parser.add_argument("--threads", type=int, default=int(os.environ.get("EMULATOR_THREADS", 8)))
        parser.add_argument("--parent-pid", type=int, default=None,
                            help="stop when this process exits (used by tests)")

    def handle(self, *args, **opts):
        if opts["db"]:
            os.environ["EMULATOR_DB_PATH"] = opts["db"]
        if not 1 <= opts["port"] <= 65535:
            raise CommandError("--port must be between 1 and 65535")
        from emulator import config, server, store

        store.init_db()
        base_url = f"http://{opts['host']}:{opts['port']}"
        if opts["seed"] == "demo":
            # GET /_emulator/state shows "seed": running (set before the port opens), then
            # done or failed, so `make run` can start the first sync once the demo exists.
            store.set_control({"seed": "running"})
        store.close()  # the master forks workers: it must hold no SQLite connection
        server_key = next(k for k in sorted(config.api_keys()) if k.startswith("server-"))
        print(f"Stigg emulator listening on {base_url} (storage {store.db_path()})", flush=True)
        sys.stdout.flush()
        server.serve(opts["host"], opts["port"], workers=opts["workers"], threads=opts["threads"],
                     api_key=server_key, seed=opts["seed"] == "demo", parent_pid=opts["parent_pid"])
