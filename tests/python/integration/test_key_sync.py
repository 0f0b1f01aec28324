"""Keys follow consent on their own (issue 12 item 3): the patient's tools find the categories whose
keys went stale (a reader they were released to lost access, by any way) and rotate them, and send
every reader that still has access the keys it lacks; against the real chain and IPFS node.

Each test here failed before :meth:`Keyring.sync` existed: the stale keys stayed stale (writers were
refused until someone rotated by hand), an emergency clinician lost the keys it had been released
at the next rotation, and a reinstated reader needed a reissue nobody ran."""

from __future__ import annotations

import pytest

from medledger import consent, participants, records, workflows
from medledger.chain import FOREVER
from medledger.errors import AccessDenied, KeyNotFound, ServiceUnavailable, StaleCategoryKey
from medledger.keyring import Keyring

from .helpers import DAY, A, C, P, advance_time, obs_bytes
from .test_keys_delegates_emergency import REASON, open_bypassing_chain


def _epoch(client, patient, category=C.OBSERVATIONS) -> int:
    return client.contract.category_key(patient.address, category).epoch


def test_a_signed_revoke_is_rotated_by_the_patients_next_sync(client, patient, researcher, relayer, gp_writes):
    consent.grant(client, patient, researcher.address, A.READ, [C.OBSERVATIONS], [P.RESEARCH])
    epoch = _epoch(client, patient)
    advance_time(client, 2)
    assert consent.submit(client, relayer, consent.sign_revoke(client, patient, researcher.address, A.READ))
    assert _epoch(client, patient) == epoch  # the relayer holds no keys: nothing rotated...
    with pytest.raises(StaleCategoryKey):  # ...and the chain made the keys stale, so writers are refused
        records.write_record(client, gp_writes, patient.address, obs_bytes(5.0, "refused"))

    report = Keyring(client).sync(patient, patient.address)
    assert report.rotated == {C.OBSERVATIONS: epoch + 1}
    assert report.delivered == {gp_writes.address: frozenset({C.OBSERVATIONS})}
    after = records.write_record(client, gp_writes, patient.address, obs_bytes(5.9, "after"))
    with pytest.raises(KeyNotFound):
        open_bypassing_chain(client, researcher, after)
    assert b"after" in records.read_record(client, gp_writes, after.record_id).data
    assert not Keyring(client).sync(patient, patient.address).changed  # nothing left to do


def test_an_expired_consent_is_rotated_once_it_ends_and_next_due_says_when(client, patient, researcher):
    ends = client.now() + DAY
    consent.grant(client, patient, researcher.address, A.READ, [C.GENOMICS], [P.RESEARCH], expiry=ends)
    early = Keyring(client).sync(patient, patient.address)
    assert not early.changed and early.next_due == ends  # the key is valid until the consent ends
    advance_time(client, DAY + 1)
    report = Keyring(client).sync(patient, patient.address)
    assert set(report.rotated) == {C.GENOMICS} and report.next_due is None
    genome = records.write_record(client, patient, patient.address, b"ACGT", category=C.GENOMICS)
    with pytest.raises(KeyNotFound):
        open_bypassing_chain(client, researcher, genome)


def test_an_emergency_clinician_keeps_its_released_keys_across_an_unrelated_rotation(
    client, patient, researcher, emergency_clinician, gp_writes
):
    """The window is open and the daughter released observations to A&E; the patient then revokes the
    study. The rotation sends A&E the new keys too (its window is still open); once the window ends
    the keys are stale, and the next sync rotates them away from A&E."""
    consent.grant(client, patient, researcher.address, A.READ, [C.OBSERVATIONS], [P.RESEARCH])
    until = consent.open_emergency(client, emergency_clinician, patient.address, 4 * 3600, REASON)
    assert consent.release_emergency_keys(client, patient, emergency_clinician.address, [C.OBSERVATIONS]) == until
    consent.revoke(client, patient, researcher.address, A.READ)
    during = records.write_record(client, gp_writes, patient.address, obs_bytes(6.6, "during"))
    assert b"during" in records.read_record(client, emergency_clinician, during.record_id, purpose=P.EMERGENCY).data

    advance_time(client, 4 * 3600 + 1)
    report = Keyring(client).sync(patient, patient.address)
    assert set(report.rotated) == {C.OBSERVATIONS} and emergency_clinician.address not in report.delivered
    later = records.write_record(client, gp_writes, patient.address, obs_bytes(7.0, "later"))
    with pytest.raises(KeyNotFound):
        open_bypassing_chain(client, emergency_clinician, later)


def test_a_reinstated_reader_gets_the_keys_rotated_during_its_suspension(
    client, patient, researcher, app, registrar, lab
):
    """Decision: the chain sends no keys to a suspended participant, so a rotation during a suspension
    skips it; the patient's next sync (which every access-ending command runs) sees a reader with
    live access and no envelope for the current epoch, and sends it one."""
    consent.grant(client, patient, researcher.address, A.READ, [C.OBSERVATIONS], [P.RESEARCH])
    consent.grant(client, patient, app.address, A.READ, [C.OBSERVATIONS], [P.COMMERCIAL])
    participants.suspend(client, registrar, researcher.address)
    consent.revoke(client, patient, app.address, A.READ)  # rotates; the researcher gets nothing
    later = records.write_record(client, patient, patient.address, obs_bytes(5.0, "later"))
    participants.reinstate(client, registrar, researcher.address)
    with pytest.raises(KeyNotFound):
        records.read_record(client, researcher, later.record_id, purpose=P.RESEARCH)
    report = Keyring(client).sync(patient, patient.address)
    assert report.rotated == {} and report.delivered == {researcher.address: frozenset({C.OBSERVATIONS})}
    assert b"later" in records.read_record(client, researcher, later.record_id, purpose=P.RESEARCH).data


def test_a_delegate_syncs_within_its_bounds_and_names_the_rest(client, patient, delegate, researcher):
    consent.appoint_delegate(client, patient, delegate.address, [C.OBSERVATIONS], client.now() + 30 * DAY)
    consent.grant(client, patient, researcher.address, A.READ, [C.OBSERVATIONS, C.GENOMICS], [P.RESEARCH])
    advance_time(client, 2)
    consent.submit(client, patient, consent.sign_revoke(client, patient, researcher.address, A.READ))
    report = Keyring(client).sync(delegate, patient.address)
    assert set(report.rotated) == {C.OBSERVATIONS} and report.beyond == frozenset({C.GENOMICS})
    assert client.contract.category_key(patient.address, C.GENOMICS).stale(client.now())
    with pytest.raises(AccessDenied):
        Keyring(client).sync(researcher, patient.address)  # neither the patient nor a delegate


def test_every_patient_side_command_that_ends_access_leaves_no_stale_key(
    client, patient, delegate, researcher, emergency_clinician
):
    """Revoke, narrow, delegate removal, emergency close and opt-out each end with a sync."""
    now = client.now()

    def stale() -> set[int]:
        keys = client.contract.category_keys(patient.address)
        return {c for c, k in keys.items() if k.stale(client.now())}

    consent.grant(client, patient, researcher.address, A.READ, [C.GENOMICS, C.IMAGING], [P.RESEARCH])
    consent.grant(client, patient, researcher.address, A.READ, [C.IMAGING], [P.RESEARCH])  # narrow
    assert stale() == set() and _epoch(client, patient, C.GENOMICS) == 2
    consent.revoke(client, patient, researcher.address, A.READ)
    assert stale() == set() and _epoch(client, patient, C.IMAGING) == 2
    consent.appoint_delegate(client, patient, delegate.address, [C.MEDICATIONS, C.ALLERGIES], now + 30 * DAY)
    consent.appoint_delegate(client, patient, delegate.address, [C.MEDICATIONS], now + 30 * DAY)  # narrow
    assert stale() == set() and _epoch(client, patient, C.ALLERGIES) == 2
    consent.remove_delegate(client, patient, delegate.address)
    assert stale() == set() and _epoch(client, patient, C.MEDICATIONS) == 2
    consent.open_emergency(client, emergency_clinician, patient.address, 3600, REASON)
    consent.release_emergency_keys(client, patient, emergency_clinician.address, [C.CONDITIONS])
    consent.close_emergency(client, patient, patient.address, emergency_clinician.address)
    assert stale() == set() and _epoch(client, patient, C.CONDITIONS) == 2
    consent.open_emergency(client, emergency_clinician, patient.address, 3600, REASON)
    consent.release_emergency_keys(client, patient, emergency_clinician.address, [C.PROCEDURES])
    consent.set_emergency_opt_out(client, patient, True)
    assert stale() == set() and _epoch(client, patient, C.PROCEDURES) == 2
    assert all(k.valid_until == FOREVER for k in client.contract.category_keys(patient.address).values())


def test_follow_sleeps_until_the_next_key_is_due_and_rides_out_a_node_that_stops_answering(
    client, patient, researcher, monkeypatch
):
    ends = client.now() + 3600
    consent.grant(client, patient, researcher.address, A.READ, [C.GENOMICS], [P.RESEARCH], expiry=ends)
    real_sync, calls = Keyring.sync, []

    def node_down_once(self, manager, whose):
        calls.append(whose)
        if len(calls) == 2:
            raise ServiceUnavailable("IPFS node", "http://127.0.0.1:1", "stopped answering (test)")
        return real_sync(self, manager, whose)

    slept, reports, errors = [], [], []

    def sleep(seconds: float) -> None:  # chain time passes as the follower sleeps
        slept.append(seconds)
        advance_time(client, int(seconds) + 1)

    monkeypatch.setattr(Keyring, "sync", node_down_once)
    workflows.follow(
        client, patient, rounds=3, interval=7200, sleep=sleep, on_report=reports.append, on_error=errors.append
    )
    assert 3500 < slept[0] <= 3600 and slept[1] == 7200  # woke when the consent ended; after the error, later
    assert len(errors) == 1 and [set(r.rotated) for r in reports] == [set(), {C.GENOMICS}]
