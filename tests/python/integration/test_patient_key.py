"""Rotating the patient's encryption key (issue 12 item 6), against the real chain and IPFS node: the
old key's holder reads nothing written afterwards, the patient is never locked out, every reader
gets the new keys, and a rotation that stops halfway is finished by running it again."""

from __future__ import annotations

import io
import warnings
from dataclasses import replace

import pytest

from medledger import consent, crypto, records
from medledger.errors import KeyNotFound, KeystoreError, RejectedKeyWarning, ServiceUnavailable
from medledger.keyring import Keyring, rotate_patient_key
from medledger.keystore import Identity

from .helpers import DAY, C, P, obs_bytes
from .test_rotation_property import everything_held


def _opens(client, keys, written) -> bool:
    try:
        crypto.open_record_blob(
            io.BytesIO(client.store.cat(written.cid)), {int(written.category): dict(enumerate(keys))},
            expected_record_id=written.record_id, expected_patient=written_patient(client, written),
            category=written.category,
        )  # fmt: skip
    except KeyNotFound:
        return False
    return True


def written_patient(client, written) -> str:
    return records.find_record(client, written.record_id).patient


class Saved:
    """The patient's keystore, as far as this test is concerned: what was saved last."""

    def __init__(self, patient: Identity) -> None:
        self.identity = patient

    def __call__(self, keypair: crypto.KeyPair) -> Identity:
        self.identity = replace(self.identity, encryption=keypair)
        return self.identity


def test_the_old_keys_holder_reads_nothing_new_and_nobody_is_locked_out(client, patient, gp_writes, delegate, stranger):
    """Reproduced first: main's only tool was the bare rotatePatientKey call (new keys on chain, no
    envelope to anyone), after which the patient (and her readers) could not open what was written
    next; there was no workflow and no command."""
    consent.appoint_delegate(client, patient, delegate.address, [C.OBSERVATIONS], client.now() + 30 * DAY)
    before = records.write_record(client, gp_writes, patient.address, obs_bytes(6.1, "before"))
    thief = Identity("thief", patient.address, stranger.account, patient.encryption)  # holds a copy of the old key
    assert _opens(client, everything_held(client, thief, patient.address), before)

    saved = Saved(patient)
    done = rotate_patient_key(Keyring(client), patient, saved)
    renewed = done.identity
    assert renewed is saved.identity and renewed.encryption.public != patient.encryption.public
    assert client.contract.patient_encryption_key(patient.address) == renewed.encryption.public
    assert done.epochs == {int(c): 2 for c in C}
    assert done.readers == {
        gp_writes.address: frozenset({C.OBSERVATIONS}),
        delegate.address: frozenset({C.OBSERVATIONS}),
    }

    after = records.write_record(client, gp_writes, patient.address, obs_bytes(5.9, "after"))
    genome = records.write_record(client, renewed, patient.address, b"ACGT", category=C.GENOMICS)
    for written in (after, genome):
        assert not _opens(client, everything_held(client, thief, patient.address), written)
    for written, content in ((before, b"before"), (after, b"after"), (genome, b"ACGT")):
        assert content in records.read_record(client, renewed, written.record_id).data  # not locked out
    assert b"after" in records.read_record(client, gp_writes, after.record_id).data
    assert b"after" in records.read_record(client, delegate, after.record_id, purpose=P.FAMILY_CARE).data
    with pytest.raises(KeystoreError, match="rotate-key"):  # the old identity may not sync any more
        Keyring(client).sync(patient, patient.address)
    assert not Keyring(client).sync(renewed, patient.address).changed


def test_a_rotation_stopped_after_the_keystore_took_the_new_key_is_finished_by_running_it_again(
    client, patient, gp_writes, monkeypatch
):
    before = records.write_record(client, gp_writes, patient.address, obs_bytes(6.1, "before"))
    saved = Saved(patient)
    real = client.contract.rotate_patient_key

    def node_dies(*args, **kwargs):
        raise ServiceUnavailable("Ethereum node", "http://127.0.0.1:1", "stopped answering (test)")

    monkeypatch.setattr(client.contract, "rotate_patient_key", node_dies)
    with pytest.raises(ServiceUnavailable):
        rotate_patient_key(Keyring(client), patient, saved)
    monkeypatch.setattr(client.contract, "rotate_patient_key", real)
    halfway = saved.identity  # the keystore holds the new key; the chain does not know it yet
    assert client.contract.patient_encryption_key(patient.address) == patient.encryption.public
    with pytest.warns(RejectedKeyWarning, match="the chain recorded no key of this category and epoch"):
        assert b"before" in records.read_record(client, halfway, before.record_id).data  # still not locked out
    with pytest.raises(KeystoreError, match="stopped halfway"):
        Keyring(client).sync(halfway, patient.address)

    with warnings.catch_warnings():
        warnings.simplefilter("error", RejectedKeyWarning)  # finished with the keys of the first attempt
        done = rotate_patient_key(Keyring(client), halfway, saved)
        after = records.write_record(client, gp_writes, patient.address, obs_bytes(5.9, "after"))
        for written, content in ((before, b"before"), (after, b"after")):
            assert content in records.read_record(client, halfway, written.record_id).data
    assert done.identity == halfway and saved.identity == halfway  # finished with the key it holds
    assert client.contract.patient_encryption_key(patient.address) == halfway.encryption.public
    assert b"after" in records.read_record(client, gp_writes, after.record_id).data
