"""The web's and the emulator's gunicorns open no control socket: gunicorn 25.1+ opens one
by default at a path shared by every gunicorn of one user ($XDG_RUNTIME_DIR/gunicorn.ctl,
else $HOME/.gunicorn/gunicorn.ctl), so under `make run` the two took each other's; nothing
here uses it."""
from __future__ import annotations

import os
import shutil
import tempfile

import pytest

from .servers import Emulator, RedisServer, WebServer, django_env

pytestmark = pytest.mark.slow


def test_neither_gunicorn_opens_a_control_socket_in_the_users_home():
    home = tempfile.mkdtemp(prefix="test-home-")
    own = {"HOME": home, "XDG_RUNTIME_DIR": ""}
    redis_server = RedisServer()
    emulator = web = None
    try:
        emulator = Emulator(env=own)
        web = WebServer({**django_env(redis_server.url, emulator), **own})
        assert web.proc.poll() is None and emulator.proc.poll() is None
        assert not os.path.exists(os.path.join(home, ".gunicorn")), os.listdir(os.path.join(home, ".gunicorn"))
    finally:
        for part in (web, emulator, redis_server):
            if part is not None:
                part.stop()
        shutil.rmtree(home, ignore_errors=True)
