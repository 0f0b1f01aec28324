"""The Ethereum node as a service: every answer checked, every wait bounded.

An endpoint that refuses the connection is *down*; one that accepts it and sends nothing is *hanging*;
one that answers with anything but JSON-RPC (an HTML page, a proxy's error, JSON of another API) is
*not an Ethereum node*. Each becomes :class:`~medledger.errors.ServiceUnavailable` naming the URL and
what was seen, never a decoder's traceback. Waits are bounded: connecting takes at most
:data:`CONNECT_TIMEOUT`, the first request of a session (the chain id) at most :data:`PROBE_TIMEOUT`,
any later one the configured RPC timeout, and nothing is retried behind the caller's back (web3's
default retries turned a hanging server into a 153 s wait). Bare calls (:class:`BareTransport`) skip
requests and web3 altogether: the hot paths of a write pay a sixth of the CPU per call.
"""

from __future__ import annotations

import base64
import http.client
import json
import select
import socket
import threading
import urllib.parse
from typing import Any

import requests
import urllib3
from eth_typing import URI
from web3 import HTTPProvider
from web3.types import RPCEndpoint, RPCResponse

from medledger.errors import ServiceUnavailable

SERVICE = "Ethereum node"
#: seconds to establish a TCP connection (a local or LAN node connects in milliseconds)
CONNECT_TIMEOUT = 5.0
#: seconds the first request of a session may take: an Ethereum node answers ``eth_chainId`` at once
PROBE_TIMEOUT = 5.0
_SNIPPET = 80


def down(url: str, error: BaseException) -> ServiceUnavailable:
    text = str(error)
    reason = "connection refused" if "refused" in text.lower() else f"cannot connect: {type(error).__name__}"
    return ServiceUnavailable(SERVICE, url, reason)


def hanging(url: str, method: str, waited: float) -> ServiceUnavailable:
    return ServiceUnavailable(
        SERVICE,
        url,
        f"it accepted the connection but sent no answer within {waited:g} s ({method}); it hangs or is overloaded",
    )


def garbage(url: str, method: str, detail: str) -> ServiceUnavailable:
    return ServiceUnavailable(
        SERVICE, url, f"the service there answered, but not as an Ethereum JSON-RPC endpoint ({method}: {detail})"
    )


def _is_timeout(error: BaseException) -> bool:
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, (requests.Timeout, urllib3.exceptions.TimeoutError, TimeoutError)):
            return True
        current = current.__cause__ or current.__context__
    return False


def transport_error(url: str, method: str, error: BaseException, waited: float) -> ServiceUnavailable:
    """A failed HTTP exchange as the service problem it shows."""
    if isinstance(error, requests.ConnectionError) and "refused" in str(error).lower():
        return down(url, error)  # (urllib3's NewConnectionError is a ConnectTimeoutError: test this first)
    if isinstance(error, requests.ConnectTimeout):
        return ServiceUnavailable(SERVICE, url, f"no connection within {CONNECT_TIMEOUT:g} s")
    if _is_timeout(error):
        return hanging(url, method, waited)
    return down(url, error)


def _describe(status: int, headers: Any, body: bytes) -> str:
    kind = headers.get("Content-Type", "no content type") if headers is not None else "no content type"
    text = body[:_SNIPPET].decode("utf-8", "replace").replace("\n", " ").strip()
    more = "…" if len(body) > _SNIPPET else ""
    return f"HTTP {status}, {kind}: {text!r}{more}" if text else f"HTTP {status}, {kind}, empty body"


def checked_answer(url: str, method: str, status: int, headers: Any, body: bytes) -> dict[str, Any]:
    """The JSON-RPC answer in ``body``, or :func:`garbage` when it is none (not JSON, not an object with
    a ``result`` or an ``error``)."""
    try:
        answer = json.loads(body)
    except ValueError:
        raise garbage(url, method, _describe(status, headers, body)) from None
    if not isinstance(answer, dict) or not ("result" in answer or "error" in answer):
        raise garbage(url, method, _describe(status, headers, body))
    return answer


class CheckedProvider(HTTPProvider):
    """web3's HTTP provider without retries, with bounded waits and every answer checked."""

    def __init__(self, url: str, timeout: float) -> None:
        super().__init__(
            url, request_kwargs={"timeout": (CONNECT_TIMEOUT, timeout)}, exception_retry_configuration=None
        )
        self.read_timeout = timeout

    def make_request(self, method: RPCEndpoint, params: Any) -> RPCResponse:
        request_data = self.encode_rpc_request(method, params)
        url = URI(str(self.endpoint_uri))
        kwargs = dict(self.get_request_kwargs())
        session = self._request_session_manager.cache_and_return_session(url, request_timeout=kwargs["timeout"])
        try:
            response = session.post(url, data=request_data, **kwargs)
        except requests.RequestException as exc:
            raise transport_error(url, method, exc, self.read_timeout) from exc
        answer = checked_answer(url, method, response.status_code, response.headers, response.content)
        return answer  # type: ignore[return-value]


class BareTransport:
    """Bare JSON-RPC over one kept-alive HTTP connection per thread (the hot paths: nonces, raw
    transactions, receipts): about a sixth of the CPU of a requests session per call. Nothing is
    retried: a request whose answer is lost may have been acted on, and the journal, not a blind
    resend, settles a transaction in doubt."""

    def __init__(self, url: str) -> None:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ServiceUnavailable(SERVICE, url, "not an http(s) URL")
        self.url = url
        self._https = parts.scheme == "https"
        self._host, self._port = parts.hostname, parts.port or (443 if self._https else 80)
        self._path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self._headers = {"Content-Type": "application/json"}
        if parts.username is not None:
            credentials = f"{urllib.parse.unquote(parts.username)}:{urllib.parse.unquote(parts.password or '')}"
            self._headers["Authorization"] = "Basic " + base64.b64encode(credentials.encode()).decode()
        self._local = threading.local()

    def _connection(self) -> http.client.HTTPConnection:
        conn: http.client.HTTPConnection | None = getattr(self._local, "conn", None)
        if conn is not None and conn.sock is not None and _dropped(conn.sock):
            conn.close()  # the node closed the idle connection: a fresh one, before anything is sent
        if conn is None:
            kind = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
            conn = kind(self._host, self._port, timeout=CONNECT_TIMEOUT)
            self._local.conn = conn
        return conn

    def post(self, method: str, params: list[Any], request_id: int, timeout: float) -> dict[str, Any]:
        """One request, checked like :class:`CheckedProvider`'s."""
        body = json.dumps({"jsonrpc": "2.0", "id": request_id, "method": method, "params": params})
        status, headers, content = self._exchange(body, method, timeout)
        return checked_answer(self.url, method, status, headers, content)

    def post_batch(self, calls: list[tuple[str, list[Any]]], first_id: int, timeout: float) -> list[dict[str, Any]]:
        """Several requests in one (a JSON-RPC batch): each answer checked, in the order of ``calls``
        (an answer missing from the batch is an error answer)."""
        body = json.dumps(
            [{"jsonrpc": "2.0", "id": first_id + i, "method": m, "params": p} for i, (m, p) in enumerate(calls)]
        )
        method = calls[0][0] if len(calls) == 1 else f"batch of {len(calls)} ({calls[0][0]}, ...)"
        status, headers, content = self._exchange(body, method, timeout)
        try:
            answers = json.loads(content)
        except ValueError:
            raise garbage(self.url, method, _describe(status, headers, content)) from None
        if not isinstance(answers, list):
            raise garbage(self.url, method, _describe(status, headers, content))
        by_id = {a.get("id"): a for a in answers if isinstance(a, dict)}
        missing = {"error": {"message": "no answer in the batch"}}
        return [
            checked_answer(self.url, m, status, headers, json.dumps(by_id.get(first_id + i, missing)).encode())
            for i, (m, _) in enumerate(calls)
        ]

    def _exchange(self, body: str, method: str, timeout: float) -> tuple[int, Any, bytes]:
        conn = self._connection()
        connected = False
        try:
            if conn.sock is None:
                conn.connect()
            connected = True
            conn.sock.settimeout(timeout)
            conn.request("POST", self._path, body=body, headers=self._headers)
            response = conn.getresponse()
            content = response.read()
        except (OSError, http.client.HTTPException) as exc:
            conn.close()
            raise _bare_error(self.url, method, exc, timeout, connected=connected) from exc
        if response.will_close:
            conn.close()
        return response.status, response.headers, content


def _dropped(sock: socket.socket) -> bool:
    """Whether the peer closed an idle connection (it is readable: EOF, or a stray byte)."""
    try:
        readable, _, _ = select.select([sock], [], [], 0)
    except (OSError, ValueError):
        return True
    return bool(readable)


def _bare_error(url: str, method: str, error: BaseException, waited: float, *, connected: bool) -> ServiceUnavailable:
    if isinstance(error, ConnectionRefusedError):
        return down(url, error)
    if isinstance(error, TimeoutError):
        return (
            hanging(url, method, waited)
            if connected
            else ServiceUnavailable(SERVICE, url, f"no connection within {CONNECT_TIMEOUT:g} s")
        )
    if isinstance(error, (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError)):
        return ServiceUnavailable(SERVICE, url, f"it closed the connection without answering ({method})")
    if isinstance(error, http.client.HTTPException):
        return garbage(url, method, f"{type(error).__name__}: {error}")
    return ServiceUnavailable(SERVICE, url, f"cannot connect: {type(error).__name__}: {error}")
