"""Emergency access (issue 7 item 8): windows may not be re-opened back to back without end. A run of
openings is capped at MAX_EMERGENCY_RUN (72 h) from its first opening, unless the patient or a
delegate confirms the access (a new run starts); a run ends once no window has been open for
MAX_EMERGENCY_WINDOW (24 h). Opting out closes open windows (see test_consent.py)."""

import pytest
from brownie import web3
from conftest import (
    ALLERGIES,
    DAY,
    EMERGENCY,
    READ,
    RESEARCHER,
    assert_custom_error,
    assert_only_event,
    key,
    mask,
    mine_at,
)

HOUR = 3600
RUN = 72 * HOUR
WINDOW = 24 * HOUR


def open_at(network, patient, clinician, timestamp: int, window: int = WINDOW):
    web3.provider.make_request("evm_setNextBlockTimestamp", [timestamp])
    return network.openEmergencyAccess(patient, window, key(500), {"from": clinician})


@pytest.fixture
def run_start(network, patient, clinician):
    """The clinician opened a 24-hour window; returns the time (the start of the run)."""
    start = web3.eth.get_block("latest").timestamp + 10
    open_at(network, patient, clinician, start)
    return start


def test_constants(network):
    assert network.MAX_EMERGENCY_RUN() == RUN
    assert network.MAX_EMERGENCY_WINDOW() == WINDOW


def test_reopening_back_to_back_is_capped_at_the_run(network, patient, clinician, run_start):
    """The wave-1 contract let a read 46 h after the first opening succeed, and so on without end."""
    tx = open_at(network, patient, clinician, run_start + 23 * HOUR)
    assert tx.return_value == run_start + 47 * HOUR
    assert tx.events["EmergencyAccessOpened"]["runStart"] == run_start
    tx = open_at(network, patient, clinician, run_start + 46 * HOUR)
    assert tx.return_value == run_start + 70 * HOUR

    web3.provider.make_request("evm_setNextBlockTimestamp", [run_start + 69 * HOUR])
    with assert_custom_error("EmergencyRunExceeded", patient, clinician, run_start + RUN):
        network.openEmergencyAccess(patient, WINDOW, key(500), {"from": clinician})
    assert tuple(network.emergencyAccess(patient, clinician))[:2] == (run_start + 70 * HOUR, run_start)


def test_a_window_may_end_exactly_at_the_end_of_the_run(network, patient, clinician, run_start):
    open_at(network, patient, clinician, run_start + 23 * HOUR)
    open_at(network, patient, clinician, run_start + 46 * HOUR)
    tx = open_at(network, patient, clinician, run_start + 69 * HOUR, window=3 * HOUR)
    assert tx.return_value == run_start + RUN
    mine_at(run_start + RUN - 1)
    assert network.checkAccess(patient, clinician, READ, ALLERGIES, EMERGENCY) is True
    mine_at(run_start + RUN)
    assert network.isPermitted(patient, clinician, READ, ALLERGIES, EMERGENCY) is False


def test_letting_a_window_lapse_briefly_does_not_start_a_new_run(network, patient, clinician, run_start):
    open_at(network, patient, clinician, run_start + 23 * HOUR)  # open until 47 h
    web3.provider.make_request("evm_setNextBlockTimestamp", [run_start + 60 * HOUR])  # lapsed for 13 h
    with assert_custom_error("EmergencyRunExceeded", patient, clinician, run_start + RUN):
        network.openEmergencyAccess(patient, WINDOW, key(500), {"from": clinician})


def test_a_run_ends_once_no_window_was_open_for_a_day(network, patient, clinician, run_start):
    ended = run_start + WINDOW
    tx = open_at(network, patient, clinician, ended + WINDOW)  # exactly a day after the window ended
    assert tx.events["EmergencyAccessOpened"]["runStart"] == ended + WINDOW
    assert tuple(network.emergencyAccess(patient, clinician)) == (ended + 2 * WINDOW, ended + WINDOW, True)


def test_closing_early_counts_the_gap_from_the_close(network, patient, clinician, run_start):
    closed = network.closeEmergencyAccess(patient, clinician, {"from": patient})
    web3.provider.make_request("evm_setNextBlockTimestamp", [closed.timestamp + WINDOW - 1])
    tx = network.openEmergencyAccess(patient, HOUR, key(500), {"from": clinician})
    assert tx.events["EmergencyAccessOpened"]["runStart"] == run_start  # still the same run
    tx = open_at(network, patient, clinician, tx.return_value + WINDOW)
    assert tx.events["EmergencyAccessOpened"]["runStart"] == tx.timestamp  # a new one


@pytest.mark.parametrize("confirmer_name", ["patient", "delegate"])
def test_confirmation_starts_a_new_run(network, request, patient, delegate, clinician, run_start, confirmer_name):
    confirmer = request.getfixturevalue(confirmer_name)
    if confirmer_name == "delegate":
        network.appointDelegate(delegate, mask(ALLERGIES), run_start + 10 * DAY, {"from": patient})
    open_at(network, patient, clinician, run_start + 23 * HOUR)
    open_at(network, patient, clinician, run_start + 46 * HOUR)

    web3.provider.make_request("evm_setNextBlockTimestamp", [run_start + 69 * HOUR])
    tx = network.confirmEmergencyAccess(patient, clinician, {"from": confirmer})
    assert tx.return_value is True
    assert_only_event(tx, "EmergencyAccessConfirmed", patient=patient, clinician=clinician, by=confirmer)
    assert tuple(network.emergencyAccess(patient, clinician)) == (run_start + 70 * HOUR, run_start + 69 * HOUR, True)

    tx = open_at(network, patient, clinician, run_start + 69 * HOUR + 60)
    assert tx.return_value == run_start + 93 * HOUR + 60
    assert tx.events["EmergencyAccessOpened"]["runStart"] == run_start + 69 * HOUR


def test_confirming_without_a_run_changes_nothing(network, patient, clinician):
    tx = network.confirmEmergencyAccess(patient, clinician, {"from": patient})
    assert tx.return_value is False
    assert len(tx.events) == 0
    assert tuple(network.emergencyAccess(patient, clinician)) == (0, 0, False)


@pytest.mark.parametrize("caller_name", ["clinician", "stranger", "researcher", "delegate"])
def test_only_the_patient_or_a_delegate_confirms(network, request, patient, clinician, run_start, caller_name):
    """In particular the clinician cannot extend its own run."""
    caller = request.getfixturevalue(caller_name)  # the delegate is not appointed here
    with assert_custom_error("ConsentUnauthorized", caller, patient):
        network.confirmEmergencyAccess(patient, clinician, {"from": caller})
    assert network.emergencyAccess(patient, clinician)[1] == run_start


def test_suspended_delegate_cannot_confirm(network, registrar, patient, delegate, clinician, run_start):
    network.appointDelegate(delegate, mask(ALLERGIES), run_start + 10 * DAY, {"from": patient})
    network.registerParticipant(delegate, RESEARCHER, key(5), key(6), {"from": registrar})
    network.suspendParticipant(delegate, key(7), {"from": registrar})
    with assert_custom_error("RegistryParticipantSuspended", delegate):
        network.confirmEmergencyAccess(patient, clinician, {"from": delegate})


def test_runs_are_per_clinician(network, registrar, patient, clinician, stranger, run_start):
    network.registerParticipant(stranger, 1, key(5), key(6), {"from": registrar})  # a care provider
    tx = open_at(network, patient, stranger, run_start + 60 * HOUR)
    assert tx.events["EmergencyAccessOpened"]["runStart"] == run_start + 60 * HOUR
    assert tx.return_value == run_start + 84 * HOUR
