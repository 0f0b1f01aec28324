"""Contract wallets (ERC-1271): asking a smart-contract account whether a signature is its own.

The contract accepts a signed request of a patient that is a contract (a Safe, an Argent wallet, a
smart account) if the patient's ``isValidSignature(hash, signature)`` returns the ERC-1271 magic
value; this is the same question, asked with an ``eth_call`` before anyone pays gas.
"""

from __future__ import annotations

from eth_abi import encode as abi_encode
from eth_utils import to_checksum_address

from medledger.errors import ChainError

from .rpc import Chain

#: ``bytes4(keccak256("isValidSignature(bytes32,bytes)"))``: the selector, and what a wallet returns for yes.
ERC1271_MAGIC = bytes.fromhex("1626ba7e")


def is_contract(chain: Chain, account: str) -> bool:
    """Whether ``account`` has code (the contract then asks it, instead of recovering a key)."""
    return chain.has_code(account)


def accepts(chain: Chain, wallet: str, digest: bytes, signature: bytes) -> bool:
    """Whether contract ``wallet`` says ``signature`` over ``digest`` is its own (ERC-1271). A wallet
    that reverts, or answers anything but the magic value, says no."""
    data = ERC1271_MAGIC + abi_encode(["bytes32", "bytes"], [digest, signature])
    call = {"to": to_checksum_address(wallet), "data": "0x" + data.hex()}
    try:
        answer = chain.rpc("eth_call", [call, "latest"])
    except ChainError:  # the wallet reverted: not its signature
        return False
    raw = bytes.fromhex(str(answer).removeprefix("0x"))
    return len(raw) >= 32 and raw[:4] == ERC1271_MAGIC
