"""The EIP-712 signed consent requests: the one place their types, domain and signing live.

A patient's wallet signs a :class:`GrantRequest` or :class:`RevokeRequest` off chain; anyone submits
it with ``grantBySig``/``revokeBySig``. The field lists below must match the contract's
``GRANT_TYPEHASH`` and ``REVOKE_TYPEHASH`` (a test pins them against the compiled contract).

Lifecycle: ``issuedAt`` is the chain time at signing (the latest block's timestamp, never later) and
must be newer than the consent's ``updatedAt`` when it is executed (so a replay, or an older request
held back, is refused); ``nonce`` is the patient's current cancellation generation (not consumed by
use: ``invalidateSignedRequests`` moves it on and voids every older request).
"""

from __future__ import annotations

from dataclasses import astuple, dataclass, fields
from typing import Any, ClassVar

from eth_account import Account
from eth_account.messages import SignableMessage, encode_typed_data
from eth_account.signers.local import LocalAccount
from eth_utils import is_address, keccak, to_checksum_address

DOMAIN_NAME = "medledger"
DOMAIN_VERSION = "1"

#: The EIP-712 struct types, as eth-account takes them (``message_types``).
GRANT_TYPES: dict[str, list[dict[str, str]]] = {
    "Grant": [
        {"name": "patient", "type": "address"},
        {"name": "grantee", "type": "address"},
        {"name": "access", "type": "uint8"},
        {"name": "categories", "type": "uint16"},
        {"name": "purposes", "type": "uint16"},
        {"name": "start", "type": "uint64"},
        {"name": "expiry", "type": "uint64"},
        {"name": "keyEnvelope", "type": "bytes32"},
        {"name": "issuedAt", "type": "uint64"},
        {"name": "nonce", "type": "uint256"},
        {"name": "deadline", "type": "uint256"},
    ]
}
REVOKE_TYPES: dict[str, list[dict[str, str]]] = {
    "Revoke": [
        {"name": "patient", "type": "address"},
        {"name": "grantee", "type": "address"},
        {"name": "access", "type": "uint8"},
        {"name": "issuedAt", "type": "uint64"},
        {"name": "nonce", "type": "uint256"},
        {"name": "deadline", "type": "uint256"},
    ]
}
TYPES: dict[str, dict[str, list[dict[str, str]]]] = {"Grant": GRANT_TYPES, "Revoke": REVOKE_TYPES}


def type_string(primary: str) -> str:
    """``Grant(address patient,address grantee,...)``: what the typehash is the keccak of."""
    members = ",".join(f"{m['type']} {m['name']}" for m in TYPES[primary][primary])
    return f"{primary}({members})"


def typehash(primary: str) -> bytes:
    return keccak(text=type_string(primary))


def domain(chain_id: int, verifying_contract: str) -> dict[str, Any]:
    return {
        "name": DOMAIN_NAME,
        "version": DOMAIN_VERSION,
        "chainId": chain_id,
        "verifyingContract": verifying_contract,
    }


@dataclass(frozen=True)
class _Request:
    """A signed-request struct; field names are the EIP-712 member names."""

    PRIMARY: ClassVar[str]

    def message(self) -> dict[str, Any]:
        """The EIP-712 message (member name -> value)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def as_abi(self) -> tuple[Any, ...]:
        """The struct as the contract function takes it."""
        return astuple(self)

    def signable(self, domain_data: dict[str, Any]) -> SignableMessage:
        return encode_typed_data(
            domain_data=domain_data, message_types=TYPES[self.PRIMARY], message_data=self.message()
        )

    def sign(self, account: LocalAccount, domain_data: dict[str, Any]) -> bytes:
        return bytes(account.sign_message(self.signable(domain_data)).signature)

    def signer(self, domain_data: dict[str, Any], signature: bytes) -> str:
        """The address whose key made ``signature`` over this request in ``domain_data``."""
        return str(Account.recover_message(self.signable(domain_data), signature=signature))


@dataclass(frozen=True)
class GrantRequest(_Request):
    PRIMARY: ClassVar[str] = "Grant"

    patient: str
    grantee: str
    access: int
    categories: int
    purposes: int
    start: int
    expiry: int
    keyEnvelope: bytes  # noqa: N815 - the EIP-712 member name
    issuedAt: int  # noqa: N815 - the EIP-712 member name
    nonce: int
    deadline: int


@dataclass(frozen=True)
class RevokeRequest(_Request):
    PRIMARY: ClassVar[str] = "Revoke"

    patient: str
    grantee: str
    access: int
    issuedAt: int  # noqa: N815 - the EIP-712 member name
    nonce: int
    deadline: int


SignedRequest = GrantRequest | RevokeRequest

#: The signed-request file: the kind, the EIP-712 domain, the message and the signature.
REQUEST_FORMAT = "medledger-signed-consent/2"


def document(request: SignedRequest, domain_data: dict[str, Any], signature: bytes) -> dict[str, Any]:
    """The signed-request file's content for ``request`` signed in ``domain_data``."""
    printable = {k: ("0x" + v.hex() if isinstance(v, bytes) else v) for k, v in request.message().items()}
    return {
        "format": REQUEST_FORMAT,
        "kind": request.PRIMARY,
        "domain": domain_data,
        "message": printable,
        "signature": "0x" + signature.hex(),
    }


def from_document(doc: dict[str, Any]) -> tuple[SignedRequest, bytes]:
    """The typed request and the signature of a signed-request file's content. Raises
    :class:`KeyError`, :class:`TypeError` or :class:`ValueError` if it is malformed."""
    if doc.get("format") != REQUEST_FORMAT or doc.get("kind") not in TYPES:
        raise ValueError(f"not a {REQUEST_FORMAT} document")
    signature = bytes.fromhex(str(doc["signature"]).removeprefix("0x"))
    return request_from_message(doc["kind"], doc["message"]), signature


def request_from_message(primary: str, message: dict[str, Any]) -> SignedRequest:
    """A request from its message fields (``keyEnvelope`` as bytes or 0x-hex). Raises
    :class:`KeyError`, :class:`TypeError` or :class:`ValueError` on a malformed message."""
    cls: type[SignedRequest] = GrantRequest if primary == "Grant" else RevokeRequest
    values = dict(message)
    names = [f.name for f in fields(cls)]
    if set(values) != set(names):
        raise ValueError(f"a {primary} request has the fields {names}, not {sorted(values)}")
    return cls(**{m["name"]: _member(m["name"], m["type"], values[m["name"]]) for m in TYPES[primary][primary]})


def _member(name: str, kind: str, value: Any) -> Any:
    """``value`` as the EIP-712 member ``name`` of type ``kind`` takes it, or ValueError naming it (a value
    out of its type's range would otherwise surface later as a signature that does not match)."""
    if kind == "address":
        if not isinstance(value, str) or not is_address(value):
            raise ValueError(f"{name} is not an address: {value!r}")
        return to_checksum_address(value)
    if kind == "bytes32":
        if isinstance(value, str):
            try:
                value = bytes.fromhex(value.removeprefix("0x"))
            except ValueError:
                raise ValueError(f"{name} is not hex: {value!r}") from None
        if not isinstance(value, bytes) or len(value) != 32:
            raise ValueError(f"{name} is not 32 bytes")
        return value
    bits = int(kind.removeprefix("uint"))
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**bits:
        raise ValueError(f"{name} is not a {kind} (an integer from 0 to 2^{bits}-1): {value!r}")
    return value
