"""Run a command and end it when the process that asked for it is gone.

    python -m tests.watchdog PARENT_PID -- command args...

Test servers (redis-server, Celery workers) have no notion of a parent; wrapped in
this, they stop by themselves if a test run is killed before it could stop them.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time


def main() -> int:
    parent = int(sys.argv[1])
    if sys.argv[2] != "--":
        raise SystemExit("usage: python -m tests.watchdog PARENT_PID -- command ...")
    child = subprocess.Popen(sys.argv[3:])

    def forward(signum: int, _frame: object) -> None:
        child.send_signal(signum)

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, forward)
    while child.poll() is None:
        # Reparenting happens when the parent exits (even if nobody reaps it), so a
        # changed parent pid is the reliable sign; kill(parent, 0) succeeds on a zombie.
        if os.getppid() != parent:
            child.terminate()
            try:
                child.wait(timeout=10)
            except subprocess.TimeoutExpired:
                child.kill()
            break
        time.sleep(0.5)
    return child.wait()


if __name__ == "__main__":
    sys.exit(main())
