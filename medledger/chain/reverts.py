"""Contract reverts in words: custom-error data decoded with the ABI into a typed exception.

:class:`ErrorDecoder` maps a revert's 4-byte selector to the ABI's custom error, decodes its
arguments and raises :class:`~medledger.errors.AccessDenied` (a refusal), :class:`RecordErased` or
another :class:`~medledger.errors.ContractRevert`, whose message is a plain sentence built from the
arguments and what the caller was trying to do (``context``: category, purpose). The decoded name
and arguments travel with the exception, so callers never parse the sentence.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Callable, Mapping
from typing import Any

from eth_abi import decode as abi_decode
from eth_utils import keccak, to_checksum_address
from web3.exceptions import ContractLogicError

from medledger import codes
from medledger.errors import AccessDenied, ChainError, ContractRevert, MedledgerError, RecordErased, StaleCategoryKey
from medledger.times import LAST_DATE

from .types import FOREVER

# Errors that mean "you may not do this": raised as AccessDenied.
_ACCESS_ERRORS = {
    "ConsentUnauthorized",
    "ConsentDelegateOutOfBounds",
    "ConsentNotFound",
    "ConsentNotYetValid",
    "ConsentExpired",
    "ConsentCategoryNotCovered",
    "ConsentPurposeNotCovered",
    "ConsentSignatureExpired",
    "ConsentInvalidSignature",
    "InvalidAccountNonce",
    "RegistryParticipantSuspended",
    "EmergencyOptedOut",
    "EmergencyNotClinician",
    "RecordNotPatient",
    "RecordNotAuthor",
    "AccessControlUnauthorizedAccount",
    "ConsentDelegateSelfGrant",
    "ConsentDelegationEnded",
    "ConsentDelegationSuspended",
    "ConsentRequestSuperseded",
    "EmergencyRunExceeded",
    "KeyRecipientWithoutAccess",
}


def utc(timestamp: int) -> str:
    """A unix time as ``2026-12-01 10:00 UTC`` (the form every message uses)."""
    if timestamp >= FOREVER:  # uint64 max: the chain's "never"
        return "never"
    if timestamp > LAST_DATE:  # a real time, past any calendar date
        return f"unix time {timestamp} (after 9999-12-31)"
    try:
        return _dt.datetime.fromtimestamp(timestamp, _dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    except (OverflowError, OSError, ValueError):  # past year 9999 (or before year 1): no calendar date
        return f"unix time {timestamp} (after 9999-12-31)" if timestamp > 0 else f"unix time {timestamp}"


def _short(value: Any) -> str:
    if isinstance(value, bytes):
        return "0x" + value.hex()
    return str(value)


def _consent_subject(args: Mapping[str, Any], context: Mapping[str, Any]) -> str:
    """'consent for research on genomics' when the caller said what it asked for."""
    purpose = context.get("purpose")
    category = context.get("category")
    if purpose is not None and category is not None:
        return f"consent for {codes.label(codes.Purpose(purpose))} on {codes.label(codes.Category(category))}"
    grantee = args.get("grantee")
    patient = args.get("patient")
    return f"the consent of patient {patient} to {grantee}"


def _sentence(text: str) -> str:
    """Upper-case the first letter only (str.capitalize would also lower-case "UTC" and addresses)."""
    return text[:1].upper() + text[1:]


Args = Mapping[str, Any]
Context = Mapping[str, Any]


def _cats(mask: int) -> str:
    return ", ".join(codes.label(c) for c in sorted(codes.mask_to_categories(mask)))


def _cat(code: int) -> str:
    return codes.label(codes.Category(code)) if code < len(codes.Category) else f"category {code}"


def _record(a: Args) -> str:
    return f"record {_short(a['recordId'])} of patient {a['patient']}"


def _stale_key(a: Args, _context: Context) -> str:
    category, epoch, current = _cat(a["category"]), a["epoch"], a["currentEpoch"]
    if epoch != current:
        return (
            f"The {category} key of patient {a['patient']} is at epoch {current}, not {epoch}: seal the record to "
            "the current key"
        )
    return (
        f"The {category} key of patient {a['patient']} (epoch {epoch}) is stale since {utc(a['validUntil'])}: a "
        "reader it was released to lost its access, so nothing may be sealed to it until the patient (or a "
        "delegate) rotates it"
    )


def _consent_not_found(a: Args, ctx: Context) -> str:
    access = codes.label(codes.Access(a["access"]))
    what = ""
    if ctx.get("category") is not None and ctx.get("purpose") is not None:
        what = (
            f" (needed to {access} {codes.label(codes.Category(ctx['category']))} "
            f"for {codes.label(codes.Purpose(ctx['purpose']))})"
        )
    return f"{a['grantee']} holds no {access} consent from patient {a['patient']}{what}"


# One sentence per custom error; an error missing here is rendered generically (name and arguments).
_SENTENCES: dict[str, Callable[[Args, Context], str]] = {
    "ConsentExpired": lambda a, c: _sentence(f"{_consent_subject(a, c)} expired at {utc(a['expiry'])}"),
    "ConsentNotYetValid": lambda a, c: _sentence(f"{_consent_subject(a, c)} starts only at {utc(a['start'])}"),
    "ConsentNotFound": _consent_not_found,
    "ConsentCategoryNotCovered": lambda a, c: (
        f"The consent of patient {a['patient']} to {a['grantee']} does not cover "
        f"{codes.label(codes.Category(a['category']))}"
    ),
    "ConsentPurposeNotCovered": lambda a, c: (
        f"The consent of patient {a['patient']} to {a['grantee']} does not cover the purpose "
        f"{codes.label(codes.Purpose(a['purpose']))}"
    ),
    "ConsentUnauthorized": lambda a, c: (
        f"{a['caller']} may not manage the consents of patient {a['patient']} (not the patient or a live delegate)"
    ),
    "ConsentDelegateOutOfBounds": lambda a, c: (
        f"Delegate {a['delegate']} may manage only {_cats(a['allowed']) or 'nothing'}, not {_cats(a['requested'])}"
    ),
    "ConsentInvalidWindow": lambda a, c: (
        f"The consent window from {utc(a['start'])} to {utc(a['expiry'])} is empty or already over "
        f"(chain time {utc(a['nowTime'])})"
    ),
    "ConsentSignatureExpired": lambda a, c: (
        f"The signed request expired at {utc(a['deadline'])}; the patient must sign a new one"
    ),
    "ConsentInvalidSignature": lambda a, c: (
        f"The signature is not patient {a['patient']}'s signature of this request (wrong key, chain or contract, "
        "or altered)"
    ),
    "InvalidAccountNonce": lambda a, c: (
        f"The signed request was cancelled: patient {a['account']} invalidated its outstanding signed requests "
        f"(the current nonce is {a['currentNonce']}); ask for a new one"
    ),
    "ConsentInvalidIssuedAt": lambda a, c: (
        f"The signed request claims to be issued at {utc(a['issuedAt'])}, after the chain's time "
        f"{utc(a['nowTime'])}: submit it from then on, or have the patient sign it again (the wallet's clock is ahead)"
    ),
    "ConsentRequestSuperseded": lambda a, c: (
        f"The signed request (issued {utc(a['issuedAt'])}) is not newer than the last decision on the consent of "
        f"patient {a['patient']} to {a['grantee']} ({utc(a['updatedAt'])}): it was already used, or a later "
        "decision overrides it"
    ),
    "ConsentDelegateSelfGrant": lambda a, c: (
        f"Delegate {a['delegate']} cannot grant consent to itself: only the patient can grant it one"
    ),
    "ConsentEnvelopeForWrite": lambda a, c: (
        f"A write consent carries no key envelope (writers need no keys); the grant to {a['grantee']} had one"
    ),
    "ConsentDelegationEnded": lambda a, c: (
        f"The consent of patient {a['patient']} to {a['grantee']} was made by delegation {a['delegationId']}, "
        "which has ended"
    ),
    "ConsentDelegationSuspended": lambda a, c: (
        f"The consent of patient {a['patient']} to {a['grantee']} was made by delegation {a['delegationId']}, "
        "whose delegate is suspended"
    ),
    "ConsentSelfGrant": lambda a, c: f"Patient {a['patient']} cannot grant consent to itself",
    "ConsentInvalidCategories": lambda a, c: f"{a['categories']:#06x} is not a valid non-empty set of categories",
    "ConsentInvalidPurposes": lambda a, c: f"{a['purposes']:#06x} is not a valid non-empty set of purposes",
    "ConsentUnknownCode": lambda a, c: f"Category {a['category']} or purpose {a['purpose']} is not a known code",
    "DelegationInvalidExpiry": lambda a, c: f"A delegation must end in the future, not at {utc(a['expiry'])}",
    "EmergencyRunExceeded": lambda a, c: (
        f"Emergency access of {a['clinician']} to patient {a['patient']} may not last past {utc(a['runEnd'])} "
        "without the patient's (or a delegate's) confirmation"
    ),
    "KeyCountMismatch": lambda a, c: f"{a['given']} public keys were given for {a['expected']} categories",
    "KeyInvalidEnvelope": lambda a, c: "A key envelope pointer cannot be zero",
    "KeyRecipientWithoutAccess": lambda a, c: (
        f"{a['recipient']} holds no live read access to {_cats(a['categories'])} of patient {a['patient']}, so "
        "it may not be sent their keys"
    ),
    "RegistryInvalidCategoryKey": lambda a, c: (
        f"The new key of {_cat(a['category'])} is zero or the same as the current one"
    ),
    "RegistryUnknownCategory": lambda a, c: f"{a['category']} is not a category code",
    "RegistryInvalidEncryptionKey": lambda a, c: "The encryption key is zero or the same as the current one",
    "RegistryInvalidKind": lambda a, c: "Not a participant kind that can be registered",
    "RegistryInvalidAccount": lambda a, c: "The zero address cannot be registered",
    "RegistryParticipantSuspended": lambda a, c: (
        f"{a['account']} is suspended by a registrar; nothing it was granted works until it is reinstated"
    ),
    "RegistryParticipantNotRegistered": lambda a, c: (
        f"{a['account']} is not a registered participant; a registrar must register it first"
    ),
    "RegistryPatientNotRegistered": lambda a, c: f"{a['patient']} is not a registered patient",
    "RegistryPatientAlreadyRegistered": lambda a, c: f"{a['patient']} is already registered as a patient",
    "RegistryParticipantAlreadyRegistered": lambda a, c: f"{a['account']} is already a registered participant",
    "EmergencyOptedOut": lambda a, c: f"Patient {a['patient']} has opted out of emergency access",
    "EmergencyNotClinician": lambda a, c: (
        f"{a['account']} is not a registered clinician or care provider, so it cannot open emergency access"
    ),
    "EmergencyInvalidWindow": lambda a, c: (
        f"An emergency window must be between 1 and {a['maximum']} seconds, not {a['requested']}"
    ),
    "RecordIsErased": lambda a, c: _sentence(f"{_record(a)} was erased by its patient; it can no longer be read"),
    "RecordNotFound": lambda a, c: (
        f"Patient {a['patient']} has no record or batch with id {_short(a['recordId'])} on this chain"
    ),
    "RecordAlreadyExists": lambda a, c: f"Patient {a['patient']} already has a record with id {_short(a['recordId'])}",
    "RecordAlreadySuperseded": lambda a, c: _sentence(
        f"{_record(a)} was already superseded by {_short(a['supersededBy'])}; amend the latest version"
    ),
    "RecordHeaderMismatch": lambda a, c: _sentence(
        f"{_record(a)} changed meanwhile (amended or erased): the header given is not its current one"
    ),
    "RecordIsBatch": lambda a, c: _sentence(f"{_record(a)} is a batch; batches cannot be amended"),
    "RecordNotAuthor": lambda a, c: (
        f"Only the patient or the record's author {a['author']} may amend it, not {a['caller']}"
    ),
    "RecordStaleKey": _stale_key,
    "RecordInvalidCid": lambda a, c: (
        f"Only a CIDv1 (raw or dag-pb, sha2-256) goes on chain, not codec {a['codec']:#x} with digest "
        f"{_short(a['digest'])}"
    ),
    "RecordInvalidId": lambda a, c: "A record id cannot be zero",
    "RecordInvalidFingerprint": lambda a, c: "A record fingerprint cannot be zero",
    "RecordEmptyBatch": lambda a, c: "A batch (or a bulk registration) needs at least one record",
    "RecordNotPatient": lambda a, c: f"Only patient {a['patient']} may do this to its records (caller {a['caller']})",
    "AccessControlUnauthorizedAccount": lambda a, c: (
        f"{a['account']} lacks the role {_short(a['neededRole'])} (registrars only)"
    ),
    "DelegationInvalidDelegate": lambda a, c: (
        f"{a['delegate']} cannot be a delegate of {a['patient']}: it must be another registered patient"
    ),
    "AccessControlEnforcedDefaultAdminRules": lambda a, c: (
        "The default admin changes only by beginDefaultAdminTransfer and, after the delay, acceptDefaultAdminTransfer"
    ),
    "AccessControlEnforcedDefaultAdminDelay": lambda a, c: (
        f"The admin transfer can be accepted only from {utc(a['schedule'])}"
    ),
    "AccessControlInvalidDefaultAdmin": lambda a, c: f"{a['defaultAdmin']} is not a valid default admin here",
}


def describe_revert(name: str, args: Args, context: Context | None = None) -> str:
    """A plain sentence for a decoded custom error."""
    sentence = _SENTENCES.get(name)
    if sentence is not None:
        return sentence(args, context or {})
    rendered = ", ".join(f"{k}={_short(v)}" for k, v in args.items())
    return f"The contract refused the call: {name}({rendered})"


class ErrorDecoder:
    """Maps 4-byte selectors to the ABI's custom errors."""

    def __init__(self, abi: list[dict[str, Any]]) -> None:
        self._errors: dict[bytes, dict[str, Any]] = {}
        for entry in abi:
            if entry.get("type") != "error":
                continue
            signature = f"{entry['name']}({','.join(_abi_type(i) for i in entry['inputs'])})"
            self._errors[keccak(text=signature)[:4]] = entry

    def decode(self, data: str | bytes | None) -> tuple[str, dict[str, Any]] | None:
        if data is None:
            return None
        raw = bytes.fromhex(data[2:] if data.startswith("0x") else data) if isinstance(data, str) else data
        entry = self._errors.get(raw[:4])
        if entry is None:
            return None
        types = [_abi_type(i) for i in entry["inputs"]]
        values = abi_decode(types, raw[4:])
        args = {}
        for spec, value in zip(entry["inputs"], values, strict=True):
            if spec["type"] == "address":
                value = to_checksum_address(value)
            args[spec["name"]] = value
        return entry["name"], args

    def to_exception(
        self, data: str | bytes | None, context: Mapping[str, Any] | None = None, fallback: str = ""
    ) -> MedledgerError:
        decoded = self.decode(data)
        if decoded is None:
            return ChainError(f"The transaction reverted without a known reason{': ' + fallback if fallback else ''}")
        name, args = decoded
        message = describe_revert(name, args, context)
        if name == "RecordStaleKey":
            return StaleCategoryKey(message, args["patient"], args["category"], args["epoch"], args["validUntil"])
        cls: type[ContractRevert] = ContractRevert
        if name == "RecordIsErased":
            cls = RecordErased
        elif name in _ACCESS_ERRORS:
            cls = AccessDenied
        return cls(message, name, args)


def _abi_type(spec: dict[str, Any]) -> str:
    if spec["type"].startswith("tuple"):
        inner = ",".join(_abi_type(c) for c in spec["components"])
        return f"({inner}){spec['type'][5:]}"
    return str(spec["type"])


def revert_data(exc: ContractLogicError) -> str | None:
    data = exc.data
    if isinstance(data, dict):
        data = data.get("data")
    return data if isinstance(data, str) else None
