"""ParticipantRegistry (through the Medledger deployment): patients register themselves; organisations
and professionals are registered, suspended and reinstated by holders of REGISTRAR_ROLE."""

import brownie
import pytest
from brownie import accounts, web3
from conftest import (
    APP,
    AUDITOR,
    CARE_PROVIDER,
    CLINICIAN,
    COMMISSIONER,
    RESEARCHER,
    ZERO,
    ZERO32,
    assert_custom_error,
    assert_only_event,
    key,
)

DEFAULT_ADMIN_ROLE = ZERO32


@pytest.fixture(scope="module")
def role(medledger):
    return medledger.REGISTRAR_ROLE()


# ------------------------------------------------------------------------------------------------
# Patients
# ------------------------------------------------------------------------------------------------


def test_register_patient_records_key_and_emits_event(medledger, stranger):
    tx = medledger.registerPatient(key(42), {"from": stranger})

    assert_only_event(tx, "PatientRegistered", patient=stranger, encryptionKey=key(42))
    assert medledger.isPatient(stranger) is True
    assert medledger.patientEncryptionKey(stranger) == key(42)


def test_register_patient_reverts_when_already_registered(network, patient):
    with assert_custom_error("RegistryPatientAlreadyRegistered", patient):
        network.registerPatient(key(99), {"from": patient})
    assert network.patientEncryptionKey(patient) == key(1)


def test_register_patient_reverts_on_zero_key(medledger, stranger):
    with assert_custom_error("RegistryInvalidEncryptionKey"):
        medledger.registerPatient(ZERO32, {"from": stranger})
    assert medledger.isPatient(stranger) is False


def test_register_patient_registers_only_the_caller(network, patient, stranger):
    """Nobody can register someone else as a patient: the registered account is always msg.sender."""
    network.registerPatient(key(42), {"from": stranger})
    assert network.patientEncryptionKey(patient) == key(1)
    assert network.patientEncryptionKey(stranger) == key(42)


def test_patient_views_are_empty_for_unregistered_account(network, stranger):
    assert network.isPatient(stranger) is False
    assert network.patientEncryptionKey(stranger) == ZERO32


def test_patient_is_not_a_participant(network, patient):
    assert network.isActiveParticipant(patient) is False
    assert tuple(network.participant(patient)) == (0, False, 0, ZERO32, ZERO32)


def test_rotate_patient_key_replaces_key_and_emits_event(network, patient):
    tx = network.rotatePatientKey(key(77), {"from": patient})

    assert tx.return_value is True
    assert_only_event(tx, "PatientKeyRotated", patient=patient, encryptionKey=key(77))
    assert network.patientEncryptionKey(patient) == key(77)


def test_rotate_patient_key_to_same_key_returns_false_and_emits_nothing(network, patient):
    tx = network.rotatePatientKey(key(1), {"from": patient})

    assert tx.return_value is False
    assert len(tx.events) == 0
    assert network.patientEncryptionKey(patient) == key(1)


def test_rotate_patient_key_reverts_when_caller_is_not_patient(network, stranger, clinician):
    with assert_custom_error("RegistryPatientNotRegistered", stranger):
        network.rotatePatientKey(key(5), {"from": stranger})
    with assert_custom_error("RegistryPatientNotRegistered", clinician):
        network.rotatePatientKey(key(5), {"from": clinician})


def test_rotate_patient_key_reverts_on_zero_key(network, patient):
    with assert_custom_error("RegistryInvalidEncryptionKey"):
        network.rotatePatientKey(ZERO32, {"from": patient})
    assert network.patientEncryptionKey(patient) == key(1)


# ------------------------------------------------------------------------------------------------
# Organisations and professionals
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", [CARE_PROVIDER, CLINICIAN, RESEARCHER, APP, COMMISSIONER, AUDITOR])
def test_register_participant_stores_record_and_emits_event(medledger, registrar, stranger, kind):
    tx = medledger.registerParticipant(stranger, kind, key(5), key(6), {"from": registrar})

    assert_only_event(
        tx,
        "ParticipantRegistered",
        account=stranger,
        kind=kind,
        registrar=registrar,
        credentialRef=key(5),
        encryptionKey=key(6),
    )
    assert tuple(medledger.participant(stranger)) == (kind, False, tx.timestamp, key(5), key(6))
    assert medledger.isActiveParticipant(stranger) is True
    assert medledger.isPatient(stranger) is False


def test_register_participant_by_admin_works_because_admin_holds_registrar_role(medledger, admin, stranger, role):
    assert medledger.hasRole(role, admin) is True
    medledger.registerParticipant(stranger, CLINICIAN, key(5), key(6), {"from": admin})
    assert medledger.participant(stranger)[0] == CLINICIAN


def test_register_participant_accepts_zero_credential_ref(medledger, registrar, stranger):
    medledger.registerParticipant(stranger, APP, ZERO32, key(6), {"from": registrar})
    assert medledger.participant(stranger)[3] == ZERO32


@pytest.mark.parametrize("caller_name", ["stranger", "patient", "clinician"])
def test_register_participant_reverts_when_caller_is_not_registrar(network, request, stranger, role, caller_name):
    caller = request.getfixturevalue(caller_name)
    with assert_custom_error("AccessControlUnauthorizedAccount", caller, role):
        network.registerParticipant(stranger, CLINICIAN, key(5), key(6), {"from": caller})
    assert network.participant(stranger)[0] == 0


def test_register_participant_reverts_on_zero_account(medledger, registrar):
    with assert_custom_error("RegistryInvalidAccount"):
        medledger.registerParticipant(ZERO, CLINICIAN, key(5), key(6), {"from": registrar})


def test_register_participant_reverts_on_kind_none(medledger, registrar, stranger):
    with assert_custom_error("RegistryInvalidKind"):
        medledger.registerParticipant(stranger, 0, key(5), key(6), {"from": registrar})


def test_register_participant_reverts_on_kind_outside_enum(medledger, registrar, stranger):
    with brownie.reverts():
        medledger.registerParticipant(stranger, AUDITOR + 1, key(5), key(6), {"from": registrar})
    assert medledger.participant(stranger)[0] == 0


def test_register_participant_reverts_on_zero_encryption_key(medledger, registrar, stranger):
    with assert_custom_error("RegistryInvalidEncryptionKey"):
        medledger.registerParticipant(stranger, CLINICIAN, key(5), ZERO32, {"from": registrar})


def test_register_participant_reverts_when_already_registered_even_with_other_kind(network, registrar, clinician):
    with assert_custom_error("RegistryParticipantAlreadyRegistered", clinician):
        network.registerParticipant(clinician, RESEARCHER, key(50), key(51), {"from": registrar})
    assert network.participant(clinician)[0] == CLINICIAN
    assert network.participant(clinician)[4] == key(11)


def test_patient_can_also_be_registered_as_participant(network, registrar, patient):
    network.registerParticipant(patient, CLINICIAN, key(5), key(6), {"from": registrar})
    assert network.isPatient(patient) is True
    assert network.isActiveParticipant(patient) is True
    assert network.patientEncryptionKey(patient) == key(1)


def test_rotate_participant_key_replaces_key_and_emits_event(network, clinician):
    registered_at = network.participant(clinician)[2]
    tx = network.rotateParticipantKey(key(88), {"from": clinician})

    assert tx.return_value is True
    assert_only_event(tx, "ParticipantKeyRotated", account=clinician, encryptionKey=key(88))
    assert tuple(network.participant(clinician)) == (CLINICIAN, False, registered_at, key(10), key(88))


def test_rotate_participant_key_to_same_key_returns_false_and_emits_nothing(network, clinician):
    tx = network.rotateParticipantKey(key(11), {"from": clinician})

    assert tx.return_value is False
    assert len(tx.events) == 0


def test_rotate_participant_key_reverts_when_caller_is_not_participant(network, patient, stranger):
    with assert_custom_error("RegistryParticipantNotRegistered", patient):
        network.rotateParticipantKey(key(5), {"from": patient})
    with assert_custom_error("RegistryParticipantNotRegistered", stranger):
        network.rotateParticipantKey(key(5), {"from": stranger})


def test_rotate_participant_key_reverts_on_zero_key(network, clinician):
    with assert_custom_error("RegistryInvalidEncryptionKey"):
        network.rotateParticipantKey(ZERO32, {"from": clinician})
    assert network.participant(clinician)[4] == key(11)


def test_suspended_participant_can_still_rotate_its_key(network, registrar, clinician):
    network.suspendParticipant(clinician, key(3), {"from": registrar})
    tx = network.rotateParticipantKey(key(88), {"from": clinician})
    assert tx.return_value is True
    assert network.participant(clinician)[1] is True
    assert network.participant(clinician)[4] == key(88)


# ------------------------------------------------------------------------------------------------
# Suspension and reinstatement
# ------------------------------------------------------------------------------------------------


def test_suspend_participant_marks_suspended_and_emits_event(network, registrar, clinician):
    tx = network.suspendParticipant(clinician, key(3), {"from": registrar})

    assert tx.return_value is True
    assert_only_event(tx, "ParticipantSuspended", account=clinician, registrar=registrar, reasonCode=key(3))
    assert network.participant(clinician)[1] is True
    assert network.isActiveParticipant(clinician) is False


def test_suspend_participant_twice_returns_false_and_emits_nothing(network, registrar, admin, clinician):
    network.suspendParticipant(clinician, key(3), {"from": registrar})
    tx = network.suspendParticipant(clinician, key(4), {"from": admin})

    assert tx.return_value is False
    assert len(tx.events) == 0
    assert network.isActiveParticipant(clinician) is False


def test_suspend_participant_reverts_when_not_registered(network, registrar, stranger, patient):
    with assert_custom_error("RegistryParticipantNotRegistered", stranger):
        network.suspendParticipant(stranger, key(3), {"from": registrar})
    with assert_custom_error("RegistryParticipantNotRegistered", patient):
        network.suspendParticipant(patient, key(3), {"from": registrar})


@pytest.mark.parametrize("caller_name", ["stranger", "patient", "researcher", "clinician"])
def test_suspend_participant_reverts_when_caller_is_not_registrar(network, request, clinician, role, caller_name):
    caller = request.getfixturevalue(caller_name)
    with assert_custom_error("AccessControlUnauthorizedAccount", caller, role):
        network.suspendParticipant(clinician, key(3), {"from": caller})
    assert network.isActiveParticipant(clinician) is True


def test_reinstate_participant_lifts_suspension_and_emits_event(network, registrar, admin, clinician):
    network.suspendParticipant(clinician, key(3), {"from": registrar})
    tx = network.reinstateParticipant(clinician, {"from": admin})

    assert tx.return_value is True
    assert_only_event(tx, "ParticipantReinstated", account=clinician, registrar=admin)
    assert network.participant(clinician)[1] is False
    assert network.isActiveParticipant(clinician) is True


def test_reinstate_participant_not_suspended_returns_false_and_emits_nothing(network, registrar, clinician):
    tx = network.reinstateParticipant(clinician, {"from": registrar})

    assert tx.return_value is False
    assert len(tx.events) == 0


def test_reinstate_participant_twice_returns_false_and_emits_nothing(network, registrar, clinician):
    network.suspendParticipant(clinician, key(3), {"from": registrar})
    network.reinstateParticipant(clinician, {"from": registrar})
    tx = network.reinstateParticipant(clinician, {"from": registrar})

    assert tx.return_value is False
    assert len(tx.events) == 0


def test_reinstate_participant_reverts_when_not_registered(network, registrar, stranger):
    with assert_custom_error("RegistryParticipantNotRegistered", stranger):
        network.reinstateParticipant(stranger, {"from": registrar})


@pytest.mark.parametrize("caller_name", ["stranger", "patient", "clinician"])
def test_reinstate_participant_reverts_when_caller_is_not_registrar(
    network, request, registrar, clinician, role, caller_name
):
    network.suspendParticipant(clinician, key(3), {"from": registrar})
    caller = request.getfixturevalue(caller_name)
    with assert_custom_error("AccessControlUnauthorizedAccount", caller, role):
        network.reinstateParticipant(clinician, {"from": caller})
    assert network.isActiveParticipant(clinician) is False


def test_participant_views_are_empty_for_unregistered_account(network, stranger):
    assert tuple(network.participant(stranger)) == (0, False, 0, ZERO32, ZERO32)
    assert network.isActiveParticipant(stranger) is False


# ------------------------------------------------------------------------------------------------
# REGISTRAR_ROLE through AccessControl
# ------------------------------------------------------------------------------------------------


def test_registrar_role_is_hash_of_its_name(medledger, role):
    assert role == web3.keccak(text="medledger.REGISTRAR_ROLE").to_0x_hex()


def test_deployer_holds_admin_and_registrar_roles(medledger, admin, registrar, role):
    assert medledger.hasRole(DEFAULT_ADMIN_ROLE, admin) is True
    assert medledger.hasRole(role, admin) is True
    assert medledger.hasRole(role, registrar) is True
    assert medledger.hasRole(DEFAULT_ADMIN_ROLE, registrar) is False
    assert medledger.getRoleAdmin(role) == DEFAULT_ADMIN_ROLE


def test_admin_grants_registrar_role_to_new_registrar(medledger, admin, stranger, role):
    tx = medledger.grantRole(role, stranger, {"from": admin})
    assert_only_event(tx, "RoleGranted", role=role, account=stranger, sender=admin)

    newcomer = accounts[8]
    medledger.registerParticipant(newcomer, CLINICIAN, key(5), key(6), {"from": stranger})
    assert medledger.participant(newcomer)[0] == CLINICIAN


def test_admin_revokes_registrar_role(network, admin, registrar, clinician, researcher, role):
    tx = network.revokeRole(role, registrar, {"from": admin})
    assert_only_event(tx, "RoleRevoked", role=role, account=registrar, sender=admin)

    with assert_custom_error("AccessControlUnauthorizedAccount", registrar, role):
        network.suspendParticipant(clinician, key(3), {"from": registrar})
    with assert_custom_error("AccessControlUnauthorizedAccount", registrar, role):
        network.registerParticipant(researcher, RESEARCHER, key(5), key(6), {"from": registrar})


def test_registrar_cannot_grant_registrar_role(medledger, registrar, stranger, role):
    with assert_custom_error("AccessControlUnauthorizedAccount", registrar, DEFAULT_ADMIN_ROLE):
        medledger.grantRole(role, stranger, {"from": registrar})
    assert medledger.hasRole(role, stranger) is False


def test_stranger_cannot_grant_itself_registrar_role(medledger, stranger, role):
    with assert_custom_error("AccessControlUnauthorizedAccount", stranger, DEFAULT_ADMIN_ROLE):
        medledger.grantRole(role, stranger, {"from": stranger})
    assert medledger.hasRole(role, stranger) is False


def test_registrar_cannot_revoke_another_registrar(medledger, registrar, admin, role):
    with assert_custom_error("AccessControlUnauthorizedAccount", registrar, DEFAULT_ADMIN_ROLE):
        medledger.revokeRole(role, admin, {"from": registrar})
    assert medledger.hasRole(role, admin) is True


def test_registrar_can_renounce_its_own_role(medledger, registrar, stranger, role):
    medledger.renounceRole(role, registrar, {"from": registrar})
    assert medledger.hasRole(role, registrar) is False
    with assert_custom_error("AccessControlUnauthorizedAccount", registrar, role):
        medledger.registerParticipant(stranger, CLINICIAN, key(5), key(6), {"from": registrar})
