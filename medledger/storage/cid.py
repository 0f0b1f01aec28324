"""CID helpers: parse any form of a CID, print it as base32 CIDv1, and convert to the binary form
stored on chain."""

from __future__ import annotations

import base64

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
                text = text[len("/ipfs/") :]
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


#: The start of a binary CIDv1 of a raw block or a dag-pb node with a sha2-256 multihash (32 bytes).
RAW_SHA256_PREFIX = b"\x01\x55\x12\x20"
_SHA256_PREFIXES = (RAW_SHA256_PREFIX, b"\x01\x70\x12\x20")
_BASE58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


def base32_text(binary: bytes) -> str:
    """A binary CIDv1 in multibase base32 (``b`` + RFC 4648 base32, lower case, unpadded): what
    :func:`normalize_cid` prints, without the multiformats machinery (a bulk ingest prints thousands)."""
    return "b" + base64.b32encode(binary).decode("ascii").lower().rstrip("=")


def base58_text(binary: bytes) -> str:
    """A binary CIDv1 in multibase base58btc (``z...``: what js-ipfs prints)."""
    number, digits = int.from_bytes(binary, "big"), []
    while number:
        number, digit = divmod(number, 58)
        digits.append(_BASE58[digit])
    zeros = len(binary) - len(binary.lstrip(b"\x00"))
    return "z" + "1" * zeros + "".join(reversed(digits))


def _sha256_cid_bytes(text: str) -> bytes | None:
    """The binary form of a base32 CIDv1 of a raw block or dag-pb node with a sha2-256 digest, or None
    for anything else (left to the general path)."""
    if not text.startswith("b") or len(text) != 59:
        return None
    try:
        binary = base64.b32decode(text[1:].upper() + "=" * (-(len(text) - 1) % 8))
    except ValueError:
        return None
    return binary if len(binary) == 36 and binary[:4] in _SHA256_PREFIXES else None


def cid_to_bytes(cid: str | CID) -> bytes:
    """Binary form of a CID (CIDv1: version, codec, multihash), as stored on chain."""
    if isinstance(cid, str):
        fast = _sha256_cid_bytes(cid)
        if fast is not None:
            return fast
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
