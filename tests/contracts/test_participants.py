"""ParticipantRegistry (through the Medledger deployment): patients register themselves; organisations
and professionals are registered, suspended and reinstated by holders of REGISTRAR_ROLE."""

import brownie
import pytest
from brownie import accounts, chain, web3
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
    category_keys,
    key,
    register_patient,
)

DEFAULT_ADMIN_ROLE = ZERO32


@pytest.fixture(scope="module")
def role(medledger):
    return medledger.REGISTRAR_ROLE()


# ------------------------------------------------------------------------------------------------
# Patients
# ------------------------------------------------------------------------------------------------


UNLIMITED = 2**64 - 1


def assert_registered_keys(tx, who, encryption_key, keys, first_event, epoch, by) -> None:
    """`tx` emitted, from event `first_event` on, one CategoryKeyRotated per category at `epoch`."""
    rotated = tx.events["CategoryKeyRotated"]
    assert len(rotated) == 13
    for category, event in enumerate(rotated):
        assert dict(event) == {
            "patient": who,
            "category": category,
            "epoch": epoch,
            "publicKey": keys[category],
            "by": by,
        }
    assert list(tx.events.keys()) == [first_event, "CategoryKeyRotated"]


def test_register_patient_records_keys_and_emits_events(medledger, stranger):
    tx = register_patient(medledger, stranger, 42)

    assert dict(tx.events["PatientRegistered"][0]) == {"patient": stranger, "encryptionKey": key(42)}
    assert_registered_keys(tx, stranger, key(42), category_keys(42), "PatientRegistered", 1, stranger)
    assert medledger.isPatient(stranger) is True
    assert medledger.patientEncryptionKey(stranger) == key(42)
    for category in range(13):
        assert tuple(medledger.categoryKey(stranger, category)) == (category_keys(42)[category], 1, UNLIMITED)


def test_register_patient_reverts_when_already_registered(network, patient):
    with assert_custom_error("RegistryPatientAlreadyRegistered", patient):
        register_patient(network, patient, 99)
    assert network.patientEncryptionKey(patient) == key(1)
    assert network.categoryKey(patient, 0)[0] == category_keys(1)[0]


def test_register_patient_reverts_on_zero_key(medledger, stranger):
    with assert_custom_error("RegistryInvalidEncryptionKey"):
        medledger.registerPatient(ZERO32, category_keys(42), {"from": stranger})
    assert medledger.isPatient(stranger) is False


@pytest.mark.parametrize("category", [0, 7, 12])
def test_register_patient_reverts_on_zero_category_key(medledger, stranger, category):
    keys = category_keys(42)
    keys[category] = ZERO32
    with assert_custom_error("RegistryInvalidCategoryKey", category):
        medledger.registerPatient(key(42), keys, {"from": stranger})
    assert medledger.isPatient(stranger) is False
    assert tuple(medledger.categoryKey(stranger, 0)) == (ZERO32, 0, 0)


def test_register_patient_registers_only_the_caller(network, patient, stranger):
    """Nobody can register someone else as a patient: the registered account is always msg.sender."""
    register_patient(network, stranger, 42)
    assert network.patientEncryptionKey(patient) == key(1)
    assert network.patientEncryptionKey(stranger) == key(42)
    assert network.categoryKey(patient, 3)[0] == category_keys(1)[3]


def test_patient_views_are_empty_for_unregistered_account(network, stranger):
    assert network.isPatient(stranger) is False
    assert network.patientEncryptionKey(stranger) == ZERO32
    assert tuple(network.categoryKey(stranger, 12)) == (ZERO32, 0, 0)


@pytest.mark.parametrize("category", [13, 255])
def test_category_key_of_unknown_category_reverts(network, patient, category):
    with assert_custom_error("RegistryUnknownCategory", category):
        network.categoryKey(patient, category)


def test_patient_is_not_a_participant(network, patient):
    assert network.isActiveParticipant(patient) is False
    assert tuple(network.participant(patient)) == (0, False, 0, ZERO32, ZERO32)


def test_rotate_patient_key_replaces_key_and_rotates_every_category_key(network, patient):
    tx = network.rotatePatientKey(key(77), category_keys(77), {"from": patient})

    assert dict(tx.events["PatientKeyRotated"][0]) == {"patient": patient, "encryptionKey": key(77)}
    assert_registered_keys(tx, patient, key(77), category_keys(77), "PatientKeyRotated", 2, patient)
    assert network.patientEncryptionKey(patient) == key(77)
    for category in range(13):
        assert tuple(network.categoryKey(patient, category)) == (category_keys(77)[category], 2, UNLIMITED)


def test_rotate_patient_key_refreshes_stale_category_keys(network, patient, clinician):
    """Whoever held the old encryption key held the category secrets: nothing old stays current."""
    network.grant(
        patient, clinician, 0, (1 << 3, 1, 0, web3.eth.get_block("latest").timestamp + 3600), key(9), {"from": patient}
    )
    network.revoke(patient, clinician, 0, {"from": patient})
    assert network.categoryKey(patient, 3)[2] <= web3.eth.get_block("latest").timestamp  # stale
    network.rotatePatientKey(key(77), category_keys(77), {"from": patient})
    assert tuple(network.categoryKey(patient, 3)) == (category_keys(77)[3], 2, UNLIMITED)


def test_rotate_patient_key_to_same_key_reverts(network, patient):
    with assert_custom_error("RegistryInvalidEncryptionKey"):
        network.rotatePatientKey(key(1), category_keys(77), {"from": patient})
    assert network.patientEncryptionKey(patient) == key(1)
    assert network.categoryKey(patient, 0)[1] == 1


def test_rotate_patient_key_to_a_current_category_key_reverts(network, patient):
    keys = category_keys(77)
    keys[5] = category_keys(1)[5]
    with assert_custom_error("RegistryInvalidCategoryKey", 5):
        network.rotatePatientKey(key(77), keys, {"from": patient})
    assert network.patientEncryptionKey(patient) == key(1)


def test_rotate_patient_key_reverts_when_caller_is_not_patient(network, stranger, clinician):
    with assert_custom_error("RegistryPatientNotRegistered", stranger):
        network.rotatePatientKey(key(5), category_keys(5), {"from": stranger})
    with assert_custom_error("RegistryPatientNotRegistered", clinician):
        network.rotatePatientKey(key(5), category_keys(5), {"from": clinician})


def test_rotate_patient_key_reverts_on_zero_key(network, patient):
    with assert_custom_error("RegistryInvalidEncryptionKey"):
        network.rotatePatientKey(ZERO32, category_keys(5), {"from": patient})
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
    assert medledger.defaultAdmin() == admin
    assert medledger.hasRole(role, admin) is True
    assert medledger.hasRole(role, registrar) is True
    assert medledger.hasRole(DEFAULT_ADMIN_ROLE, registrar) is False
    assert medledger.getRoleAdmin(role) == DEFAULT_ADMIN_ROLE


def test_admin_transfer_takes_two_steps_and_the_delay(medledger, admin, stranger):
    assert medledger.ADMIN_TRANSFER_DELAY() == 3 * 24 * 3600
    assert medledger.defaultAdminDelay() == 3 * 24 * 3600
    tx = medledger.beginDefaultAdminTransfer(stranger, {"from": admin})
    schedule = tx.timestamp + 3 * 24 * 3600
    assert tuple(medledger.pendingDefaultAdmin()) == (stranger, schedule)
    with assert_custom_error("AccessControlEnforcedDefaultAdminDelay", schedule):
        medledger.acceptDefaultAdminTransfer({"from": stranger})
    chain.sleep(3 * 24 * 3600 + 1)
    medledger.acceptDefaultAdminTransfer({"from": stranger})
    assert medledger.defaultAdmin() == stranger
    assert medledger.hasRole(DEFAULT_ADMIN_ROLE, admin) is False


def test_admin_role_cannot_be_granted_directly(medledger, admin, stranger):
    with assert_custom_error("AccessControlEnforcedDefaultAdminRules"):
        medledger.grantRole(DEFAULT_ADMIN_ROLE, stranger, {"from": admin})
    assert medledger.hasRole(DEFAULT_ADMIN_ROLE, stranger) is False


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


# ------------------------------------------------------------------------------------------------
# ERC-165
# ------------------------------------------------------------------------------------------------


def _own_interface_id(abi: list, *inherited: list) -> str:
    """type(I).interfaceId: the XOR of the selectors of the functions I declares itself."""

    def selectors(entries):
        return {
            web3.keccak(text=f"{e['name']}({','.join(_type(i) for i in e['inputs'])})")[:4]
            for e in entries
            if e["type"] == "function"
        }

    own = selectors(abi) - set().union(*(selectors(a) for a in inherited)) - {web3.keccak(text="eip712Domain()")[:4]}
    value = 0
    for selector in own:
        value ^= int.from_bytes(selector, "big")
    return "0x" + value.to_bytes(4, "big").hex()


def _type(parameter: dict) -> str:
    """The canonical type of an ABI parameter (tuples spelled out, with any array suffix)."""
    if not parameter["type"].startswith("tuple"):
        return parameter["type"]
    inner = ",".join(_type(c) for c in parameter["components"])
    return f"({inner})" + parameter["type"][len("tuple") :]


def test_supports_the_three_medledger_interfaces_and_access_control(medledger):
    from brownie import interface

    registry = _own_interface_id(interface.IParticipantRegistry.abi)
    consent = _own_interface_id(interface.IConsentManager.abi, interface.IParticipantRegistry.abi)
    records = _own_interface_id(interface.IRecordRegistry.abi)
    for interface_id in (registry, consent, records, "0x01ffc9a7", "0x7965db0b", "0x31498786"):
        assert medledger.supportsInterface(interface_id) is True, interface_id
    assert medledger.supportsInterface("0xffffffff") is False
    assert medledger.supportsInterface("0x12345678") is False


def test_consent_manager_lookup_is_gone(medledger):
    """The deployment is its own consent manager; a `consentManager()` that returned `this` was removed."""
    assert not hasattr(medledger, "consentManager")
