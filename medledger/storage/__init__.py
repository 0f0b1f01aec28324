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

from .cid import cid_from_bytes, cid_to_bytes, normalize_cid
from .endpoint import DEFAULT_IPFS_API, ENV_IPFS_API
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
