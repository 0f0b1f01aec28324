"""Lisa's story, one function per step; :data:`STEPS` is the story in order.

Each step acts through the library as one of the cast and states what must hold afterwards. A step
that needs what an earlier one made (the lab result, the batch) finds it on the :class:`Scene`.
"""

from __future__ import annotations

import io
import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from medledger import audit, codes, consent, crypto, participants, records
from medledger.chain import events as ev
from medledger.chain import utc
from medledger.client import Client
from medledger.errors import AccessDenied, KeyNotFound, RecordErased
from medledger.keyring import Keyring
from medledger.keystore import Identity

from .story import Story

C = codes.Category
P = codes.Purpose
A = codes.Access
DAY = 24 * 3600
CLINICAL = [C.ALLERGIES, C.MEDICATIONS, C.CONDITIONS, C.OBSERVATIONS]
CARDIAC_ARREST = "410429000"  # SNOMED CT

LAB_RESULT: dict[str, Any] = {
    "resourceType": "Observation",
    "id": "hba1c-1",
    "status": "final",
    "code": {"coding": [{"system": "http://loinc.org", "code": "4548-4", "display": "Hemoglobin A1c"}]},
    "subject": {"reference": "Patient/lisa"},
    "effectiveDateTime": "2026-11-20T09:30:00Z",
    "valueQuantity": {"value": 6.1, "unit": "%", "system": "http://unitsofmeasure.org", "code": "%"},
}


@dataclass
class Scene:
    """The client, the cast, and what earlier steps made."""

    story: Story
    client: Client
    cast: dict[str, Identity]
    made: dict[str, Any] = field(default_factory=dict)

    def __getattr__(self, name: str) -> Identity:
        try:
            return self.cast[name]
        except KeyError:
            raise AttributeError(name) from None


def lisa_registers(s: Scene) -> None:
    participants.register_patient(s.client, s.lisa)
    keyring = Keyring(s.client)
    s.story.expect(participants.is_patient(s.client, s.lisa.address), "Lisa is a registered patient")
    on_chain = [s.client.contract.category_key(s.lisa.address, c) for c in codes.Category]
    every = all(key.exists and not key.stale(s.client.now()) for key in on_chain)
    s.story.expect(every, f"the chain holds a current public key for each of her {len(codes.Category)} categories")
    held = keyring.secrets(s.lisa, s.lisa.address)
    s.story.expect(
        len(held) == len(codes.Category) and not keyring.rejected,
        "she holds every category secret (in a key envelope to herself), each matching its key on chain",
    )


def registrar_registers_the_others(s: Scene) -> None:
    others = ((s.gp, "CLINICIAN"), (s.study, "RESEARCHER"), (s.app, "APP"), (s.ae, "CLINICIAN"))
    consortium = s.made["consortium"] = secrets.token_bytes(32)  # the consortium's secret: never on chain
    for who, kind in others:
        credential = participants.credential_ref(consortium, f"DEMO:{who.name}")  # keyed, salted, opaque
        participants.register_participant(
            s.client, s.registrar, who.address, codes.ParticipantKind[kind], credential, who.encryption.public
        )
        s.story.say(f"{who.name:<9} {who.address}  {kind.lower()}")
    registered = all(participants.participant(s.client, who.address).registered for who, _ in others)
    s.story.expect(registered, "all four are registered participants")


def gp_gets_consent(s: Scene) -> None:
    expiry = s.client.now() + 365 * DAY
    consent.grant(s.client, s.lisa, s.gp.address, A.WRITE, CLINICAL, [P.DIRECT_CARE], expiry=expiry)
    consent.grant(s.client, s.lisa, s.gp.address, A.READ, CLINICAL, [P.DIRECT_CARE], expiry=expiry)
    permitted = consent.is_permitted(s.client, s.lisa.address, s.gp.address, A.WRITE, C.OBSERVATIONS, P.DIRECT_CARE)
    s.story.expect(permitted, "the GP may now write observations for direct care")


def gp_writes_a_lab_result(s: Scene) -> None:
    lab = s.made["lab"] = records.write_record(s.client, s.gp, s.lisa.address, json.dumps(LAB_RESULT).encode())
    s.story.say(f"record {lab.record_hex[:18]}…  cid {lab.cid}")
    s.story.expect(
        records.verify_fingerprint(s.client, lab.record_id, lab.fingerprint), "the chain confirms its fingerprint"
    )
    on_chain = s.client.contract.record(s.lisa.address, lab.record_id)
    filed = on_chain.exists and on_chain.category == C.OBSERVATIONS and on_chain.author == s.gp.address
    s.story.expect(filed, "it is filed as Lisa's observations & labs")


def wearable_batch(s: Scene) -> None:
    start = s.client.now() - DAY
    readings = [{"t": start + i * 300, "heart_rate": 60 + (i * 7) % 40} for i in range(288)]
    batch = records.anchor_batch(s.client, s.lisa, s.lisa.address, readings)
    s.story.say(f"root 0x{batch.root.hex()[:16]}…  {len(batch.reading_ids)} readings  cid {batch.cid}")
    ids, fps, proofs = batch.reading_ids, batch.fingerprints, batch.proofs
    proven = records.verify_reading_on_chain(s.client, batch.root, ids[100], fps[100], proofs[100])
    s.story.expect(proven, "reading #100 is proven to be in the anchored batch on chain")
    altered = records.verify_reading_on_chain(s.client, batch.root, ids[100], fps[101], proofs[100])
    s.story.expect(not altered, "a altered reading fails the same proof")


def study_gets_a_signed_grant(s: Scene) -> None:
    client, lab = s.client, s.made["lab"]
    signed = consent.sign_grant(
        client, s.lisa, s.study.address, A.READ, [C.OBSERVATIONS, C.DEVICE_DATA], [P.RESEARCH],
        expiry=client.now() + 180 * DAY,
    )  # fmt: skip
    balance_before = client.chain.balance(s.lisa.address)
    s.story.expect(consent.recover_signer(signed) == s.lisa.address, "the signed request is Lisa's")
    consent.submit(client, s.relayer, signed)
    s.story.expect(client.chain.balance(s.lisa.address) == balance_before, "Lisa's balance is unchanged")
    held = consent.grants_held(client, s.study.address)
    s.story.expect(
        len(held) == 1 and held[0].purposes == {P.RESEARCH}, "the study finds exactly one research grant made to it"
    )
    result = records.read_record(client, s.study, lab.record_id, purpose=P.RESEARCH)
    assert result.data is not None  # no destination file was given, so the data is returned
    read_back = json.loads(result.data)["code"]["coding"][0]["code"] == "4548-4"
    s.story.expect(read_back, "the study reads the lab result for research")
    s.story.expect_refusal(
        lambda: records.read_record(client, s.study, lab.record_id, purpose=P.COMMERCIAL),
        AccessDenied,
        "the study cannot read it for a commercial purpose",
    )


def daughter_becomes_delegate(s: Scene) -> None:
    client = s.client
    participants.register_patient(client, s.daughter)
    consent.appoint_delegate(client, s.lisa, s.daughter.address, [*CLINICAL, C.DEVICE_DATA], client.now() + 365 * DAY)
    trail = audit.accesses(client, s.lisa.address)
    for entry in trail:
        s.story.say(f"{utc(entry.time)}  {entry.actor[:10]}…  {entry.detail}")
    study_read = any(e.actor == s.study.address and e.purpose == "research" for e in trail)
    s.story.expect(study_read, "the study's read is in the trail")
    family_read = records.read_record(client, s.daughter, s.made["lab"].record_id, purpose=P.FAMILY_CARE)
    s.story.expect(family_read.data is not None, "the daughter can read the lab result for family care")


def app_is_refused(s: Scene) -> None:
    s.story.expect_refusal(
        lambda: records.read_record(s.client, s.app, s.made["lab"].record_id, purpose=P.COMMERCIAL),
        AccessDenied,
        "the commercial app is refused",
    )


def emergency_access(s: Scene) -> None:
    client, lisa = s.client, s.lisa
    reason = consent.reason_code(s.made["consortium"], CARDIAC_ARREST)  # a tag only the consortium can read
    until = consent.open_emergency(client, s.ae, lisa.address, 4 * 3600, reason)
    s.story.say(f"emergency access open until {utc(until)}")
    s.story.expect_refusal(
        lambda: records.read_record(client, s.ae, s.made["lab"].record_id, purpose=P.EMERGENCY),
        KeyNotFound,
        "A&E holds no key yet, and its failed read leaves no access in the trail",
    )
    # Lisa cannot act; her daughter (a delegate holding the keys) releases her observation keys to A&E.
    valid = consent.release_emergency_keys(client, s.daughter, s.ae.address, [C.OBSERVATIONS], patient=lisa.address)
    s.story.expect(valid == until, f"the daughter releases the observation keys; the chain limits them to {utc(valid)}")
    ae_read = records.read_record(client, s.ae, s.made["lab"].record_id, purpose=P.EMERGENCY)
    s.story.expect(ae_read.emergency and ae_read.data is not None, "A&E reads the lab result under emergency access")
    flagged = [e for e in audit.trail(client, lisa.address) if e.emergency]
    for entry in flagged:
        s.story.say(f"{utc(entry.time)}  {entry.actor[:10]}…  {entry.detail}")
    s.story.expect(
        [e.event for e in flagged] == ["EmergencyAccessOpened", "RecordAccessed"],
        "the emergency opening and the one emergency read are flagged in Lisa's audit trail",
    )
    opened = client.contract.logs(ev.EmergencyAccessOpened, patient=lisa.address)[-1]
    dictionary = ["22298006", CARDIAC_ARREST, "230690007"]
    s.story.expect(
        consent.reason_of(s.made["consortium"], opened.reason_code, dictionary) == CARDIAC_ARREST
        and consent.reason_of(secrets.token_bytes(32), opened.reason_code, dictionary) is None,
        "the reason on chain is a keyed tag: the consortium's auditors read it, a dictionary without the key does not",
    )


def lisa_revokes_the_study(s: Scene) -> None:
    client = s.client
    client.chain.rpc("evm_increaseTime", [60])
    client.chain.rpc("evm_mine", [])
    consent.submit(client, s.relayer, consent.sign_revoke(client, s.lisa, s.study.address, A.READ))
    stale = client.contract.category_key(s.lisa.address, C.OBSERVATIONS).stale(client.now())
    s.story.expect(stale, "the relayer holds no keys: the chain marks the observation keys stale at once")
    report = Keyring(client).sync(s.lisa, s.lisa.address)
    rotated = ", ".join(f"{codes.label(codes.Category(c))} (epoch {e})" for c, e in sorted(report.rotated.items()))
    s.story.expect(bool(report.rotated), f"Lisa's tools rotate them on their own: {rotated}")
    s.story.expect(
        {s.gp.address, s.daughter.address, s.ae.address} <= set(report.delivered),
        "and send the new keys to everyone who still may read: the GP, the daughter, A&E (its window is open)",
    )
    newer = {**LAB_RESULT, "id": "hba1c-2", "valueQuantity": {**LAB_RESULT["valueQuantity"], "value": 5.9}}
    later = s.made["later"] = records.write_record(client, s.gp, s.lisa.address, json.dumps(newer).encode())
    s.story.say(f"the GP writes a new lab result {later.record_hex[:18]}…")
    s.story.expect_refusal(
        lambda: records.read_record(client, s.study, later.record_id, purpose=P.RESEARCH),
        AccessDenied,
        "the chain refuses the study the record written after the revocation",
    )
    s.story.expect_refusal(
        lambda: _decrypt_bypassing_chain(client, s.study, later),
        KeyNotFound,
        "and even with the ciphertext in hand, the study holds no key that opens it",
    )
    s.story.expect(
        records.read_record(client, s.gp, later.record_id, purpose=P.DIRECT_CARE).data is not None,
        "the GP (who remains a reader) still reads it",
    )


def the_window_ends(s: Scene) -> None:
    client = s.client
    client.chain.rpc("evm_increaseTime", [4 * 3600])
    client.chain.rpc("evm_mine", [])
    report = Keyring(client).sync(s.lisa, s.lisa.address)
    s.story.expect(
        set(report.rotated) == {C.OBSERVATIONS} and s.ae.address not in report.delivered,
        "the keys released to A&E went stale when its window ended; Lisa's tools rotate them, A&E gets none",
    )
    newest = records.write_record(client, s.gp, s.lisa.address, json.dumps({**LAB_RESULT, "id": "hba1c-3"}).encode())
    s.story.expect_refusal(
        lambda: _decrypt_bypassing_chain(client, s.ae, newest),
        KeyNotFound,
        "a record written afterwards is closed to A&E, even with every key it was ever sent",
    )


def lisa_erases_a_record(s: Scene) -> None:
    lab = s.made["lab"]
    records.erase_record(s.client, s.lisa, lab.record_id)
    gone = not records.verify_fingerprint(s.client, lab.record_id, lab.fingerprint)
    s.story.expect(gone, "its fingerprint is gone from chain")
    s.story.expect_refusal(
        lambda: records.read_record(s.client, s.gp, lab.record_id, purpose=P.DIRECT_CARE),
        RecordErased,
        "a later read fails: the record was erased",
    )


def the_whole_history(s: Scene) -> None:
    history = audit.trail(s.client, s.lisa.address)
    names = {who.address: who.name for who in s.cast.values()}
    for entry in history:
        flag = "EMERGENCY " if entry.emergency else ""
        detail = entry.detail
        for address, name in names.items():
            detail = detail.replace(address, name)
        s.story.say(f"{utc(entry.time)}  {names.get(entry.actor, '-'):<9} {flag}{detail[:100]}")
    kinds = {e.event for e in history}
    wanted = {
        "ConsentGranted", "ConsentRevoked", "RecordRegistered", "BatchAnchored", "RecordAccessed",
        "DelegateAppointed", "EmergencyAccessOpened", "RecordErased",
    }  # fmt: skip
    s.story.expect(wanted <= kinds, f"the trail holds every kind of change ({len(history)} events)")


def _decrypt_bypassing_chain(client: Client, reader: Identity, written: records.WriteResult) -> None:
    """What a revoked grantee could do with the ciphertext alone: try every key it still holds."""
    patient = records.find_record(client, written.record_id).patient
    keys = Keyring(client).secrets(reader, patient, [written.category])
    crypto.open_record_blob(
        io.BytesIO(client.store.cat(written.cid)), keys,
        expected_record_id=written.record_id, expected_patient=patient, category=written.category,
    )  # fmt: skip


STEPS: list[tuple[str, Callable[[Scene], None]]] = [
    ("Lisa registers as a patient: 13 category public keys on chain, their secrets in an envelope to herself",
     lisa_registers),
    ("The registrar registers her GP, a research study, a commercial app and an A&E clinician",
     registrar_registers_the_others),
    ("Lisa lets her GP write and read her clinical data for direct care", gp_gets_consent),
    ("The GP writes a lab result (a FHIR R4 Observation), encrypted to IPFS, fingerprinted on chain",
     gp_writes_a_lab_result),
    ("Lisa's wearable readings are batch-anchored: one Merkle root for 288 readings", wearable_batch),
    ("Lisa signs a research-only grant off-chain; the study's relayer submits it (Lisa pays no gas)",
     study_gets_a_signed_grant),
    ("Lisa's daughter becomes her delegate (clinical data, one year) and reads the audit trail",
     daughter_becomes_delegate),
    ("The commercial app asks for Lisa's lab result", app_is_refused),
    ("Lisa collapses: the A&E clinician opens emergency access (4 hours); her daughter releases keys to it",
     emergency_access),
    ("Lisa revokes the study by a signed request a relayer submits; her tools rotate the keys on their own",
     lisa_revokes_the_study),
    ("Four hours later A&E's window has ended: the keys it held are rotated away from it", the_window_ends),
    ("Lisa erases her first lab result (GDPR)", lisa_erases_a_record),
    ("Lisa's complete history, rebuilt from events alone", the_whole_history),
]  # fmt: skip
