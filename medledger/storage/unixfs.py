"""The CID of content, computed here exactly as the IPFS node computes it on ``add``, so what a node
serves or claims can be checked without trusting the node.

The parameters are the ones medledger adds with (and Kubo's and js-ipfs's defaults for CIDv1):
CIDv1, sha2-256, 256 KiB fixed-size chunks stored as raw leaves, a balanced DAG of dag-pb UnixFS
``File`` nodes with at most 174 links each; content of one chunk or less is the raw leaf itself.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from multiformats import CID, multihash

#: Bytes per leaf (the default fixed-size chunker of Kubo and js-ipfs).
CHUNK_BYTES = 256 * 1024
#: Links per dag-pb node (the default of the balanced layout).
MAX_LINKS = 174

_UNIXFS_FILE = 2


@dataclass(frozen=True)
class _Node:
    cid: bytes  # binary CID
    tsize: int  # cumulative size of the serialised DAG below (and including) this node
    filesize: int  # bytes of file content below this node


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited protobuf field."""
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _cid(codec: str, data: bytes) -> bytes:
    return bytes(CID("base32", 1, codec, multihash.wrap(hashlib.sha256(data).digest(), "sha2-256")))


def _leaf(chunk: bytes) -> _Node:
    return _Node(_cid("raw", chunk), len(chunk), len(chunk))


def _parent(children: list[_Node]) -> _Node:
    """A dag-pb UnixFS File node over ``children``: links first, then the data (dag-pb order)."""
    filesize = sum(child.filesize for child in children)
    unixfs = _varint(1 << 3) + _varint(_UNIXFS_FILE) + _varint(3 << 3) + _varint(filesize)
    unixfs += b"".join(_varint(4 << 3) + _varint(child.filesize) for child in children)
    links = b"".join(
        _field(2, _field(1, child.cid) + _field(2, b"") + _varint(3 << 3) + _varint(child.tsize))
        for child in children
    )
    node = links + _field(1, unixfs)
    return _Node(_cid("dag-pb", node), len(node) + sum(child.tsize for child in children), filesize)


class UnixFsHasher:
    """Feed content with :meth:`update`; :meth:`cid` gives the CID an IPFS node computes for it.

    Holds at most one chunk of content and one small record per chunk.
    """

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._leaves: list[_Node] = []
        self.size = 0

    def update(self, data: bytes | bytearray | memoryview) -> None:
        self._buffer += data
        self.size += len(data)
        while len(self._buffer) >= CHUNK_BYTES:
            self._leaves.append(_leaf(bytes(self._buffer[:CHUNK_BYTES])))
            del self._buffer[:CHUNK_BYTES]

    def cid(self) -> CID:
        """The CID of everything fed so far."""
        level = list(self._leaves)
        if self._buffer or not level:
            level.append(_leaf(bytes(self._buffer)))
        if len(level) == 1:
            return CID.decode(level[0].cid)
        while len(level) > 1:
            level = [_parent(level[i:i + MAX_LINKS]) for i in range(0, len(level), MAX_LINKS)]
        return CID.decode(level[0].cid)


def cid_of_bytes(data: bytes) -> CID:
    hasher = UnixFsHasher()
    hasher.update(data)
    return hasher.cid()
