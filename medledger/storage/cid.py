"""CID helpers: parse any form of a CID, print it as base32 CIDv1, and convert to the binary form
stored on chain."""

from __future__ import annotations

from multiformats import CID

from medledger.errors import StorageError


def decode_cid(cid: str | bytes | CID) -> CID:
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
    decoded = decode_cid(cid)
    if decoded.version == 0:
        decoded = decoded.set(version=1)
    return str(decoded.set(base="base32"))


def cid_to_bytes(cid: str | CID) -> bytes:
    """Binary form of a CID (CIDv1: version, codec, multihash), as stored on chain."""
    decoded = decode_cid(cid)
    if decoded.version == 0:
        decoded = decoded.set(version=1)
    return bytes(decoded)


def cid_from_bytes(data: bytes) -> str:
    """Inverse of :func:`cid_to_bytes`: the base32 CIDv1 string for a binary CID."""
    if not isinstance(data, (bytes, bytearray, memoryview)) or len(data) == 0:
        raise StorageError("not a valid binary CID: empty or not bytes")
    return normalize_cid(bytes(data))


def same_block(a: CID, b: CID) -> bool:
    """True if both CIDs address the same block (a blockstore is keyed by multihash only)."""
    return bytes(a.digest) == bytes(b.digest)

