"""The portal's one door into the medledger library: everything the web server reads from the chain
and IPFS, and the relayer's submission, as plain JSON-ready dictionaries.

Keeping every library call here means a change of the library's layout (the typed contract facade,
the domain modules) is adapted in this file alone. Nothing here ever handles a private key of a
patient, a passphrase or plaintext: it sees public chain state, ciphertext, sealed key envelopes and
signed requests.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from medledger import audit, codes, consent, records
from medledger.chain import FOREVER, ConsentState, Delegation, utc
from medledger.chain.addresses import checked_address
from medledger.chain.eip712 import REQUEST_FORMAT, TYPES, ParsedRequest, domain
from medledger.chain.events import (
    ConsentGranted,
    ConsentRevoked,
    DelegateAppointed,
    EmergencyAccessOpened,
    KeyEnvelopePublished,
    ParticipantRegistered,
)
from medledger.client import Client, cid_from_digest
from medledger.config import Settings
from medledger.consent import VerifiedRequest
from medledger.errors import ConfigError, MalformedRequest, MedledgerError, StorageError
from medledger.keyring import Keyring, live_access
from medledger.keystore import Identity
from medledger.records.read import check_readable
from medledger.storage import cid_from_bytes, normalize_cid

ZERO32 = b"\0" * 32
#: Largest object the page may add to IPFS through the server: key envelopes (a few KiB); records
#: are written by the CLI and ingest tools, not through the portal.
MAX_SMALL_OBJECT = 64 * 1024
#: The contract functions the page has the wallet send (their ABI entries come from the package's
#: compiled contract, the same the library uses).
WALLET_FUNCTIONS = (
    "registerPatient", "setCategoryKeys", "publishKeyEnvelope", "grant", "revoke", "invalidateSignedRequests",
    "appointDelegate", "removeDelegate", "setEmergencyOptOut", "confirmEmergencyAccess", "closeEmergencyAccess",
)  # fmt: skip


def address(value: object) -> str:
    """A checksummed address (:func:`~medledger.chain.checked_address`), or InvalidAddress (HTTP 400)."""
    return checked_address(value, "Ethereum address")


def _hex(value: bytes) -> str:
    return "0x" + bytes(value).hex()


def _bytes32(text: str, what: str) -> bytes:
    try:
        raw = bytes.fromhex(text.removeprefix("0x"))
    except ValueError:
        raw = b""
    if len(raw) != 32:
        raise ConfigError(f"{text!r} is not a {what} (32 bytes of hex)")
    return raw


def _codes_table() -> dict[str, list[dict[str, Any]]]:
    def table(enum_cls: type[IntEnum]) -> list[dict[str, Any]]:
        return [{"code": int(m), "slug": codes.slug(m), "label": codes.label(m)} for m in enum_cls]

    return {
        "categories": table(codes.Category),
        "purposes": table(codes.Purpose),
        "access": table(codes.Access),
        "kinds": table(codes.ParticipantKind),
    }


def _ints(values: Iterable[int]) -> list[int]:
    return sorted(int(v) for v in values)


def _grant_json(g: ConsentState, now: int) -> dict[str, Any]:
    return {
        "patient": g.patient,
        "grantee": g.grantee,
        "access": int(g.access),
        "categories": _ints(g.categories),
        "purposes": _ints(g.purposes),
        "start": g.start,
        "expiry": g.expiry,
        "expiry_utc": utc(g.expiry),
        "live": g.live(now),
        "updated_at": g.updated_at,
        "delegation": g.delegation,
        "keys_released": g.keys_released,
    }


@dataclass
class Backend:
    """What the portal reads and writes through one :class:`~medledger.client.Client`."""

    client: Client

    @classmethod
    def connect(cls, settings: Settings) -> Backend:
        return cls(Client.connect(settings))

    # --- deployment ------------------------------------------------------------------------------
    def info(self) -> dict[str, Any]:
        dep = self.client.deployment
        functions = [e for e in dep.abi if e.get("type") == "function" and e.get("name") in WALLET_FUNCTIONS]
        return {
            "chain_id": self.client.chain.chain_id,
            "contract": dep.address,
            "deployment_block": dep.block_number,
            "now": self.client.now(),
            "codes": _codes_table(),
            "abi": functions,
            # the EIP-712 request types and file format: the library's own (chain/eip712.py)
            "eip712": {
                "types": {kind: types[kind] for kind, types in TYPES.items()},
                "domain": self.domain(),
                "format": REQUEST_FORMAT,
            },
        }

    def now(self) -> int:
        return self.client.now()

    # --- who someone is --------------------------------------------------------------------------
    def participant(self, account: str) -> dict[str, Any]:
        p = self.client.contract.participant(address(account))
        return {
            "address": p.address,
            "kind": int(p.kind),
            "kind_label": codes.label(p.kind),
            "suspended": p.suspended,
            "registered_at": p.registered_at,
            "encryption_key": _hex(p.encryption_key) if p.encryption_key != ZERO32 else None,
        }

    def participants(self) -> list[dict[str, Any]]:
        """Every registered organisation or professional (from registration events, current state)."""
        seen = {e.account for e in self.client.contract.logs(ParticipantRegistered)}
        return [self.participant(a) for a in sorted(seen)]

    def patient(self, account: str) -> dict[str, Any]:
        """Registration, encryption key, emergency opt-out, delegates, the patients this account is a
        delegate of, and the signing nonce of an address."""
        state = self.client.contract.patient_state(address(account))
        return {
            "address": state.address,
            "registered": state.registered,
            "encryption_key": _hex(state.encryption_key) if state.encryption_key != ZERO32 else None,
            "emergency_opted_out": state.emergency_opted_out,
            "nonce": self.client.contract.nonces(state.address),
            "delegates": self.delegates(state.address),
            "represents": self.represents(state.address),
            "participant": self.participant(state.address),
        }

    def _delegations(self, patient: str | None = None, delegate: str | None = None) -> list[Delegation]:
        """The current delegations of a patient or held by a delegate: every one ever appointed and not
        removed since."""
        events = self.client.contract.logs(DelegateAppointed, patient=patient, delegate=delegate)
        pairs = {(e.patient, e.delegate) for e in events}
        found = [self.client.contract.delegation(p, d) for p, d in sorted(pairs)]
        return [d for d in found if d.expiry != 0]

    def delegates(self, patient: str) -> list[dict[str, Any]]:
        """The patient's delegates (ended ones too, until removed) and their bounds."""
        now = self.now()
        return [
            {"delegate": d.delegate, "id": d.id, "categories": _ints(d.categories), "expiry": d.expiry,
             "expiry_utc": utc(d.expiry), "live": d.live(now)}
            for d in self._delegations(patient=address(patient))
        ]  # fmt: skip

    def represents(self, delegate: str) -> list[dict[str, Any]]:
        """The patients whose live delegate ``delegate`` is, with the delegation's bounds."""
        now = self.now()
        return [
            {"patient": d.patient, "id": d.id, "categories": _ints(d.categories), "expiry": d.expiry,
             "expiry_utc": utc(d.expiry)}
            for d in self._delegations(delegate=address(delegate)) if d.live(now)
        ]  # fmt: skip

    # --- category keys (public halves; the secrets travel only in sealed envelopes) ------------------
    def keys(self, patient: str) -> dict[str, Any]:
        """The category keys on chain now (stale: chain time at or past ``validUntil``, so writers are
        refused until they are rotated) and every public key the chain recorded, by category and epoch."""
        patient = address(patient)
        now = self.now()
        current = []
        for category in codes.Category:
            key = self.client.contract.category_key(patient, category)
            current.append({
                "category": int(category), "public_key": _hex(key.public_key), "epoch": key.epoch,
                "valid_until": key.valid_until, "stale": key.exists and key.stale(now),
            })  # fmt: skip
        history = [
            {"category": c, "epoch": e, "public_key": _hex(k)}
            for (c, e), k in sorted(Keyring(self.client).public_keys(patient).items())
        ]
        return {"now": now, "current": current, "history": history}

    def envelopes(self, patient: str, holder: str) -> list[dict[str, Any]]:
        """Every key envelope delivered to ``holder`` for ``patient`` (with a read grant, or published),
        with the categories its event names: the page opens them and checks every secret against the
        public key the chain recorded (as :meth:`medledger.keyring.Keyring.secrets` does)."""
        # The library's own list, publishers already checked: the page trusts exactly what it trusts.
        sources = Keyring(self.client).envelopes.entitled_sources(address(holder), address(patient))
        return [
            {"pointer": _hex(s.pointer), "cid": cid_from_digest(s.pointer), "categories": sorted(s.categories),
             "by": s.by}
            for s in sources
        ]  # fmt: skip

    def readers(self, patient: str) -> list[dict[str, Any]]:
        """Each live source of read access (a consent, a delegation) other than the patient's, with the
        reader's registered key: who receives new keys after a rotation (one envelope per source: the
        chain accepts an envelope only if one source covers every category in it)."""
        keyring = Keyring(self.client)
        return [
            {
                "reader": a.reader,
                "categories": sorted(a.categories),
                "encryption_key": _hex(keyring.recipient_key(a.reader)),
            }
            for a in live_access(self.client, address(patient))
            if a.categories
        ]

    # --- emergency access ------------------------------------------------------------------------
    def emergency(self, patient: str) -> list[dict[str, Any]]:
        """Every clinician who opened emergency access to ``patient``, as it stands, with the categories
        whose keys were released to it since its last opening."""
        patient = address(patient)
        contract = self.client.contract
        opened: dict[str, EmergencyAccessOpened] = {}
        for e in contract.logs(EmergencyAccessOpened, patient=patient):
            opened[e.clinician] = e
        out = []
        for clinician, last in sorted(opened.items()):
            access = contract.emergency_access(patient, clinician)
            released: set[int] = set()
            for p in contract.logs(KeyEnvelopePublished, patient=patient, recipient=clinician):
                if p.log.block_number >= last.log.block_number:
                    released.update(int(c) for c in p.categories)
            out.append({
                "clinician": clinician, "open": access.open, "expires_at": access.expires_at,
                "expires_utc": utc(access.expires_at), "run_start": access.run_start,
                "reason_code": _hex(last.reason_code), "released": sorted(released),
                "encryption_key": _hex(Keyring(self.client).recipient_key(clinician)),
            })  # fmt: skip
        return out

    # --- consents --------------------------------------------------------------------------------
    def consents(self, patient: str) -> dict[str, Any]:
        """Every consent the patient has made that still has terms on chain (live, not yet started or
        expired), and the history of grants and revocations."""
        who = address(patient)
        now = self.now()
        current = [_grant_json(g, now) for g in consent.grants_given(self.client, who, live_only=False)]
        history = [e.to_json() for e in audit.trail(self.client, who, (ConsentGranted, ConsentRevoked))]
        return {"now": now, "current": current, "history": history}

    def consent(self, patient: str, grantee: str, access: int) -> dict[str, Any]:
        try:
            kind = codes.Access(access)
        except ValueError:
            raise ConfigError(f"{access} is not an access code (0 read, 1 write)") from None
        g = consent.consent_of(self.client, address(patient), address(grantee), kind)
        return _grant_json(g, self.now())

    def grants_held(self, grantee: str) -> list[dict[str, Any]]:
        now = self.now()
        return [_grant_json(g, now) for g in consent.grants_held(self.client, address(grantee), live_only=False)]

    @staticmethod
    def grants_csv(grants: Iterable[Mapping[str, Any]]) -> str:
        buf = io.StringIO()
        writer = csv.writer(buf)
        writer.writerow(["patient", "grantee", "access", "categories", "purposes", "start_utc", "expiry_utc", "live"])
        for g in grants:
            writer.writerow([
                g["patient"], g["grantee"], codes.label(codes.Access(g["access"])),
                "; ".join(codes.label(codes.Category(c)) for c in g["categories"]),
                "; ".join(codes.label(codes.Purpose(p)) for p in g["purposes"]),
                utc(g["start"]), "" if g["expiry"] >= FOREVER else g["expiry_utc"], g["live"],
            ])  # fmt: skip
        return buf.getvalue()

    # --- audit trail and records -----------------------------------------------------------------
    def trail(self, patient: str) -> list[dict[str, Any]]:
        return [e.to_json() for e in audit.trail(self.client, address(patient))]

    def trail_csv(self, patient: str) -> str:
        return audit.to_csv(audit.trail(self.client, address(patient)))

    def records(self, patient: str) -> list[dict[str, Any]]:
        out = []
        for r in records.list_records(self.client, address(patient)):
            item = r.to_json()
            item["category_code"] = int(r.category)
            item["purpose_code"] = int(r.purpose)
            out.append(item)
        return out

    def record(self, patient: str, record_id: str) -> dict[str, Any]:
        """A record of ``patient`` (its header rebuilt from events and checked against the chain's
        commitment) plus the CID of its ciphertext: what the browser needs to fetch, check and decrypt it."""
        raw = _bytes32(record_id, "record id")
        info = check_readable(self.client, raw, address(patient))
        return {
            "record_id": _hex(raw),
            "patient": info.patient,
            "author": info.author,
            "category": int(info.category),
            "purpose": int(info.purpose),
            "key_epoch": info.key_epoch,
            "fingerprint": _hex(info.fingerprint),
            "cid": cid_from_bytes(info.cid),
            "batch": info.is_batch,
            "created_at": info.created_at,
        }

    # --- errors ----------------------------------------------------------------------------------
    def explain(self, data: str, context: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The sentence the CLI prints for a contract revert (its custom-error data)."""
        try:
            bytes.fromhex(data.removeprefix("0x"))
        except ValueError:
            raise ConfigError("The revert data is not hex") from None
        decoder = self.client.contract.decoder
        exc = decoder.to_exception(data, context or {})
        decoded = decoder.decode(data)
        return {"message": str(exc), "error": decoded[0] if decoded else None, "kind": type(exc).__name__}

    # --- IPFS ------------------------------------------------------------------------------------
    def put_small(self, data: bytes) -> dict[str, str]:
        if len(data) > MAX_SMALL_OBJECT:
            raise ConfigError(
                f"The portal stores only key envelopes (at most {MAX_SMALL_OBJECT} bytes), not {len(data)} bytes"
            )
        digest = self.client.put_small(data)
        return {"pointer": _hex(digest), "cid": cid_from_digest(digest)}

    def get(self, cid: str) -> bytes:
        try:
            cid = normalize_cid(cid)
        except StorageError as exc:  # not a CID at all: the caller's mistake, not the store's
            raise ConfigError(str(exc)) from None
        return self.client.store.cat(cid)

    # --- relaying signed consent requests (the library's own parsing and checks) -----------------
    @staticmethod
    def parse(request: Any) -> ParsedRequest:
        """The request of a signed-request document or a wallet's payload (the library's parser);
        MalformedRequest names the field that is wrong, and an unsigned request is refused here."""
        parsed = consent.parse_request(request)
        if parsed.signature is None:
            raise MalformedRequest(
                "The request carries no signature; the relayer submits only signed ones", "signature"
            )
        return parsed

    def domain(self) -> dict[str, Any]:
        """The EIP-712 domain of this chain and deployment (what a request must be signed for)."""
        return domain(self.client.chain.chain_id, self.client.deployment.address)

    def verify(self, parsed: ParsedRequest) -> VerifiedRequest:
        """Signed for this chain and deployment, by the request's patient (AccessDenied otherwise)."""
        return consent.verify_signature(self.client, parsed)

    def submit(self, relayer: Identity, verified: VerifiedRequest) -> bool:
        """Submit through the library: it refuses a superseded, invalidated or expired request
        (``check_request``) and simulates the call before any gas is spent."""
        return consent.submit(self.client, relayer, verified)


__all__ = ["MAX_SMALL_OBJECT", "Backend", "MedledgerError", "address"]
