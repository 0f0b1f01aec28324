"""ConsentManager (through the Medledger deployment): grants and revocations, access checks, delegates,
emergency access and key distribution pointers."""

import brownie
import pytest
from brownie import chain
from conftest import (
    ALLERGIES,
    CARE_PROVIDER,
    COMMERCIAL,
    COMMISSIONING,
    CONDITIONS,
    DAY,
    DELEGATE_BOUNDS,
    DEMOGRAPHICS,
    DIRECT_CARE,
    DOCUMENTS,
    EMERGENCY,
    FAMILY_CARE,
    GENOMICS,
    IMAGING,
    MEDICATIONS,
    MENTAL_HEALTH,
    READ,
    RESEARCH,
    WRITE,
    ZERO,
    ZERO32,
    assert_custom_error,
    assert_only_event,
    consent_terms,
    custom_error_message,
    key,
    mask,
    mine_at,
    now,
    register_patient,
    terms,
)

ALL_CATEGORIES = (1 << 13) - 1
ALL_PURPOSES = (1 << 6) - 1
MAX_WINDOW = 24 * 3600
HOUR = 3600

CARE = mask(ALLERGIES, MEDICATIONS)  # what the clinician's usual consent covers
BOUNDS = DELEGATE_BOUNDS


@pytest.fixture
def granted(network, patient, clinician):
    """The clinician holds a read consent for allergies and medications, direct care, for 30 days."""
    t = terms(CARE, mask(DIRECT_CARE))
    network.grant(patient, clinician, READ, t, key(100), {"from": patient})
    return t


def assert_granted(tx, patient, grantee, access, t, envelope, by, delegation=0) -> None:
    """`tx` emitted exactly one ConsentGranted with these arguments (`t` is the Consent tuple)."""
    assert_only_event(
        tx,
        "ConsentGranted",
        patient=patient,
        grantee=grantee,
        access=access,
        categories=t[0],
        purposes=t[1],
        start=t[2],
        expiry=t[3],
        keyEnvelope=envelope,
        by=by,
        delegation=delegation,
    )


@pytest.fixture
def emergency(network, patient, clinician):
    """The clinician opened a one-hour emergency access. Returns its expiry."""
    tx = network.openEmergencyAccess(patient, HOUR, key(500), {"from": clinician})
    return tx.return_value


# =================================================================================================
# grant
# =================================================================================================


def test_grant_new_consent_stores_terms_and_emits_event(network, patient, clinician):
    t = terms(CARE, mask(DIRECT_CARE, RESEARCH))
    tx = network.grant(patient, clinician, READ, t, key(100), {"from": patient})

    assert tx.return_value is True
    assert_granted(tx, patient, clinician, READ, t, key(100), by=patient)
    # (terms, updatedAt = the decision's time, made by the patient (delegation 0), keys released)
    assert tuple(network.consent(patient, clinician, READ)) == (*t, tx.timestamp, 0, True)
    assert tuple(network.consent(patient, clinician, WRITE)) == (0, 0, 0, 0, 0, 0, False)


def test_grant_widening_consent_emits_event_with_new_terms(network, patient, clinician, granted):
    wider = (granted[0] | mask(IMAGING), granted[1] | mask(RESEARCH), 0, granted[3] + DAY)
    tx = network.grant(patient, clinician, READ, wider, ZERO32, {"from": patient})

    assert tx.return_value is True
    assert_only_event(
        tx,
        "ConsentGranted",
        patient=patient,
        grantee=clinician,
        access=READ,
        categories=wider[0],
        purposes=wider[1],
        start=0,
        expiry=wider[3],
        keyEnvelope=ZERO32,
        by=patient,
        delegation=0,
    )
    assert consent_terms(network, patient, clinician, READ) == wider
    assert network.isPermitted(patient, clinician, READ, IMAGING, RESEARCH) is True


def test_grant_narrowing_consent_emits_event_and_takes_effect(network, patient, clinician, granted):
    narrower = (mask(ALLERGIES), granted[1], granted[2], granted[3])
    tx = network.grant(patient, clinician, READ, narrower, ZERO32, {"from": patient})

    assert tx.return_value is True
    assert tx.events["ConsentGranted"]["categories"] == mask(ALLERGIES)
    assert consent_terms(network, patient, clinician, READ) == narrower
    assert network.isPermitted(patient, clinician, READ, ALLERGIES, DIRECT_CARE) is True
    with assert_custom_error("ConsentCategoryNotCovered", patient, clinician, MEDICATIONS):
        network.checkAccess(patient, clinician, READ, MEDICATIONS, DIRECT_CARE)


def test_grant_changing_only_expiry_emits_event(network, patient, clinician, granted):
    tx = network.grant(patient, clinician, READ, (*granted[:3], granted[3] - DAY), ZERO32, {"from": patient})
    assert tx.return_value is True
    assert tx.events["ConsentGranted"]["expiry"] == granted[3] - DAY


def test_grant_identical_terms_returns_false_and_emits_nothing(network, patient, clinician, granted):
    tx = network.grant(patient, clinician, READ, granted, key(100), {"from": patient})

    assert tx.return_value is False
    assert len(tx.events) == 0
    assert "ConsentGranted" not in tx.events
    assert consent_terms(network, patient, clinician, READ) == granted


def test_grant_identical_terms_with_new_key_envelope_emits_nothing(network, patient, clinician, granted):
    """The envelope is not part of the terms: re-sending it needs publishKeyEnvelope."""
    tx = network.grant(patient, clinician, READ, granted, key(101), {"from": patient})
    assert tx.return_value is False
    assert len(tx.events) == 0


@pytest.mark.parametrize("caller_name", ["stranger", "clinician", "delegate", "researcher"])
def test_grant_reverts_when_caller_is_not_patient(network, request, patient, clinician, caller_name):
    caller = request.getfixturevalue(caller_name)
    with assert_custom_error("ConsentUnauthorized", caller, patient):
        network.grant(patient, clinician, READ, terms(CARE, mask(DIRECT_CARE)), ZERO32, {"from": caller})
    assert consent_terms(network, patient, clinician, READ) == (0, 0, 0, 0)


@pytest.mark.parametrize("categories", [0, 1 << 13, 1 << 15, ALL_CATEGORIES + 1, 0xFFFF])
def test_grant_reverts_on_invalid_categories(network, patient, clinician, categories):
    with assert_custom_error("ConsentInvalidCategories", categories):
        network.grant(patient, clinician, READ, terms(categories, mask(DIRECT_CARE)), ZERO32, {"from": patient})


def test_grant_accepts_every_known_category_and_purpose(network, patient, clinician):
    network.grant(patient, clinician, WRITE, terms(ALL_CATEGORIES, ALL_PURPOSES), ZERO32, {"from": patient})
    assert network.isPermitted(patient, clinician, WRITE, DOCUMENTS, EMERGENCY) is True


@pytest.mark.parametrize("purposes", [0, 1 << 6, mask(DIRECT_CARE) | (1 << 6), mask(DIRECT_CARE) | (1 << 15), 0xFFFF])
def test_grant_reverts_on_invalid_purposes(network, patient, clinician, purposes):
    with assert_custom_error("ConsentInvalidPurposes", purposes):
        network.grant(patient, clinician, READ, terms(CARE, purposes), ZERO32, {"from": patient})


def test_grant_reverts_when_expiry_not_after_start(network, patient, clinician):
    start = chain.time() + DAY
    with pytest.raises(brownie.exceptions.VirtualMachineError) as info:
        network.grant(patient, clinician, READ, (CARE, mask(DIRECT_CARE), start, start), ZERO32, {"from": patient})
    at = brownie.history[-1].timestamp
    assert info.value.revert_msg == custom_error_message("ConsentInvalidWindow", start, start, at)


def test_grant_reverts_when_expiry_already_passed(network, patient, clinician):
    expiry = now() - 10
    with pytest.raises(brownie.exceptions.VirtualMachineError) as info:
        network.grant(patient, clinician, READ, (CARE, mask(DIRECT_CARE), 0, expiry), ZERO32, {"from": patient})
    at = brownie.history[-1].timestamp
    assert info.value.revert_msg == custom_error_message("ConsentInvalidWindow", 0, expiry, at)


def test_grant_reverts_when_expiry_is_now(network, patient, clinician):
    at = now()
    with assert_custom_error("ConsentInvalidWindow", 0, at, at):
        network.grant.call(patient, clinician, READ, (CARE, mask(DIRECT_CARE), 0, at), ZERO32, {"from": patient})
    assert (
        network.grant.call(patient, clinician, READ, (CARE, mask(DIRECT_CARE), 0, at + 1), ZERO32, {"from": patient})
        is True
    )


def test_grant_reverts_on_self_grant(network, registrar, patient):
    # Even a patient who is also a registered participant cannot grant to itself.
    network.registerParticipant(patient, CARE_PROVIDER, key(5), key(6), {"from": registrar})
    with assert_custom_error("ConsentSelfGrant", patient):
        network.grant(patient, patient, READ, terms(CARE, mask(DIRECT_CARE)), ZERO32, {"from": patient})


def test_grant_reverts_when_patient_not_registered(network, stranger, clinician):
    with assert_custom_error("RegistryPatientNotRegistered", stranger):
        network.grant(stranger, clinician, READ, terms(CARE, mask(DIRECT_CARE)), ZERO32, {"from": stranger})


@pytest.mark.parametrize("grantee_name", ["stranger", "delegate"])
def test_grant_reverts_when_grantee_not_registered_participant(network, request, patient, grantee_name):
    grantee = request.getfixturevalue(grantee_name)  # delegate is a patient, not a participant
    with assert_custom_error("RegistryParticipantNotRegistered", grantee):
        network.grant(patient, grantee, READ, terms(CARE, mask(DIRECT_CARE)), ZERO32, {"from": patient})


def test_grant_reverts_when_grantee_suspended(network, registrar, patient, clinician):
    network.suspendParticipant(clinician, key(3), {"from": registrar})
    with assert_custom_error("RegistryParticipantSuspended", clinician):
        network.grant(patient, clinician, READ, terms(CARE, mask(DIRECT_CARE)), ZERO32, {"from": patient})


def test_grant_with_future_start_is_stored_but_not_yet_valid(network, patient, clinician):
    start = chain.time() + DAY
    t = (CARE, mask(DIRECT_CARE), start, start + DAY)
    tx = network.grant(patient, clinician, READ, t, ZERO32, {"from": patient})
    assert tx.events["ConsentGranted"]["start"] == start
    with assert_custom_error("ConsentNotYetValid", patient, clinician, start):
        network.checkAccess(patient, clinician, READ, ALLERGIES, DIRECT_CARE)


# =================================================================================================
# revoke
# =================================================================================================


def test_revoke_leaves_a_tombstone_and_emits_event(network, patient, clinician, granted):
    assert network.isPermitted(patient, clinician, READ, ALLERGIES, DIRECT_CARE) is True
    tx = network.revoke(patient, clinician, READ, {"from": patient})

    assert tx.return_value is True
    assert_only_event(tx, "ConsentRevoked", patient=patient, grantee=clinician, access=READ, by=patient)
    # Zero terms, but the time of the decision stays: no older signed grant can bring the consent back.
    assert tuple(network.consent(patient, clinician, READ)) == (0, 0, 0, 0, tx.timestamp, 0, False)


def test_revoke_takes_effect_immediately(network, patient, clinician, granted):
    network.revoke(patient, clinician, READ, {"from": patient})
    assert network.isPermitted(patient, clinician, READ, ALLERGIES, DIRECT_CARE) is False
    with assert_custom_error("ConsentNotFound", patient, clinician, READ):
        network.checkAccess(patient, clinician, READ, ALLERGIES, DIRECT_CARE)


def test_revoke_twice_returns_false_and_emits_nothing(network, patient, clinician, granted):
    network.revoke(patient, clinician, READ, {"from": patient})
    tx = network.revoke(patient, clinician, READ, {"from": patient})

    assert tx.return_value is False
    assert len(tx.events) == 0


def test_revoke_without_consent_returns_false_and_emits_nothing(network, patient, clinician):
    tx = network.revoke(patient, clinician, WRITE, {"from": patient})
    assert tx.return_value is False
    assert len(tx.events) == 0


@pytest.mark.parametrize("caller_name", ["stranger", "clinician", "delegate"])
def test_revoke_reverts_when_caller_is_not_patient(network, request, patient, clinician, granted, caller_name):
    caller = request.getfixturevalue(caller_name)
    with assert_custom_error("ConsentUnauthorized", caller, patient):
        network.revoke(patient, clinician, READ, {"from": caller})
    assert consent_terms(network, patient, clinician, READ) == granted


def test_revoke_works_for_suspended_grantee(network, registrar, patient, clinician, granted):
    network.suspendParticipant(clinician, key(3), {"from": registrar})
    tx = network.revoke(patient, clinician, READ, {"from": patient})
    assert tx.return_value is True
    network.reinstateParticipant(clinician, {"from": registrar})
    assert network.isPermitted(patient, clinician, READ, ALLERGIES, DIRECT_CARE) is False


def test_revoke_of_expired_consent_clears_it(network, patient, clinician):
    t = terms(CARE, mask(DIRECT_CARE), expiry=chain.time() + HOUR)
    network.grant(patient, clinician, READ, t, ZERO32, {"from": patient})
    chain.sleep(2 * HOUR)
    tx = network.revoke(patient, clinician, READ, {"from": patient})
    assert tx.return_value is True
    assert consent_terms(network, patient, clinician, READ) == (0, 0, 0, 0)


def test_revoke_by_unregistered_patient_reverts(network, stranger, clinician):
    with assert_custom_error("RegistryPatientNotRegistered", stranger):
        network.revoke(stranger, clinician, READ, {"from": stranger})


# =================================================================================================
# isPermitted / checkAccess
# =================================================================================================


@pytest.mark.parametrize("access", [READ, WRITE])
def test_patient_is_always_permitted_on_own_data(network, patient, access):
    for category, purpose in [(DEMOGRAPHICS, DIRECT_CARE), (GENOMICS, COMMERCIAL), (DOCUMENTS, EMERGENCY)]:
        assert network.isPermitted(patient, patient, access, category, purpose) is True
        assert network.checkAccess(patient, patient, access, category, purpose) is False


def test_unregistered_patient_is_not_permitted_on_own_data(network, stranger):
    assert network.isPermitted(stranger, stranger, READ, ALLERGIES, DIRECT_CARE) is False
    with assert_custom_error("RegistryPatientNotRegistered", stranger):
        network.checkAccess(stranger, stranger, READ, ALLERGIES, DIRECT_CARE)


def test_live_consent_permits_covered_category_and_purpose(network, patient, clinician, granted):
    for category in (ALLERGIES, MEDICATIONS):
        assert network.isPermitted(patient, clinician, READ, category, DIRECT_CARE) is True
        assert network.checkAccess(patient, clinician, READ, category, DIRECT_CARE) is False


def test_consent_not_yet_valid_until_start(network, patient, clinician):
    start = chain.time() + DAY
    network.grant(patient, clinician, READ, (CARE, mask(DIRECT_CARE), start, start + DAY), ZERO32, {"from": patient})

    assert network.isPermitted(patient, clinician, READ, ALLERGIES, DIRECT_CARE) is False
    with assert_custom_error("ConsentNotYetValid", patient, clinician, start):
        network.checkAccess(patient, clinician, READ, ALLERGIES, DIRECT_CARE)

    mine_at(start - 1)
    with assert_custom_error("ConsentNotYetValid", patient, clinician, start):
        network.checkAccess(patient, clinician, READ, ALLERGIES, DIRECT_CARE)
    mine_at(start)
    assert network.isPermitted(patient, clinician, READ, ALLERGIES, DIRECT_CARE) is True
    assert network.checkAccess(patient, clinician, READ, ALLERGIES, DIRECT_CARE) is False


def test_consent_expires_at_expiry(network, patient, clinician):
    expiry = chain.time() + HOUR
    network.grant(patient, clinician, READ, (CARE, mask(DIRECT_CARE), 0, expiry), ZERO32, {"from": patient})

    mine_at(expiry - 1)
    assert network.isPermitted(patient, clinician, READ, ALLERGIES, DIRECT_CARE) is True
    mine_at(expiry)
    assert network.isPermitted(patient, clinician, READ, ALLERGIES, DIRECT_CARE) is False
    with assert_custom_error("ConsentExpired", patient, clinician, expiry):
        network.checkAccess(patient, clinician, READ, ALLERGIES, DIRECT_CARE)


def test_consent_expired_after_sleep(network, patient, clinician, granted):
    chain.sleep(31 * DAY)
    chain.mine()
    assert network.isPermitted(patient, clinician, READ, ALLERGIES, DIRECT_CARE) is False
    with assert_custom_error("ConsentExpired", patient, clinician, granted[3]):
        network.checkAccess(patient, clinician, READ, ALLERGIES, DIRECT_CARE)


def test_consent_does_not_cover_other_category(network, patient, clinician, granted):
    assert network.isPermitted(patient, clinician, READ, MENTAL_HEALTH, DIRECT_CARE) is False
    with assert_custom_error("ConsentCategoryNotCovered", patient, clinician, MENTAL_HEALTH):
        network.checkAccess(patient, clinician, READ, MENTAL_HEALTH, DIRECT_CARE)


def test_consent_does_not_cover_other_purpose(network, patient, clinician, granted):
    assert network.isPermitted(patient, clinician, READ, ALLERGIES, RESEARCH) is False
    with assert_custom_error("ConsentPurposeNotCovered", patient, clinician, RESEARCH):
        network.checkAccess(patient, clinician, READ, ALLERGIES, RESEARCH)


def test_missing_consent_is_not_found(network, patient, researcher):
    assert network.isPermitted(patient, researcher, READ, ALLERGIES, RESEARCH) is False
    with assert_custom_error("ConsentNotFound", patient, researcher, READ):
        network.checkAccess(patient, researcher, READ, ALLERGIES, RESEARCH)


def test_stranger_without_consent_is_not_found(network, patient, stranger):
    with assert_custom_error("ConsentNotFound", patient, stranger, WRITE):
        network.checkAccess(patient, stranger, WRITE, ALLERGIES, DIRECT_CARE)


def test_consent_of_suspended_grantee_stops_working_until_reinstated(network, registrar, patient, clinician, granted):
    network.suspendParticipant(clinician, key(3), {"from": registrar})
    assert network.isPermitted(patient, clinician, READ, ALLERGIES, DIRECT_CARE) is False
    with assert_custom_error("RegistryParticipantSuspended", clinician):
        network.checkAccess(patient, clinician, READ, ALLERGIES, DIRECT_CARE)
    assert consent_terms(network, patient, clinician, READ) == granted  # kept, merely inactive

    network.reinstateParticipant(clinician, {"from": registrar})
    assert network.isPermitted(patient, clinician, READ, ALLERGIES, DIRECT_CARE) is True
    assert network.checkAccess(patient, clinician, READ, ALLERGIES, DIRECT_CARE) is False


@pytest.mark.parametrize(
    "category, purpose", [(13, DIRECT_CARE), (ALLERGIES, 6), (255, 255), (13, 6), (ALLERGIES, 255)]
)
def test_unknown_codes_are_refused(network, patient, clinician, category, purpose):
    network.grant(patient, clinician, READ, terms(ALL_CATEGORIES, ALL_PURPOSES), ZERO32, {"from": patient})
    for accessor in (patient, clinician):
        assert network.isPermitted(patient, accessor, READ, category, purpose) is False
        with assert_custom_error("ConsentUnknownCode", category, purpose):
            network.checkAccess(patient, accessor, READ, category, purpose)


def test_read_and_write_consents_are_independent(network, patient, clinician, granted):
    assert network.isPermitted(patient, clinician, WRITE, ALLERGIES, DIRECT_CARE) is False
    with assert_custom_error("ConsentNotFound", patient, clinician, WRITE):
        network.checkAccess(patient, clinician, WRITE, ALLERGIES, DIRECT_CARE)

    write_terms = terms(mask(CONDITIONS), mask(DIRECT_CARE))
    network.grant(patient, clinician, WRITE, write_terms, ZERO32, {"from": patient})
    assert network.isPermitted(patient, clinician, WRITE, CONDITIONS, DIRECT_CARE) is True
    assert network.isPermitted(patient, clinician, WRITE, ALLERGIES, DIRECT_CARE) is False
    assert network.isPermitted(patient, clinician, READ, CONDITIONS, DIRECT_CARE) is False
    assert consent_terms(network, patient, clinician, READ) == granted

    network.revoke(patient, clinician, READ, {"from": patient})
    assert network.isPermitted(patient, clinician, WRITE, CONDITIONS, DIRECT_CARE) is True
    assert consent_terms(network, patient, clinician, WRITE) == write_terms


def test_consent_to_one_grantee_does_not_extend_to_another(network, patient, clinician, researcher, granted):
    with assert_custom_error("ConsentNotFound", patient, researcher, READ):
        network.checkAccess(patient, researcher, READ, ALLERGIES, DIRECT_CARE)


# =================================================================================================
# Delegation
# =================================================================================================


def test_appoint_delegate_stores_bounds_and_emits_event(network, patient, delegate):
    expiry = chain.time() + 10 * DAY
    tx = network.appointDelegate(delegate, BOUNDS, expiry, {"from": patient})

    assert tx.return_value is True
    assert_only_event(
        tx, "DelegateAppointed", patient=patient, delegate=delegate, id=1, categories=BOUNDS, expiry=expiry
    )
    assert tuple(network.delegation(patient, delegate)) == (1, delegate, BOUNDS, expiry)
    assert tuple(network.delegationById(patient, 1)) == (1, delegate, BOUNDS, expiry)
    assert network.isDelegate(patient, delegate, BOUNDS) is True
    assert network.isDelegate(patient, delegate, mask(ALLERGIES)) is True
    assert network.isDelegate(patient, delegate, mask(ALLERGIES, GENOMICS)) is False


def test_appoint_delegate_changes_bounds_with_event(network, patient, delegate, appointed):
    tx = network.appointDelegate(delegate, mask(ALLERGIES), appointed + DAY, {"from": patient})

    assert tx.return_value is True
    assert_only_event(
        tx,
        "DelegateAppointed",
        patient=patient,
        delegate=delegate,
        id=1,
        categories=mask(ALLERGIES),
        expiry=appointed + DAY,
    )
    assert tuple(network.delegation(patient, delegate)) == (1, delegate, mask(ALLERGIES), appointed + DAY)
    assert network.isDelegate(patient, delegate, mask(MEDICATIONS)) is False


def test_appoint_delegate_with_same_bounds_returns_false_and_emits_nothing(network, patient, delegate, appointed):
    tx = network.appointDelegate(delegate, BOUNDS, appointed, {"from": patient})
    assert tx.return_value is False
    assert len(tx.events) == 0


@pytest.mark.parametrize("who", ["zero", "self", "stranger", "clinician"])
def test_appoint_delegate_reverts_on_invalid_delegate(network, request, patient, who):
    target = {"zero": ZERO, "self": patient}.get(who) or request.getfixturevalue(who)
    with assert_custom_error("DelegationInvalidDelegate", patient, target):
        network.appointDelegate(target, BOUNDS, chain.time() + DAY, {"from": patient})


@pytest.mark.parametrize("categories", [0, 1 << 13, 0xFFFF])
def test_appoint_delegate_reverts_on_invalid_categories(network, patient, delegate, categories):
    with assert_custom_error("ConsentInvalidCategories", categories):
        network.appointDelegate(delegate, categories, chain.time() + DAY, {"from": patient})


def test_appoint_delegate_reverts_on_past_expiry(network, patient, delegate):
    with assert_custom_error("DelegationInvalidExpiry", 0):
        network.appointDelegate(delegate, BOUNDS, 0, {"from": patient})
    past = now() - 1
    with assert_custom_error("DelegationInvalidExpiry", past):
        network.appointDelegate(delegate, BOUNDS, past, {"from": patient})


def test_appoint_delegate_reverts_on_expiry_now(network, patient, delegate):
    at = now()
    with assert_custom_error("DelegationInvalidExpiry", at):
        network.appointDelegate.call(delegate, BOUNDS, at, {"from": patient})


def test_appoint_delegate_reverts_when_caller_is_not_patient(network, stranger, clinician, delegate):
    for caller in (stranger, clinician):
        with assert_custom_error("RegistryPatientNotRegistered", caller):
            network.appointDelegate(delegate, BOUNDS, chain.time() + DAY, {"from": caller})


def test_delegate_appointing_appoints_for_its_own_account_not_the_patients(
    network, patient, delegate, stranger, appointed
):
    register_patient(network, stranger, 3)
    tx = network.appointDelegate(stranger, mask(ALLERGIES), appointed, {"from": delegate})

    assert_only_event(
        tx,
        "DelegateAppointed",
        patient=delegate,
        delegate=stranger,
        id=1,
        categories=mask(ALLERGIES),
        expiry=appointed,
    )
    assert tuple(network.delegation(patient, stranger)) == (0, ZERO, 0, 0)
    assert network.isDelegate(patient, stranger, mask(ALLERGIES)) is False
    with assert_custom_error("ConsentUnauthorized", stranger, patient):
        network.revoke(patient, ZERO, READ, {"from": stranger})


def test_remove_delegate_deletes_delegation_and_emits_event(network, patient, delegate, clinician, appointed):
    tx = network.removeDelegate(delegate, {"from": patient})

    assert tx.return_value is True
    assert_only_event(tx, "DelegateRemoved", patient=patient, delegate=delegate, id=1)
    assert tuple(network.delegation(patient, delegate)) == (0, ZERO, 0, 0)
    assert tuple(network.delegationById(patient, 1)) == (0, ZERO, 0, 0)
    assert network.isDelegate(patient, delegate, mask(ALLERGIES)) is False
    with assert_custom_error("ConsentUnauthorized", delegate, patient):
        network.grant(patient, clinician, READ, terms(mask(ALLERGIES), mask(DIRECT_CARE)), ZERO32, {"from": delegate})


def test_remove_delegate_twice_returns_false_and_emits_nothing(network, patient, delegate, appointed):
    network.removeDelegate(delegate, {"from": patient})
    tx = network.removeDelegate(delegate, {"from": patient})
    assert tx.return_value is False
    assert len(tx.events) == 0


def test_remove_delegate_never_appointed_returns_false_and_emits_nothing(network, patient, delegate):
    tx = network.removeDelegate(delegate, {"from": patient})
    assert tx.return_value is False
    assert len(tx.events) == 0


@pytest.mark.parametrize("caller_name", ["stranger", "delegate", "clinician"])
def test_remove_delegate_by_other_caller_leaves_patients_delegation(
    network, request, patient, delegate, appointed, caller_name
):
    caller = request.getfixturevalue(caller_name)
    tx = network.removeDelegate(delegate, {"from": caller})
    assert tx.return_value is False
    assert len(tx.events) == 0
    assert tuple(network.delegation(patient, delegate)) == (1, delegate, BOUNDS, appointed)


def test_delegate_grants_within_bounds(network, patient, delegate, clinician, appointed):
    t = terms(mask(ALLERGIES, CONDITIONS), mask(DIRECT_CARE))
    tx = network.grant(patient, clinician, WRITE, t, ZERO32, {"from": delegate})

    assert tx.return_value is True
    assert_granted(tx, patient, clinician, WRITE, t, ZERO32, by=delegate, delegation=1)
    assert tuple(network.consent(patient, clinician, WRITE)) == (*t, tx.timestamp, 1, False)
    assert network.isPermitted(patient, clinician, WRITE, CONDITIONS, DIRECT_CARE) is True


@pytest.mark.parametrize("caller_name", ["patient", "delegate"])
def test_write_grant_with_key_envelope_reverts(network, request, patient, clinician, appointed, caller_name):
    """Writers seal to public keys; an envelope of secret keys to a writer would escape key tracking."""
    caller = request.getfixturevalue(caller_name)
    with assert_custom_error("ConsentEnvelopeForWrite", clinician):
        network.grant(patient, clinician, WRITE, terms(mask(ALLERGIES), mask(DIRECT_CARE)), key(7), {"from": caller})


def test_delegate_revokes_within_bounds(network, patient, delegate, clinician, granted, appointed):
    tx = network.revoke(patient, clinician, READ, {"from": delegate})

    assert tx.return_value is True
    assert_only_event(tx, "ConsentRevoked", patient=patient, grantee=clinician, access=READ, by=delegate)
    assert network.isPermitted(patient, clinician, READ, ALLERGIES, DIRECT_CARE) is False


def test_delegate_repeat_revoke_emits_nothing(network, patient, delegate, clinician, granted, appointed):
    network.revoke(patient, clinician, READ, {"from": delegate})
    tx = network.revoke(patient, clinician, READ, {"from": delegate})
    assert tx.return_value is False
    assert len(tx.events) == 0


def test_delegate_grant_outside_bounds_reverts(network, patient, delegate, clinician, appointed):
    requested = mask(ALLERGIES, MENTAL_HEALTH)
    with assert_custom_error("ConsentDelegateOutOfBounds", delegate, BOUNDS, requested):
        network.grant(patient, clinician, READ, terms(requested, mask(DIRECT_CARE)), ZERO32, {"from": delegate})


def test_delegate_revoke_of_consent_outside_bounds_reverts(network, patient, delegate, clinician, appointed):
    wide = mask(ALLERGIES, GENOMICS)
    network.grant(patient, clinician, READ, terms(wide, mask(DIRECT_CARE)), ZERO32, {"from": patient})
    with assert_custom_error("ConsentDelegateOutOfBounds", delegate, BOUNDS, wide):
        network.revoke(patient, clinician, READ, {"from": delegate})
    assert network.isPermitted(patient, clinician, READ, GENOMICS, DIRECT_CARE) is True


def test_delegate_cannot_overwrite_consent_covering_categories_outside_bounds(
    network, patient, delegate, clinician, appointed
):
    wide = mask(ALLERGIES, GENOMICS)
    network.grant(patient, clinician, READ, terms(wide, mask(DIRECT_CARE)), ZERO32, {"from": patient})
    with assert_custom_error("ConsentDelegateOutOfBounds", delegate, BOUNDS, wide):
        network.grant(patient, clinician, READ, terms(mask(ALLERGIES), mask(DIRECT_CARE)), ZERO32, {"from": delegate})
    assert network.isPermitted(patient, clinician, READ, GENOMICS, DIRECT_CARE) is True


def test_expired_delegate_is_unauthorized(network, patient, delegate, clinician, granted, appointed):
    mine_at(appointed)
    assert network.isDelegate(patient, delegate, mask(ALLERGIES)) is False
    assert network.isPermitted(patient, delegate, READ, ALLERGIES, FAMILY_CARE) is False
    with assert_custom_error("ConsentUnauthorized", delegate, patient):
        network.grant(patient, clinician, WRITE, terms(mask(ALLERGIES), mask(DIRECT_CARE)), ZERO32, {"from": delegate})
    with assert_custom_error("ConsentUnauthorized", delegate, patient):
        network.revoke(patient, clinician, READ, {"from": delegate})


def test_delegate_reads_within_bounds_for_family_care(network, patient, delegate, appointed):
    for category in (ALLERGIES, MEDICATIONS, CONDITIONS):
        assert network.isPermitted(patient, delegate, READ, category, FAMILY_CARE) is True
        assert network.checkAccess(patient, delegate, READ, category, FAMILY_CARE) is False


def test_delegate_cannot_read_outside_bounds(network, patient, delegate, appointed):
    assert network.isPermitted(patient, delegate, READ, GENOMICS, FAMILY_CARE) is False
    with assert_custom_error("ConsentNotFound", patient, delegate, READ):
        network.checkAccess(patient, delegate, READ, GENOMICS, FAMILY_CARE)


@pytest.mark.parametrize("purpose", [DIRECT_CARE, RESEARCH, COMMISSIONING, COMMERCIAL, EMERGENCY])
def test_delegate_cannot_read_for_other_purposes(network, patient, delegate, appointed, purpose):
    assert network.isPermitted(patient, delegate, READ, ALLERGIES, purpose) is False
    with assert_custom_error("ConsentNotFound", patient, delegate, READ):
        network.checkAccess(patient, delegate, READ, ALLERGIES, purpose)


def test_delegate_cannot_write_for_family_care(network, patient, delegate, appointed):
    assert network.isPermitted(patient, delegate, WRITE, ALLERGIES, FAMILY_CARE) is False
    with assert_custom_error("ConsentNotFound", patient, delegate, WRITE):
        network.checkAccess(patient, delegate, WRITE, ALLERGIES, FAMILY_CARE)


# =================================================================================================
# Emergency access
# =================================================================================================


def test_open_emergency_access_emits_event_with_expiry(network, patient, clinician):
    tx = network.openEmergencyAccess(patient, 2 * HOUR, key(500), {"from": clinician})
    expires_at = tx.timestamp + 2 * HOUR

    assert tx.return_value == expires_at
    assert_only_event(
        tx,
        "EmergencyAccessOpened",
        patient=patient,
        clinician=clinician,
        expiresAt=expires_at,
        runStart=tx.timestamp,
        reasonCode=key(500),
    )
    assert tuple(network.emergencyAccess(patient, clinician)) == (expires_at, tx.timestamp, True)


def test_open_emergency_access_by_care_provider(network, registrar, patient, stranger):
    network.registerParticipant(stranger, CARE_PROVIDER, key(5), key(6), {"from": registrar})
    tx = network.openEmergencyAccess(patient, HOUR, key(500), {"from": stranger})
    assert tx.events["EmergencyAccessOpened"]["clinician"] == stranger
    assert network.checkAccess(patient, stranger, READ, ALLERGIES, EMERGENCY) is True


def test_open_emergency_access_with_maximum_window(network, patient, clinician):
    assert network.MAX_EMERGENCY_WINDOW() == MAX_WINDOW
    tx = network.openEmergencyAccess(patient, MAX_WINDOW, key(500), {"from": clinician})
    assert tx.return_value == tx.timestamp + MAX_WINDOW


@pytest.mark.parametrize("window", [0, MAX_WINDOW + 1, 2**32 - 1])
def test_open_emergency_access_reverts_on_invalid_window(network, patient, clinician, window):
    with assert_custom_error("EmergencyInvalidWindow", window, MAX_WINDOW):
        network.openEmergencyAccess(patient, window, key(500), {"from": clinician})


@pytest.mark.parametrize("caller_name", ["researcher", "app", "stranger", "patient", "delegate"])
def test_open_emergency_access_reverts_when_caller_is_not_clinician(network, request, patient, caller_name):
    caller = request.getfixturevalue(caller_name)
    with assert_custom_error("EmergencyNotClinician", caller):
        network.openEmergencyAccess(patient, HOUR, key(500), {"from": caller})


def test_open_emergency_access_reverts_when_clinician_suspended(network, registrar, patient, clinician):
    network.suspendParticipant(clinician, key(3), {"from": registrar})
    with assert_custom_error("RegistryParticipantSuspended", clinician):
        network.openEmergencyAccess(patient, HOUR, key(500), {"from": clinician})


def test_open_emergency_access_reverts_when_patient_opted_out(network, patient, clinician):
    network.setEmergencyOptOut(True, {"from": patient})
    with assert_custom_error("EmergencyOptedOut", patient):
        network.openEmergencyAccess(patient, HOUR, key(500), {"from": clinician})


def test_open_emergency_access_reverts_when_patient_not_registered(network, stranger, clinician):
    with assert_custom_error("RegistryPatientNotRegistered", stranger):
        network.openEmergencyAccess(stranger, HOUR, key(500), {"from": clinician})


def test_emergency_access_permits_reads_for_emergency_purpose_only(network, patient, clinician, emergency):
    for category in (DEMOGRAPHICS, GENOMICS, MENTAL_HEALTH, DOCUMENTS):
        assert network.isPermitted(patient, clinician, READ, category, EMERGENCY) is True
        assert network.checkAccess(patient, clinician, READ, category, EMERGENCY) is True

    assert network.isPermitted(patient, clinician, READ, ALLERGIES, DIRECT_CARE) is False
    with assert_custom_error("ConsentNotFound", patient, clinician, READ):
        network.checkAccess(patient, clinician, READ, ALLERGIES, DIRECT_CARE)
    assert network.isPermitted(patient, clinician, WRITE, ALLERGIES, EMERGENCY) is False
    with assert_custom_error("ConsentNotFound", patient, clinician, WRITE):
        network.checkAccess(patient, clinician, WRITE, ALLERGIES, EMERGENCY)


def test_emergency_access_flag_is_false_when_a_consent_covers_the_read(network, patient, clinician, emergency):
    network.grant(patient, clinician, READ, terms(CARE, mask(EMERGENCY)), ZERO32, {"from": patient})
    assert network.checkAccess(patient, clinician, READ, ALLERGIES, EMERGENCY) is False  # consent, not emergency
    assert network.checkAccess(patient, clinician, READ, GENOMICS, EMERGENCY) is True  # emergency


def test_emergency_access_ends_after_window(network, patient, clinician, emergency):
    mine_at(emergency - 1)
    assert network.isPermitted(patient, clinician, READ, ALLERGIES, EMERGENCY) is True
    mine_at(emergency)
    assert network.isPermitted(patient, clinician, READ, ALLERGIES, EMERGENCY) is False
    with assert_custom_error("ConsentNotFound", patient, clinician, READ):
        network.checkAccess(patient, clinician, READ, ALLERGIES, EMERGENCY)


def test_emergency_access_of_suspended_clinician_stops_until_reinstated(
    network, registrar, patient, clinician, emergency
):
    network.suspendParticipant(clinician, key(3), {"from": registrar})
    assert network.isPermitted(patient, clinician, READ, ALLERGIES, EMERGENCY) is False
    with assert_custom_error("RegistryParticipantSuspended", clinician):
        network.checkAccess(patient, clinician, READ, ALLERGIES, EMERGENCY)
    network.reinstateParticipant(clinician, {"from": registrar})
    assert network.checkAccess(patient, clinician, READ, ALLERGIES, EMERGENCY) is True


def test_emergency_access_is_per_clinician(network, registrar, patient, clinician, stranger, emergency):
    network.registerParticipant(stranger, CARE_PROVIDER, key(5), key(6), {"from": registrar})
    assert network.isPermitted(patient, stranger, READ, ALLERGIES, EMERGENCY) is False


def test_reopening_emergency_access_moves_expiry(network, patient, clinician, emergency):
    chain.sleep(600)
    tx = network.openEmergencyAccess(patient, HOUR, key(501), {"from": clinician})
    assert tx.return_value == tx.timestamp + HOUR > emergency
    assert tx.events["EmergencyAccessOpened"]["expiresAt"] == tx.timestamp + HOUR
    assert network.emergencyAccess(patient, clinician)[0] == tx.timestamp + HOUR


def test_reopening_emergency_access_with_a_shorter_window_keeps_the_longer_one(network, patient, clinician, emergency):
    tx = network.openEmergencyAccess(patient, 60, key(502), {"from": clinician})
    assert tx.return_value == emergency
    assert len(tx.events) == 0
    assert network.emergencyAccess(patient, clinician)[0] == emergency


@pytest.mark.parametrize("closer_name", ["patient", "delegate", "clinician"])
def test_close_emergency_access(network, request, patient, clinician, appointed, emergency, closer_name):
    closer = request.getfixturevalue(closer_name)
    tx = network.closeEmergencyAccess(patient, clinician, {"from": closer})

    assert tx.return_value is True
    assert_only_event(tx, "EmergencyAccessClosed", patient=patient, clinician=clinician, by=closer)
    opened_at = emergency - HOUR
    assert tuple(network.emergencyAccess(patient, clinician)) == (tx.timestamp, opened_at, False)
    assert network.isPermitted(patient, clinician, READ, ALLERGIES, EMERGENCY) is False


@pytest.mark.parametrize("caller_name", ["stranger", "researcher", "delegate"])
def test_close_emergency_access_reverts_when_caller_unauthorized(
    network, request, patient, clinician, emergency, caller_name
):
    caller = request.getfixturevalue(caller_name)  # the delegate here has not been appointed
    with assert_custom_error("ConsentUnauthorized", caller, patient):
        network.closeEmergencyAccess(patient, clinician, {"from": caller})
    assert network.emergencyAccess(patient, clinician)[0] == emergency


def test_close_emergency_access_twice_returns_false_and_emits_nothing(network, patient, clinician, emergency):
    network.closeEmergencyAccess(patient, clinician, {"from": patient})
    tx = network.closeEmergencyAccess(patient, clinician, {"from": patient})
    assert tx.return_value is False
    assert len(tx.events) == 0


def test_close_emergency_access_never_opened_returns_false_and_emits_nothing(network, patient, clinician):
    tx = network.closeEmergencyAccess(patient, clinician, {"from": clinician})
    assert tx.return_value is False
    assert len(tx.events) == 0


def test_close_emergency_access_after_expiry_returns_false_and_emits_nothing(network, patient, clinician, emergency):
    chain.sleep(2 * HOUR)
    tx = network.closeEmergencyAccess(patient, clinician, {"from": patient})
    assert tx.return_value is False
    assert len(tx.events) == 0


def test_set_emergency_opt_out_emits_event_and_is_idempotent(network, patient):
    assert network.emergencyOptedOut(patient) is False
    tx = network.setEmergencyOptOut(True, {"from": patient})
    assert tx.return_value is True
    assert_only_event(tx, "EmergencyOptOutChanged", patient=patient, optedOut=True)
    assert network.emergencyOptedOut(patient) is True

    tx = network.setEmergencyOptOut(True, {"from": patient})
    assert tx.return_value is False
    assert len(tx.events) == 0

    tx = network.setEmergencyOptOut(False, {"from": patient})
    assert tx.return_value is True
    assert_only_event(tx, "EmergencyOptOutChanged", patient=patient, optedOut=False)
    assert network.emergencyOptedOut(patient) is False


def test_set_emergency_opt_out_to_current_value_emits_nothing(network, patient):
    tx = network.setEmergencyOptOut(False, {"from": patient})
    assert tx.return_value is False
    assert len(tx.events) == 0


@pytest.mark.parametrize("caller_name", ["stranger", "clinician"])
def test_set_emergency_opt_out_reverts_when_caller_is_not_patient(network, request, caller_name):
    caller = request.getfixturevalue(caller_name)
    with assert_custom_error("RegistryPatientNotRegistered", caller):
        network.setEmergencyOptOut(True, {"from": caller})


def test_opting_out_closes_open_emergency_access(network, patient, clinician, emergency):
    """Issue 7 item 8: the emergency path checks the opt-out at access time."""
    assert network.checkAccess(patient, clinician, READ, ALLERGIES, EMERGENCY) is True
    network.setEmergencyOptOut(True, {"from": patient})
    assert network.isPermitted(patient, clinician, READ, ALLERGIES, EMERGENCY) is False
    with assert_custom_error("ConsentNotFound", patient, clinician, READ):
        network.checkAccess(patient, clinician, READ, ALLERGIES, EMERGENCY)
    assert network.emergencyAccess(patient, clinician)[2] is False


def test_opting_back_in_does_not_reopen_a_window_closed_by_the_opt_out(network, patient, clinician, emergency):
    network.setEmergencyOptOut(True, {"from": patient})
    network.setEmergencyOptOut(False, {"from": patient})
    assert network.isPermitted(patient, clinician, READ, ALLERGIES, EMERGENCY) is False
    assert network.emergencyAccess(patient, clinician)[2] is False
    tx = network.closeEmergencyAccess(patient, clinician, {"from": patient})  # nothing open to close
    assert tx.return_value is False and len(tx.events) == 0
    tx = network.openEmergencyAccess(patient, HOUR, key(501), {"from": clinician})  # a new run
    assert tx.events["EmergencyAccessOpened"]["runStart"] == tx.timestamp
    assert network.checkAccess(patient, clinician, READ, ALLERGIES, EMERGENCY) is True


def test_opting_back_in_allows_emergency_access_again(network, patient, clinician):
    network.setEmergencyOptOut(True, {"from": patient})
    network.setEmergencyOptOut(False, {"from": patient})
    tx = network.openEmergencyAccess(patient, HOUR, key(500), {"from": clinician})
    assert "EmergencyAccessOpened" in tx.events


def test_check_access_names_an_unregistered_patient_rather_than_a_missing_consent(network, researcher, stranger):
    with assert_custom_error("RegistryPatientNotRegistered", stranger):
        network.checkAccess(stranger, researcher, READ, ALLERGIES, RESEARCH)
    assert network.isPermitted(stranger, researcher, READ, ALLERGIES, RESEARCH) is False
