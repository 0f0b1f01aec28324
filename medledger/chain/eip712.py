"""The EIP-712 signed consent requests: the one place their types, domain, signing and file live.

A patient's wallet signs a :class:`GrantRequest` or :class:`RevokeRequest` off chain; anyone submits
it with ``grantBySig``/``revokeBySig``. The field lists below must match the contract's
``GRANT_TYPEHASH`` and ``REVOKE_TYPEHASH`` (a test pins them against the compiled contract).

Lifecycle: ``issuedAt`` is the chain time at signing (the latest block's timestamp, never later) and
must be newer than the consent's ``updatedAt`` when it is executed (so a replay, or an older request
held back, is refused); ``nonce`` is the patient's current cancellation generation (not consumed by
use: ``invalidateSignedRequests`` moves it on and voids every older request).

The request file (:func:`document`) is what a wallet signs and a dapp checks: the
``eth_signTypedData_v4`` payload (``types`` with ``EIP712Domain``, ``primaryType``, ``domain``,
``message``) with every uint as a decimal string (JavaScript's ``JSON.parse`` would round "no expiry",
2^64-1), plus ``signature`` and medledger's own ``medledger`` object. :func:`parse` reads it back, and
also what wallets and dapps produce: a bare v4 payload (``types`` with or without ``EIP712Domain``),
numbers as JSON numbers, decimal or hex strings, addresses in any case, and the format-2 files of
earlier medledger versions.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import astuple, dataclass, fields
from typing import Any, ClassVar

from eth_account.messages import SignableMessage, encode_typed_data
from eth_account.signers.local import LocalAccount
from eth_utils import is_checksum_address, keccak, to_checksum_address

from medledger import codes
from medledger.errors import MalformedRequest

from . import signatures

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

    def digest(self, domain_data: dict[str, Any]) -> bytes:
        """The EIP-712 hash of this request in ``domain_data`` (what a signature is over)."""
        signable = self.signable(domain_data)
        return keccak(b"\x19" + signable.version + signable.header + signable.body)

    def sign(self, account: LocalAccount, domain_data: dict[str, Any]) -> bytes:
        return bytes(account.sign_message(self.signable(domain_data)).signature)

    def signer(self, domain_data: dict[str, Any], signature: bytes) -> str | None:
        """The address whose key made ``signature`` (any form :mod:`.signatures` reads) over this
        request in ``domain_data``; None if no key did."""
        return signatures.recover(self.digest(domain_data), signature)


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

#: The request file this version writes: the v4 payload, ``signature`` and ``{"medledger": {"format": ...}}``.
REQUEST_FORMAT = "medledger-signed-consent/3"
#: The file of earlier versions (``format``, ``kind``, ``domain``, ``message``, ``signature``): still read.
LEGACY_FORMAT = "medledger-signed-consent/2"
#: What :func:`parse` calls a payload without medledger's metadata (from a wallet or dapp).
V4_PAYLOAD = "eth_signTypedData_v4"
#: The key of medledger's own metadata in a request file.
METADATA_KEY = "medledger"

DOMAIN_TYPE: list[dict[str, str]] = [
    {"name": "name", "type": "string"},
    {"name": "version", "type": "string"},
    {"name": "chainId", "type": "uint256"},
    {"name": "verifyingContract", "type": "address"},
]
_CLASSES: dict[str, type[GrantRequest] | type[RevokeRequest]] = {"Grant": GrantRequest, "Revoke": RevokeRequest}
_UINT = re.compile(r"^uint(8|16|64|256)$")
_DECIMAL = re.compile(r"^[0-9]{1,78}$")
_HEXNUM = re.compile(r"^0[xX][0-9a-fA-F]{1,64}$")
_ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")
_BYTES32 = re.compile(r"^0x[0-9a-fA-F]{64}$")
#: Integers above this lose precision as JavaScript numbers.
_JS_SAFE = 2**53 - 1


def _json_value(kind: str, value: Any) -> Any:
    """A member's value as the file writes it: uints as decimal strings, bytes as 0x-hex."""
    if _UINT.match(kind):
        return str(int(value))
    if isinstance(value, bytes):
        return "0x" + value.hex()
    return value


def typed_data(request: SignedRequest, domain_data: dict[str, Any]) -> dict[str, Any]:
    """The ``eth_signTypedData_v4`` payload of ``request`` in ``domain_data``, every uint a decimal string."""
    members = TYPES[request.PRIMARY][request.PRIMARY]
    return {
        "types": {"EIP712Domain": [dict(m) for m in DOMAIN_TYPE], request.PRIMARY: [dict(m) for m in members]},
        "primaryType": request.PRIMARY,
        "domain": {m["name"]: _json_value(m["type"], domain_data[m["name"]]) for m in DOMAIN_TYPE},
        "message": {m["name"]: _json_value(m["type"], getattr(request, m["name"])) for m in members},
    }


def document(request: SignedRequest, domain_data: dict[str, Any], signature: bytes | None = None) -> dict[str, Any]:
    """The request file's content: :func:`typed_data`, the ``signature`` (None: not signed yet, for a
    wallet to sign) and medledger's metadata."""
    doc = typed_data(request, domain_data)
    if signature is not None:
        doc["signature"] = "0x" + signature.hex()
    doc[METADATA_KEY] = {"format": REQUEST_FORMAT}
    return doc


@dataclass(frozen=True)
class ParsedRequest:
    """A signed request as read from a file or a wallet: the typed request, its domain (``chainId`` an
    int, ``verifyingContract`` checksummed), the signature exactly as the wallet gave it (None if
    unsigned; :mod:`.signatures` normalises it) and the form it came in (:data:`REQUEST_FORMAT`,
    :data:`LEGACY_FORMAT` or :data:`V4_PAYLOAD`)."""

    request: SignedRequest
    domain: dict[str, Any]
    signature: bytes | None
    source: str

    @property
    def kind(self) -> str:
        return self.request.PRIMARY

    @property
    def keys_follow(self) -> bool:
        """A read grant without a key envelope (signed by a wallet without medledger keys): the
        grantee's keys follow separately (``publishKeyEnvelope``)."""
        r = self.request
        return isinstance(r, GrantRequest) and r.access == codes.Access.READ and r.keyEnvelope == bytes(32)

    def digest(self) -> bytes:
        """The EIP-712 hash the signature is over (what ERC-1271 wallets are asked about)."""
        return self.request.digest(self.domain)

    def document(self, signature: bytes | None = None) -> dict[str, Any]:
        """This request as this version's file, with ``signature`` (default: the one it came with)."""
        return document(self.request, self.domain, signature if signature is not None else self.signature)


def parse(doc: Any, signature: str | bytes | Mapping[str, Any] | None = None) -> ParsedRequest:
    """Read a request file or a wallet's payload (see the module's description); ``signature`` is one
    given apart from it (it must agree with one inside). Raises :class:`MalformedRequest` naming the
    part that is wrong. The signature is decoded, not checked: that needs the chain."""
    if not isinstance(doc, Mapping):
        raise MalformedRequest("A signed consent request is a JSON object", "")
    if "format" in doc:
        if doc["format"] != LEGACY_FORMAT:
            raise MalformedRequest(
                f"A request of format {doc['format']!r} cannot be read (this version reads {REQUEST_FORMAT}, "
                f"{LEGACY_FORMAT} and bare {V4_PAYLOAD} payloads); the patient signs it again",
                "format",
            )
        primary, source = doc.get("kind"), LEGACY_FORMAT
        if primary not in TYPES:
            raise MalformedRequest("A signed consent request's kind is Grant or Revoke", "kind")
    else:
        source = _metadata(doc.get(METADATA_KEY))
        primary = doc.get("primaryType")
        if primary not in TYPES:
            raise MalformedRequest(f"primaryType must be Grant or Revoke, not {primary!r}", "primaryType")
        _check_types(doc.get("types"), primary)
    request = _message(primary, doc.get("message"))
    return ParsedRequest(request, _domain(doc.get("domain")), _signature(doc.get("signature"), signature), source)


def _metadata(meta: Any) -> str:
    if meta is None:
        return V4_PAYLOAD
    if not isinstance(meta, Mapping) or meta.get("format") != REQUEST_FORMAT:
        found = meta.get("format") if isinstance(meta, Mapping) else meta
        raise MalformedRequest(
            f"The request's medledger format is {found!r}; this version reads {REQUEST_FORMAT}", METADATA_KEY
        )
    return REQUEST_FORMAT


def _members(value: Any, where: str) -> list[tuple[str, str]]:
    if not isinstance(value, list) or not all(isinstance(m, Mapping) for m in value):
        raise MalformedRequest(f"{where} must be a list of {{name, type}} objects", where)
    return [(str(m.get("name")), str(m.get("type"))) for m in value]


def _check_types(types: Any, primary: str) -> None:
    """``types`` declares exactly medledger's struct (and, optionally, its domain type), in order."""
    if not isinstance(types, Mapping):
        raise MalformedRequest("types must be an object", "types")
    if "EIP712Domain" in types and _members(types["EIP712Domain"], "types.EIP712Domain") != _members(DOMAIN_TYPE, ""):
        raise MalformedRequest(
            "types.EIP712Domain must be medledger's: name (string), version (string), chainId (uint256), "
            "verifyingContract (address), in that order",
            "types.EIP712Domain",
        )
    others = sorted(set(types) - {"EIP712Domain", primary})
    if others or primary not in types:
        raise MalformedRequest(f"types must define {primary} (and EIP712Domain) only, not {sorted(types)}", "types")
    if _members(types[primary], f"types.{primary}") != _members(TYPES[primary][primary], ""):
        raise MalformedRequest(f"types.{primary} must be medledger's {type_string(primary)}", f"types.{primary}")


def _domain(value: Any) -> dict[str, Any]:
    names = [m["name"] for m in DOMAIN_TYPE]
    if not isinstance(value, Mapping) or set(value) != set(names):
        raise MalformedRequest(f"domain must have exactly the fields {', '.join(names)}", "domain")
    if (value["name"], value["version"]) != (DOMAIN_NAME, DOMAIN_VERSION):
        raise MalformedRequest(
            f"The request is for {value['name']!r} version {value['version']!r}, not a medledger consent request "
            f"({DOMAIN_NAME!r} version {DOMAIN_VERSION!r})",
            "domain",
        )
    return domain(
        _uint(value["chainId"], 256, "domain.chainId"), _address(value["verifyingContract"], "domain.verifyingContract")
    )


def _message(primary: str, value: Any) -> SignedRequest:
    members = TYPES[primary][primary]
    names = [m["name"] for m in members]
    if not isinstance(value, Mapping):
        raise MalformedRequest("message must be an object", "message")
    missing, unknown = [n for n in names if n not in value], sorted(set(value) - set(names))
    if missing or unknown:
        raise MalformedRequest(
            f"A {primary} request has the fields {', '.join(names)}"
            + (f"; missing: {', '.join(missing)}" if missing else "")
            + (f"; unknown: {', '.join(unknown)}" if unknown else ""),
            "message",
        )
    values = {m["name"]: _member(m["type"], value[m["name"]], f"message.{m['name']}") for m in members}
    if values["access"] not in set(codes.Access):
        access = values["access"]
        raise MalformedRequest(f"message.access {access} is not an access code (0 read, 1 write)", "message.access")
    return _CLASSES[primary](**values)


def _member(kind: str, value: Any, where: str) -> Any:
    uint = _UINT.match(kind)
    if uint:
        return _uint(value, int(uint.group(1)), where)
    if kind == "address":
        return _address(value, where)
    if isinstance(value, str) and _BYTES32.match(value):  # bytes32, the only other member type
        return bytes.fromhex(value[2:])
    raise MalformedRequest(f"{where} must be 32 bytes of hex (0x and 64 digits)", where)


def _uint(value: Any, bits: int, where: str) -> int:
    """A uint as a JSON number, a decimal string or a 0x-hex string, within ``bits``."""
    if isinstance(value, str) and (_DECIMAL.match(value) or _HEXNUM.match(value)):
        number = int(value, 16) if value[:2].lower() == "0x" else int(value)
    elif isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        number = value
    else:
        raise MalformedRequest(
            f"{where} must be a whole number of at most {bits} bits, as a decimal string (safest), a 0x-hex "
            f"string or a JSON integer, not {value!r}",
            where,
        )
    if number >= 2**bits:
        rounded = isinstance(value, int) and number > _JS_SAFE
        raise MalformedRequest(
            f"{where} is {number}, more than a uint{bits} holds ({2**bits - 1})"
            + ("; a JavaScript number rounded it: write it as a decimal string" if rounded else ""),
            where,
        )
    return number


def _address(value: Any, where: str) -> str:
    if not isinstance(value, str) or not _ADDRESS.match(value):
        raise MalformedRequest(f"{where} must be an address (0x and 40 hex digits), not {value!r}", where)
    mixed = value[2:] != value[2:].lower() and value[2:] != value[2:].upper()
    if mixed and not is_checksum_address(value):
        raise MalformedRequest(f"{where} {value} has a wrong checksum (mistyped?)", where)
    return str(to_checksum_address(value))


def _signature(inside: Any, given: str | bytes | Mapping[str, Any] | None) -> bytes | None:
    """The request's signature: the one inside the document, the one given apart, or both if they agree."""
    found = signatures.decode(inside) if inside not in (None, "") else None
    apart = signatures.decode(given) if given is not None else None
    if found is not None and apart is not None and not signatures.same(found, apart):
        raise MalformedRequest(
            "The request carries a signature and a different one was given with it; give one of them", "signature"
        )
    return apart if apart is not None else found
