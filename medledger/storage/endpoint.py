"""The IPFS API address (multiaddr or URL) and how failures of the HTTP layer read to a person:
a node that is down, one that hangs, one that answers something other than the Kubo RPC API, and
the node's own error messages."""

from __future__ import annotations

import re
import urllib.parse

import ipfshttpclient.exceptions as ipfs_exc
import requests
import urllib3.exceptions

from medledger.config import DEFAULT_IPFS_API
from medledger.errors import ServiceUnavailable

#: Environment variable naming the IPFS API address (multiaddr or URL).
ENV_IPFS_API = "MEDLEDGER_IPFS_API"


def api_to_multiaddr(api: str) -> str:
    """Accept ``/ip4/127.0.0.1/tcp/5101/http``, ``http://127.0.0.1:5101`` or ``127.0.0.1:5101``."""
    api = api.strip()
    if api.startswith("/"):
        return api
    if "://" not in api:
        api = "http://" + api
    url = urllib.parse.urlsplit(api)
    if url.scheme not in ("http", "https") or not url.hostname:
        raise ServiceUnavailable(f"cannot use IPFS API address {api!r}: expected a multiaddr like "
                                 f"{DEFAULT_IPFS_API} or a URL like http://127.0.0.1:5101")
    host = url.hostname
    port = url.port or (443 if url.scheme == "https" else 80)
    if re.fullmatch(r"[0-9.]+", host):
        proto = "ip4"
    elif ":" in host:
        proto = "ip6"
    else:
        proto = "dns"
    return f"/{proto}/{host}/tcp/{port}/{url.scheme}"


def multiaddr_to_url(maddr: str) -> str:
    parts = maddr.strip("/").split("/")
    try:
        host = parts[1]
        port = parts[3]
        scheme = parts[4] if len(parts) > 4 else "http"
    except IndexError:
        return maddr
    if parts[0] == "ip6":
        host = f"[{host}]"
    return f"{scheme}://{host}:{port}"



def duration(seconds: float) -> str:
    """A duration for the API's ``timeout`` option (Go syntax, understood by Kubo and js-ipfs)."""
    return f"{max(1, int(seconds * 1000))}ms"


def short(error: BaseException | str) -> str:
    text = str(error) if not isinstance(error, str) else error
    # requests/urllib3 messages are long and repetitive; keep the gist
    m = re.search(r"(Connection refused|Read timed out|Connection reset by peer|Name or service "
                  r"not known|timed out)", text)
    if m and len(text) > 160:
        return m.group(1)
    return text[:300]


def is_read_timeout(error: BaseException) -> bool:
    seen: set[int] = set()
    e: BaseException | None = error
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        if isinstance(e, (requests.exceptions.Timeout, urllib3.exceptions.TimeoutError,
                          TimeoutError)):
            return True
        for arg in getattr(e, "args", ()):
            if isinstance(arg, (urllib3.exceptions.TimeoutError, TimeoutError)):
                return True
        e = e.__cause__ or e.__context__
    return False


def is_refused(error: BaseException) -> bool:
    return "refused" in str(error).lower()


def kind_of(error: BaseException) -> str:
    """``down``, ``timeout``, ``refusal`` (the node's own error message), ``garbage`` (an answer
    that is not the Kubo RPC API) or ``other``."""
    if isinstance(error, ipfs_exc.ConnectionError) or (
            isinstance(error, requests.exceptions.ConnectionError) and is_refused(error)):
        return "down"  # (urllib3's NewConnectionError is a ConnectTimeoutError: test this first)
    if isinstance(error, ipfs_exc.TimeoutError) or is_read_timeout(error):
        return "timeout"
    if isinstance(error, ipfs_exc.ErrorResponse):
        return "refusal"
    if isinstance(error, (ipfs_exc.StatusError, ipfs_exc.DecodingError, ipfs_exc.ProtocolError)):
        return "garbage"
    return "other"


def node_message(error: BaseException) -> str:
    """The message of an IPFS node's error answer."""
    return str(error.args[0]) if error.args else str(error)


def down(url: str, error: BaseException | str) -> ServiceUnavailable:
    return ServiceUnavailable(
        f"IPFS node not reachable at {url} ({short(error)}). Start the local services "
        f"with `medledger node up`, or set {ENV_IPFS_API} to the API address of a running "
        "IPFS node.")


def hanging(url: str, what: str, waited: float) -> ServiceUnavailable:
    return ServiceUnavailable(
        f"the IPFS node at {url} is not answering: it accepted the connection but sent nothing "
        f"within {waited:g} s ({what}), and did not answer a version request either: it hangs or is "
        "overloaded.")


def garbage(url: str, what: str, error: BaseException | str) -> ServiceUnavailable:
    return ServiceUnavailable(
        f"the service at {url} answered, but not as an IPFS node's RPC API ({what}: {short(error)}). "
        f"Check that {ENV_IPFS_API} (or the [ipfs] api setting) is the API address of an IPFS node.")
