"""The category secret keys a reader holds, in the shapes callers pass them, and the order in which
a blob's sealed record key is tried against them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Union, cast

from medledger.errors import CryptoError, KeyNotFound

from .primitives import KeyPair, secret_of

CategoryKeys = Union[
    bytes,
    KeyPair,
    Mapping[int, Union[bytes, KeyPair]],
    Mapping[int, Mapping[int, Union[bytes, KeyPair]]],
]
"""Category secret keys: one secret, a map ``epoch -> secret``, or ``category -> epoch -> secret``
(the shape of an opened key envelope's ``keys``)."""


def _by_epoch(keys: CategoryKeys, category: int | None) -> Mapping[int, bytes | KeyPair] | None:
    """The ``epoch -> secret`` map for ``category``; None for a single secret."""
    if isinstance(keys, (bytes, bytearray, memoryview, KeyPair)):
        return None
    if not isinstance(keys, Mapping):
        raise CryptoError("category keys must be a secret key, a KeyPair or a mapping of epochs to keys")
    values = list(keys.values())
    if values and all(isinstance(v, Mapping) for v in values):
        # every value is a mapping: the ``category -> epoch -> secret`` shape
        if category is None:
            raise CryptoError("keys of several categories need the record's category to choose from")
        nested = cast("Mapping[int, Mapping[int, bytes | KeyPair]]", keys)
        return nested.get(category, {})
    # otherwise the flat ``epoch -> secret`` shape (its values are checked by secret_of)
    return cast("Mapping[int, bytes | KeyPair]", keys)


def candidates(keys: CategoryKeys, category: int | None) -> list[tuple[int | None, bytes]]:
    """``(epoch, secret)`` pairs to try, newest epoch first (epoch None for a bare secret)."""
    by_epoch = _by_epoch(keys, category)
    if by_epoch is None:
        return [(None, secret_of(cast("bytes | KeyPair", keys)))]
    return [(epoch, secret_of(by_epoch[epoch])) for epoch in sorted(by_epoch, reverse=True)]


def for_epoch(keys: CategoryKeys, category: int, epoch: int, missing: KeyNotFound) -> bytes:
    """The secret of exactly ``category`` and ``epoch`` (format 1 blobs name both); ``missing`` if
    it is not there."""
    by_epoch = _by_epoch(keys, category)
    if by_epoch is None:
        return secret_of(cast("bytes | KeyPair", keys))
    key = by_epoch.get(epoch)
    if key is None:
        raise missing
    return secret_of(key)
