"""The typed facade over the Medledger contract: every call, transaction and event goes through it.

Views return the named values of :mod:`medledger.chain.types`; transactions take a ``sender``
(anything with ``address`` and a local ``account``, e.g. a keystore identity), are simulated first
(a revert raises the decoded error and sends nothing) and return a :class:`Receipt` with the decoded
events of :mod:`medledger.chain.events`. ``simulate=True`` only checks that the transaction would
succeed. ``context`` keywords (``category``, ``purpose``) make refusals name what was asked for.

Names follow the contract's functions in snake_case. Where the contract's ABI changes, this module
(and :mod:`~medledger.chain.types`, :mod:`~medledger.chain.events`) absorbs it: arguments the new
functions need (a patient namespace for record ids, category masks for envelopes) are already
keyword parameters here.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from eth_account.signers.local import LocalAccount
from eth_typing import ChecksumAddress
from web3.contract import Contract
from web3.contract.contract import ContractFunction

from medledger import codes

from .addresses import checked_address
from .bounds import check_arguments
from .deployments import Deployment
from .eip712 import GrantRequest, RevokeRequest
from .events import ChainEvent, EventCodec, Receipt
from .reverts import ErrorDecoder
from .rpc import Chain
from .types import (
    ZERO32,
    Consent,
    ConsentTerms,
    Delegation,
    Participant,
    PatientState,
    RecordInfo,
)

E = TypeVar("E", bound=ChainEvent)


class Sender(Protocol):
    """Who signs a transaction: a keystore identity, or anything with an address and a local key."""

    @property
    def address(self) -> str: ...

    @property
    def account(self) -> LocalAccount: ...


@dataclass(frozen=True)
class Tx:
    """A contract transaction, prepared but not sent."""

    function: str
    args: tuple[Any, ...]
    context: dict[str, int] = field(default_factory=dict)


def _address(value: str) -> ChecksumAddress:
    return checked_address(value)


def _opt(value: bytes) -> bytes | None:
    value = bytes(value)
    return None if value == ZERO32 else value


class MedledgerContract:
    """One deployment of the Medledger contract on one chain."""

    def __init__(self, chain: Chain, deployment: Deployment) -> None:
        self.chain = chain
        self.deployment = deployment
        self.address = _address(deployment.address)
        self.decoder = ErrorDecoder(deployment.abi)
        self.codec = EventCodec(deployment.abi)
        self._contract: Contract = chain.w3.eth.contract(address=self.address, abi=deployment.abi)

    # --- plumbing ---------------------------------------------------------------------------------
    def bound(self, tx: Tx) -> ContractFunction:
        """``tx`` as a web3 contract function (for the chain layer's own use); every integer argument
        checked against its ABI type first."""
        function = self._contract.functions[tx.function]
        check_arguments(function.abi, tx.args)
        return function(*tx.args)

    def _view(self, name: str, *args: Any, sender: str | None = None, **context: int) -> Any:
        return self.chain.call(self.bound(Tx(name, args)), self.decoder, sender, context)

    def send(self, tx: Tx, sender: Sender) -> Receipt:
        """Send ``tx`` from ``sender`` and wait for it (the one way a transaction leaves medledger)."""
        raw = self.chain.transact(self.bound(tx), sender.account, self.decoder, tx.context)
        return Receipt(
            tx_hash="0x" + bytes(raw["transactionHash"]).hex(),
            block_number=int(raw["blockNumber"]),
            gas_used=int(raw["gasUsed"]),
            events=tuple(self.codec.decode_all(raw["logs"])),
        )

    def simulate(self, tx: Tx, sender: Sender | str) -> Any:
        """Run ``tx`` as an ``eth_call`` from ``sender``: its return value, or the decoded refusal."""
        address = sender if isinstance(sender, str) else sender.address
        return self.chain.call(self.bound(tx), self.decoder, address, tx.context)

    def _transact(self, tx: Tx, sender: Sender, simulate: bool) -> Receipt:
        if simulate:
            self.simulate(tx, sender)
            return Receipt(tx_hash="", block_number=0, gas_used=0, simulated=True)
        return self.send(tx, sender)

    def logs(self, kind: type[E], *, from_block: int | None = None, **filters: Any) -> list[E]:
        """Every ``kind`` event since the deployment whose indexed arguments match ``filters``
        (snake_case names, e.g. ``patient=``, ``record_id=``), oldest first."""
        start = self.deployment.block_number if from_block is None else from_block
        topics = self.codec.topics(kind, {k: v for k, v in filters.items() if v is not None})
        raw = self.chain.logs(self.address, topics, start)
        return [e for e in self.codec.decode_all(raw) if isinstance(e, kind)]

    # --- participants -----------------------------------------------------------------------------
    def is_patient(self, account: str) -> bool:
        return bool(self._view("isPatient", _address(account)))

    def patient_encryption_key(self, patient: str) -> bytes:
        return bytes(self._view("patientEncryptionKey", _address(patient)))

    def patient_state(self, patient: str) -> PatientState:
        patient = _address(patient)
        return PatientState(
            address=patient,
            registered=self.is_patient(patient),
            encryption_key=self.patient_encryption_key(patient),
            key_directory=self.key_directory(patient),
            emergency_opted_out=self.emergency_opted_out(patient),
        )

    def participant(self, account: str) -> Participant:
        kind, suspended, registered_at, credential, key = self._view("participant", _address(account))
        return Participant(
            _address(account), codes.ParticipantKind(kind), bool(suspended), int(registered_at),
            bytes(credential), bytes(key),
        )  # fmt: skip

    def is_active_participant(self, account: str) -> bool:
        return bool(self._view("isActiveParticipant", _address(account)))

    def register_patient(self, encryption_key: bytes, *, sender: Sender, simulate: bool = False) -> Receipt:
        return self._transact(Tx("registerPatient", (encryption_key,)), sender, simulate)

    def rotate_patient_key(self, encryption_key: bytes, *, sender: Sender) -> Receipt:
        return self.send(Tx("rotatePatientKey", (encryption_key,)), sender)

    def register_participant(
        self, account: str, kind: codes.ParticipantKind, credential_ref: bytes, encryption_key: bytes,
        *, sender: Sender,
    ) -> Receipt:  # fmt: skip
        args = (_address(account), int(kind), credential_ref, encryption_key)
        return self.send(Tx("registerParticipant", args), sender)

    def rotate_participant_key(self, encryption_key: bytes, *, sender: Sender) -> Receipt:
        return self.send(Tx("rotateParticipantKey", (encryption_key,)), sender)

    def suspend_participant(self, account: str, reason_code: bytes = ZERO32, *, sender: Sender) -> Receipt:
        return self.send(Tx("suspendParticipant", (_address(account), reason_code)), sender)

    def reinstate_participant(self, account: str, *, sender: Sender) -> Receipt:
        return self.send(Tx("reinstateParticipant", (_address(account),)), sender)

    # --- consent ------------------------------------------------------------------------------------
    def consent(self, patient: str, grantee: str, access: codes.Access) -> Consent:
        patient, grantee = _address(patient), _address(grantee)
        categories, purposes, start, expiry = self._view("consent", patient, grantee, int(access))
        return Consent(
            patient, grantee, codes.Access(access), codes.mask_to_categories(categories),
            codes.mask_to_purposes(purposes), int(start), int(expiry),
        )  # fmt: skip

    def is_permitted(self, patient: str, accessor: str, access: codes.Access, category: int, purpose: int) -> bool:
        args = (_address(patient), _address(accessor), int(access), int(category), int(purpose))
        return bool(self._view("isPermitted", *args))

    def check_access(self, patient: str, accessor: str, access: codes.Access, category: int, purpose: int) -> bool:
        """Raise :class:`~medledger.errors.AccessDenied` with the chain's reason unless the access is
        allowed now; return whether it rests on an emergency opening."""
        args = (_address(patient), _address(accessor), int(access), int(category), int(purpose))
        return bool(self._view("checkAccess", *args, category=int(category), purpose=int(purpose)))

    def grant(
        self, patient: str, grantee: str, access: codes.Access, terms: ConsentTerms,
        key_envelope: bytes = ZERO32, *, sender: Sender, simulate: bool = False,
    ) -> Receipt:  # fmt: skip
        packed = (terms.category_mask, terms.purpose_mask, terms.start, terms.expiry)
        args = (_address(patient), _address(grantee), int(access), packed, key_envelope)
        return self._transact(Tx("grant", args), sender, simulate)

    def revoke(
        self, patient: str, grantee: str, access: codes.Access, *, sender: Sender, simulate: bool = False
    ) -> Receipt:
        return self._transact(Tx("revoke", (_address(patient), _address(grantee), int(access))), sender, simulate)

    def grant_by_sig(self, request: GrantRequest, signature: bytes, *, sender: Sender) -> Receipt:
        return self.send(Tx("grantBySig", (request.as_abi(), signature)), sender)

    def revoke_by_sig(self, request: RevokeRequest, signature: bytes, *, sender: Sender) -> Receipt:
        return self.send(Tx("revokeBySig", (request.as_abi(), signature)), sender)

    def nonces(self, patient: str) -> int:
        return int(self._view("nonces", _address(patient)))

    def grant_typehash(self) -> bytes:
        return bytes(self._view("GRANT_TYPEHASH"))

    def revoke_typehash(self) -> bytes:
        return bytes(self._view("REVOKE_TYPEHASH"))

    def domain_separator(self) -> bytes:
        return bytes(self._view("DOMAIN_SEPARATOR"))

    # --- delegation ------------------------------------------------------------------------------------
    def delegation(self, patient: str, delegate: str) -> Delegation:
        patient, delegate = _address(patient), _address(delegate)
        categories, expiry = self._view("delegation", patient, delegate)
        return Delegation(patient, delegate, codes.mask_to_categories(categories), int(expiry))

    def is_delegate(self, patient: str, delegate: str, categories: Iterable[int] = ()) -> bool:
        mask = codes.categories_to_mask(categories)
        return bool(self._view("isDelegate", _address(patient), _address(delegate), mask))

    def appoint_delegate(self, delegate: str, categories: Iterable[int], expiry: int, *, sender: Sender) -> Receipt:
        args = (_address(delegate), codes.categories_to_mask(categories), expiry)
        return self.send(Tx("appointDelegate", args), sender)

    def remove_delegate(self, delegate: str, *, sender: Sender) -> Receipt:
        return self.send(Tx("removeDelegate", (_address(delegate),)), sender)

    # --- emergency ---------------------------------------------------------------------------------------
    def max_emergency_window(self) -> int:
        return int(self._view("MAX_EMERGENCY_WINDOW"))

    def emergency_opted_out(self, patient: str) -> bool:
        return bool(self._view("emergencyOptedOut", _address(patient)))

    def emergency_access_expiry(self, patient: str, clinician: str) -> int:
        return int(self._view("emergencyAccessExpiry", _address(patient), _address(clinician)))

    def open_emergency_access(self, patient: str, window: int, reason_code: bytes, *, sender: Sender) -> Receipt:
        return self.send(Tx("openEmergencyAccess", (_address(patient), int(window), reason_code)), sender)

    def close_emergency_access(self, patient: str, clinician: str, *, sender: Sender) -> Receipt:
        return self.send(Tx("closeEmergencyAccess", (_address(patient), _address(clinician))), sender)

    def set_emergency_opt_out(self, opted_out: bool, *, sender: Sender) -> Receipt:
        return self.send(Tx("setEmergencyOptOut", (bool(opted_out),)), sender)

    # --- keys ------------------------------------------------------------------------------------------
    def key_directory(self, patient: str) -> bytes:
        return bytes(self._view("keyDirectory", _address(patient)))

    def set_key_directory(self, patient: str, pointer: bytes, *, sender: Sender) -> Receipt:
        return self.send(Tx("setKeyDirectory", (_address(patient), pointer)), sender)

    def publish_key_envelope(
        self, patient: str, recipient: str, envelope: bytes, *, sender: Sender, simulate: bool = False,
        categories: Iterable[int] = (),
    ) -> Receipt:  # fmt: skip
        """Point ``recipient`` at a key envelope; ``categories``: the ones it carries (the contract
        will check them against the recipient's access)."""
        args = (_address(patient), _address(recipient), envelope)
        return self._transact(Tx("publishKeyEnvelope", args), sender, simulate)

    # --- records ---------------------------------------------------------------------------------------
    def record(self, record_id: bytes, *, patient: str | None = None) -> RecordInfo:
        """The header of a record or batch (``exists`` False if none has this id). ``patient``: the
        namespace the id is looked up in, where the contract keys records by patient."""
        patient_, category, created, erased, is_batch, leaves, fingerprint, prev, nxt = self._view("record", record_id)
        return RecordInfo(
            bytes(record_id), _address(patient_), codes.Category(category), int(created), bool(erased),
            bool(is_batch), int(leaves), bytes(fingerprint), _opt(prev), _opt(nxt),
        )  # fmt: skip

    def verify_fingerprint(self, record_id: bytes, fingerprint: bytes, *, patient: str | None = None) -> bool:
        return bool(self._view("verifyFingerprint", record_id, fingerprint))

    def verify_batch_inclusion(
        self, root: bytes, reading_id: bytes, fingerprint: bytes, proof: Sequence[bytes], *, patient: str | None = None
    ) -> bool:
        return bool(self._view("verifyBatchInclusion", root, reading_id, fingerprint, list(proof)))

    def register_record(
        self, record_id: bytes, patient: str, category: int, purpose: int, fingerprint: bytes, cid: bytes,
        *, sender: Sender, key_epoch: int | None = None,
    ) -> Receipt:  # fmt: skip
        """Register a record; ``key_epoch``: the category-key epoch its record key was sealed to."""
        args = (record_id, _address(patient), int(category), int(purpose), fingerprint, cid)
        return self.send(Tx("registerRecord", args, {"category": int(category), "purpose": int(purpose)}), sender)

    def amend_record(
        self, previous: bytes, record_id: bytes, purpose: int, fingerprint: bytes, cid: bytes,
        *, sender: Sender, category: int | None = None, patient: str | None = None, key_epoch: int | None = None,
    ) -> Receipt:  # fmt: skip
        context = {"purpose": int(purpose)} | ({"category": int(category)} if category is not None else {})
        return self.send(Tx("amendRecord", (previous, record_id, int(purpose), fingerprint, cid), context), sender)

    def anchor_batch(
        self, root: bytes, patient: str, category: int, purpose: int, leaf_count: int, cid: bytes,
        *, sender: Sender, key_epoch: int | None = None,
    ) -> Receipt:  # fmt: skip
        args = (root, _address(patient), int(category), int(purpose), int(leaf_count), cid)
        return self.send(Tx("anchorBatch", args, {"category": int(category), "purpose": int(purpose)}), sender)

    def erase_record(self, record_id: bytes, *, sender: Sender, patient: str | None = None) -> Receipt:
        return self.send(Tx("eraseRecord", (record_id,)), sender)

    def record_access(
        self, record_id: bytes, purpose: int, *, sender: Sender, category: int | None = None,
        patient: str | None = None,
    ) -> Receipt:  # fmt: skip
        context = {"purpose": int(purpose)} | ({"category": int(category)} if category is not None else {})
        return self.send(Tx("recordAccess", (record_id, int(purpose)), context), sender)
