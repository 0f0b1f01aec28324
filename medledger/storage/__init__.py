"""Content-addressed storage on an IPFS node: the one package that talks to IPFS.

:class:`IpfsStore` (:mod:`.store`) wraps the node's RPC API (``/api/v0``, spoken by Kubo and by
js-ipfs) through ``ipfshttpclient``. Every CID it returns is a CIDv1 (``cid_version=1``, raw leaves,
as Kubo would compute it) printed in base32 (``bafk...`` for a single raw block, ``bafy...`` for a
UnixFS DAG). :func:`cid_to_bytes` gives the binary form stored on chain and :func:`cid_from_bytes`
reverses it (:mod:`.cid`).

The node is trusted with nothing. The CID of every upload is computed here (:mod:`.unixfs`, the
same chunking and DAG layout as the node) and an answer with another CID is refused before anything
is pinned; everything fetched is checked against the CID asked for (:mod:`.verify`), raw blocks and
UnixFS DAGs alike, before its last chunk is handed out.

Content goes in and out as streams: :meth:`IpfsStore.add_stream` never holds more than one chunk
of the input in memory (:mod:`.upload`), and :meth:`IpfsStore.cat_stream` yields the content chunk
by chunk.

Failures map onto :mod:`medledger.errors` (:mod:`.endpoint`):

* node down or refusing connections -> :class:`~medledger.errors.ServiceUnavailable` (the message
  names the address tried and how to start a node);
* a node that accepts the connection but answers nothing, not even a version request ->
  ServiceUnavailable saying it hangs; an answer that is not the Kubo RPC API -> ServiceUnavailable
  saying so;
* content the node does not hold (a live node sends nothing before the timeout) ->
  :class:`~medledger.errors.ContentNotFound`;
* content that is not what was asked for, or an upload answered with another CID ->
  :class:`~medledger.errors.TamperingDetected`;
* anything else the node reports -> :class:`~medledger.errors.StorageError` with its message.

Messages never contain content, only addresses, CIDs and the node's own error text.
"""

from __future__ import annotations

from medledger.config import DEFAULT_IPFS_API

from .cid import cid_from_bytes, cid_to_bytes, normalize_cid
from .endpoint import ENV_IPFS_API
from .store import DEFAULT_TIMEOUT, IpfsStore

__all__ = [
    "DEFAULT_IPFS_API",
    "DEFAULT_TIMEOUT",
    "ENV_IPFS_API",
    "IpfsStore",
    "cid_from_bytes",
    "cid_to_bytes",
    "normalize_cid",
]
