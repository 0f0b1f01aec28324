"""Addresses as they come in: the one place an address typed or passed by a caller is accepted.

An address is ``0x`` and 40 hex digits. All lower case or all upper case carries no checksum and is
taken as is; mixed case *is* an EIP-55 checksum and must be right: a mistyped character in a
checksummed address is how a record or a consent goes to the wrong person, so it is refused.
"""

from __future__ import annotations

import re

from eth_typing import ChecksumAddress
from eth_utils import to_checksum_address

from medledger.errors import InvalidAddress

_HEX_ADDRESS = re.compile(r"0[xX]([0-9a-fA-F]{40})")


def checked_address(value: object, what: str = "address") -> ChecksumAddress:
    """``value`` checksummed; :class:`~medledger.errors.InvalidAddress` if it is not an address, or is
    mixed case with a wrong EIP-55 checksum."""
    text = value.strip() if isinstance(value, str) else value
    match = _HEX_ADDRESS.fullmatch(text) if isinstance(text, str) else None
    if match is None:
        raise InvalidAddress(repr(value), f"is not an {what} (0x and 40 hex digits)")
    digits = match.group(1)
    checksummed = to_checksum_address("0x" + digits)
    if digits not in (digits.lower(), digits.upper()) and checksummed[2:] != digits:
        raise InvalidAddress(
            str(text), f"has a wrong EIP-55 checksum (mixed case): check the {what}, or write it all in lower case"
        )
    return checksummed
