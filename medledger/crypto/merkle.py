"""Batches of readings: an OpenZeppelin ``MerkleProof``-compatible tree (sorted-pair keccak256,
double-hashed leaves)."""

from __future__ import annotations

import hmac
from collections.abc import Sequence

from eth_utils import keccak

from medledger.errors import CryptoError

from ._shapes import FINGERPRINT_BYTES, check_len, record_id_bytes


def batch_leaf(reading_id: bytes | str, fingerprint: bytes) -> bytes:
    """Leaf of a batch tree: ``keccak256(keccak256(abi.encode(bytes32 readingId, bytes32 fp)))``."""
    encoded = record_id_bytes(reading_id) + check_len(fingerprint, FINGERPRINT_BYTES, "fingerprint")
    return keccak(keccak(encoded))


def _hash_pair(a: bytes, b: bytes) -> bytes:
    """OpenZeppelin ``Hashes.commutativeKeccak256``: hash the pair in sorted order."""
    return keccak(a + b) if a < b else keccak(b + a)


def _levels(leaves: Sequence[bytes]) -> list[list[bytes]]:
    if not leaves:
        raise CryptoError("a Merkle tree needs at least one leaf")
    level = [check_len(leaf, 32, f"Merkle leaf {i}") for i, leaf in enumerate(leaves)]
    levels = [level]
    while len(level) > 1:
        nxt = [_hash_pair(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            nxt.append(level[-1])  # odd node: promoted unchanged to the next level
        levels.append(nxt)
        level = nxt
    return levels


def merkle_root(leaves: Sequence[bytes]) -> bytes:
    """Root of the tree over ``leaves`` (32-byte hashes, kept in the given order)."""
    return _levels(leaves)[-1][0]


def _proof_from_levels(levels: list[list[bytes]], index: int) -> list[bytes]:
    proof: list[bytes] = []
    for level in levels[:-1]:
        sibling = index ^ 1
        if sibling < len(level):
            proof.append(level[sibling])
        index //= 2
    return proof


def merkle_proof(leaves: Sequence[bytes], index: int) -> list[bytes]:
    """Proof for ``leaves[index]``, accepted by OpenZeppelin ``MerkleProof.verify``."""
    if not 0 <= index < len(leaves):
        raise IndexError(f"leaf index {index} is out of range for {len(leaves)} leaves")
    return _proof_from_levels(_levels(leaves), index)


def merkle_proofs(leaves: Sequence[bytes]) -> list[list[bytes]]:
    """Proofs for every leaf, in leaf order (builds the tree once)."""
    levels = _levels(leaves)
    return [_proof_from_levels(levels, i) for i in range(len(leaves))]


def verify_merkle_proof(root: bytes, reading_id: bytes | str, fingerprint: bytes, proof: Sequence[bytes]) -> bool:
    """Whether the reading ``(reading_id, fingerprint)`` is in the batch with Merkle root ``root``.

    The same check as the contract's ``verifyBatchInclusion``: the leaf is computed here with
    :func:`batch_leaf` (double-hashed), never taken from the caller, so an inner node of the tree
    (or the pair of its children) cannot pass as a reading. Then OpenZeppelin ``processProof``.
    """
    computed = batch_leaf(reading_id, fingerprint)
    for i, node in enumerate(proof):
        computed = _hash_pair(computed, check_len(node, 32, f"Merkle proof node {i}"))
    return hmac.compare_digest(computed, check_len(root, 32, "Merkle root"))

