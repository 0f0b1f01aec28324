"""``medledger demo``: Lisa's story (from the first seed essay) end to end on a local anvil chain and
IPFS node that it starts itself. Every step prints what happened; the demo exits 0 only if every
expectation held."""

from __future__ import annotations

import io
import json
import secrets
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TextIO

from eth_account import Account
from eth_utils import to_checksum_address

from . import audit, codes, consent, crypto, participants, records
from . import node as services
from .chain import Chain, deploy_medledger, utc
from .client import Client
from .config import Settings
from .errors import AccessDenied, KeyNotFound, MedledgerError, RecordErased
from .keyring import Keyring
from .keystore import Identity

C = codes.Category
P = codes.Purpose
A = codes.Access
DAY = 24 * 3600

LAB_RESULT: dict[str, Any] = {
    "resourceType": "Observation",
    "id": "hba1c-1",
    "status": "final",
    "code": {"coding": [{"system": "http://loinc.org", "code": "4548-4", "display": "Hemoglobin A1c"}]},
    "subject": {"reference": "Patient/lisa"},
    "effectiveDateTime": "2026-11-20T09:30:00Z",
    "valueQuantity": {"value": 6.1, "unit": "%", "system": "http://unitsofmeasure.org", "code": "%"},
}


def identities(mnemonic: str, names: list[str]) -> dict[str, Identity]:
    """Demo actors: anvil's funded accounts, each with a fresh X25519 key pair."""
    Account.enable_unaudited_hdwallet_features()
    out = {}
    for index, name in enumerate(names):
        account = Account.from_mnemonic(mnemonic, account_path=f"m/44'/60'/0'/0/{index}")
        out[name] = Identity(name, account.address, account, crypto.generate_keypair())
    return out


class Story:
    """Prints steps and checks expectations."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.failures: list[str] = []
        self.step_no = 0
        self.started = time.monotonic()

    def step(self, title: str) -> None:
        self.step_no += 1
        self.out.write(f"\n[{self.step_no:2d}] {title}\n")
        self.out.flush()

    def say(self, text: str) -> None:
        self.out.write(f"     {text}\n")
        self.out.flush()

    def expect(self, condition: bool, what: str) -> None:
        mark = "ok " if condition else "FAILED"
        self.out.write(f"     [{mark}] {what}\n")
        if not condition:
            self.failures.append(what)

    def expect_refusal(self, action: Callable[[], Any], error: type[Exception], what: str) -> Exception | None:
        try:
            action()
        except error as exc:
            self.expect(True, what)
            self.say(f"       refused: {exc}")
            return exc
        except MedledgerError as exc:
            self.expect(False, f"{what} (refused, but with {type(exc).__name__}: {exc})")
            return exc
        self.expect(False, f"{what} (it was allowed)")
        return None


@contextmanager
def _services(data_dir: Path | None) -> Iterator[services.NodeConfig]:
    with tempfile.TemporaryDirectory(prefix="medledger-demo-") as tmp:
        config = services.NodeConfig.ephemeral(Path(data_dir or tmp) / "node")
        with services.running_services(config):
            yield config


def run(out: TextIO = sys.stdout, data_dir: Path | None = None) -> int:
    story = Story(out)
    out.write("medledger demo: Lisa takes charge of her medical record\n")
    story.step("Starting a local anvil chain and IPFS node (127.0.0.1 only, offline)")
    with _services(data_dir) as node:
        story.say(f"chain {node.rpc_url}  ipfs {node.ipfs_api}")
        home = Path(node.data_dir).parent
        settings = Settings(home=home, rpc_url=node.rpc_url, ipfs_api=node.ipfs_api, chain_id=node.chain_id)
        cast = identities(
            node.mnemonic, ["registrar", "lisa", "gp", "study", "app", "ae", "daughter", "relayer"]
        )
        try:
            _story(story, settings, cast)
        except MedledgerError as exc:
            story.expect(False, f"unexpected error: {type(exc).__name__}: {exc}")
    took = time.monotonic() - story.started
    if story.failures:
        out.write(f"\nDemo FAILED after {took:.1f} s: {len(story.failures)} expectation(s) did not hold:\n")
        for failure in story.failures:
            out.write(f"  - {failure}\n")
        return 1
    out.write(f"\nDemo complete in {took:.1f} s: every expectation held.\n")
    return 0


def _story(story: Story, settings: Settings, cast: dict[str, Identity]) -> None:
    lisa, gp, study, app, ae, daughter, relayer = (
        cast[n] for n in ("lisa", "gp", "study", "app", "ae", "daughter", "relayer")
    )
    registrar = cast["registrar"]
    chain = Chain(settings.rpc_url, settings.chain_id)
    deployment, _ = deploy_medledger(chain, registrar.account, settings.deployments)
    story.say(f"medledger deployed at {deployment.address} (chain {deployment.chain_id})")
    client = Client.connect(settings)

    story.step("Lisa registers as a patient; her 13 category key pairs are published")
    participants.register_patient(client, lisa)
    directory = Keyring(client).directory(lisa.address)
    story.expect(participants.is_patient(client, lisa.address), "Lisa is a registered patient")
    story.expect(len(directory.categories) == 13, "her key directory lists a public key for each of 13 categories")

    story.step("The registrar registers her GP, a research study, a commercial app and an A&E clinician")
    for who, kind in ((gp, "CLINICIAN"), (study, "RESEARCHER"), (app, "APP"), (ae, "CLINICIAN")):
        credential = crypto.fingerprint_of(secrets.token_bytes(32), who.name.encode())  # keyed, opaque
        participants.register_participant(
            client, registrar, who.address, codes.ParticipantKind[kind], credential, who.encryption.public
        )
        story.say(f"{who.name:<9} {who.address}  {kind.lower()}")
    story.expect(
        all(participants.participant(client, w.address).kind != codes.ParticipantKind.NONE for w in (gp, study, app, ae)),
        "all four are registered participants",
    )

    story.step("Lisa lets her GP write and read her clinical data for direct care")
    clinical = [C.ALLERGIES, C.MEDICATIONS, C.CONDITIONS, C.OBSERVATIONS]
    consent.grant(client, lisa, gp.address, A.WRITE, clinical, [P.DIRECT_CARE], expiry=client.now() + 365 * DAY)
    consent.grant(client, lisa, gp.address, A.READ, clinical, [P.DIRECT_CARE], expiry=client.now() + 365 * DAY)
    story.expect(
        client.call(client.contract.functions.isPermitted(lisa.address, gp.address, 1, C.OBSERVATIONS, P.DIRECT_CARE)),
        "the GP may now write observations for direct care",
    )

    story.step("The GP writes a lab result (a FHIR R4 Observation), encrypted to IPFS, fingerprinted on chain")
    lab = records.write_record(client, gp, lisa.address, json.dumps(LAB_RESULT).encode())
    story.say(f"record {lab.record_hex[:18]}…  cid {lab.cid}")
    story.expect(records.verify_fingerprint(client, lab.record_id, lab.fingerprint), "the chain confirms its fingerprint")
    on_chain = client.contract.functions.record(lab.record_id).call()
    story.expect(on_chain[1] == C.OBSERVATIONS and on_chain[0] == lisa.address, "it is filed as Lisa's observations & labs")

    story.step("Lisa's wearable readings are batch-anchored: one Merkle root for 288 readings")
    start = client.now() - DAY
    readings = [{"t": start + i * 300, "heart_rate": 60 + (i * 7) % 40} for i in range(288)]
    batch = records.anchor_batch(client, lisa, lisa.address, readings)
    story.say(f"root 0x{batch.root.hex()[:16]}…  {len(batch.reading_ids)} readings  cid {batch.cid}")
    story.expect(
        records.verify_reading_on_chain(client, batch.root, batch.reading_ids[100], batch.fingerprints[100], batch.proofs[100]),
        "reading #100 is proven to be in the anchored batch on chain",
    )
    story.expect(
        not records.verify_reading_on_chain(client, batch.root, batch.reading_ids[100], batch.fingerprints[101], batch.proofs[100]),
        "a altered reading fails the same proof",
    )

    story.step("Lisa signs a research-only grant off-chain; the study's relayer submits it (Lisa pays no gas)")
    signed = consent.sign_grant(
        client, lisa, study.address, A.READ, [C.OBSERVATIONS, C.DEVICE_DATA], [P.RESEARCH],
        expiry=client.now() + 180 * DAY,
    )
    balance_before = client.chain.w3.eth.get_balance(to_checksum_address(lisa.address))
    story.expect(consent.recover_signer(signed) == lisa.address, "the signed request is Lisa's")
    consent.submit(client, relayer, signed)
    story.expect(client.chain.w3.eth.get_balance(to_checksum_address(lisa.address)) == balance_before, "Lisa's balance is unchanged")
    held = consent.grants_held(client, study.address)
    story.expect(
        len(held) == 1 and held[0].purposes == {P.RESEARCH}, "the study finds exactly one research grant made to it"
    )
    result = records.read_record(client, study, lab.record_id, purpose=P.RESEARCH)
    assert result.data is not None  # no destination file was given, so the data is returned
    story.expect(json.loads(result.data)["code"]["coding"][0]["code"] == "4548-4", "the study reads the lab result for research")
    story.expect_refusal(
        lambda: records.read_record(client, study, lab.record_id, purpose=P.COMMERCIAL),
        AccessDenied,
        "the study cannot read it for a commercial purpose",
    )

    story.step("Lisa's daughter becomes her delegate (clinical data, one year) and reads the audit trail")
    participants.register_patient(client, daughter)
    consent.appoint_delegate(client, lisa, daughter.address, clinical + [C.DEVICE_DATA], client.now() + 365 * DAY)
    trail = audit.accesses(client, lisa.address)
    for entry in trail:
        story.say(f"{utc(entry.time)}  {entry.actor[:10]}…  {entry.detail}")
    story.expect(any(e.actor == study.address and e.purpose == "research" for e in trail), "the study's read is in the trail")
    family_read = records.read_record(client, daughter, lab.record_id, purpose=P.FAMILY_CARE)
    story.expect(family_read.data is not None, "the daughter can read the lab result for family care")

    story.step("The commercial app asks for Lisa's lab result")
    story.expect_refusal(
        lambda: records.read_record(client, app, lab.record_id, purpose=P.COMMERCIAL),
        AccessDenied,
        "the commercial app is refused",
    )

    story.step("Lisa collapses: the A&E clinician opens emergency access (4 hours)")
    until = consent.open_emergency(client, ae, lisa.address, 4 * 3600, crypto.fingerprint_of(b"\1" * 32, b"410429000"))
    story.say(f"emergency access open until {utc(until)}")
    # Lisa cannot act; her daughter (a delegate holding the keys) releases them to A&E.
    keyring = Keyring(client)
    pointer = keyring.envelope_for(daughter, lisa.address, keyring.recipient_key(ae.address), [C.OBSERVATIONS])
    client.transact(client.contract.functions.publishKeyEnvelope(lisa.address, ae.address, pointer), daughter)
    ae_read = records.read_record(client, ae, lab.record_id, purpose=P.EMERGENCY)
    story.expect(ae_read.emergency and ae_read.data is not None, "A&E reads the lab result under emergency access")
    flagged = [e for e in audit.trail(client, lisa.address) if e.emergency]
    for entry in flagged:
        story.say(f"{utc(entry.time)}  {entry.actor[:10]}…  {entry.detail}")
    story.expect(
        any(e.event == "EmergencyAccessOpened" for e in flagged) and any(e.event == "RecordAccessed" for e in flagged),
        "the emergency opening and the emergency read are flagged in Lisa's audit trail",
    )

    story.step("Lisa revokes the study; her observation keys are rotated")
    consent.revoke(client, lisa, study.address, A.READ)
    later = records.write_record(
        client, gp, lisa.address, json.dumps({**LAB_RESULT, "id": "hba1c-2", "valueQuantity": {**LAB_RESULT["valueQuantity"], "value": 5.9}}).encode()
    )
    story.say(f"the GP writes a new lab result {later.record_hex[:18]}…")
    story.expect_refusal(
        lambda: records.read_record(client, study, later.record_id, purpose=P.RESEARCH),
        AccessDenied,
        "the chain refuses the study the record written after the revocation",
    )
    story.expect_refusal(
        lambda: _decrypt_bypassing_chain(client, study, later),
        KeyNotFound,
        "and even with the ciphertext in hand, the study holds no key that opens it",
    )
    story.expect(
        records.read_record(client, gp, later.record_id, purpose=P.DIRECT_CARE).data is not None,
        "the GP (who remains a reader) still reads it",
    )

    story.step("Lisa erases her first lab result (GDPR)")
    records.erase_record(client, lisa, lab.record_id)
    story.expect(not records.verify_fingerprint(client, lab.record_id, lab.fingerprint), "its fingerprint is gone from chain")
    story.expect_refusal(
        lambda: records.read_record(client, gp, lab.record_id, purpose=P.DIRECT_CARE),
        RecordErased,
        "a later read fails: the record was erased",
    )

    story.step("Lisa's complete history, rebuilt from events alone")
    history = audit.trail(client, lisa.address)
    names = {who.address: who.name for who in cast.values()}
    for entry in history:
        flag = "EMERGENCY " if entry.emergency else ""
        detail = entry.detail
        for address, name in names.items():
            detail = detail.replace(address, name)
        story.say(f"{utc(entry.time)}  {names.get(entry.actor, '-'):<9} {flag}{detail[:100]}")
    kinds = {e.event for e in history}
    wanted = {
        "ConsentGranted", "ConsentRevoked", "RecordRegistered", "BatchAnchored", "RecordAccessed",
        "DelegateAppointed", "EmergencyAccessOpened", "RecordErased",
    }
    story.expect(wanted <= kinds, f"the trail holds every kind of change ({len(history)} events)")


def _decrypt_bypassing_chain(client: Client, reader: Identity, written: records.WriteResult) -> None:
    """What a revoked grantee could do with the ciphertext alone: try every key it still holds."""
    patient = client.contract.functions.record(written.record_id).call()[0]
    keys = Keyring(client).secrets(reader, patient, [written.category])
    crypto.open_record_blob(
        io.BytesIO(client.store.cat(written.cid)), keys,
        expected_record_id=written.record_id, expected_patient=patient, category=written.category,
    )
