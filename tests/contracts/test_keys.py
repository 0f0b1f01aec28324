"""Category keys held by the contract (issue 12, on-chain part; issue 7 item 2).

Only the patient, or a delegate covering every category it touches, rotates keys. Releasing keys to a
reader (a read grant with an envelope, publishKeyEnvelope) clamps each key's validUntil to the end of
that reader's access; every early loss of access makes them stale at once; writers' records must be
sealed to the current, fresh epoch (RecordStaleKey otherwise)."""

import pytest
from brownie import chain, web3
from conftest import (
    ALLERGIES,
    CONDITIONS,
    DAY,
    DIRECT_CARE,
    GENOMICS,
    IMMUNIZATIONS,
    MEDICATIONS,
    OBSERVATIONS,
    READ,
    RESEARCH,
    WRITE,
    ZERO32,
    assert_custom_error,
    assert_only_event,
    category_keys,
    key,
    mask,
    mine_at,
    now,
    register_patient,
    terms,
)
from test_signed_consent import SIGNER_KEY, funded, grant_by_sig, grant_request, revoke_by_sig, revoke_request

UNLIMITED = 2**64 - 1
ALL = (1 << 13) - 1
CARE = mask(ALLERGIES, MEDICATIONS)
RAW = 0x55


def valid_until(network, patient, category) -> int:
    return network.categoryKey(patient, category)[2]


def epoch(network, patient, category) -> int:
    return network.categoryKey(patient, category)[1]


def write(network, patient, writer, category, key_epoch, n=1):
    """`writer` registers a record of `category` sealed to `key_epoch`."""
    record_id = web3.keccak(text=f"record {n}")
    return network.registerRecord(
        patient,
        record_id,
        category,
        DIRECT_CARE,
        key_epoch,
        web3.keccak(text=f"fp {n}"),
        RAW,
        web3.keccak(text=f"cid {n}"),
        {"from": writer},
    )


@pytest.fixture
def appointed(network, patient, delegate):
    expiry = now() + 10 * DAY
    network.appointDelegate(delegate, CARE, expiry, {"from": patient})
    return expiry


@pytest.fixture
def reader(network, patient, clinician):
    """The clinician holds a 30-day read consent for allergies and medications, with its keys released."""
    t = terms(CARE, mask(DIRECT_CARE))
    network.grant(patient, clinician, READ, t, key(100), {"from": patient})
    return t


# ---------------------------------------------------------------------------------------------------
# setCategoryKeys
# ---------------------------------------------------------------------------------------------------


def test_patient_rotates_category_keys(network, patient):
    tx = network.setCategoryKeys(patient, mask(ALLERGIES, GENOMICS), [key(901), key(902)], {"from": patient})

    rotated = [dict(e) for e in tx.events["CategoryKeyRotated"]]
    assert list(tx.events.keys()) == ["CategoryKeyRotated"]
    assert rotated == [
        {"patient": patient, "category": ALLERGIES, "epoch": 2, "publicKey": key(901), "by": patient},
        {"patient": patient, "category": GENOMICS, "epoch": 2, "publicKey": key(902), "by": patient},
    ]
    assert tuple(network.categoryKey(patient, ALLERGIES)) == (key(901), 2, UNLIMITED)
    assert tuple(network.categoryKey(patient, GENOMICS)) == (key(902), 2, UNLIMITED)
    assert tuple(network.categoryKey(patient, MEDICATIONS)) == (category_keys(1)[MEDICATIONS], 1, UNLIMITED)


def test_epochs_only_ever_increase(network, patient):
    for n in range(3):
        network.setCategoryKeys(patient, mask(ALLERGIES), [key(910 + n)], {"from": patient})
    assert epoch(network, patient, ALLERGIES) == 4
    # Going back to an earlier key is a new epoch, not a rollback.
    network.setCategoryKeys(patient, mask(ALLERGIES), [category_keys(1)[ALLERGIES]], {"from": patient})
    assert tuple(network.categoryKey(patient, ALLERGIES))[:2] == (category_keys(1)[ALLERGIES], 5)


def test_delegate_rotates_keys_of_its_categories(network, patient, delegate, appointed):
    tx = network.setCategoryKeys(patient, CARE, [key(901), key(902)], {"from": delegate})
    assert [e["by"] for e in tx.events["CategoryKeyRotated"]] == [delegate, delegate]
    assert epoch(network, patient, MEDICATIONS) == 2


def test_narrow_delegate_cannot_replace_keys_of_other_categories(network, patient, delegate):
    """Issue 7 item 2: a delegate for immunizations replaced the whole key directory."""
    network.appointDelegate(delegate, mask(IMMUNIZATIONS), now() + DAY, {"from": patient})
    for categories in (ALL, mask(IMMUNIZATIONS, ALLERGIES)):
        keys = [key(900 + i) for i in range(categories.bit_count())]
        with assert_custom_error("ConsentDelegateOutOfBounds", delegate, mask(IMMUNIZATIONS), categories):
            network.setCategoryKeys(patient, categories, keys, {"from": delegate})
    assert epoch(network, patient, ALLERGIES) == 1
    network.setCategoryKeys(patient, mask(IMMUNIZATIONS), [key(900)], {"from": delegate})
    assert epoch(network, patient, IMMUNIZATIONS) == 2


@pytest.mark.parametrize("caller_name", ["stranger", "clinician", "delegate"])
def test_others_cannot_rotate_keys(network, request, patient, caller_name):
    caller = request.getfixturevalue(caller_name)  # the delegate is not appointed here
    with assert_custom_error("ConsentUnauthorized", caller, patient):
        network.setCategoryKeys(patient, mask(ALLERGIES), [key(900)], {"from": caller})


def test_rotating_keys_of_an_unregistered_patient_reverts(network, stranger):
    with assert_custom_error("RegistryPatientNotRegistered", stranger):
        network.setCategoryKeys(stranger, mask(ALLERGIES), [key(900)], {"from": stranger})


@pytest.mark.parametrize("keys", [[], [key(900)], [key(900), key(901), key(902)]])
def test_one_key_per_category(network, patient, keys):
    with assert_custom_error("KeyCountMismatch", 2, len(keys)):
        network.setCategoryKeys(patient, mask(ALLERGIES, GENOMICS), keys, {"from": patient})


@pytest.mark.parametrize("categories", [0, 1 << 13, 0xFFFF])
def test_rotation_needs_known_categories(network, patient, categories):
    with assert_custom_error("ConsentInvalidCategories", categories):
        network.setCategoryKeys(patient, categories, [], {"from": patient})


def test_rotation_to_zero_or_the_current_key_reverts(network, patient):
    with assert_custom_error("RegistryInvalidCategoryKey", GENOMICS):
        network.setCategoryKeys(patient, mask(ALLERGIES, GENOMICS), [key(900), ZERO32], {"from": patient})
    with assert_custom_error("RegistryInvalidCategoryKey", ALLERGIES):
        network.setCategoryKeys(patient, mask(ALLERGIES), [category_keys(1)[ALLERGIES]], {"from": patient})
    assert epoch(network, patient, ALLERGIES) == 1


# ---------------------------------------------------------------------------------------------------
# Releasing keys: read grants with an envelope, publishKeyEnvelope
# ---------------------------------------------------------------------------------------------------


def test_read_grant_with_envelope_clamps_the_keys_to_the_consent(network, patient, clinician, reader):
    assert tuple(network.consent(patient, clinician, READ))[6] is True
    for category in (ALLERGIES, MEDICATIONS):
        assert valid_until(network, patient, category) == reader[3]
    assert valid_until(network, patient, CONDITIONS) == UNLIMITED


def test_grant_without_envelope_releases_nothing(network, patient, clinician):
    network.grant(patient, clinician, READ, terms(CARE, mask(DIRECT_CARE)), ZERO32, {"from": patient})
    network.grant(patient, clinician, WRITE, terms(CARE, mask(DIRECT_CARE)), ZERO32, {"from": patient})
    assert tuple(network.consent(patient, clinician, READ))[6] is False
    assert valid_until(network, patient, ALLERGIES) == UNLIMITED


def test_later_releases_never_extend_validity(network, patient, clinician, researcher, reader):
    network.grant(
        patient,
        researcher,
        READ,
        terms(CARE, mask(RESEARCH), expiry=reader[3] + 100 * DAY),
        key(101),
        {"from": patient},
    )
    assert valid_until(network, patient, ALLERGIES) == reader[3]
    short = now() + DAY
    network.grant(patient, researcher, READ, terms(CARE, mask(RESEARCH), expiry=short), ZERO32, {"from": patient})
    assert valid_until(network, patient, ALLERGIES) == short  # the researcher holds keys: clamped to its new end


def test_delegate_made_grant_clamps_to_the_delegation(network, patient, delegate, clinician, appointed):
    network.grant(patient, clinician, READ, terms(CARE, mask(DIRECT_CARE)), key(100), {"from": delegate})
    assert valid_until(network, patient, ALLERGIES) == appointed


def test_publish_key_envelope_to_a_consent_holder(network, patient, clinician):
    t = terms(CARE, mask(DIRECT_CARE))
    network.grant(patient, clinician, READ, t, ZERO32, {"from": patient})
    tx = network.publishKeyEnvelope(patient, clinician, mask(ALLERGIES), key(900), {"from": patient})
    assert_only_event(
        tx,
        "KeyEnvelopePublished",
        patient=patient,
        recipient=clinician,
        categories=mask(ALLERGIES),
        envelope=key(900),
        by=patient,
    )
    assert valid_until(network, patient, ALLERGIES) == t[3]
    assert valid_until(network, patient, MEDICATIONS) == UNLIMITED
    assert tuple(network.consent(patient, clinician, READ))[6] is True


def test_publish_key_envelope_to_a_delegate_clamps_to_the_delegation(network, patient, delegate, appointed):
    tx = network.publishKeyEnvelope(patient, delegate, CARE, key(900), {"from": patient})
    assert tx.events["KeyEnvelopePublished"]["recipient"] == delegate
    assert valid_until(network, patient, MEDICATIONS) == appointed


def test_publish_key_envelope_to_an_emergency_clinician_clamps_to_the_window(
    network, patient, delegate, clinician, appointed
):
    expires_at = network.openEmergencyAccess(patient, 3600, key(1), {"from": clinician}).return_value
    tx = network.publishKeyEnvelope(patient, clinician, mask(ALLERGIES), key(900), {"from": delegate})
    assert tx.events["KeyEnvelopePublished"]["by"] == delegate
    assert valid_until(network, patient, ALLERGIES) == expires_at


def test_publish_key_envelope_to_the_patient_limits_nothing(network, patient, delegate, appointed):
    tx = network.publishKeyEnvelope(patient, patient, CARE, key(900), {"from": delegate})
    assert tx.events["KeyEnvelopePublished"]["recipient"] == patient
    assert valid_until(network, patient, ALLERGIES) == UNLIMITED


def test_publish_key_envelope_again_emits_again(network, patient, clinician, reader):
    """Event only (plus a clamp that no longer moves): a re-publication is a new event."""
    network.publishKeyEnvelope(patient, clinician, CARE, key(900), {"from": patient})
    tx = network.publishKeyEnvelope(patient, clinician, CARE, key(900), {"from": patient})
    assert len(tx.events["KeyEnvelopePublished"]) == 1


@pytest.mark.parametrize(
    "case",
    [
        "no access",
        "category outside the consent",
        "consent not started",
        "write consent only",
        "consent expired",
        "suspended reader",
        "delegate outside its bounds",
        "emergency closed",
    ],
)
def test_keys_go_only_to_readers_with_live_access(network, registrar, patient, delegate, clinician, case):
    categories = mask(ALLERGIES)
    if case == "category outside the consent":
        network.grant(patient, clinician, READ, terms(mask(MEDICATIONS), mask(DIRECT_CARE)), ZERO32, {"from": patient})
    elif case == "consent not started":
        start = now() + DAY
        network.grant(patient, clinician, READ, terms(CARE, 1, start, start + DAY), ZERO32, {"from": patient})
    elif case == "write consent only":
        network.grant(patient, clinician, WRITE, terms(CARE, 1), ZERO32, {"from": patient})
    elif case == "consent expired":
        network.grant(patient, clinician, READ, terms(CARE, 1, 0, now() + 60), ZERO32, {"from": patient})
        chain.sleep(120)
    elif case == "suspended reader":
        network.grant(patient, clinician, READ, terms(CARE, 1), ZERO32, {"from": patient})
        network.suspendParticipant(clinician, key(3), {"from": registrar})
    elif case == "emergency closed":
        network.openEmergencyAccess(patient, 3600, key(1), {"from": clinician})
        network.closeEmergencyAccess(patient, clinician, {"from": patient})
    recipient = clinician
    if case == "delegate outside its bounds":
        network.appointDelegate(delegate, mask(MEDICATIONS), now() + DAY, {"from": patient})
        recipient = delegate
    with assert_custom_error("KeyRecipientWithoutAccess", patient, recipient, categories):
        network.publishKeyEnvelope(patient, recipient, categories, key(900), {"from": patient})
    assert valid_until(network, patient, ALLERGIES) == UNLIMITED


def test_keys_of_a_delegate_made_consent_go_only_while_the_delegation_lives(
    network, patient, delegate, clinician, appointed
):
    network.grant(patient, clinician, READ, terms(CARE, mask(DIRECT_CARE)), ZERO32, {"from": delegate})
    network.removeDelegate(delegate, {"from": patient})
    with assert_custom_error("KeyRecipientWithoutAccess", patient, clinician, mask(ALLERGIES)):
        network.publishKeyEnvelope(patient, clinician, mask(ALLERGIES), key(900), {"from": patient})


def test_narrow_delegate_cannot_publish_keys_of_other_categories(network, patient, delegate, clinician, reader):
    """Issue 12 item 2: envelopes only from the patient or a delegate covering those categories."""
    network.appointDelegate(delegate, mask(IMMUNIZATIONS), now() + DAY, {"from": patient})
    with assert_custom_error("ConsentDelegateOutOfBounds", delegate, mask(IMMUNIZATIONS), mask(ALLERGIES)):
        network.publishKeyEnvelope(patient, clinician, mask(ALLERGIES), key(900), {"from": delegate})


@pytest.mark.parametrize("caller_name", ["stranger", "clinician", "delegate"])
def test_others_cannot_publish_envelopes(network, request, patient, clinician, caller_name):
    caller = request.getfixturevalue(caller_name)
    with assert_custom_error("ConsentUnauthorized", caller, patient):
        network.publishKeyEnvelope(patient, clinician, mask(ALLERGIES), key(900), {"from": caller})


def test_envelope_needs_a_digest_and_known_categories(network, patient, clinician, reader):
    with assert_custom_error("KeyInvalidEnvelope"):
        network.publishKeyEnvelope(patient, clinician, mask(ALLERGIES), ZERO32, {"from": patient})
    with assert_custom_error("ConsentInvalidCategories", 0):
        network.publishKeyEnvelope(patient, clinician, 0, key(900), {"from": patient})


def test_expired_delegate_cannot_publish(network, patient, delegate, clinician, reader, appointed):
    mine_at(appointed)
    with assert_custom_error("ConsentUnauthorized", delegate, patient):
        network.publishKeyEnvelope(patient, clinician, mask(ALLERGIES), key(900), {"from": delegate})


# ---------------------------------------------------------------------------------------------------
# Every early loss of access makes released keys stale
# ---------------------------------------------------------------------------------------------------


def test_revoking_a_reader_with_keys_makes_them_stale(network, patient, clinician, reader):
    tx = network.revoke(patient, clinician, READ, {"from": patient})
    for category in (ALLERGIES, MEDICATIONS):
        assert valid_until(network, patient, category) == tx.timestamp
    assert valid_until(network, patient, CONDITIONS) == UNLIMITED


def test_revoking_a_reader_without_keys_leaves_them_fresh(network, patient, clinician):
    network.grant(patient, clinician, READ, terms(CARE, mask(DIRECT_CARE)), ZERO32, {"from": patient})
    network.revoke(patient, clinician, READ, {"from": patient})
    assert valid_until(network, patient, ALLERGIES) == UNLIMITED


def test_narrowing_drops_categories_and_clamps_the_rest(network, patient, clinician, reader):
    shorter = now() + DAY
    tx = network.grant(
        patient, clinician, READ, terms(mask(ALLERGIES), mask(DIRECT_CARE), expiry=shorter), ZERO32, {"from": patient}
    )
    assert valid_until(network, patient, MEDICATIONS) == tx.timestamp  # dropped: lost now
    assert valid_until(network, patient, ALLERGIES) == shorter  # kept: no longer than the new expiry


def test_consent_expiry_makes_released_keys_stale_without_a_transaction(network, patient, clinician, reader):
    mine_at(reader[3] - 2)
    # the write's own block, in the key's last valid second (left to the clock, it may land a second later)
    web3.provider.make_request("evm_setNextBlockTimestamp", [reader[3] - 1])
    assert write(network, patient, patient, ALLERGIES, 1).timestamp == reader[3] - 1
    mine_at(reader[3])
    with assert_custom_error("RecordStaleKey", patient, ALLERGIES, 1, 1, reader[3]):
        write(network, patient, patient, ALLERGIES, 1, n=2)


def test_closing_an_emergency_access_makes_its_keys_stale(network, patient, clinician):
    network.openEmergencyAccess(patient, 3600, key(1), {"from": clinician})
    network.publishKeyEnvelope(patient, clinician, mask(ALLERGIES), key(900), {"from": patient})
    tx = network.closeEmergencyAccess(patient, clinician, {"from": clinician})
    assert valid_until(network, patient, ALLERGIES) == tx.timestamp


def test_opting_out_makes_keys_released_under_emergency_access_stale(network, patient, clinician):
    network.openEmergencyAccess(patient, 3600, key(1), {"from": clinician})
    network.publishKeyEnvelope(patient, clinician, mask(ALLERGIES), key(900), {"from": patient})
    tx = network.setEmergencyOptOut(True, {"from": patient})
    assert valid_until(network, patient, ALLERGIES) == tx.timestamp
    assert valid_until(network, patient, MEDICATIONS) == UNLIMITED


def test_removing_a_delegate_makes_its_categories_stale(network, patient, delegate, appointed):
    tx = network.removeDelegate(delegate, {"from": patient})
    for category in (ALLERGIES, MEDICATIONS):
        assert valid_until(network, patient, category) == tx.timestamp
    assert valid_until(network, patient, GENOMICS) == UNLIMITED


def test_narrowing_a_delegation_makes_the_dropped_categories_stale(network, patient, delegate, appointed):
    earlier = appointed - DAY
    tx = network.appointDelegate(delegate, mask(ALLERGIES), earlier, {"from": patient})
    assert valid_until(network, patient, MEDICATIONS) == tx.timestamp
    assert valid_until(network, patient, ALLERGIES) == earlier


def test_signed_revocation_makes_released_keys_stale(network, admin, patient, clinician):
    """The relayer holds no keys and cannot rotate: the chain says the keys are stale, the patient's tools rotate."""
    signer = funded(admin, SIGNER_KEY)
    register_patient(network, signer, 40)
    grant_by_sig(network, grant_request(signer, clinician, envelope=key(100)), signer.private_key, admin)
    chain.sleep(1)
    chain.mine()
    tx = revoke_by_sig(network, revoke_request(signer, clinician), signer.private_key, admin)
    assert valid_until(network, signer, ALLERGIES) == tx.timestamp


# ---------------------------------------------------------------------------------------------------
# Writers seal to the current, fresh epoch
# ---------------------------------------------------------------------------------------------------


def test_write_sealed_to_the_current_fresh_key_is_accepted(network, patient, clinician):
    network.grant(patient, clinician, WRITE, terms(mask(OBSERVATIONS), mask(DIRECT_CARE)), ZERO32, {"from": patient})
    tx = write(network, patient, clinician, OBSERVATIONS, 1)
    assert tx.events["RecordRegistered"]["keyEpoch"] == 1


def test_write_sealed_to_a_stale_key_is_refused_until_rotation(network, patient, clinician, reader):
    revoked = network.revoke(patient, clinician, READ, {"from": patient})
    with assert_custom_error("RecordStaleKey", patient, ALLERGIES, 1, 1, revoked.timestamp):
        write(network, patient, patient, ALLERGIES, 1)
    network.setCategoryKeys(patient, mask(ALLERGIES), [key(901)], {"from": patient})
    with assert_custom_error("RecordStaleKey", patient, ALLERGIES, 1, 2, UNLIMITED):
        write(network, patient, patient, ALLERGIES, 1)  # sealed to the old epoch
    assert write(network, patient, patient, ALLERGIES, 2).events["RecordRegistered"]["keyEpoch"] == 2


@pytest.mark.parametrize("sealed_to", [0, 2, 2**32 - 1])
def test_write_sealed_to_another_epoch_is_refused(network, patient, sealed_to):
    with assert_custom_error("RecordStaleKey", patient, GENOMICS, sealed_to, 1, UNLIMITED):
        write(network, patient, patient, GENOMICS, sealed_to)


def test_delegate_reader_keys_follow_the_delegation(network, patient, delegate, appointed):
    """A family delegate that received keys and is then removed: records written afterwards need new keys."""
    network.publishKeyEnvelope(patient, delegate, CARE, key(900), {"from": patient})
    removed = network.removeDelegate(delegate, {"from": patient})
    with assert_custom_error("RecordStaleKey", patient, ALLERGIES, 1, 1, removed.timestamp):
        write(network, patient, patient, ALLERGIES, 1)
    network.setCategoryKeys(patient, CARE, [key(901), key(902)], {"from": patient})
    assert write(network, patient, patient, ALLERGIES, 2).events["RecordRegistered"]["keyEpoch"] == 2
