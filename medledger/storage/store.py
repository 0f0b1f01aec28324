"""The client of one IPFS node's RPC API (``/api/v0``): add, cat, pins, garbage collection.

(Over 400 lines on purpose: every request to the node and its CID checks in one class, so no
caller can reach the node around them.)"""

from __future__ import annotations

import os
import urllib.parse
import warnings
from collections.abc import Iterator, Mapping, Sequence

import ipfshttpclient.client
import ipfshttpclient.exceptions as ipfs_exc
import requests
import urllib3.exceptions
from multiformats import CID

from medledger.config import DEFAULT_IPFS_API
from medledger.errors import ContentNotFound, ServiceUnavailable, StorageError, TamperingDetected

from .cid import base58_text, cid_to_bytes, decode_cid, normalize_cid, same_block
from .endpoint import (
    ENV_IPFS_API,
    api_to_multiaddr,
    down,
    duration,
    garbage,
    hanging,
    kind_of,
    multiaddr_to_url,
    node_message,
    short,
)
from .unixfs import CHUNK_BYTES, UnixFsHasher, cid_text_of_bytes
from .upload import UPLOAD_CHUNK, Data, IncompleteAdd, Source, added_cids, as_reader, multipart_body
from .verify import ContentCheck, verified

# ipfshttpclient 0.7 passes urllib3 a ``strict`` argument that urllib3 2.x only warns about.
warnings.filterwarnings("ignore", message="The 'strict' parameter is no longer needed", category=FutureWarning)

#: Default seconds to wait for any single answer (or any chunk of a streamed answer) from the node.
DEFAULT_TIMEOUT = 30.0
#: Size of the pieces :meth:`IpfsStore.cat_stream` yields (at most).
DOWNLOAD_CHUNK = 256 * 1024
#: Seconds a node that timed out gets to answer a version request before it counts as hanging.
PROBE_TIMEOUT = 3.0


class IpfsStore:
    """Client for one IPFS node's RPC API.

    ``api`` is a multiaddr (``/ip4/127.0.0.1/tcp/5101/http``) or URL (``http://127.0.0.1:5101``);
    without it, ``$MEDLEDGER_IPFS_API`` or :data:`DEFAULT_IPFS_API`. ``timeout`` is how many
    seconds to wait for any single answer, or for the next chunk of a streamed one: an unknown CID
    therefore fails with ContentNotFound after ``timeout`` seconds (js-ipfs waits forever for it).
    """

    def __init__(self, api: str | None = None, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.address = api or os.environ.get(ENV_IPFS_API) or DEFAULT_IPFS_API
        self.multiaddr = api_to_multiaddr(self.address)
        self.url = multiaddr_to_url(self.multiaddr)
        self.timeout = float(timeout)
        # connect()'s version check refuses js-ipfs (0.18); the Client class itself works.
        self._client = ipfshttpclient.client.Client(self.multiaddr, timeout=self.timeout, chunk_size=UPLOAD_CHUNK)
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
    def _answers(self) -> bool:
        """Whether the node answers a version request within a few seconds (tells a node that
        hangs from one that is still looking for content)."""
        try:
            info = self._client.version(timeout=min(PROBE_TIMEOUT, self.timeout))
        except (ipfs_exc.Error, requests.exceptions.RequestException, urllib3.exceptions.HTTPError):
            return False
        return isinstance(info, Mapping) and "Version" in info

    def _map(self, error: BaseException, what: str, cid: str | None = None, timeout: float | None = None) -> Exception:
        """Translate an ipfshttpclient/requests exception into a medledger error."""
        timeout = self.timeout if timeout is None else timeout
        kind = kind_of(error)
        if kind == "down":
            return down(self.url, error)
        if kind == "timeout":
            if cid is not None and self._answers():
                return ContentNotFound(
                    f"content {cid} not found: the IPFS node at {self.url} did not return it "
                    f"within {timeout:g} s ({what})"
                )
            return hanging(self.url, what, timeout)
        if kind == "refusal":
            msg = node_message(error)
            if cid is not None and "timed out" in msg:
                return ContentNotFound(
                    f"content {cid} not found on the IPFS node at {self.url} within {timeout:g} s ({what}: {msg})"
                )
            return StorageError(f"IPFS {what} failed: {msg}")
        if kind == "garbage":
            return garbage(self.url, what, error)
        return StorageError(f"IPFS {what} failed at {self.url}: {short(error)}")

    # --- adding ----------------------------------------------------------------------------------
    def _add(self, source: Source) -> str:
        """Upload (unpinned) and return the CID, computed here and checked against the node's."""
        local = UnixFsHasher()
        reader, to_close = as_reader(source, local.update)
        try:
            try:
                result = self._client.add(reader, cid_version=1, raw_leaves=True, only_hash=False, pin=False)
            except (ipfs_exc.Error, requests.exceptions.RequestException) as error:
                raise self._map(error, "add") from error
        finally:
            reader.close()
            if to_close is not None:
                to_close.close()
        if reader.error is not None:
            # the node stored a truncated copy, unpinned: the garbage collector removes it
            raise reader.error
        expected = normalize_cid(local.cid())
        try:
            answered = normalize_cid(result["Hash"])
        except (KeyError, TypeError, StorageError) as error:
            raise garbage(self.url, "add", f"no CID in {result!r}"[:200]) from error
        if answered != expected:
            raise TamperingDetected(
                f"the IPFS node at {self.url} answered CID {answered} for content whose CID is "
                f"{expected}: the node is faulty or hostile; nothing was pinned or registered"
            )
        return answered

    def add_stream(self, source: Source, *, pin: bool = True) -> str:
        """Add content from a binary file object, an iterable of bytes chunks, bytes or a path.

        Streams: only one chunk (<= 256 KiB) of the input is in memory at a time. Returns the
        base32 CIDv1. With ``pin`` the content is pinned once it has been stored completely; if the
        upload fails nothing is pinned (the blocks stored so far are left to the garbage
        collector). Exceptions raised by the source propagate unchanged.
        """
        cid = self._add(source)
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

    def add_many(self, blobs: Sequence[Data], *, pin: bool = True) -> list[str]:
        """Add several small contents in one multipart request (pinned in the same request unless
        ``pin=False``); their base32 CIDv1s in order. Each CID is computed here and the node's answer
        must match it (TamperingDetected otherwise). On any failure nothing stays pinned."""
        expected = [cid_text_of_bytes(bytes(blob)) for blob in blobs]
        body, content_type = multipart_body(blobs)
        opts = {"cid-version": "1", "raw-leaves": "true", "pin": "true" if pin else "false"}
        try:
            answers = self._http.request(
                "/add", opts=opts, data=body, headers={"Content-Type": content_type}, decoder="json"
            )
            given = added_cids(answers, len(blobs))
            answered = [_as_expected(cid, want) for cid, want in zip(given, expected, strict=True)]
        except (ipfs_exc.Error, requests.exceptions.RequestException) as error:
            self._unpin_quietly(expected if pin else [])
            raise self._map(error, "add") from error
        except IncompleteAdd as error:
            self._unpin_quietly(expected if pin else [])
            raise StorageError(
                f"IPFS add failed at {self.url}: the node stored {error.done} of the {error.count} contents of one "
                "request and then stopped (it refused the next one); nothing was pinned"
            ) from error
        except (ValueError, StorageError) as error:
            self._unpin_quietly(expected if pin else [])
            raise garbage(self.url, "add", error) from error
        wrong = [(a, e) for a, e in zip(answered, expected, strict=True) if a != e]
        if wrong:
            self._unpin_quietly([*expected, *answered] if pin else [])
            raise TamperingDetected(
                f"the IPFS node at {self.url} answered CID {wrong[0][0]} for content whose CID is {wrong[0][1]} "
                f"({len(wrong)} of {len(blobs)}): the node is faulty or hostile; nothing was pinned or registered"
            )
        return expected

    def _unpin_quietly(self, cids: Sequence[str]) -> None:
        """Best effort after a failed add: the original error matters more than an unpin's."""
        for cid in dict.fromkeys(cids):
            try:
                self.unpin(cid)
            except Exception:  # noqa: BLE001 - best effort, see above
                pass

    def cid_of(self, source: Source) -> str:
        """The CID ``add`` gives for this content, computed here (no node is asked)."""
        if isinstance(source, (bytes, bytearray, memoryview)) and len(source) <= CHUNK_BYTES:
            return cid_text_of_bytes(bytes(source))
        hasher = UnixFsHasher()
        reader, to_close = as_reader(source, hasher.update)
        try:
            while reader.read(UPLOAD_CHUNK):
                pass
        finally:
            if to_close is not None:
                to_close.close()
        if reader.error is not None:
            raise reader.error
        return normalize_cid(hasher.cid())

    # --- reading ---------------------------------------------------------------------------------
    def cat_stream(
        self, cid: str, *, timeout: float | None = None, chunk_size: int = DOWNLOAD_CHUNK
    ) -> Iterator[bytes]:
        """Yield the content of ``cid`` in chunks of at most ``chunk_size`` bytes, checked against
        ``cid`` (recomputed here): TamperingDetected, before the last chunk is yielded, if the node
        served anything else.

        Raises ContentNotFound if the node sends nothing for ``timeout`` seconds (default: the
        store's timeout) at the start or in the middle of the content, ServiceUnavailable if the
        node does not answer at all. The request is sent when iteration starts; closing the
        generator early closes the connection.
        """
        norm = normalize_cid(cid)
        check = ContentCheck(decode_cid(norm))
        wait = self.timeout if timeout is None else float(timeout)
        return verified(check, self._cat_iter(norm, wait, chunk_size), f"the IPFS node at {self.url}")

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
                except (ipfs_exc.Error, requests.exceptions.RequestException, urllib3.exceptions.HTTPError) as error:
                    raise self._map(error, "cat", cid=cid, timeout=wait) from error
                for off in range(0, len(piece), chunk_size):
                    yield piece[off : off + chunk_size]
        finally:
            stream.close()

    def cat(self, cid: str, *, timeout: float | None = None) -> bytes:
        """The whole content of ``cid`` (see :meth:`cat_stream` for the timeout)."""
        return b"".join(self.cat_stream(cid, timeout=timeout))

    def has(self, cid: str) -> bool:
        """True if the node holds the root block of ``cid`` locally (never asks the network).

        Lists the node's local blocks (``refs/local``) and stops at the first match.
        """
        want = decode_cid(normalize_cid(cid))
        try:
            refs = self._http.request("/refs/local", decoder="json", stream=True)
            try:
                for item in refs:
                    ref = item.get("Ref") if isinstance(item, Mapping) else None
                    if not ref:
                        continue
                    try:
                        if same_block(CID.decode(ref), want):
                            return True
                    except (ValueError, KeyError):
                        continue
            finally:
                refs.close()
        except (ipfs_exc.Error, requests.exceptions.RequestException, urllib3.exceptions.HTTPError) as error:
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
            self._client.pin.add(norm, recursive=True, timeout=wait + 2, opts={"timeout": duration(wait)})
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
        want = decode_cid(norm)
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
                if same_block(CID.decode(key), want):
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
        return [
            normalize_cid(a["Hash"])
            for a in answers or []
            if isinstance(a, Mapping) and a.get("Hash") and not a.get("Error")
        ]

    # --- health ----------------------------------------------------------------------------------
    def version(self) -> str:
        """The node's version string (``0.18.1`` for js-ipfs 0.66)."""
        try:
            info = self._client.version()
        except (ipfs_exc.Error, requests.exceptions.RequestException) as error:
            raise self._map(error, "version") from error
        if not isinstance(info, Mapping) or not isinstance(info.get("Version"), str):
            raise garbage(self.url, "version", f"{info!r}"[:120])
        return str(info["Version"])

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


def _as_expected(answered: str, expected: str) -> str:
    """``answered`` in base32 (``expected`` if it is the same CID in base32 or base58btc: printed
    without multiformats, which costs more than the add of a small record)."""
    if answered == expected:
        return expected
    if answered.startswith("z") and expected.startswith("b") and answered == base58_text(cid_to_bytes(expected)):
        return expected
    return normalize_cid(answered)
