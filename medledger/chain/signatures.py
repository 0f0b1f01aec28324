"""Wallet signatures as the contract takes them: decoded from what wallets hand back, and normalised.

The contract (OpenZeppelin ``SignatureChecker``) accepts from an account without code only a 65-byte
``r ‖ s ‖ v`` with ``v`` 27 or 28 and a low ``s``. Wallets hand back other forms of the same
signature: ``v`` 0/1 (hardware wallets, some libraries), 64-byte EIP-2098 compact signatures
(``r ‖ yParity·2^255 + s``, ethers' ``compactSerialized``), or an object with ``r``, ``s`` and ``v``
or ``yParity``. :func:`normalize` turns each into the one form the contract accepts (a high ``s``
becomes ``n - s`` with the other ``v``: the same signer), so the tooling's own check and the
contract judge the same bytes. A contract wallet (ERC-1271) decides for itself what a signature
is: its bytes are not normalised unless the wallet refuses them as given.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from eth_keys.datatypes import Signature
from eth_keys.exceptions import BadSignature
from eth_utils import ValidationError, to_checksum_address

from medledger.errors import MalformedRequest

#: The order of secp256k1's group.
SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
_HALF_N = SECP256K1_N // 2
_HEX = re.compile(r"^(0x)?([0-9a-fA-F]{2})*$")


def decode(value: str | bytes | Mapping[str, Any]) -> bytes:
    """The bytes of a signature as a wallet or library hands it back: hex (with or without ``0x``),
    raw bytes, or an object with ``r``, ``s`` and ``v`` (or ``yParity``), as ethers' ``Signature``
    serialises. Raises :class:`MalformedRequest` for anything else."""
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        text = value.strip()
        if not text or not _HEX.match(text):
            raise MalformedRequest(
                "The signature is not hexadecimal (0x followed by an even number of digits)", "signature"
            )
        return bytes.fromhex(text.removeprefix("0x"))
    if isinstance(value, Mapping) and "r" in value and "s" in value:
        r, s = _word(value["r"], "r"), _word(value["s"], "s")
        if "v" in value and value["v"] is not None:
            v = _small(value["v"], "v")
        elif "yParity" in value:
            v = _small(value["yParity"], "yParity")
        else:
            raise MalformedRequest("The signature object has r and s but neither v nor yParity", "signature")
        return r + s + bytes([v])
    raise MalformedRequest("The signature must be hex text or an object with r, s and v", "signature")


def _word(value: Any, name: str) -> bytes:
    raw = decode(value) if isinstance(value, str) else None
    if raw is None or len(raw) != 32:
        raise MalformedRequest(f"The signature's {name} must be 32 bytes of hex", "signature")
    return raw


def _small(value: Any, name: str) -> int:
    if isinstance(value, str) and re.fullmatch(r"0x[0-9a-fA-F]{1,2}|[0-9]{1,3}", value):
        value = int(value, 0)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 255:
        raise MalformedRequest(f"The signature's {name} must be a small number (0, 1, 27 or 28)", "signature")
    return value


def normalize(signature: bytes) -> bytes:
    """``signature`` as the contract accepts it from an account without code: 65 bytes, ``v`` 27 or
    28, low ``s``. Accepts 65 bytes with ``v`` 0, 1, 27 or 28 and 64-byte EIP-2098 signatures; raises
    :class:`MalformedRequest` for anything that is not an ECDSA signature at all."""
    if len(signature) == 64:
        r, vs = signature[:32], int.from_bytes(signature[32:], "big")
        v, s = 27 + (vs >> 255), vs & ((1 << 255) - 1)
    elif len(signature) == 65:
        r, s, v = signature[:32], int.from_bytes(signature[32:64], "big"), signature[64]
        if v in (0, 1):
            v += 27
        if v not in (27, 28):
            raise MalformedRequest(
                f"The signature's v is {v}; a wallet's signature of typed data has v 27 or 28 (or 0 or 1)", "signature"
            )
    else:
        raise MalformedRequest(
            f"The signature is {len(signature)} bytes; a wallet's signature is 65 bytes (r, s, v) or 64 (EIP-2098)",
            "signature",
        )
    if not 0 < int.from_bytes(r, "big") < SECP256K1_N or not 0 < s < SECP256K1_N:
        raise MalformedRequest("The signature's r or s is out of range: it is not an ECDSA signature", "signature")
    if s > _HALF_N:  # the same signature with the other s (the contract refuses a high s)
        s, v = SECP256K1_N - s, 55 - v
    return r + s.to_bytes(32, "big") + bytes([v])


def is_ecdsa(signature: bytes) -> bool:
    """Whether :func:`normalize` can read ``signature`` (a contract wallet's may be anything)."""
    try:
        normalize(signature)
    except MalformedRequest:
        return False
    return True


def recover(digest: bytes, signature: bytes) -> str | None:
    """The checksummed address whose key made ``signature`` (normalised) over ``digest``; None if no
    key did (the point is not on the curve)."""
    normal = normalize(signature)
    try:
        vrs = Signature(vrs=(normal[64] - 27, int.from_bytes(normal[:32], "big"), int.from_bytes(normal[32:64], "big")))
        return to_checksum_address(vrs.recover_public_key_from_msg_hash(digest).to_canonical_address())
    except (BadSignature, ValidationError):
        return None


def same(first: bytes, second: bytes) -> bool:
    """Whether two signatures are one: equal bytes, or equal once normalised."""
    return first == second or (is_ecdsa(first) and is_ecdsa(second) and normalize(first) == normalize(second))
