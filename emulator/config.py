"""The emulator's own configuration, read from the environment."""
from __future__ import annotations

import os

# The documented default server key: `make run` and the dashboard use it when no real
# Stigg key is configured. Publishable (client-) keys are read-only.
DEFAULT_SERVER_KEY = "server-emulator-demo-key"
DEFAULT_CLIENT_KEY = "client-emulator-demo-key"


def api_keys() -> set[str]:
    raw = os.environ.get("EMULATOR_API_KEYS", f"{DEFAULT_SERVER_KEY},{DEFAULT_CLIENT_KEY}")
    return {k.strip() for k in raw.split(",") if k.strip()}


ENVIRONMENT_ID = os.environ.get("EMULATOR_ENVIRONMENT_ID", "env-emulator-demo")
