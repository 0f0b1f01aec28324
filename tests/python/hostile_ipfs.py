"""A hostile IPFS endpoint for tests: a small HTTP server on 127.0.0.1 that speaks the few Kubo RPC
calls medledger uses (``add``, ``cat``, ``version``, ``pin/add``), and lies, hangs or babbles.

``upstream`` (an API URL) makes it a proxy in front of a real node: every call is forwarded except
those a rule takes over. Rules:

* ``forge_cat[cid] = bytes``: ``cat`` of that CID answers these bytes;
* ``add_answer = cid``: ``add`` answers this CID (after forwarding the upload, if proxying);
* ``hang = True``: every call is accepted and never answered;
* ``garbage = True``: every call answers an HTML page with status 200.

``calls`` lists the paths asked for, in order.
"""

from __future__ import annotations

import http.client
import json
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class HostileIpfs:
    def __init__(self, upstream: str | None = None) -> None:
        self.upstream = urllib.parse.urlsplit(upstream) if upstream else None
        self.forge_cat: dict[str, bytes] = {}
        self.add_answer: str | None = None
        self.hang = False
        self.garbage = False
        self.calls: list[str] = []
        self._stop = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def multiaddr(self) -> str:
        return f"/ip4/127.0.0.1/tcp/{self._server.server_address[1]}/http"

    def __enter__(self) -> HostileIpfs:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._server.shutdown()
        self._server.server_close()

    def forward(self, method: str, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        assert self.upstream is not None
        conn = http.client.HTTPConnection(self.upstream.hostname, self.upstream.port, timeout=30)
        try:
            conn.request(method, path, body=body, headers=headers)
            response = conn.getresponse()
            return response.status, dict(response.getheaders()), response.read()
        finally:
            conn.close()


def _handler(hostile: HostileIpfs) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:  # quiet
            pass

        def _answer(self, status: int, body: bytes, content_type: str = "application/json") -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _body(self) -> bytes:
            if self.headers.get("Transfer-Encoding", "").lower() != "chunked":
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))
            parts = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(parts)
                parts.append(self.rfile.read(size))
                self.rfile.readline()

        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            parts = urllib.parse.urlsplit(self.path)
            hostile.calls.append(parts.path)
            body = self._body()
            if hostile.hang:
                hostile._stop.wait(120)
                return
            if hostile.garbage:
                self._answer(200, b"<html><body>Welcome to nginx!</body></html>", "text/html")
                return
            args = urllib.parse.parse_qs(parts.query).get("arg", [])
            if parts.path == "/api/v0/cat" and args and args[0] in hostile.forge_cat:
                self._answer(200, hostile.forge_cat[args[0]], "text/plain")
                return
            if parts.path == "/api/v0/version" and hostile.upstream is None:
                self._answer(200, json.dumps({"Version": "0.0.0-hostile"}).encode())
                return
            status, headers, answer = (hostile.forward("POST", self.path, body, {
                k: v for k, v in self.headers.items()
                if k.lower() not in ("host", "content-length", "transfer-encoding")})
                if hostile.upstream else (404, {}, b"404 page not found"))
            if parts.path == "/api/v0/add" and hostile.add_answer is not None:
                answer = json.dumps({"Name": "", "Hash": hostile.add_answer, "Size": "1"}).encode()
                status = 200
            self._answer(status, answer, headers.get("Content-Type", "application/json"))

    return Handler
