"""A tiny local HTTP server that answers GETs with fixed Stigg-shaped bodies, for what the
emulator cannot serve: answers Stigg may send that the emulator never does (CREDIT
entitlements, malformed shapes). Real HTTP through the real client; only Stigg's side is
made up."""
from __future__ import annotations

import http.server
import json
import threading
from typing import Any, Callable, Iterator
from urllib.parse import parse_qs, urlsplit

Answer = Callable[[str, dict[str, list[str]]], Any]


def page(items: list[Any]) -> dict[str, Any]:
    """A last (and only) page of a Stigg list."""
    return {"data": items, "pagination": {"next": None, "prev": None}}


class StubStigg:
    """``answer(path, query)`` gives the JSON body for a GET (None: 404); ``seen`` holds
    every (path, query) asked, in order."""

    def __init__(self) -> None:
        self.answer: Answer = lambda path, query: None
        self.seen: list[tuple[str, dict[str, list[str]]]] = []
        stub = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                url = urlsplit(self.path)
                query = parse_qs(url.query)
                stub.seen.append((url.path, query))
                body = stub.answer(url.path, query)
                status, raw = (200, json.dumps(body).encode()) if body is not None else (404, b'{"code":"NotFound"}')
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def log_message(self, *_: Any) -> None:
                pass

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def serve(self, answers: dict[str, Any]) -> None:
        """Answer each path with a fixed body, whatever the query."""
        self.answer = lambda path, query: answers.get(path)

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def running() -> Iterator[StubStigg]:
    """Body of a fixture: ``yield from running()``."""
    stub = StubStigg()
    yield stub
    stub.stop()
