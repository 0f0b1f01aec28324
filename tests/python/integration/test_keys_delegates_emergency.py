"""Key rotation on revoke, delegates and emergency access, against the real chain and IPFS node."""

from __future__ import annotations

import io
import json

import pytest

from medledger import audit, consent, crypto, participants, records, workflows
from medledger.chain import FOREVER
from medledger.chain import events as ev
from medledger.client import Client
from medledger.errors import AccessDenied, KeyNotFound, RejectedKeyWarning, ServiceUnavailable, StaleCategoryKey
from medledger.ingest import Ingestor
from medledger.keyring import Keyring
from medledger.node import free_port
from medledger.storage import IpfsStore

from .helpers import DAY, A, C, P, advance_time, journal_entries, obs_bytes, observation, registered_ids

REASON = crypto.fingerprint_of(b"\1" * 32, b"410429000")


def open_bypassing_chain(client, reader, written) -> bytes:
    """What a reader can do with the ciphertext alone: try every key it holds, no chain check."""
    patient = records.find_record(client, written.record_id).patient
    keys = Keyring(client).secrets(reader, patient, [written.category])
    blob = client.store.cat(written.cid)
    return b"".join(
        crypto.open_record_blob(
            io.BytesIO(blob),
            keys,
            expected_record_id=written.record_id,
            expected_patient=patient,
            category=written.category,
        )
    )


# --- key rotation --------------------------------------------------------------------------------
def test_revoked_grantee_cannot_open_later_records_while_others_still_can(
    client, patient, gp_writes, researcher, delegate
):
    consent.grant(client, patient, researcher.address, A.READ, [C.OBSERVATIONS], [P.RESEARCH])
    consent.appoint_delegate(client, patient, delegate.address, [C.OBSERVATIONS], client.now() + 365 * DAY)
    before = records.write_record(client, gp_writes, patient.address, obs_bytes(6.1, "before"))
    epoch_before = client.contract.category_key(patient.address, C.OBSERVATIONS).epoch
    assert b"before" in open_bypassing_chain(client, researcher, before)

    consent.revoke(client, patient, researcher.address, A.READ)
    epoch_after = client.contract.category_key(patient.address, C.OBSERVATIONS).epoch
    assert epoch_after == epoch_before + 1
    after = records.write_record(client, gp_writes, patient.address, obs_bytes(5.9, "after"))

    with pytest.raises(AccessDenied):
        records.read_record(client, researcher, after.record_id, purpose=P.RESEARCH)
    # the blob does not say its epoch; the researcher's keys (only the old epoch) do not open it
    with pytest.raises(KeyNotFound, match=rf"epoch {epoch_before}\)"):
        open_bypassing_chain(client, researcher, after)

    for reader, purpose in ((gp_writes, P.DIRECT_CARE), (delegate, P.FAMILY_CARE)):
        for written, value in ((before, 6.1), (after, 5.9)):
            data = records.read_record(client, reader, written.record_id, purpose=purpose).data
            assert json.loads(data)["valueQuantity"]["value"] == value
    assert json.loads(records.read_record(client, patient, after.record_id).data)["id"] == "after"


def _keys(client, patient) -> dict:
    return {c: client.contract.category_key(patient.address, c) for c in C}


def test_rotation_touches_only_the_revoked_categories(client, patient, researcher):
    consent.grant(client, patient, researcher.address, A.READ, [C.GENOMICS], [P.RESEARCH])
    before = _keys(client, patient)
    consent.revoke(client, patient, researcher.address, A.READ)
    after = _keys(client, patient)
    assert after[C.GENOMICS].epoch == before[C.GENOMICS].epoch + 1
    assert after[C.GENOMICS].valid_until == FOREVER and not after[C.GENOMICS].stale(client.now())
    changed = {c for c in C if after[c] != before[c]}
    assert changed == {C.GENOMICS}
    # the patient holds the new secret (her envelope came first), and it matches the key on chain
    held = Keyring(client).secrets(patient, patient.address, [C.GENOMICS])[C.GENOMICS]
    assert crypto.public_from_secret(held[after[C.GENOMICS].epoch]) == after[C.GENOMICS].public_key


def test_revoke_without_rotation_leaves_a_stale_key_that_writers_refuse(client, patient, researcher, clinician):
    """Revoking a consent whose grantee holds the keys makes them stale on chain at once; a writer
    then refuses to seal to them (a typed error, nothing stored), until the patient rotates."""
    consent.grant(client, patient, clinician.address, A.WRITE, [C.GENOMICS], [P.DIRECT_CARE])
    consent.grant(client, patient, researcher.address, A.READ, [C.GENOMICS], [P.RESEARCH])
    epoch = client.contract.category_key(patient.address, C.GENOMICS).epoch
    consent.revoke(client, patient, researcher.address, A.READ, rotate=False)
    key = client.contract.category_key(patient.address, C.GENOMICS)
    assert key.epoch == epoch and key.stale(client.now())
    pins, before = client.store.pins(), registered_ids(client)
    genome = b"ACGT" * 100
    with pytest.raises(StaleCategoryKey, match=r"genomics key of patient .* is stale since") as err:
        records.write_record(client, clinician, patient.address, genome, category=C.GENOMICS, content_type="text/plain")
    assert (err.value.category, err.value.epoch, err.value.patient) == (C.GENOMICS, epoch, patient.address)
    assert client.store.pins() == pins and registered_ids(client) == before and journal_entries(client) == []
    with pytest.raises(StaleCategoryKey):
        Ingestor(client, clinician, patient.address, category=C.GENOMICS, content_type="text/plain")
    Keyring(client).rotate(patient, patient.address, [C.GENOMICS])
    written = records.write_record(client, clinician, patient.address, genome, category=C.GENOMICS)
    assert records.read_record(client, patient, written.record_id).data == genome


def test_a_revocation_stopped_by_ipfs_down_is_finished_by_revoking_again(
    client, settings, patient, researcher, clinician
):
    """Issue 8 item 4: the revocation lands, then the rotation fails (the IPFS node is down); revoking
    again rotates, rather than saying that nothing changed."""
    consent.grant(client, patient, clinician.address, A.WRITE, [C.GENOMICS], [P.DIRECT_CARE])
    consent.grant(client, patient, researcher.address, A.READ, [C.GENOMICS], [P.RESEARCH])
    epoch = client.contract.category_key(patient.address, C.GENOMICS).epoch
    down = Client.connect(settings, store=IpfsStore(f"http://127.0.0.1:{free_port()}", timeout=2))
    with pytest.raises(ServiceUnavailable):
        consent.revoke(down, patient, researcher.address, A.READ)
    assert not client.contract.consent(patient.address, researcher.address, A.READ).live(client.now())
    assert consent.rotation_owed(client, patient.address, researcher.address) == {C.GENOMICS}

    changed, _ = workflows.revoke(client, patient, researcher.address, A.READ)
    key = client.contract.category_key(patient.address, C.GENOMICS)
    assert not changed  # the consent was revoked already: the retry finishes its rotation
    assert key.epoch == epoch + 1 and not key.stale(client.now())
    assert not consent.revoke(client, patient, researcher.address, A.READ)  # finished: nothing more to do
    genome = b"ACGT" * 50
    written = records.write_record(client, clinician, patient.address, genome, category=C.GENOMICS)
    assert records.read_record(client, patient, written.record_id).data == genome
    with pytest.raises(KeyNotFound):
        open_bypassing_chain(client, researcher, written)


def test_a_registration_whose_envelope_never_landed_is_repaired_by_registering_again(client, stranger, monkeypatch):
    """Registering is two transactions (the keys, then the patient's own envelope); if the second never
    lands the secrets are lost, and registering again rotates every category the patient cannot open."""
    real_send = client.contract.send

    def node_dies_before_the_envelope(tx, sender):
        if tx.function == "publishKeyEnvelope":
            raise ServiceUnavailable("Ethereum node", "http://127.0.0.1:1", "stopped answering (test)")
        return real_send(tx, sender)

    monkeypatch.setattr(client.contract, "send", node_dies_before_the_envelope)
    with pytest.raises(ServiceUnavailable):
        participants.register_patient(client, stranger)
    monkeypatch.setattr(client.contract, "send", real_send)
    keyring = Keyring(client)
    assert client.contract.is_patient(stranger.address) and keyring.unheld(stranger) == [int(c) for c in C]
    assert participants.register_patient(client, stranger)
    assert keyring.unheld(stranger) == [] and {k.epoch for k in _keys(client, stranger).values()} == {2}
    assert participants.register_patient(client, stranger) is False  # nothing left to do


def test_narrowing_a_read_consent_rotates_the_dropped_categories(client, patient, researcher):
    consent.grant(client, patient, researcher.address, A.READ, [C.OBSERVATIONS, C.GENOMICS], [P.RESEARCH])
    before = records.write_record(client, patient, patient.address, obs_bytes(6.1, "before"))
    keys = _keys(client, patient)
    assert consent.grant(client, patient, researcher.address, A.READ, [C.GENOMICS], [P.RESEARCH])
    after_keys = _keys(client, patient)
    assert after_keys[C.OBSERVATIONS].epoch == keys[C.OBSERVATIONS].epoch + 1
    assert after_keys[C.GENOMICS] == keys[C.GENOMICS]
    after = records.write_record(client, patient, patient.address, obs_bytes(5.9, "after"))
    with pytest.raises(KeyNotFound):
        open_bypassing_chain(client, researcher, after)
    assert b"before" in open_bypassing_chain(client, researcher, before)  # what it had, it keeps
    genome = records.write_record(
        client, patient, patient.address, b"ACGT" * 100, category=C.GENOMICS, content_type="text/plain"
    )
    assert records.read_record(client, researcher, genome.record_id, purpose=P.RESEARCH).data == b"ACGT" * 100


def test_reinstated_grantee_reads_records_written_after_a_rotation_during_its_suspension(
    client, patient, researcher, app, registrar, lab
):
    """The chain releases keys to no suspended participant, so a rotation during the suspension skips
    it; once reinstated, a reissue (the patient's tools) sends it the new keys."""
    consent.grant(client, patient, researcher.address, A.READ, [C.OBSERVATIONS], [P.RESEARCH])
    consent.grant(client, patient, app.address, A.READ, [C.OBSERVATIONS], [P.COMMERCIAL])
    participants.suspend(client, registrar, researcher.address)
    consent.revoke(client, patient, app.address, A.READ)  # rotates while the researcher is suspended
    later = records.write_record(client, patient, patient.address, obs_bytes(5.0, "later"))
    with pytest.raises(AccessDenied, match="suspended"):
        records.read_record(client, researcher, later.record_id, purpose=P.RESEARCH)
    participants.reinstate(client, registrar, researcher.address)
    assert records.read_record(client, researcher, lab.record_id, purpose=P.RESEARCH).data
    with pytest.raises(KeyNotFound):
        records.read_record(client, researcher, later.record_id, purpose=P.RESEARCH)
    assert Keyring(client).reissue(patient, patient.address) == 2  # the researcher and the GP
    assert records.read_record(client, researcher, later.record_id, purpose=P.RESEARCH).data


# --- delegates -----------------------------------------------------------------------------------
def test_delegate_reads_for_family_care(client, patient, delegate, lab):
    consent.appoint_delegate(
        client, patient, delegate.address, [C.OBSERVATIONS, C.MEDICATIONS], client.now() + 30 * DAY
    )
    read = records.read_record(client, delegate, lab.record_id, purpose=P.FAMILY_CARE)
    assert json.loads(read.data) == observation()
    event = client.contract.logs(ev.RecordAccessed, record_id=lab.record_id)[-1]
    assert event.accessor == delegate.address and event.purpose == P.FAMILY_CARE
    with pytest.raises(AccessDenied):
        records.read_record(client, delegate, lab.record_id, purpose=P.COMMERCIAL)


def test_delegate_grants_within_bounds(client, patient, delegate, researcher, lab):
    consent.appoint_delegate(client, patient, delegate.address, [C.OBSERVATIONS], client.now() + 30 * DAY)
    assert consent.grant(
        client, delegate, researcher.address, A.READ, [C.OBSERVATIONS], [P.RESEARCH], patient=patient.address
    )
    event = client.contract.logs(ev.ConsentGranted, patient=patient.address, grantee=researcher.address)[-1]
    assert event.by == delegate.address
    # the envelope the delegate built opens the patient's records for the researcher
    read = records.read_record(client, researcher, lab.record_id, purpose=P.RESEARCH)
    assert json.loads(read.data) == observation()
    # and the delegate may revoke it again
    assert consent.revoke(client, delegate, researcher.address, A.READ, patient=patient.address)
    assert client.contract.logs(ev.ConsentRevoked, patient=patient.address)[-1].by == delegate.address


@pytest.mark.parametrize("access", [A.WRITE, A.READ], ids=["write", "read"])
def test_delegate_is_refused_outside_its_bounds(client, patient, delegate, researcher, access):
    consent.appoint_delegate(client, patient, delegate.address, [C.OBSERVATIONS], client.now() + 30 * DAY)
    with pytest.raises(AccessDenied, match="may manage only observations & labs, not genomics") as err:
        consent.grant(client, delegate, researcher.address, access, [C.GENOMICS], [P.RESEARCH], patient=patient.address)
    assert err.value.error_name == "ConsentDelegateOutOfBounds"
    assert consent.consent_of(client, patient.address, researcher.address, access).expiry == 0


def test_delegate_revocation_keeps_every_remaining_reader(client, patient, delegate, researcher, clinician):
    """A delegate bounded to observations revokes a study; the GP (who also reads medications) and
    the delegate itself still open what is written after the rotation, the study does not."""
    consent.appoint_delegate(client, patient, delegate.address, [C.OBSERVATIONS], client.now() + 30 * DAY)
    consent.grant(client, patient, clinician.address, A.READ, [C.OBSERVATIONS, C.MEDICATIONS], [P.DIRECT_CARE])
    consent.grant(client, patient, researcher.address, A.READ, [C.OBSERVATIONS], [P.RESEARCH])
    assert consent.revoke(client, delegate, researcher.address, A.READ, patient=patient.address)
    after = records.write_record(client, patient, patient.address, obs_bytes(5.5, "after"))
    assert b"after" in records.read_record(client, clinician, after.record_id).data
    assert b"after" in records.read_record(client, delegate, after.record_id, purpose=P.FAMILY_CARE).data
    assert b"after" in records.read_record(client, patient, after.record_id).data
    with pytest.raises(KeyNotFound):
        open_bypassing_chain(client, researcher, after)


def test_removed_delegate_can_no_longer_read(client, patient, delegate, lab):
    consent.appoint_delegate(client, patient, delegate.address, [C.OBSERVATIONS], client.now() + 30 * DAY)
    records.read_record(client, delegate, lab.record_id, purpose=P.FAMILY_CARE)
    assert consent.remove_delegate(client, patient, delegate.address)
    with pytest.raises(AccessDenied):
        records.read_record(client, delegate, lab.record_id, purpose=P.FAMILY_CARE)
    later = records.write_record(client, patient, patient.address, obs_bytes(7.0, "later"))
    with pytest.raises(KeyNotFound):
        open_bypassing_chain(client, delegate, later)
    with pytest.raises(AccessDenied, match="may not manage the consents"):
        consent.grant(
            client, delegate, "0x" + "22" * 20, A.WRITE, [C.OBSERVATIONS], [P.RESEARCH], patient=patient.address
        )


def test_expired_delegation_stops_reading(client, patient, delegate, lab):
    consent.appoint_delegate(client, patient, delegate.address, [C.OBSERVATIONS], client.now() + DAY)
    advance_time(client, 2 * DAY)
    with pytest.raises(AccessDenied):
        records.read_record(client, delegate, lab.record_id, purpose=P.FAMILY_CARE)


def test_a_junk_envelope_secret_is_ignored_and_reported(client, patient, delegate, gp_writes, lab):
    """Issue 12 item 2: a delegate (entitled to publish for observations) sends the GP an envelope
    with a junk observations key and a key of a category the publication does not name. Neither is
    used: each is checked against the public key the chain recorded (and the categories the event
    names); both are reported, and the GP still reads with the key it really holds."""
    consent.appoint_delegate(client, patient, delegate.address, [C.OBSERVATIONS], client.now() + 30 * DAY)
    epoch = client.contract.category_key(patient.address, C.OBSERVATIONS).epoch
    junk = {C.OBSERVATIONS: {epoch: crypto.generate_keypair().secret}, C.GENOMICS: {1: b"\x07" * 32}}
    blob = crypto.make_envelope(gp_writes.encryption.public, patient.address, junk)
    pointer = client.put_small(blob)
    client.contract.publish_key_envelope(
        patient.address, gp_writes.address, pointer, categories=[C.OBSERVATIONS], sender=delegate
    )
    keyring = Keyring(client)
    with pytest.warns(RejectedKeyWarning, match=f"published by {delegate.address}") as caught:
        held = keyring.secrets(gp_writes, patient.address, [C.OBSERVATIONS, C.GENOMICS])
    assert len([w for w in caught if w.category is RejectedKeyWarning]) == 2, [str(w.message) for w in caught]
    assert set(held) == {C.OBSERVATIONS} and held[C.OBSERVATIONS][epoch] != junk[C.OBSERVATIONS][epoch]
    reasons = {(r.category, r.epoch): r.reason for r in keyring.rejected}
    assert reasons == {
        (C.OBSERVATIONS, epoch): "it does not match the public key the chain recorded for this category and epoch",
        (C.GENOMICS, 1): "its publication does not name this category",
    }
    assert all(r.envelope == pointer and r.published_by == delegate.address for r in keyring.rejected)
    with pytest.warns(RejectedKeyWarning):
        assert json.loads(records.read_record(client, gp_writes, lab.record_id).data) == observation()


# --- emergency -----------------------------------------------------------------------------------
def _release_keys_to(client, patient, clinician, categories):
    """Deliver category keys to the A&E clinician (the patient's side of an emergency)."""
    keyring = Keyring(client)
    with keyring.envelope_for(patient, patient.address, clinician.address, categories) as pointer:
        client.contract.publish_key_envelope(
            patient.address, clinician.address, pointer, categories=categories, sender=patient
        )


def test_emergency_read_is_flagged_and_ends_with_the_window(client, patient, emergency_clinician, lab):
    with pytest.raises(AccessDenied):
        records.read_record(client, emergency_clinician, lab.record_id, purpose=P.EMERGENCY)
    until = consent.open_emergency(client, emergency_clinician, patient.address, 4 * 3600, REASON)
    assert until >= client.now() + 4 * 3600 - 5
    _release_keys_to(client, patient, emergency_clinician, [C.OBSERVATIONS])

    read = records.read_record(client, emergency_clinician, lab.record_id, purpose=P.EMERGENCY)
    assert read.emergency is True
    assert json.loads(read.data) == observation()
    flagged = [e for e in audit.trail(client, patient.address) if e.emergency]
    assert [e.event for e in flagged] == ["EmergencyAccessOpened", "RecordAccessed"]
    assert all(e.actor == emergency_clinician.address for e in flagged)
    assert flagged[1].record == "0x" + lab.record_id.hex()
    assert "emergency" in flagged[1].detail

    advance_time(client, 4 * 3600 + 60)
    with pytest.raises(AccessDenied):
        records.read_record(client, emergency_clinician, lab.record_id, purpose=P.EMERGENCY)


def test_emergency_access_closed_early(client, patient, emergency_clinician, lab):
    consent.open_emergency(client, emergency_clinician, patient.address, 3600, REASON)
    assert consent.close_emergency(client, patient, patient.address, emergency_clinician.address)
    with pytest.raises(AccessDenied):
        records.read_record(client, emergency_clinician, lab.record_id, purpose=P.EMERGENCY)


def test_patient_opted_out_refuses_emergency_opening(client, patient, emergency_clinician):
    assert consent.set_emergency_opt_out(client, patient, True)
    with pytest.raises(AccessDenied, match="opted out of emergency access") as err:
        consent.open_emergency(client, emergency_clinician, patient.address, 3600, REASON)
    assert patient.address in str(err.value)
    assert not consent.emergency_access(client, patient.address, emergency_clinician.address).open
    assert consent.set_emergency_opt_out(client, patient, False)
    assert consent.open_emergency(client, emergency_clinician, patient.address, 3600, REASON) > client.now()


def test_emergency_access_is_confirmed_by_the_patient_or_a_delegate_not_the_clinician(
    client, patient, delegate, emergency_clinician
):
    consent.open_emergency(client, emergency_clinician, patient.address, 3600, REASON)
    opened = consent.emergency_access(client, patient.address, emergency_clinician.address)
    assert opened.open and opened.run_start > 0 and opened.expires_at > client.now()
    with pytest.raises(AccessDenied, match="may not manage the consents"):
        consent.confirm_emergency(client, emergency_clinician, patient.address, emergency_clinician.address)
    advance_time(client, 60)
    assert consent.confirm_emergency(client, patient, patient.address, emergency_clinician.address)
    confirmed = consent.emergency_access(client, patient.address, emergency_clinician.address)
    assert confirmed.run_start == client.now() > opened.run_start
    [event] = client.contract.logs(ev.EmergencyAccessConfirmed, patient=patient.address)
    assert (event.clinician, event.by) == (emergency_clinician.address, patient.address)
    consent.appoint_delegate(client, patient, delegate.address, [C.OBSERVATIONS], client.now() + DAY)
    advance_time(client, 60)
    assert consent.confirm_emergency(client, delegate, patient.address, emergency_clinician.address)


def test_only_clinicians_open_emergency_access(client, patient, researcher):
    with pytest.raises(AccessDenied, match="not a registered clinician"):
        consent.open_emergency(client, researcher, patient.address, 3600, REASON)
