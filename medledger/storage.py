"""Content-addressed storage on a local IPFS node: the one module that talks to IPFS.

:class:`IpfsStore` wraps the node's RPC API (``/api/v0``, spoken by Kubo and by js-ipfs) through
``ipfshttpclient``. Every CID it returns is a CIDv1 (``cid_version=1``, raw leaves, as Kubo would
compute it) printed in base32 (``bafk...`` for a single raw block, ``bafy...`` for a UnixFS DAG).
:func:`cid_to_bytes` gives the binary form stored on chain and :func:`cid_from_bytes` reverses it.

Content goes in and out as streams: :meth:`IpfsStore.add_stream` never holds more than one chunk
of the input in memory, and :meth:`IpfsStore.cat_stream` yields the content chunk by chunk.

Failures map onto :mod:`medledger.errors`:

* node down or refusing connections -> :class:`~medledger.errors.ServiceUnavailable` (the message
  names the address tried and how to start a node);
* content the node does not hold (nothing arrives before the timeout) ->
  :class:`~medledger.errors.ContentNotFound`;
* anything else the node reports -> :class:`~medledger.errors.StorageError` with its message.

Messages never contain content, only addresses, CIDs and the node's own error text.
"""

from __future__ import annotations

import io
import os
import re
import urllib.parse
import warnings
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, BinaryIO, Union

import ipfshttpclient.client
import ipfshttpclient.exceptions as ipfs_exc
import requests
import urllib3.exceptions
from multiformats import CID

from medledger.errors import ContentNotFound, ServiceUnavailable, StorageError

__all__ = [
    "DEFAULT_IPFS_API",
    "ENV_IPFS_API",
    "IpfsStore",
    "cid_from_bytes",
    "cid_to_bytes",
    "normalize_cid",
]

# ipfshttpclient 0.7 passes urllib3 a ``strict`` argument that urllib3 2.x only warns about.
warnings.filterwarnings("ignore", message="The 'strict' parameter is no longer needed",
                        category=FutureWarning)

#: Environment variable naming the IPFS API address (multiaddr or URL).
ENV_IPFS_API = "MEDLEDGER_IPFS_API"
#: API address used when neither an argument nor :data:`ENV_IPFS_API` gives one.
DEFAULT_IPFS_API = "/ip4/127.0.0.1/tcp/5101/http"
#: Default seconds to wait for any single answer (or any chunk of a streamed answer) from the node.
DEFAULT_TIMEOUT = 30.0
#: Size of the pieces the request body is cut into while streaming an upload.
UPLOAD_CHUNK = 256 * 1024
#: Size of the pieces :meth:`IpfsStore.cat_stream` yields (at most).
DOWNLOAD_CHUNK = 256 * 1024

Data = Union[bytes, bytearray, memoryview]
Source = Union[Data, BinaryIO, Iterable[Data], "os.PathLike[str]"]


# --- CID helpers ---------------------------------------------------------------------------------
def _decode_cid(cid: str | bytes | CID) -> CID:
    if isinstance(cid, CID):
        return cid
    try:
        if isinstance(cid, (bytes, bytearray, memoryview)):
            return CID.decode(bytes(cid))
        if isinstance(cid, str):
            text = cid.strip()
            if text.startswith("/ipfs/"):
                text = text[len("/ipfs/"):]
            return CID.decode(text)
    except (ValueError, KeyError) as error:
        shown = cid.hex() if isinstance(cid, (bytes, bytearray, memoryview)) else repr(cid)[:120]
        raise StorageError(f"not a valid CID: {shown} ({error})") from error
    raise StorageError(f"not a valid CID: expected str or bytes, got {type(cid).__name__}")


def normalize_cid(cid: str | bytes | CID) -> str:
    """Return ``cid`` as a CIDv1 string in base32 (``bafk...``/``bafy...``).

    Accepts base58btc CIDv1 (``zb2r...``, what js-ipfs prints), CIDv0 (``Qm...``, converted to the
    equivalent v1), ``/ipfs/<cid>`` paths and binary CIDs. Raises StorageError if it is not a CID.
    """
    decoded = _decode_cid(cid)
    if decoded.version == 0:
        decoded = decoded.set(version=1)
    return str(decoded.set(base="base32"))


def cid_to_bytes(cid: str | CID) -> bytes:
    """Binary form of a CID (CIDv1: version, codec, multihash), as stored on chain."""
    decoded = _decode_cid(cid)
    if decoded.version == 0:
        decoded = decoded.set(version=1)
    return bytes(decoded)


def cid_from_bytes(data: bytes) -> str:
    """Inverse of :func:`cid_to_bytes`: the base32 CIDv1 string for a binary CID."""
    if not isinstance(data, (bytes, bytearray, memoryview)) or len(data) == 0:
        raise StorageError("not a valid binary CID: empty or not bytes")
    return normalize_cid(bytes(data))


def _same_block(a: CID, b: CID) -> bool:
    """True if both CIDs address the same block (a blockstore is keyed by multihash only)."""
    return bytes(a.digest) == bytes(b.digest)


# --- streaming input -----------------------------------------------------------------------------
class _ChunkReader:
    """A minimal read-only binary file over a source of chunks.

    ipfshttpclient's multipart encoder calls ``read(chunk_size)`` until it gets ``b""``; this holds
    at most one chunk of the source at a time. It deliberately has no ``name`` attribute, so no
    file name (which could reveal something about the content) is sent to the node.
    """

    def __init__(self, source: Any) -> None:
        self._read = None
        self._iter: Iterator[Data] | None = None
        if hasattr(source, "read"):
            self._read = source.read
        else:
            self._iter = iter(source)
        self._buf = memoryview(b"")
        self._done = False
        self.bytes_read = 0
        #: an exception the source raised; the upload is ended early and the caller re-raises it
        self.error: BaseException | None = None

    def readable(self) -> bool:
        return True

    def _next_chunk(self) -> bool:
        while not self._done:
            if self._read is not None:
                chunk = self._read(UPLOAD_CHUNK)
                if not chunk:
                    self._done = True
                    return False
            else:
                assert self._iter is not None
                try:
                    chunk = next(self._iter)
                except StopIteration:
                    self._done = True
                    return False
            if isinstance(chunk, str):
                raise TypeError("add_stream needs bytes, got str chunks (encode them first)")
            if not isinstance(chunk, (bytes, bytearray, memoryview)):
                raise TypeError(f"add_stream needs bytes chunks, got {type(chunk).__name__}")
            if len(chunk):
                self._buf = memoryview(bytes(chunk) if not isinstance(chunk, bytes) else chunk)
                return True
        return False

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            size = UPLOAD_CHUNK
        if not self._buf:
            try:
                more = self._next_chunk()
            except Exception as error:  # noqa: BLE001 - handed back to the caller by _add
                # Raising here would leave the HTTP request half sent on a socket that stays open
                # until garbage collection, and js-ipfs would keep waiting for the rest while
                # holding its repo lock (so gc and block removal hang). End the body instead.
                self.error = error
                self._done = True
                more = False
            if not more:
                return b""
        out = self._buf[:size].tobytes()
        self._buf = self._buf[size:]
        self.bytes_read += len(out)
        return out

    def close(self) -> None:
        self._buf = memoryview(b"")


def _as_reader(source: Any) -> tuple[_ChunkReader, Any]:
    """Wrap ``source`` (bytes, file object, path or iterable of bytes) in a :class:`_ChunkReader`.

    Returns the reader and a file object to close afterwards (when we opened a path), or None.
    """
    if isinstance(source, (bytes, bytearray, memoryview)):
        return _ChunkReader(io.BytesIO(bytes(source))), None
    if isinstance(source, str):
        raise TypeError("add_stream needs bytes, a binary file, a path object or an iterable of "
                        "bytes; a str is ambiguous (use pathlib.Path for a file, or encode it)")
    if isinstance(source, os.PathLike):
        fh = open(source, "rb")  # noqa: SIM115 - closed by the caller
        return _ChunkReader(fh), fh
    if hasattr(source, "read") or isinstance(source, Iterable):
        return _ChunkReader(source), None
    raise TypeError(f"cannot add a {type(source).__name__}: pass bytes, a binary file object, "
                    "a path or an iterable of bytes")


# --- the store -----------------------------------------------------------------------------------
def _api_to_multiaddr(api: str) -> str:
    """Accept ``/ip4/127.0.0.1/tcp/5101/http``, ``http://127.0.0.1:5101`` or ``127.0.0.1:5101``."""
    api = api.strip()
    if api.startswith("/"):
        return api
    if "://" not in api:
        api = "http://" + api
    url = urllib.parse.urlsplit(api)
    if url.scheme not in ("http", "https") or not url.hostname:
        raise ServiceUnavailable("IPFS node", api, f"cannot use this API address: expected a multiaddr like "
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


def _multiaddr_to_url(maddr: str) -> str:
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


class IpfsStore:
    """Client for one IPFS node's RPC API.

    ``api`` is a multiaddr (``/ip4/127.0.0.1/tcp/5101/http``) or URL (``http://127.0.0.1:5101``);
    without it, ``$MEDLEDGER_IPFS_API`` or :data:`DEFAULT_IPFS_API`. ``timeout`` is how many
    seconds to wait for any single answer, or for the next chunk of a streamed one: an unknown CID
    therefore fails with ContentNotFound after ``timeout`` seconds (js-ipfs waits forever for it).
    """

    def __init__(self, api: str | None = None, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.address = api or os.environ.get(ENV_IPFS_API) or DEFAULT_IPFS_API
        self.multiaddr = _api_to_multiaddr(self.address)
        self.url = _multiaddr_to_url(self.multiaddr)
        self.timeout = float(timeout)
        # connect()'s version check refuses js-ipfs (0.18); the Client class itself works.
        self._client = ipfshttpclient.client.Client(
            self.multiaddr, timeout=self.timeout, chunk_size=UPLOAD_CHUNK)
        # the raw HTTP layer, for the streaming requests the high-level API does not expose
        self._http = self._client._client
        host = urllib.parse.urlsplit(self.url).hostname or ""
        if host in ("127.0.0.1", "localhost", "::1") and hasattr(self._http, "_session_props"):
            # a local node: never route the request through an HTTP(S)_PROXY from the environment
            self._http._session_props["trust_env"] = False

    def __repr__(self) -> str:
        return f"IpfsStore({self.url!r}, timeout={self.timeout})"

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> IpfsStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- error mapping ---------------------------------------------------------------------------
    def _unavailable(self, error: BaseException | str) -> ServiceUnavailable:
        return ServiceUnavailable("IPFS node", self.url, _short(error))

    def _map(self, error: BaseException, what: str, cid: str | None = None,
             timeout: float | None = None) -> Exception:
        """Translate an ipfshttpclient/requests exception into a medledger error."""
        timeout = self.timeout if timeout is None else timeout
        if isinstance(error, ipfs_exc.ConnectionError):
            return self._unavailable(error)
        if isinstance(error, ipfs_exc.TimeoutError) or _is_read_timeout(error):
            if cid is not None:
                return ContentNotFound(
                    f"content {cid} not found: the IPFS node at {self.url} did not return it "
                    f"within {timeout:g} s ({what})")
            return StorageError(f"IPFS node at {self.url} did not answer within {timeout:g} s "
                                f"({what})")
        if isinstance(error, ipfs_exc.ErrorResponse):
            msg = str(error.args[0]) if error.args else str(error)
            if cid is not None and "timed out" in msg:
                return ContentNotFound(f"content {cid} not found on the IPFS node at {self.url} "
                                       f"within {timeout:g} s ({what}: {msg})")
            return StorageError(f"IPFS {what} failed: {msg}")
        if isinstance(error, requests.exceptions.ConnectionError) and _is_refused(error):
            return self._unavailable(error)
        return StorageError(f"IPFS {what} failed at {self.url}: {_short(error)}")

    # --- adding ----------------------------------------------------------------------------------
    def _add(self, source: Source, *, only_hash: bool, pin: bool = False) -> str:
        reader, to_close = _as_reader(source)
        try:
            try:
                result = self._client.add(
                    reader, cid_version=1, raw_leaves=True, only_hash=only_hash, pin=pin)
            except (ipfs_exc.Error, requests.exceptions.RequestException) as error:
                raise self._map(error, "add") from error
        finally:
            reader.close()
            if to_close is not None:
                to_close.close()
        if reader.error is not None:
            # the node stored a truncated copy, unpinned: the garbage collector removes it
            raise reader.error
        try:
            return normalize_cid(result["Hash"])
        except (KeyError, TypeError) as error:
            raise StorageError(f"IPFS add returned no CID: {result!r}"[:300]) from error

    def add_stream(self, source: Source, *, pin: bool = True) -> str:
        """Add content from a binary file object, an iterable of bytes chunks, bytes or a path.

        Streams: only one chunk (<= 256 KiB) of the input is in memory at a time. Returns the
        base32 CIDv1. With ``pin`` the content is pinned once it has been stored completely; if the
        upload fails nothing is pinned (the blocks stored so far are left to the garbage
        collector). Exceptions raised by the source propagate unchanged.
        """
        cid = self._add(source, only_hash=False, pin=False)
        if pin:
            try:
                self.pin(cid)
            except BaseException:
                try:
                    self.unpin(cid)
                except Exception:  # noqa: BLE001 - best effort; the original error matters
                    pass
                raise
        return cid

    def add_bytes(self, data: Data, *, pin: bool = True) -> str:
        """Add ``data`` and return its base32 CIDv1 (pinned unless ``pin=False``)."""
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(f"add_bytes needs bytes, got {type(data).__name__}")
        return self.add_stream(bytes(data), pin=pin)

    def cid_of(self, source: Source) -> str:
        """The CID ``add`` would give for this content, computed by the node without storing it."""
        return self._add(source, only_hash=True, pin=False)

    # --- reading ---------------------------------------------------------------------------------
    def cat_stream(self, cid: str, *, timeout: float | None = None,
                   chunk_size: int = DOWNLOAD_CHUNK) -> Iterator[bytes]:
        """Yield the content of ``cid`` in chunks of at most ``chunk_size`` bytes.

        Raises ContentNotFound if the node sends nothing for ``timeout`` seconds (default: the
        store's timeout) at the start or in the middle of the content. The request is sent when
        iteration starts; closing the generator early closes the connection.
        """
        norm = normalize_cid(cid)
        wait = self.timeout if timeout is None else float(timeout)
        return self._cat_iter(norm, wait, chunk_size)

    def _cat_iter(self, cid: str, wait: float, chunk_size: int) -> Iterator[bytes]:
        try:
            stream = self._http.request("/cat", (cid,), stream=True, timeout=wait)
        except (ipfs_exc.Error, requests.exceptions.RequestException) as error:
            raise self._map(error, "cat", cid=cid, timeout=wait) from error
        try:
            while True:
                try:
                    piece = next(stream)
                except StopIteration:
                    return
                except (ipfs_exc.Error, requests.exceptions.RequestException,
                        urllib3.exceptions.HTTPError) as error:
                    raise self._map(error, "cat", cid=cid, timeout=wait) from error
                for off in range(0, len(piece), chunk_size):
                    yield piece[off:off + chunk_size]
        finally:
            stream.close()

    def cat(self, cid: str, *, timeout: float | None = None) -> bytes:
        """The whole content of ``cid`` (see :meth:`cat_stream` for the timeout)."""
        return b"".join(self.cat_stream(cid, timeout=timeout))

    def has(self, cid: str) -> bool:
        """True if the node holds the root block of ``cid`` locally (never asks the network).

        Lists the node's local blocks (``refs/local``) and stops at the first match.
        """
        want = _decode_cid(normalize_cid(cid))
        try:
            refs = self._http.request("/refs/local", decoder="json", stream=True)
            try:
                for item in refs:
                    ref = item.get("Ref") if isinstance(item, Mapping) else None
                    if not ref:
                        continue
                    try:
                        if _same_block(CID.decode(ref), want):
                            return True
                    except (ValueError, KeyError):
                        continue
            finally:
                refs.close()
        except (ipfs_exc.Error, requests.exceptions.RequestException,
                urllib3.exceptions.HTTPError) as error:
            raise self._map(error, "refs/local") from error
        return False

    # --- pins and garbage collection -------------------------------------------------------------
    def pin(self, cid: str, *, timeout: float | None = None) -> None:
        """Pin ``cid`` recursively (idempotent). ContentNotFound if the node cannot find it."""
        norm = normalize_cid(cid)
        wait = self.timeout if timeout is None else float(timeout)
        try:
            # the node's own deadline too: js-ipfs keeps a pin of missing content (and the repo
            # lock it holds, which blocks gc) pending after the client gives up
            self._client.pin.add(norm, recursive=True, timeout=wait + 5,
                                 opts={"timeout": _duration(wait)})
        except (ipfs_exc.Error, requests.exceptions.RequestException) as error:
            raise self._map(error, "pin add", cid=norm, timeout=wait) from error

    def unpin(self, cid: str) -> None:
        """Remove the recursive pin on ``cid``. Unpinning something not pinned is not an error."""
        norm = normalize_cid(cid)
        try:
            self._client.pin.rm(norm, recursive=True)
        except ipfs_exc.ErrorResponse as error:
            if "not pinned" in str(error.args[0] if error.args else error):
                return
            raise self._map(error, "pin rm") from error
        except (ipfs_exc.Error, requests.exceptions.RequestException) as error:
            raise self._map(error, "pin rm") from error

    def is_pinned(self, cid: str) -> bool:
        """True if ``cid`` itself is pinned (recursively) on the node."""
        norm = normalize_cid(cid)
        want = _decode_cid(norm)
        try:
            result = self._client.pin.ls(norm, type="recursive")
        except ipfs_exc.ErrorResponse as error:
            if "not pinned" in str(error.args[0] if error.args else error):
                return False
            raise self._map(error, "pin ls") from error
        except (ipfs_exc.Error, requests.exceptions.RequestException) as error:
            raise self._map(error, "pin ls") from error
        keys = (result.get("Keys") or {}) if isinstance(result, Mapping) else {}
        for key in keys:
            try:
                if _same_block(CID.decode(key), want):
                    return True
            except (ValueError, KeyError):
                continue
        return False

    def pins(self) -> list[str]:
        """All recursively pinned CIDs (base32)."""
        try:
            result = self._client.pin.ls(type="recursive")
        except (ipfs_exc.Error, requests.exceptions.RequestException) as error:
            raise self._map(error, "pin ls") from error
        return sorted(normalize_cid(k) for k in (result.get("Keys") or {}))

    def gc(self) -> list[str]:
        """Run the node's garbage collector; returns the CIDs of the blocks it removed."""
        try:
            removed = self._client.repo.gc()
        except (ipfs_exc.Error, requests.exceptions.RequestException) as error:
            raise self._map(error, "repo gc") from error
        out: list[str] = []
        for item in removed or []:
            if not isinstance(item, Mapping):
                continue
            err = item.get("Error")
            if err:
                raise StorageError(f"IPFS repo gc failed: {err}")
            key = item.get("Key")
            if isinstance(key, Mapping):
                key = key.get("/")
            if isinstance(key, str):
                try:
                    out.append(normalize_cid(key))
                except StorageError:
                    continue
        return out

    def remove(self, cid: str) -> list[str]:
        """Unpin ``cid`` and delete exactly its blocks from this node (erasure).

        Unlike :meth:`gc`, this touches no other content, so it cannot race with an upload that is
        not pinned yet. Blocks already gone are not an error. Returns the blocks removed."""
        cid = normalize_cid(cid)
        self.unpin(cid)
        if not self.has(cid):  # `refs` of an absent block would wait for the network
            return []
        try:
            refs = self._http.request(
                "/refs",
                (cid,),
                opts={"recursive": "true", "unique": "true", "timeout": f"{max(1, int(self.timeout))}s"},
                decoder="json",
            )
        except (ipfs_exc.Error, requests.exceptions.RequestException) as error:
            mapped = self._map(error, "refs")
            if isinstance(mapped, ContentNotFound):
                return []
            raise mapped from error
        blocks = [normalize_cid(r["Ref"]) for r in refs or [] if isinstance(r, Mapping) and r.get("Ref")]
        blocks.append(cid)
        try:
            answers = self._http.request("/block/rm", tuple(blocks), opts={"force": "true"}, decoder="json")
        except (ipfs_exc.Error, requests.exceptions.RequestException) as error:
            raise self._map(error, "block rm") from error
        return [normalize_cid(a["Hash"]) for a in answers or [] if isinstance(a, Mapping) and a.get("Hash") and not a.get("Error")]

    # --- health ----------------------------------------------------------------------------------
    def version(self) -> str:
        """The node's version string (``0.18.1`` for js-ipfs 0.66)."""
        try:
            info = self._client.version()
        except (ipfs_exc.Error, requests.exceptions.RequestException) as error:
            if isinstance(error, ipfs_exc.TimeoutError):
                raise self._unavailable(f"no answer within {self.timeout:g} s") from error
            raise self._map(error, "version") from error
        return str(info.get("Version", ""))

    def check(self) -> str:
        """Raise ServiceUnavailable unless the node answers; returns its version."""
        return self.version()

    def ping(self) -> bool:
        """True if the node answers its API, False otherwise (never raises for a down node)."""
        try:
            self.version()
        except ServiceUnavailable:
            return False
        return True


def _duration(seconds: float) -> str:
    """A duration for the API's ``timeout`` option (Go syntax, understood by Kubo and js-ipfs)."""
    return f"{max(1, int(seconds * 1000))}ms"


def _short(error: BaseException | str) -> str:
    text = str(error) if not isinstance(error, str) else error
    # requests/urllib3 messages are long and repetitive; keep the gist
    m = re.search(r"(Connection refused|Read timed out|Connection reset by peer|Name or service "
                  r"not known|timed out)", text)
    if m and len(text) > 160:
        return m.group(1)
    return text[:300]


def _is_read_timeout(error: BaseException) -> bool:
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


def _is_refused(error: BaseException) -> bool:
    return "refused" in str(error).lower()
