"""Delegates (issue 7 items 1 and 3): a delegate never grants itself; consents it makes carry its
delegation id and live no longer than the delegation's current terms; a suspended delegate has no
powers (and its consents do not work) until reinstated.

Each test here was first written against the wave-1 contract, where it failed (see the contracts
notes); the assertions below are the chosen behaviour."""

import pytest
from brownie import chain, web3
from conftest import (
    ALLERGIES,
    CONDITIONS,
    DAY,
    DELEGATE_BOUNDS,
    DIRECT_CARE,
    FAMILY_CARE,
    GENOMICS,
    READ,
    RESEARCH,
    RESEARCHER,
    WRITE,
    ZERO,
    ZERO32,
    assert_custom_error,
    assert_only_event,
    key,
    mask,
    mine_at,
    now,
    terms,
)

BOUNDS = DELEGATE_BOUNDS


@pytest.fixture
def dual(network, registrar, delegate):
    """The delegate is also a registered researcher (the daughter who works for a study)."""
    network.registerParticipant(delegate, RESEARCHER, key(5), key(6), {"from": registrar})
    return delegate


@pytest.fixture
def delegated(network, patient, delegate, clinician, appointed):
    """The delegate granted the clinician a 30-day read consent for allergies and conditions."""
    t = terms(mask(ALLERGIES, CONDITIONS), mask(DIRECT_CARE))
    network.grant(patient, clinician, READ, t, ZERO32, {"from": delegate})
    return t


# ---------------------------------------------------------------------------------------------------
# Item 1: a delegate never grants itself
# ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("access", [READ, WRITE])
@pytest.mark.parametrize("purpose", [RESEARCH, FAMILY_CARE])
def test_delegate_cannot_grant_itself(network, patient, dual, appointed, access, purpose):
    block = web3.eth.block_number + 1
    with assert_custom_error("ConsentDelegateSelfGrant", dual):
        network.grant(patient, dual, access, terms(mask(ALLERGIES), mask(purpose)), ZERO32, {"from": dual})
    assert tuple(network.consent(patient, dual, access)) == (0, 0, 0, 0, 0, 0, False)
    assert web3.eth.get_logs({"fromBlock": block, "address": network.address}) == []


def test_delegate_cannot_widen_a_consent_the_patient_gave_it(network, patient, dual, appointed):
    network.grant(patient, dual, READ, terms(mask(ALLERGIES), mask(RESEARCH)), ZERO32, {"from": patient})
    with assert_custom_error("ConsentDelegateSelfGrant", dual):
        network.grant(patient, dual, READ, terms(BOUNDS, mask(RESEARCH)), ZERO32, {"from": dual})


def test_delegate_may_give_up_a_consent_the_patient_gave_it(network, patient, dual, appointed):
    network.grant(patient, dual, READ, terms(mask(ALLERGIES), mask(RESEARCH)), ZERO32, {"from": patient})
    tx = network.revoke(patient, dual, READ, {"from": dual})
    assert_only_event(tx, "ConsentRevoked", patient=patient, grantee=dual, access=READ, by=dual)


def test_patient_may_grant_the_delegate_as_a_participant(network, patient, dual, appointed):
    t = terms(mask(ALLERGIES), mask(RESEARCH))
    tx = network.grant(patient, dual, READ, t, ZERO32, {"from": patient})
    assert tx.events["ConsentGranted"]["delegation"] == 0
    assert network.isPermitted(patient, dual, READ, ALLERGIES, RESEARCH) is True


# ---------------------------------------------------------------------------------------------------
# Item 1: consents a delegate makes live no longer than its delegation
# ---------------------------------------------------------------------------------------------------


def test_delegate_made_consent_carries_the_delegation_id(network, patient, delegate, clinician, appointed):
    t = terms(mask(ALLERGIES), mask(DIRECT_CARE))
    tx = network.grant(patient, clinician, READ, t, ZERO32, {"from": delegate})
    assert tx.events["ConsentGranted"]["delegation"] == 1
    assert tx.events["ConsentGranted"]["by"] == delegate
    assert tuple(network.consent(patient, clinician, READ)) == (*t, tx.timestamp, 1, False)
    assert network.isPermitted(patient, clinician, READ, ALLERGIES, DIRECT_CARE) is True


def test_removing_the_delegate_voids_its_consents_at_once(network, patient, delegate, clinician, delegated):
    tx = network.removeDelegate(delegate, {"from": patient})
    assert_only_event(tx, "DelegateRemoved", patient=patient, delegate=delegate, id=1)

    assert network.isPermitted(patient, clinician, READ, ALLERGIES, DIRECT_CARE) is False
    with assert_custom_error("ConsentDelegationEnded", patient, clinician, 1):
        network.checkAccess(patient, clinician, READ, ALLERGIES, DIRECT_CARE)
    assert tuple(network.consent(patient, clinician, READ))[:4] == delegated  # kept, but void


def test_delegate_made_consent_ends_when_the_delegation_expires(
    network, patient, delegate, clinician, appointed, delegated
):
    assert delegated[3] > appointed  # the consent itself would run longer
    mine_at(appointed - 1)
    assert network.isPermitted(patient, clinician, READ, CONDITIONS, DIRECT_CARE) is True
    mine_at(appointed)
    assert network.isPermitted(patient, clinician, READ, CONDITIONS, DIRECT_CARE) is False
    with assert_custom_error("ConsentDelegationEnded", patient, clinician, 1):
        network.checkAccess(patient, clinician, READ, CONDITIONS, DIRECT_CARE)


def test_consent_errors_of_its_own_come_before_the_delegation(network, patient, delegate, clinician, delegated):
    network.removeDelegate(delegate, {"from": patient})
    with assert_custom_error("ConsentCategoryNotCovered", patient, clinician, GENOMICS):
        network.checkAccess(patient, clinician, READ, GENOMICS, DIRECT_CARE)
    with assert_custom_error("ConsentPurposeNotCovered", patient, clinician, RESEARCH):
        network.checkAccess(patient, clinician, READ, ALLERGIES, RESEARCH)


def test_reappointing_a_live_delegate_keeps_its_id_and_bounds_its_consents_anew(
    network, patient, delegate, clinician, appointed, delegated
):
    tx = network.appointDelegate(delegate, mask(ALLERGIES), appointed + 20 * DAY, {"from": patient})
    assert_only_event(
        tx,
        "DelegateAppointed",
        patient=patient,
        delegate=delegate,
        id=1,
        categories=mask(ALLERGIES),
        expiry=appointed + 20 * DAY,
    )
    # Conditions left the delegation: the delegate's consent no longer covers them.
    assert network.isPermitted(patient, clinician, READ, ALLERGIES, DIRECT_CARE) is True
    with assert_custom_error("ConsentCategoryNotCovered", patient, clinician, CONDITIONS):
        network.checkAccess(patient, clinician, READ, CONDITIONS, DIRECT_CARE)
    # The later delegation expiry carries the consent past the old one, up to its own expiry.
    mine_at(appointed + 1)
    assert network.isPermitted(patient, clinician, READ, ALLERGIES, DIRECT_CARE) is True
    # Widening the delegation again restores conditions: consents follow the current terms.
    network.appointDelegate(delegate, BOUNDS, appointed + 20 * DAY, {"from": patient})
    assert network.isPermitted(patient, clinician, READ, CONDITIONS, DIRECT_CARE) is True


def test_appointing_again_after_removal_gives_a_new_id_and_old_consents_stay_ended(
    network, patient, delegate, clinician, appointed, delegated
):
    network.removeDelegate(delegate, {"from": patient})
    tx = network.appointDelegate(delegate, BOUNDS, appointed, {"from": patient})
    assert tx.events["DelegateAppointed"]["id"] == 2
    assert tuple(network.delegation(patient, delegate)) == (2, delegate, BOUNDS, appointed)
    assert tuple(network.delegationById(patient, 1)) == (0, ZERO, 0, 0)
    with assert_custom_error("ConsentDelegationEnded", patient, clinician, 1):
        network.checkAccess(patient, clinician, READ, ALLERGIES, DIRECT_CARE)


def test_appointing_again_after_expiry_gives_a_new_id_and_old_consents_stay_ended(
    network, patient, delegate, clinician, appointed, delegated
):
    mine_at(appointed + 1)
    tx = network.appointDelegate(delegate, BOUNDS, now() + 10 * DAY, {"from": patient})
    assert tx.events["DelegateAppointed"]["id"] == 2
    assert tuple(network.delegationById(patient, 1))[:3] == (1, delegate, BOUNDS)  # kept, with its past expiry
    with assert_custom_error("ConsentDelegationEnded", patient, clinician, 1):
        network.checkAccess(patient, clinician, READ, ALLERGIES, DIRECT_CARE)


def test_patient_adopts_a_delegate_made_consent_by_granting_the_same_terms(
    network, patient, delegate, clinician, delegated
):
    tx = network.grant(patient, clinician, READ, delegated, ZERO32, {"from": patient})
    assert tx.return_value is True  # same terms, but now the patient's own decision
    assert tx.events["ConsentGranted"]["delegation"] == 0
    network.removeDelegate(delegate, {"from": patient})
    assert network.isPermitted(patient, clinician, READ, ALLERGIES, DIRECT_CARE) is True


def test_delegate_regranting_the_same_terms_changes_nothing(network, patient, delegate, clinician, delegated):
    tx = network.grant(patient, clinician, READ, delegated, ZERO32, {"from": delegate})
    assert tx.return_value is False
    assert len(tx.events) == 0


def test_consent_set_last_by_a_delegate_is_bounded_by_it(network, patient, delegate, clinician, appointed):
    """Whoever set the terms last decides what bounds them: a delegate's narrowing of the patient's
    consent makes it the delegate's (documented in the README)."""
    network.grant(patient, clinician, READ, terms(BOUNDS, mask(DIRECT_CARE)), ZERO32, {"from": patient})
    tx = network.grant(patient, clinician, READ, terms(mask(ALLERGIES), mask(DIRECT_CARE)), ZERO32, {"from": delegate})
    assert tx.events["ConsentGranted"]["delegation"] == 1
    network.removeDelegate(delegate, {"from": patient})
    with assert_custom_error("ConsentDelegationEnded", patient, clinician, 1):
        network.checkAccess(patient, clinician, READ, ALLERGIES, DIRECT_CARE)


def test_revoking_a_delegate_made_consent_leaves_a_plain_tombstone(network, patient, delegate, clinician, delegated):
    tx = network.revoke(patient, clinician, READ, {"from": patient})
    assert tuple(network.consent(patient, clinician, READ)) == (0, 0, 0, 0, tx.timestamp, 0, False)


def test_delegate_made_write_consent_ends_with_the_delegation(network, patient, delegate, clinician, appointed):
    network.grant(patient, clinician, WRITE, terms(mask(CONDITIONS), mask(DIRECT_CARE)), ZERO32, {"from": delegate})
    assert network.isPermitted(patient, clinician, WRITE, CONDITIONS, DIRECT_CARE) is True
    network.removeDelegate(delegate, {"from": patient})
    with assert_custom_error("ConsentDelegationEnded", patient, clinician, 1):
        network.checkAccess(patient, clinician, WRITE, CONDITIONS, DIRECT_CARE)


# ---------------------------------------------------------------------------------------------------
# Item 3: a suspended account has no delegate powers until reinstated
# ---------------------------------------------------------------------------------------------------


@pytest.fixture
def suspended(network, registrar, patient, dual, clinician, appointed):
    """The delegate (also a researcher) made a consent to the clinician, then was suspended."""
    network.grant(patient, clinician, READ, terms(mask(ALLERGIES), mask(DIRECT_CARE)), ZERO32, {"from": dual})
    network.suspendParticipant(dual, key(66), {"from": registrar})
    return dual


def _delegate_actions(network, patient, delegate, clinician):
    return {
        "grant": lambda: network.grant(
            patient, clinician, WRITE, terms(mask(ALLERGIES), mask(DIRECT_CARE)), ZERO32, {"from": delegate}
        ),
        "revoke": lambda: network.revoke(patient, clinician, READ, {"from": delegate}),
        "publishKeyEnvelope": lambda: network.publishKeyEnvelope(
            patient, patient, mask(ALLERGIES), key(9), {"from": delegate}
        ),
        "setCategoryKeys": lambda: network.setCategoryKeys(patient, mask(ALLERGIES), [key(12345)], {"from": delegate}),
        "invalidateSignedRequests": lambda: network.invalidateSignedRequests(patient, {"from": delegate}),
        "confirmEmergencyAccess": lambda: network.confirmEmergencyAccess(patient, clinician, {"from": delegate}),
        "closeEmergencyAccess": lambda: network.closeEmergencyAccess(patient, clinician, {"from": delegate}),
    }


@pytest.mark.parametrize(
    "action",
    [
        "grant",
        "revoke",
        "publishKeyEnvelope",
        "setCategoryKeys",
        "invalidateSignedRequests",
        "confirmEmergencyAccess",
        "closeEmergencyAccess",
    ],
)
def test_suspended_delegate_cannot_act_for_the_patient(network, patient, suspended, clinician, action):
    block = web3.eth.block_number + 1
    with assert_custom_error("RegistryParticipantSuspended", suspended):
        _delegate_actions(network, patient, suspended, clinician)[action]()
    assert web3.eth.get_logs({"fromBlock": block, "address": network.address}) == []


@pytest.mark.parametrize(
    "action",
    [
        "grant",
        "revoke",
        "publishKeyEnvelope",
        "setCategoryKeys",
        "invalidateSignedRequests",
        "confirmEmergencyAccess",
        "closeEmergencyAccess",
    ],
)
def test_reinstated_delegate_acts_again(network, registrar, patient, suspended, clinician, action):
    network.reinstateParticipant(suspended, {"from": registrar})
    if action in ("confirmEmergencyAccess", "closeEmergencyAccess"):
        network.openEmergencyAccess(patient, 3600, key(1), {"from": clinician})
        chain.sleep(1)
    tx = _delegate_actions(network, patient, suspended, clinician)[action]()
    assert tx.status == 1 and len(tx.events) >= 1


def test_suspended_delegate_cannot_read_for_family_care(network, registrar, patient, suspended):
    assert network.isDelegate(patient, suspended, mask(ALLERGIES)) is False
    assert network.isPermitted(patient, suspended, READ, ALLERGIES, FAMILY_CARE) is False
    with assert_custom_error("RegistryParticipantSuspended", suspended):
        network.checkAccess(patient, suspended, READ, ALLERGIES, FAMILY_CARE)
    network.reinstateParticipant(suspended, {"from": registrar})
    assert network.isDelegate(patient, suspended, mask(ALLERGIES)) is True
    assert network.checkAccess(patient, suspended, READ, ALLERGIES, FAMILY_CARE) is False


def test_consents_made_by_a_suspended_delegate_do_not_work_until_reinstated(
    network, registrar, patient, suspended, clinician
):
    assert network.isPermitted(patient, clinician, READ, ALLERGIES, DIRECT_CARE) is False
    with assert_custom_error("ConsentDelegationSuspended", patient, clinician, 1):
        network.checkAccess(patient, clinician, READ, ALLERGIES, DIRECT_CARE)
    network.reinstateParticipant(suspended, {"from": registrar})
    assert network.checkAccess(patient, clinician, READ, ALLERGIES, DIRECT_CARE) is False


def test_suspended_delegate_reads_the_same_with_or_without_a_consent(network, registrar, patient, dual, appointed):
    """Holding a consent must not change the answer (the wave-1 regression, now with suspension voiding both)."""
    network.grant(patient, dual, READ, terms(mask(ALLERGIES), mask(FAMILY_CARE)), ZERO32, {"from": patient})
    network.suspendParticipant(dual, key(66), {"from": registrar})
    with_consent = network.isPermitted(patient, dual, READ, ALLERGIES, FAMILY_CARE)
    network.revoke(patient, dual, READ, {"from": patient})
    assert network.isPermitted(patient, dual, READ, ALLERGIES, FAMILY_CARE) is with_consent is False


def test_patient_who_is_a_suspended_participant_keeps_its_own_rights(network, registrar, patient, clinician):
    network.registerParticipant(patient, RESEARCHER, key(5), key(6), {"from": registrar})
    network.suspendParticipant(patient, key(66), {"from": registrar})
    assert network.checkAccess(patient, patient, READ, GENOMICS, RESEARCH) is False
    tx = network.grant(patient, clinician, READ, terms(mask(ALLERGIES), mask(DIRECT_CARE)), ZERO32, {"from": patient})
    assert tx.return_value is True
