"""Is it up? Probes of the services' ports on 127.0.0.1."""

from __future__ import annotations

import errno
import http.client
import socket

from .config import HOST, NodeConfig


def http_post(port: int, path: str, body: bytes, timeout: float,
               content_type: str = "application/json") -> tuple[int, bytes]:
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        conn.request("POST", path, body=body, headers={"Content-Type": content_type})
        resp = conn.getresponse()
        return resp.status, resp.read(65536)
    finally:
        conn.close()


def probe(config: NodeConfig, name: str, timeout: float = 1.0) -> bool:
    try:
        if name == "anvil":
            status_code, body = http_post(
                config.port("anvil_port"), "/",
                b'{"jsonrpc":"2.0","id":1,"method":"eth_chainId","params":[]}', timeout)
            return status_code == 200 and b'"result"' in body
        status_code, body = http_post(config.port("ipfs_api_port"), "/api/v0/id", b"", timeout)
        return status_code == 200 and b'"ID"' in body
    except (OSError, http.client.HTTPException):
        return False


def port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # same option the servers use, so sockets in TIME_WAIT do not count as "in use"
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((HOST, port))
        except OSError as error:
            if error.errno in (errno.EADDRINUSE, errno.EACCES):
                return True
            raise
    return False
