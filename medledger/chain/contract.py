"""The typed facade over the Medledger contract: every call, transaction and event goes through it.

Views return the named values of :mod:`medledger.chain.types`; transactions take a ``sender``
(anything with ``address`` and a local ``account``, e.g. a keystore identity), are simulated first
(a revert raises the decoded error and sends nothing) and return a :class:`Receipt` with the decoded
events of :mod:`medledger.chain.events`. ``simulate=True`` only checks that the transaction would
succeed. ``context`` keywords (``category``, ``purpose``) make refusals name what was asked for.

Names follow the contract's functions in snake_case; arguments follow the contract's order. Where
the contract's ABI changes, this module (and :mod:`~medledger.chain.types`,
:mod:`~medledger.chain.events`) absorbs it. The record functions (ids namespaced by patient, headers
rebuilt from events) are :class:`~medledger.chain.records.RecordCalls`'.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from eth_abi import decode as abi_decode
from eth_abi import encode as abi_encode
from eth_utils import keccak

from medledger import codes

from .base import ContractBase, Sender, Tx
from .base import address_of as _address
from .eip712 import GrantRequest, RevokeRequest
from .events import Receipt
from .records import RecordCalls
from .types import (
    ZERO32,
    CategoryKey,
    ConsentState,
    ConsentTerms,
    Delegation,
    EmergencyAccess,
    Participant,
    PatientState,
)

__all__ = ["ContractBase", "MedledgerContract", "Sender", "Tx"]

_KEY_SELECTOR = keccak(text="categoryKey(address,uint8)")[:4]


class MedledgerContract(RecordCalls):
    """One deployment of the Medledger contract on one chain."""

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

    def register_patient(
        self, encryption_key: bytes, category_keys: Sequence[bytes], *, sender: Sender, simulate: bool = False
    ) -> Receipt:
        """Register the sender as a patient with its encryption key and one public key per category
        (``category_keys[c]`` is category ``c``; all start at epoch 1)."""
        args = (encryption_key, [bytes(k) for k in category_keys])
        return self._transact(Tx("registerPatient", args), sender, simulate)

    def rotate_patient_key(self, encryption_key: bytes, category_keys: Sequence[bytes], *, sender: Sender) -> Receipt:
        """A new encryption key and new public keys for all categories (each a new epoch)."""
        return self.send(Tx("rotatePatientKey", (encryption_key, [bytes(k) for k in category_keys])), sender)

    def category_key(self, patient: str, category: int) -> CategoryKey:
        """The key ``category``'s records of ``patient`` are sealed to now (epoch 0: not registered)."""
        public, epoch, valid_until = self._view("categoryKey", _address(patient), int(category))
        return CategoryKey(_address(patient), codes.Category(category), bytes(public), int(epoch), int(valid_until))

    def category_keys(self, patient: str) -> dict[codes.Category, CategoryKey]:
        """Every category's current key of ``patient`` (one batched round trip)."""
        patient = _address(patient)
        answers = self.chain.rpc_batch(
            [("eth_call", [self.category_key_call(patient, c), "latest"]) for c in codes.Category]
        )
        return {
            c: self.category_key_from(patient, c, answer) for c, answer in zip(codes.Category, answers, strict=True)
        }

    def category_key_call(self, patient: str, category: int) -> dict[str, str]:
        """The bare ``eth_call`` of ``categoryKey(patient, category)``, for batched JSON-RPC requests."""
        data = _KEY_SELECTOR + abi_encode(["address", "uint8"], [_address(patient), int(category)])
        return {"to": self.address, "data": "0x" + data.hex()}

    @staticmethod
    def category_key_from(patient: str, category: int, answer: str) -> CategoryKey:
        """The :class:`CategoryKey` a bare ``categoryKey`` call answered (hex)."""
        public, epoch, valid_until = abi_decode(["bytes32", "uint32", "uint64"], bytes.fromhex(answer[2:]))
        return CategoryKey(_address(patient), codes.Category(category), bytes(public), int(epoch), int(valid_until))

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
    def consent(self, patient: str, grantee: str, access: codes.Access) -> ConsentState:
        patient, grantee = _address(patient), _address(grantee)
        categories, purposes, start, expiry, updated, delegation, released = self._view(
            "consent", patient, grantee, int(access)
        )
        return ConsentState(
            patient, grantee, codes.Access(access), codes.mask_to_categories(categories),
            codes.mask_to_purposes(purposes), int(start), int(expiry), int(updated), int(delegation), bool(released),
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
        """The patient's current signed-request generation (every request carries it; not consumed)."""
        return int(self._view("nonces", _address(patient)))

    def invalidate_signed_requests(self, patient: str, *, sender: Sender, simulate: bool = False) -> Receipt:
        """Move the patient's nonce on: every signed request not yet submitted is void."""
        return self._transact(Tx("invalidateSignedRequests", (_address(patient),)), sender, simulate)

    def grant_typehash(self) -> bytes:
        return bytes(self._view("GRANT_TYPEHASH"))

    def revoke_typehash(self) -> bytes:
        return bytes(self._view("REVOKE_TYPEHASH"))

    def domain_separator(self) -> bytes:
        return bytes(self._view("DOMAIN_SEPARATOR"))

    # --- delegation ------------------------------------------------------------------------------------
    def delegation(self, patient: str, delegate: str) -> Delegation:
        patient, delegate = _address(patient), _address(delegate)
        return self._delegation(patient, self._view("delegation", patient, delegate))

    def delegation_by_id(self, patient: str, delegation_id: int) -> Delegation:
        patient = _address(patient)
        return self._delegation(patient, self._view("delegationById", patient, int(delegation_id)))

    @staticmethod
    def _delegation(patient: str, raw: Sequence[Any]) -> Delegation:
        delegation_id, delegate, categories, expiry = raw
        return Delegation(
            patient, _address(delegate), int(delegation_id), codes.mask_to_categories(categories), int(expiry)
        )

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

    def max_emergency_run(self) -> int:
        return int(self._view("MAX_EMERGENCY_RUN"))

    def emergency_access(self, patient: str, clinician: str) -> EmergencyAccess:
        patient, clinician = _address(patient), _address(clinician)
        expires_at, run_start, is_open = self._view("emergencyAccess", patient, clinician)
        return EmergencyAccess(patient, clinician, int(expires_at), int(run_start), bool(is_open))

    def open_emergency_access(self, patient: str, window: int, reason_code: bytes, *, sender: Sender) -> Receipt:
        return self.send(Tx("openEmergencyAccess", (_address(patient), int(window), reason_code)), sender)

    def confirm_emergency_access(self, patient: str, clinician: str, *, sender: Sender) -> Receipt:
        """The patient or a delegate confirms a clinician's emergency access: its run starts again."""
        return self.send(Tx("confirmEmergencyAccess", (_address(patient), _address(clinician))), sender)

    def close_emergency_access(self, patient: str, clinician: str, *, sender: Sender) -> Receipt:
        return self.send(Tx("closeEmergencyAccess", (_address(patient), _address(clinician))), sender)

    def set_emergency_opt_out(self, opted_out: bool, *, sender: Sender) -> Receipt:
        return self.send(Tx("setEmergencyOptOut", (bool(opted_out),)), sender)

    # --- keys ------------------------------------------------------------------------------------------
    def set_category_keys(
        self, patient: str, public_keys: Mapping[int, bytes], *, sender: Sender, simulate: bool = False
    ) -> Receipt:
        """Rotate the categories of ``public_keys`` (category -> new public key) to a new epoch each."""
        categories = sorted(int(c) for c in public_keys)
        args = (_address(patient), codes.categories_to_mask(categories), [bytes(public_keys[c]) for c in categories])
        return self._transact(Tx("setCategoryKeys", args), sender, simulate)

    def publish_key_envelope(
        self, patient: str, recipient: str, envelope: bytes, *, categories: Iterable[int], sender: Sender,
        simulate: bool = False,
    ) -> Receipt:  # fmt: skip
        """Point ``recipient`` at a key envelope carrying the keys of ``categories`` (the recipient must be
        the patient or hold live read access to every one of them; releasing clamps the keys' validity)."""
        args = (_address(patient), _address(recipient), codes.categories_to_mask(categories), envelope)
        return self._transact(Tx("publishKeyEnvelope", args), sender, simulate)
