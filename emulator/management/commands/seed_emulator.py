"""python manage.py seed_emulator --bulk [--customers N] [--nodes N] [--db PATH]
python manage.py seed_emulator --demo [--url URL] [--key KEY]"""
from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = ("Seed the Stigg emulator: --bulk writes a large fleet straight into its SQLite store; "
            "--demo builds the demo company through the REST API of a running emulator.")

    def add_arguments(self, parser: Any) -> None:
        from emulator.demo.simulator import default_key, default_url

        mode = parser.add_mutually_exclusive_group(required=True)
        mode.add_argument("--bulk", action="store_true", help="write straight into the store (no server needed)")
        mode.add_argument("--demo", action="store_true", help="build the demo company over REST")
        parser.add_argument("--customers", type=int, default=10_000)
        parser.add_argument("--nodes", type=int, default=100_000, help="governance entities in total")
        parser.add_argument("--governed", type=int, default=None,
                            help="customers that carry the nodes (default 5%% of --customers)")
        parser.add_argument("--seed", type=int, default=None, help="random seed")
        parser.add_argument("--db", default=None, help="SQLite file (default $EMULATOR_DB_PATH or var/emulator.sqlite3)")
        parser.add_argument("--url", default=default_url(), help="--demo: emulator base URL (127.0.0.1 only)")
        parser.add_argument("--key", default=default_key(), help="--demo: server API key")
        parser.add_argument("--if-empty", action="store_true", help="--demo: do nothing when customers exist")

    def handle(self, *args: Any, **opts: Any) -> None:
        from emulator.demo.rest import quiet_http_logs, require_local

        quiet_http_logs()
        out = lambda msg: self.stdout.write(msg)  # noqa: E731
        if opts["demo"]:
            from emulator.demo import seed

            try:
                require_local(opts["url"])
            except ValueError as exc:
                raise CommandError(str(exc)) from None
            kwargs = {} if opts["seed"] is None else {"seed": opts["seed"]}
            if opts["if_empty"]:
                summary = seed.seed_demo_if_empty(opts["url"], opts["key"], log=out)
            else:
                summary = seed.seed_demo(opts["url"], opts["key"], log=out, **kwargs)
            if summary and summary["errors"]:
                raise CommandError(f"{len(summary['errors'])} seed call(s) failed; first: {summary['errors'][0]}")
            return
        if opts["customers"] < 1 or opts["nodes"] < 0:
            raise CommandError("--customers must be at least 1 and --nodes at least 0")
        from emulator import store
        from emulator.demo import bulk

        kwargs = {} if opts["seed"] is None else {"seed": opts["seed"]}
        try:
            bulk.seed_bulk(opts["db"] or store.db_path(), customers=opts["customers"], nodes=opts["nodes"],
                           governed=opts["governed"], log=out, **kwargs)
        except (RuntimeError, ValueError) as exc:
            raise CommandError(str(exc)) from None
