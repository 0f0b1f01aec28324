"""Key rotation on revoke, delegates and emergency access, against the real chain and IPFS node."""

from __future__ import annotations

import io
import json

import pytest

from medledger import audit, consent, crypto, participants, records
from medledger.errors import AccessDenied, KeyNotFound
from medledger.keyring import Keyring

from .helpers import DAY, A, C, P, advance_time, obs_bytes, observation

REASON = crypto.fingerprint_of(b"\1" * 32, b"410429000")


def open_bypassing_chain(client, reader, written) -> bytes:
    """What a reader can do with the ciphertext alone: try every key it holds, no chain check."""
    patient = client.call(client.contract.functions.record(written.record_id))[0]
    keys = Keyring(client).secrets(reader, patient, [written.category])
    blob = client.store.cat(written.cid)
    return b"".join(crypto.open_record_blob(
        io.BytesIO(blob), keys, expected_record_id=written.record_id, expected_patient=patient, category=written.category
    ))


# --- key rotation --------------------------------------------------------------------------------
def test_revoked_grantee_cannot_open_later_records_while_others_still_can(
    client, patient, gp_writes, researcher, delegate
):
    consent.grant(client, patient, researcher.address, A.READ, [C.OBSERVATIONS], [P.RESEARCH])
    consent.appoint_delegate(client, patient, delegate.address, [C.OBSERVATIONS], client.now() + 365 * DAY)
    before = records.write_record(client, gp_writes, patient.address, obs_bytes(6.1, "before"))
    epoch_before = Keyring(client).directory(patient.address).public_key(C.OBSERVATIONS)[0]
    assert b"before" in open_bypassing_chain(client, researcher, before)

    consent.revoke(client, patient, researcher.address, A.READ)
    epoch_after, _ = Keyring(client).directory(patient.address).public_key(C.OBSERVATIONS)
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


def test_rotation_touches_only_the_revoked_categories(client, patient, researcher):
    consent.grant(client, patient, researcher.address, A.READ, [C.GENOMICS], [P.RESEARCH])
    before = Keyring(client).directory(patient.address)
    consent.revoke(client, patient, researcher.address, A.READ)
    after = Keyring(client).directory(patient.address)
    assert after.categories[C.GENOMICS].epoch == before.categories[C.GENOMICS].epoch + 1
    changed = {c for c in after.categories if after.categories[c] != before.categories[c]}
    assert changed == {C.GENOMICS}


def test_revoke_without_rotation_keeps_the_epoch(client, patient, researcher):
    consent.grant(client, patient, researcher.address, A.READ, [C.GENOMICS], [P.RESEARCH])
    epoch = Keyring(client).directory(patient.address).public_key(C.GENOMICS)[0]
    consent.revoke(client, patient, researcher.address, A.READ, rotate=False)
    assert Keyring(client).directory(patient.address).public_key(C.GENOMICS)[0] == epoch


def test_narrowing_a_read_consent_rotates_the_dropped_categories(client, patient, researcher):
    consent.grant(client, patient, researcher.address, A.READ, [C.OBSERVATIONS, C.GENOMICS], [P.RESEARCH])
    before = records.write_record(client, patient, patient.address, obs_bytes(6.1, "before"))
    epochs = Keyring(client).directory(patient.address)
    assert consent.grant(client, patient, researcher.address, A.READ, [C.GENOMICS], [P.RESEARCH])
    after_dir = Keyring(client).directory(patient.address)
    assert after_dir.public_key(C.OBSERVATIONS)[0] == epochs.public_key(C.OBSERVATIONS)[0] + 1
    assert after_dir.public_key(C.GENOMICS) == epochs.public_key(C.GENOMICS)
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
    consent.grant(client, patient, researcher.address, A.READ, [C.OBSERVATIONS], [P.RESEARCH])
    consent.grant(client, patient, app.address, A.READ, [C.OBSERVATIONS], [P.COMMERCIAL])
    participants.suspend(client, registrar, researcher.address)
    consent.revoke(client, patient, app.address, A.READ)  # rotates while the researcher is suspended
    later = records.write_record(client, patient, patient.address, obs_bytes(5.0, "later"))
    with pytest.raises(AccessDenied, match="suspended"):
        records.read_record(client, researcher, later.record_id, purpose=P.RESEARCH)
    participants.reinstate(client, registrar, researcher.address)
    for written in (lab, later):
        assert records.read_record(client, researcher, written.record_id, purpose=P.RESEARCH).data


# --- delegates -----------------------------------------------------------------------------------
def test_delegate_reads_for_family_care(client, patient, delegate, lab):
    consent.appoint_delegate(client, patient, delegate.address, [C.OBSERVATIONS, C.MEDICATIONS], client.now() + 30 * DAY)
    read = records.read_record(client, delegate, lab.record_id, purpose=P.FAMILY_CARE)
    assert json.loads(read.data) == observation()
    event = client.logs("RecordAccessed", recordId=lab.record_id)[-1]["args"]
    assert event["accessor"] == delegate.address and event["purpose"] == P.FAMILY_CARE
    with pytest.raises(AccessDenied):
        records.read_record(client, delegate, lab.record_id, purpose=P.COMMERCIAL)


def test_delegate_grants_within_bounds(client, patient, delegate, researcher, lab):
    consent.appoint_delegate(client, patient, delegate.address, [C.OBSERVATIONS], client.now() + 30 * DAY)
    assert consent.grant(
        client, delegate, researcher.address, A.READ, [C.OBSERVATIONS], [P.RESEARCH], patient=patient.address
    )
    event = client.logs("ConsentGranted", patient=patient.address, grantee=researcher.address)[-1]["args"]
    assert event["by"] == delegate.address
    # the envelope the delegate built opens the patient's records for the researcher
    read = records.read_record(client, researcher, lab.record_id, purpose=P.RESEARCH)
    assert json.loads(read.data) == observation()
    # and the delegate may revoke it again
    assert consent.revoke(client, delegate, researcher.address, A.READ, patient=patient.address)
    assert client.logs("ConsentRevoked", patient=patient.address)[-1]["args"]["by"] == delegate.address


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
        consent.grant(client, delegate, "0x" + "22" * 20, A.WRITE, [C.OBSERVATIONS], [P.RESEARCH], patient=patient.address)


def test_expired_delegation_stops_reading(client, patient, delegate, lab):
    consent.appoint_delegate(client, patient, delegate.address, [C.OBSERVATIONS], client.now() + DAY)
    advance_time(client, 2 * DAY)
    with pytest.raises(AccessDenied):
        records.read_record(client, delegate, lab.record_id, purpose=P.FAMILY_CARE)


# --- emergency -----------------------------------------------------------------------------------
def _release_keys_to(client, patient, clinician, categories):
    """Deliver category keys to the A&E clinician (the patient's side of an emergency)."""
    keyring = Keyring(client)
    pointer = keyring.envelope_for(patient, patient.address, keyring.recipient_key(clinician.address), categories)
    client.transact(client.contract.functions.publishKeyEnvelope(patient.address, clinician.address, pointer), patient)


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
    assert client.call(client.contract.functions.emergencyAccessExpiry(patient.address, emergency_clinician.address)) == 0
    assert consent.set_emergency_opt_out(client, patient, False)
    assert consent.open_emergency(client, emergency_clinician, patient.address, 3600, REASON) > client.now()


def test_only_clinicians_open_emergency_access(client, patient, researcher):
    with pytest.raises(AccessDenied, match="not a registered clinician"):
        consent.open_emergency(client, researcher, patient.address, 3600, REASON)
