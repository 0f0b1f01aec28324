"""Crashes between the IPFS write and the chain write, a register transaction that fails, altered
ciphertext, wrong fingerprints and wrong keys: clear errors, nothing half-written, no plaintext left."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import threading

import pytest

from medledger import consent, crypto, records
from medledger.chain import MedledgerContract
from medledger.chain.outbox import JournalEntry
from medledger.client import Client
from medledger.errors import AccessDenied, DecryptionError, KeyNotFound, TamperingDetected
from medledger.keyring import Keyring
from medledger.keystore import Identity
from medledger.records import payload
from medledger.records import write as records_write
from medledger.records.journal import journal_dir, process_started
from medledger.storage import cid_to_bytes

from .child import child_args, run_child
from .helpers import A, C, P, journal_entries, leftovers, obs_bytes, observation, on_chain, registered_ids


# --- crash between IPFS and chain ----------------------------------------------------------------
def run_crashing_writer(settings, author, patient, record_id: bytes, when: str) -> str:
    """Run crash_writer.py for one record; return the CID it added before dying."""
    [cid] = crash_writer(settings, author, patient, when, record_id=record_id.hex())
    return cid


def crash_writer(settings, author, patient, when: str, **write: object) -> list[str]:
    """Run crash_writer.py (``write``: ``record_id`` for one record, or ``count`` for an ingest);
    return the CIDs it added before dying."""
    args = child_args(settings, author, patient=patient.address, data=obs_bytes().decode(), when=when, **write)
    proc = run_child("crash_writer.py", args)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    cids = [line.split()[1] for line in proc.stdout.splitlines() if line.startswith("CID ")]
    if "op" not in write:  # (a plain write adds only its key envelopes)
        assert len(cids) == int(str(write.get("count", 1))), proc.stdout + proc.stderr
    return cids


def test_crash_before_the_chain_write_is_rolled_back(client, settings, patient):
    record_id = os.urandom(32)
    before = registered_ids(client)
    cid = run_crashing_writer(settings, patient, patient, record_id, "before-chain")

    assert registered_ids(client) == before
    assert not on_chain(client, patient.address, record_id)
    [entry] = journal_entries(client)
    pending = JournalEntry.load(entry).fields  # type: ignore[union-attr]
    assert pending["record_id"] == "0x" + record_id.hex() and pending["cid"] == cid
    assert client.store.is_pinned(cid)

    assert records.recover_pending(client) == [("0x" + record_id.hex(), "rolled back")]
    assert not client.store.is_pinned(cid)
    assert journal_entries(client) == []
    assert records.recover_pending(client) == []

    retried = records.write_record(client, patient, patient.address, obs_bytes(), record_id=record_id)
    assert on_chain(client, patient.address, record_id)
    assert json.loads(records.read_record(client, patient, retried.record_id).data) == observation()
    assert journal_entries(client) == []


def test_crash_after_the_chain_write_keeps_the_record(client, settings, patient):
    record_id = os.urandom(32)
    cid = run_crashing_writer(settings, patient, patient, record_id, "after-chain")
    assert on_chain(client, patient.address, record_id)
    assert len(journal_entries(client)) == 1
    assert records.recover_pending(client) == [("0x" + record_id.hex(), "registered")]
    assert client.store.is_pinned(cid)
    assert journal_entries(client) == []
    assert json.loads(records.read_record(client, patient, record_id).data) == observation()


@pytest.mark.parametrize("squatter", ["another patient", "another author"])
def test_recovery_does_not_take_someone_elses_record_of_the_same_id(
    client, settings, patient, delegate, clinician, squatter
):
    """Ids are per patient, and a record is the journaled write's only if the patient's record of that
    id has the author and fingerprint it wrote: a copy of the id (a stranger's namespace, or another
    writer under the same patient) does not keep the crashed write's ciphertext pinned."""
    record_id = os.urandom(32)
    cid = run_crashing_writer(settings, patient, patient, record_id, "before-chain")
    fake_cid = cid_to_bytes(cid)  # any well-formed CID: the squatter never needs the ciphertext
    if squatter == "another patient":
        epoch = client.contract.category_key(delegate.address, C.OBSERVATIONS).epoch
        args = (delegate.address, record_id, C.OBSERVATIONS, P.DIRECT_CARE, epoch, b"\x05" * 32, fake_cid)
        client.contract.register_record(*args, sender=delegate)
    else:
        consent.grant(client, patient, clinician.address, A.WRITE, [C.OBSERVATIONS], [P.DIRECT_CARE])
        epoch = client.contract.category_key(patient.address, C.OBSERVATIONS).epoch
        args = (patient.address, record_id, C.OBSERVATIONS, P.DIRECT_CARE, epoch, b"\x05" * 32, fake_cid)
        client.contract.register_record(*args, sender=clinician)
    assert client.store.is_pinned(cid)
    assert records.recover_pending(client) == [("0x" + record_id.hex(), "rolled back")]
    assert not client.store.is_pinned(cid)
    assert journal_entries(client) == []


def test_next_write_settles_an_interrupted_one(client, settings, patient):
    record_id = os.urandom(32)
    cid = run_crashing_writer(settings, patient, patient, record_id, "before-chain")
    records.write_record(client, patient, patient.address, obs_bytes(7.1))  # runs recover_pending first
    assert not client.store.is_pinned(cid)
    assert journal_entries(client) == []


def test_recovery_leaves_a_write_in_flight_alone(client, patient, monkeypatch):
    """recover_pending (run by every write) while another thread's write waits for its
    transaction must not unpin that write's ciphertext."""
    entered, release = threading.Event(), threading.Event()
    real_send = MedledgerContract.send

    def slow_send(self, tx, sender):
        entered.set()
        release.wait(30)
        return real_send(self, tx, sender)

    monkeypatch.setattr(MedledgerContract, "send", slow_send)
    result: dict = {}
    writer = threading.Thread(
        target=lambda: result.setdefault("w", records.write_record(client, patient, patient.address, obs_bytes()))
    )
    writer.start()
    try:
        assert entered.wait(30)
        assert len(journal_entries(client)) == 1
        assert records.recover_pending(client) == []
    finally:
        release.set()
        writer.join(60)
    written = result["w"]
    assert client.store.is_pinned(written.cid)
    assert journal_entries(client) == []
    assert json.loads(records.read_record(client, patient, written.record_id).data) == observation()


def test_journal_entry_of_a_live_process_is_settled_only_once_it_is_gone(client):
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        cid = client.store.add_bytes(os.urandom(64))
        record_id = os.urandom(32)
        path = journal_dir(client) / f"{record_id.hex()}.json"
        path.write_text(
            json.dumps(
                {
                    "record_id": "0x" + record_id.hex(),
                    "cid": cid,
                    "patient": "0x" + "00" * 20,
                    "pid": sleeper.pid,
                    "started": process_started(sleeper.pid),
                }
            )
        )
        assert records.recover_pending(client) == []
        assert path.exists() and client.store.is_pinned(cid)
    finally:
        sleeper.kill()
        sleeper.wait(30)
    assert records.recover_pending(client) == [("0x" + record_id.hex(), "rolled back")]
    assert not path.exists() and not client.store.is_pinned(cid)


def test_register_transaction_failing_unpins_and_clears_the_journal(client, patient, clinician, monkeypatch):
    consent.grant(client, patient, clinician.address, A.WRITE, [C.OBSERVATIONS], [P.DIRECT_CARE])
    real_check = records_write.check_access

    def check_then_revoke(*args, **kwargs):
        result = real_check(*args, **kwargs)  # passes: the consent holds now...
        consent.revoke(client, patient, clinician.address, A.WRITE)  # ...and is revoked before the tx
        return result

    monkeypatch.setattr(records_write, "check_access", check_then_revoke)
    added: list[str] = []
    real_add = client.store.add_stream

    def add_and_remember(source, **kwargs):
        added.append(real_add(source, **kwargs))
        return added[-1]

    monkeypatch.setattr(client.store, "add_stream", add_and_remember)
    before = registered_ids(client)
    with pytest.raises(AccessDenied) as err:
        records.write_record(client, clinician, patient.address, obs_bytes())
    assert "holds no write consent" in str(err.value)
    assert err.value.error_name == "ConsentNotFound"
    assert len(added) == 1 and not client.store.is_pinned(added[0])
    assert journal_entries(client) == []
    assert registered_ids(client) == before


# --- tampering -----------------------------------------------------------------------------------
class AlteringStore:
    """A real IPFS store, except that the content of one CID comes back altered."""

    def __init__(self, inner, target: str, alter) -> None:
        self._inner = inner
        self._target = target
        self._alter = alter

    def __getattr__(self, name):
        return getattr(self._inner, name)

    def cat_stream(self, cid, **kwargs):
        if cid != self._target:
            return self._inner.cat_stream(cid, **kwargs)
        return iter([self._alter(self._inner.cat(cid))])

    def cat(self, cid, **kwargs):
        return b"".join(self.cat_stream(cid, **kwargs))


def flip_last_byte(blob: bytes) -> bytes:
    return blob[:-1] + bytes([blob[-1] ^ 0x01])


@pytest.mark.parametrize(
    "alter",
    [flip_last_byte, lambda b: b[: len(b) // 2], lambda b: b + b"\0"],
    ids=["flipped-bit", "truncated", "extended"],
)
def test_altered_ciphertext_from_ipfs_is_detected(client, settings, patient, lab, tmp_path, alter):
    liar = Client.connect(settings, store=AlteringStore(client.store, lab.cid, alter))
    out = tmp_path / "lab.json"
    with pytest.raises(TamperingDetected, match="CID") as err:
        records.read_record(liar, patient, lab.record_id, out=out)
    assert lab.cid in str(err.value)
    assert not out.exists()
    assert leftovers(tmp_path) == []
    with pytest.raises(TamperingDetected):
        records.read_record(liar, patient, lab.record_id)


def test_altered_ciphertext_is_also_caught_by_the_decryption(client, patient, lab):
    """Even with the CID check out of the way, the authenticated encryption refuses altered bytes."""
    keys = Keyring(client).secrets(patient, patient.address, [C.OBSERVATIONS])
    blob = flip_last_byte(client.store.cat(lab.cid))
    with pytest.raises(TamperingDetected, match="authentication failed"):
        b"".join(
            crypto.open_record_blob(
                io.BytesIO(blob),
                keys,
                expected_record_id=lab.record_id,
                expected_patient=patient.address,
                category=C.OBSERVATIONS,
            )
        )


def _register_real_blob(client, author, patient, data: bytes, category, fingerprint_of_record=None):
    """Encrypt ``data`` as write_record would, add it to IPFS, and register it on chain with the
    fingerprint ``fingerprint_of_record(real)`` instead of the real one."""
    record_id = os.urandom(32)
    key = Keyring(client).current_key(patient.address, category)
    plaintext = payload.Concat(payload.payload_header("application/octet-stream", None), io.BytesIO(data))
    writer = crypto.write_record_blob(plaintext, record_id, patient.address, category, key.epoch, key.public_key)
    cid = client.store.add_stream(iter(writer))
    fingerprint = fingerprint_of_record(writer.fingerprint)
    client.contract.register_record(
        patient.address, record_id, category, P.DIRECT_CARE, key.epoch, fingerprint, cid_to_bytes(cid), sender=author
    )
    return record_id, writer.fingerprint


@pytest.mark.parametrize("size", [300, 400_000], ids=["one-chunk", "many-chunks"])
def test_wrong_fingerprint_on_chain_is_detected_and_no_plaintext_is_left(client, patient, tmp_path, size):
    data = os.urandom(size)
    record_id, real = _register_real_blob(
        client, patient, patient, data, C.IMAGING, lambda fp: bytes([fp[0] ^ 0xFF]) + fp[1:]
    )
    assert not records.verify_fingerprint(client, record_id, real)
    out = tmp_path / "scan.bin"
    with pytest.raises(TamperingDetected, match="fingerprint mismatch"):
        records.read_record(client, patient, record_id, out=out)
    assert not out.exists()
    assert leftovers(tmp_path) == []
    with pytest.raises(TamperingDetected, match="fingerprint mismatch"):
        records.read_record(client, patient, record_id)


def test_blob_registered_with_its_real_fingerprint_reads_fine(client, patient):
    """The control for the test above: the hand-built blob itself is sound."""
    data = os.urandom(1000)
    record_id, real = _register_real_blob(client, patient, patient, data, C.IMAGING, lambda fp: fp)
    assert records.verify_fingerprint(client, record_id, real)
    assert records.read_record(client, patient, record_id).data == data


def test_ciphertext_of_another_record_is_refused(client, patient, lab):
    """A node returning a real ciphertext, but another record's, fails the record binding."""
    other = records.write_record(client, patient, patient.address, obs_bytes(9.9, "other"))
    keys = Keyring(client).secrets(patient, patient.address, [C.OBSERVATIONS])
    blob = client.store.cat(other.cid)
    with pytest.raises(TamperingDetected):
        b"".join(
            crypto.open_record_blob(
                io.BytesIO(blob),
                keys,
                expected_record_id=lab.record_id,
                expected_patient=patient.address,
                category=C.OBSERVATIONS,
            )
        )


# --- wrong keys ----------------------------------------------------------------------------------
def test_grantee_with_another_local_key_gets_a_key_error_not_garbage(client, patient, researcher, lab, tmp_path):
    consent.grant(client, patient, researcher.address, A.READ, [C.OBSERVATIONS], [P.RESEARCH])
    impostor = Identity(researcher.name, researcher.address, researcher.account, crypto.generate_keypair())
    assert impostor.encryption.public != client.contract.participant(researcher.address).encryption_key
    out = tmp_path / "lab.json"
    with pytest.raises((KeyNotFound, DecryptionError)) as err:
        records.read_record(client, impostor, lab.record_id, purpose=P.RESEARCH, out=out)
    assert "key" in str(err.value)
    assert not out.exists() and leftovers(tmp_path) == []
    # the real key pair still reads it
    assert json.loads(records.read_record(client, researcher, lab.record_id, purpose=P.RESEARCH).data) == observation()


def test_grantee_whose_key_on_chain_changed(client, patient, researcher, lab):
    new_pair = crypto.generate_keypair()
    client.contract.rotate_participant_key(new_pair.public, sender=researcher)
    consent.grant(client, patient, researcher.address, A.READ, [C.OBSERVATIONS], [P.RESEARCH])
    with pytest.raises(KeyNotFound):
        records.read_record(client, researcher, lab.record_id, purpose=P.RESEARCH)
    rotated = Identity(researcher.name, researcher.address, researcher.account, new_pair)
    assert json.loads(records.read_record(client, rotated, lab.record_id, purpose=P.RESEARCH).data) == observation()


def test_category_key_of_another_category_cannot_open_a_record(client, patient, lab):
    keys = Keyring(client).secrets(patient, patient.address, [C.GENOMICS, C.OBSERVATIONS])
    wrong = {int(C.OBSERVATIONS): keys[int(C.GENOMICS)]}  # right category number, wrong secret
    blob = client.store.cat(lab.cid)
    with pytest.raises(DecryptionError, match="cannot open the record key"):
        b"".join(
            crypto.open_record_blob(
                io.BytesIO(blob),
                wrong,
                expected_record_id=lab.record_id,
                expected_patient=patient.address,
                category=C.OBSERVATIONS,
            )
        )
