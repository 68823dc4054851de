"""The emulator's background work, in a process of its own: the webhook dispatcher
(with promotion-expiry notices) and, when asked, the demo seed.

It is started as a fresh interpreter from the server's master process
(``python -m emulator.sidecar DB_PATH BASE_URL API_KEY seed|no-seed PARENT_PID``), so
it inherits nothing: SQLite connections must never cross a fork() (a child closing an
inherited connection can release the parent's locks and disturb the WAL). The master
itself therefore never opens the store once it starts forking workers.
"""
from __future__ import annotations

import os
import signal
import threading
import time


def main(db_path: str, base_url: str, api_key: str, seed: bool, parent_pid: int) -> None:
    os.environ["EMULATOR_DB_PATH"] = db_path
    from . import store
    from .webhooks import delivery

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    delivery.start_dispatcher(stop)
    if seed:
        threading.Thread(target=_seed, args=(base_url, api_key), name="demo-seed", daemon=True).start()
    # Stop with the server: its exit reparents us.
    while not stop.wait(0.5):
        if os.getppid() != parent_pid:
            stop.set()
    time.sleep(0.2)  # let the dispatcher finish the delivery in hand
    store.close()


def _seed(base_url: str, api_key: str) -> None:
    from . import store
    from .demo import seed

    try:
        seed.seed_demo_if_empty(base_url, api_key, log=lambda msg: print(msg, flush=True))
    except Exception as exc:
        print(f"Demo seed failed: {exc}", flush=True)
        store.set_control({"seed": "failed"})
        return
    store.set_control({"seed": "done"})


if __name__ == "__main__":
    import sys

    db, url, key, seed_flag, parent = sys.argv[1:6]
    main(db, url, key, seed_flag == "seed", int(parent))
