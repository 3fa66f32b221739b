"""A webhook receiver for Alertmanager: records every notification it is sent."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.servers import HOST


class Hook:
    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        self.url = ""

    def notes(self) -> list[tuple[str, str, str]]:
        """(status, alertname, device or gateway) per alert of every message, in order."""
        with self.lock:
            return [(a["status"], a["labels"]["alertname"],
                     a["labels"].get("device") or a["labels"].get("gateway", ""))
                    for m in self.messages for a in m["alerts"]]

    def firing(self, name: str, who: str) -> int:
        return sum(1 for n in self.notes() if n == ("firing", name, who))

    def resolved(self, name: str, who: str) -> int:
        return sum(1 for n in self.notes() if n == ("resolved", name, who))


@contextmanager
def webhook() -> Iterator[Hook]:
    hook = Hook()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            with hook.lock:
                hook.messages.append(json.loads(body))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer((HOST, 0), Handler)
    hook.url = f"http://{HOST}:{server.server_address[1]}/hook"
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    try:
        yield hook
    finally:
        server.shutdown()
        server.server_close()
