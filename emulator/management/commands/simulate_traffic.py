"""python manage.py simulate_traffic [--url URL] [--key KEY] [--rate EVENTS_PER_SECOND] [--duration SECONDS]"""
from __future__ import annotations

import signal
import threading
from typing import Any

from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = "Send realistic events and usage to a running emulator through its REST API (Ctrl-C stops)."

    def add_arguments(self, parser: Any) -> None:
        from emulator.demo.simulator import default_key, default_url

        parser.add_argument("--url", default=default_url(), help="emulator base URL (127.0.0.1 only)")
        parser.add_argument("--key", default=default_key(), help="server API key")
        parser.add_argument("--rate", type=float, default=200.0, help="events per second")
        parser.add_argument("--duration", type=float, default=None, help="seconds to run (default: until Ctrl-C)")
        parser.add_argument("--seed", type=int, default=7, help="random seed for the traffic mix")

    def handle(self, *args: Any, **opts: Any) -> None:
        from emulator.demo.rest import quiet_http_logs, require_local
        from emulator.demo.simulator import TrafficSimulator

        quiet_http_logs()

        if opts["rate"] <= 0:
            raise CommandError("--rate must be positive")
        try:
            require_local(opts["url"])
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        stop = threading.Event()

        def on_interrupt(signum: int, frame: Any) -> None:
            # first Ctrl-C: finish the batch in flight and print totals; a second one
            # falls back to the default handler and stops at once
            stop.set()
            signal.signal(signal.SIGINT, signal.default_int_handler)

        signal.signal(signal.SIGINT, on_interrupt)
        signal.signal(signal.SIGTERM, on_interrupt)
        sim = TrafficSimulator(opts["url"], opts["key"], rate=opts["rate"], seed=opts["seed"],
                               log=lambda msg: self.stdout.write(msg), stop=stop)
        try:
            sim.run(opts["duration"])
        finally:
            sim.close()
