"""The portal's one door into the medledger library: everything the web server reads from the chain
and IPFS, and the relayer's submission, as plain JSON-ready dictionaries.

Keeping every library call here means a change of the library's layout (the typed contract facade,
the domain modules) is adapted in this file alone. Nothing here ever handles a private key of a
patient, a passphrase or plaintext: it sees public chain state, ciphertext and signed requests.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from eth_utils import is_address, to_checksum_address

from medledger import audit, codes, consent, records
from medledger.chain import utc
from medledger.client import Client, cid_from_digest
from medledger.config import Settings
from medledger.errors import ConfigError, MedledgerError
from medledger.keyring import Keyring
from medledger.keystore import Identity
from medledger.storage import cid_from_bytes, normalize_cid

ZERO32 = b"\0" * 32
#: Largest object the page may add to IPFS through the server: key directories and key envelopes
#: (a few KiB); records are written by the CLI and ingest tools, not through the portal.
MAX_SMALL_OBJECT = 64 * 1024


def address(text: str) -> str:
    """A checksummed address, or ConfigError (HTTP 400) for anything else."""
    if not isinstance(text, str) or not is_address(text):
        raise ConfigError(f"{text!r} is not an Ethereum address (0x followed by 40 hex digits)")
    return to_checksum_address(text)


def _hex(value: bytes) -> str:
    return "0x" + bytes(value).hex()


def _codes_table() -> dict[str, list[dict[str, Any]]]:
    def table(enum_cls: type[codes.IntEnum]) -> list[dict[str, Any]]:
        return [{"code": int(m), "slug": codes.slug(m), "label": codes.label(m)} for m in enum_cls]

    return {
        "categories": table(codes.Category),
        "purposes": table(codes.Purpose),
        "access": table(codes.Access),
        "kinds": table(codes.ParticipantKind),
    }


def _grant_json(g: consent.Grant, now: int) -> dict[str, Any]:
    return {
        "patient": g.patient,
        "grantee": g.grantee,
        "access": int(g.access),
        "categories": sorted(int(c) for c in g.categories),
        "purposes": sorted(int(p) for p in g.purposes),
        "start": g.start,
        "expiry": g.expiry,
        "expiry_utc": utc(g.expiry),
        "live": g.live(now),
    }


@dataclass
class Backend:
    """What the portal reads and writes through one :class:`~medledger.client.Client`."""

    client: Client

    @classmethod
    def connect(cls, settings: Settings) -> "Backend":
        return cls(Client.connect(settings))

    # --- deployment ------------------------------------------------------------------------------
    def info(self) -> dict[str, Any]:
        dep = self.client.deployment
        return {
            "chain_id": self.client.chain.chain_id,
            "contract": dep.address,
            "deployment_block": dep.block_number,
            "now": self.client.now(),
            "codes": _codes_table(),
        }

    def now(self) -> int:
        return self.client.now()

    def _call(self, fn_name: str, *args: Any) -> Any:
        return self.client.call(getattr(self.client.contract.functions, fn_name)(*args))

    # --- who someone is --------------------------------------------------------------------------
    def participant(self, account: str) -> dict[str, Any]:
        kind, suspended, registered_at, credential, key = self._call("participant", address(account))
        return {
            "address": address(account),
            "kind": int(kind),
            "kind_label": codes.label(codes.ParticipantKind(kind)),
            "suspended": bool(suspended),
            "registered_at": int(registered_at),
            "encryption_key": _hex(key) if bytes(key) != ZERO32 else None,
        }

    def participants(self) -> list[dict[str, Any]]:
        """Every registered organisation or professional (from registration events, current state)."""
        seen = {e["args"]["account"] for e in self.client.logs("ParticipantRegistered")}
        return [self.participant(a) for a in sorted(seen)]

    def patient(self, account: str) -> dict[str, Any]:
        """Registration, keys, emergency opt-out, delegates and signing nonce of an address."""
        who = address(account)
        registered = bool(self._call("isPatient", who))
        key = bytes(self._call("patientEncryptionKey", who))
        directory = bytes(self._call("keyDirectory", who))
        return {
            "address": who,
            "registered": registered,
            "encryption_key": _hex(key) if key != ZERO32 else None,
            "key_directory": _hex(directory) if directory != ZERO32 else None,
            "key_directory_cid": cid_from_digest(directory) if directory != ZERO32 else None,
            "emergency_opted_out": bool(self._call("emergencyOptedOut", who)),
            "nonce": self.nonce(who),
            "delegates": self.delegates(who),
            "participant": self.participant(who),
        }

    def nonce(self, patient: str) -> int:
        """The patient's current signing nonce (what a signed request must carry)."""
        return int(self._call("nonces", address(patient)))

    def delegates(self, patient: str) -> list[dict[str, Any]]:
        now = self.now()
        names = {e["args"]["delegate"] for e in self.client.logs("DelegateAppointed", patient=address(patient))}
        out = []
        for delegate in sorted(names):
            categories, expiry = self._call("delegation", address(patient), delegate)
            if expiry == 0:
                continue  # removed
            out.append({
                "delegate": delegate,
                "categories": sorted(int(c) for c in codes.mask_to_categories(categories)),
                "expiry": int(expiry),
                "expiry_utc": utc(expiry),
                "live": now < expiry,
            })
        return out

    def readers(self, patient: str) -> dict[str, list[int]]:
        """Who else may read which categories now (for a key rotation done in the browser)."""
        found = Keyring(self.client).readers(address(patient))
        return {k: sorted(v) for k, v in sorted(found.items())}

    # --- consents --------------------------------------------------------------------------------
    def consents(self, patient: str) -> dict[str, Any]:
        """Every consent the patient has made that still has terms on chain (live, not yet started or
        expired), and the history of grants and revocations."""
        who = address(patient)
        now = self.now()
        current = [_grant_json(g, now) for g in consent.grants_given(self.client, who, live_only=False)]
        history = [e.to_json() for e in audit.trail(self.client, who, ("ConsentGranted", "ConsentRevoked"))]
        return {"now": now, "current": current, "history": history}

    def consent(self, patient: str, grantee: str, access: int) -> dict[str, Any]:
        g = consent.consent_of(self.client, address(patient), address(grantee), codes.Access(access))
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
                utc(g["start"]), g["expiry_utc"], g["live"],
            ])
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

    def record(self, record_id: str) -> dict[str, Any]:
        """A record's on-chain header plus the CID of its ciphertext: what the browser needs to
        fetch, check and decrypt it."""
        try:
            raw = bytes.fromhex(record_id[2:] if record_id.startswith("0x") else record_id)
        except ValueError:
            raw = b""
        if len(raw) != 32:
            raise ConfigError(f"{record_id!r} is not a record id (32 bytes of hex)")
        info = records._check_readable(self.client, raw)
        if info["is_batch"]:
            events = self.client.logs("BatchAnchored", root=raw)
        else:
            events = self.client.logs("RecordRegistered", recordId=raw)
        if not events:
            raise ConfigError(f"Record {_hex(raw)} has no registration event")
        args = events[-1]["args"]
        return {
            "record_id": _hex(raw),
            "patient": to_checksum_address(info["patient"]),
            "author": args["author"],
            "category": int(info["category"]),
            "purpose": int(args["purpose"]),
            "fingerprint": _hex(info["fingerprint"]),
            "cid": cid_from_bytes(bytes(args["cid"])),
            "batch": bool(info["is_batch"]),
            "created_at": int(info["created_at"]),
        }

    # --- errors ----------------------------------------------------------------------------------
    def explain(self, data: str, context: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The sentence the CLI prints for a contract revert (its custom-error data)."""
        try:
            bytes.fromhex(data[2:] if data.startswith("0x") else data)
        except ValueError:
            raise ConfigError("The revert data is not hex") from None
        exc = self.client.decoder.to_exception(data, context or {})
        decoded = self.client.decoder.decode(data)
        return {
            "message": str(exc),
            "error": decoded[0] if decoded else None,
            "kind": type(exc).__name__,
        }

    # --- IPFS ------------------------------------------------------------------------------------
    def put_small(self, data: bytes) -> dict[str, str]:
        if len(data) > MAX_SMALL_OBJECT:
            raise ConfigError(
                f"The portal stores only key directories and envelopes (at most {MAX_SMALL_OBJECT} bytes), "
                f"not {len(data)} bytes"
            )
        digest = self.client.put_small(data)
        return {"pointer": _hex(digest), "cid": cid_from_digest(digest)}

    def get(self, cid: str) -> bytes:
        return self.client.store.cat(normalize_cid(cid))

    # --- relaying signed consent requests --------------------------------------------------------
    def signer_of(self, request: dict[str, Any]) -> str:
        return consent.recover_signer(request)

    def submit(self, relayer: Identity, request: dict[str, Any]) -> bool:
        return consent.submit(self.client, relayer, request)


__all__ = ["Backend", "MedledgerError", "address", "MAX_SMALL_OBJECT"]
