"""Checking what an IPFS node serves against the CID that was asked for, computed here.

A raw-codec CID is checked by hashing the bytes; a dag-pb (UnixFS) CID by rebuilding the DAG with
the parameters medledger adds with (:mod:`.unixfs`). Anything else cannot be checked and is
refused: asking the same node to hash what it served proves nothing.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

from multiformats import CID, multihash

from medledger.errors import StorageError, TamperingDetected

from .cid import normalize_cid
from .unixfs import UnixFsHasher


class ContentCheck:
    """Feed the served bytes with :meth:`update`, then :meth:`verify` them against ``cid``."""

    def __init__(self, cid: CID) -> None:
        self.cid = cid
        if cid.hashfun.name != "sha2-256" or cid.codec.name not in ("raw", "dag-pb"):
            raise StorageError(
                f"cannot check content against {normalize_cid(cid)}: it uses {cid.codec.name} with "
                f"{cid.hashfun.name}, and medledger checks only sha2-256 raw and dag-pb (UnixFS) CIDs"
            )
        self._raw = hashlib.sha256() if cid.codec.name == "raw" else None
        self._unixfs = UnixFsHasher() if self._raw is None else None
        self.size = 0

    def update(self, data: bytes) -> None:
        self.size += len(data)
        if self._raw is not None:
            self._raw.update(data)
        elif self._unixfs is not None:
            self._unixfs.update(data)

    def actual(self) -> CID:
        """The CID of what was fed, in the codec of the expected one."""
        if self._raw is not None:
            return CID("base32", 1, "raw", multihash.wrap(self._raw.digest(), "sha2-256"))
        assert self._unixfs is not None
        return self._unixfs.cid()

    def verify(self, source: str) -> None:
        """TamperingDetected unless the bytes fed have the expected CID."""
        actual = self.actual()
        if bytes(actual.digest) != bytes(self.cid.digest) or actual.codec != self.cid.codec:
            raise TamperingDetected(
                f"{source} returned {self.size} bytes for {normalize_cid(self.cid)} that are not that "
                f"content (their CID is {normalize_cid(actual)}): the node is faulty or hostile, and "
                "nothing it sent was used. (medledger checks UnixFS content added as CIDv1 with raw "
                "leaves and 256 KiB chunks.)"
            )


def verified(check: ContentCheck, pieces: Iterator[bytes], source: str) -> Iterator[bytes]:
    """Yield ``pieces`` while checking them; the last piece only after the whole content matched."""
    held: bytes | None = None
    for piece in pieces:
        check.update(piece)
        if held is not None:
            yield held
        held = piece
    check.verify(source)
    if held is not None:
        yield held
