"""A hostile Ethereum JSON-RPC endpoint for tests: a small HTTP server on 127.0.0.1 that answers
every request the way ``mode`` says:

* ``html``: an HTML page with status 200 (a web server, a captive portal);
* ``json``: JSON that is not JSON-RPC (another API);
* ``garbage``: bytes that are not JSON at all, as ``application/json``;
* ``status``: status 502 with a proxy's text;
* ``hang``: accepts the connection, reads the request and never answers.

``calls`` counts the requests.
"""

from __future__ import annotations

from http.server import BaseHTTPRequestHandler
from typing import Any

from local_http import LocalHttpServer

ANSWERS = {
    "html": (200, "text/html", b"<!doctype html><html><body><h1>Welcome to nginx!</h1></body></html>"),
    "json": (200, "application/json", b'{"status": "ok", "data": [1, 2, 3]}'),
    "garbage": (200, "application/json", b"\x00\x01\x02 not json"),
    "status": (502, "text/plain", b"502 Bad Gateway"),
}


class HostileRpc(LocalHttpServer):
    def __init__(self, mode: str) -> None:
        assert mode in ANSWERS or mode == "hang", mode
        self.mode = mode
        self.calls = 0
        super().__init__(_handler(self))


def _handler(hostile: HostileRpc) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:  # quiet
            pass

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            hostile.calls += 1
            if hostile.mode == "hang":
                hostile.stopping.wait(120)
                return
            status, kind, body = ANSWERS[hostile.mode]
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    return Handler
