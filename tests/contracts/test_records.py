"""Record registry (IRecordRegistry, as deployed in Medledger): records, versions, erasure, the audit
trail of accesses and Merkle-anchored batches, each checked against the consent rules.

Every revert is checked by its exact custom error and arguments (`assert_reverts`, the shared `assert_custom_error`), every event by
its exact arguments (`assert_event`).
"""

from __future__ import annotations

import eth_abi
import pytest
from brownie import Medledger, chain, web3
from eth_utils import keccak

from conftest import (
    assert_custom_error as assert_reverts,
    ALLERGIES,
    CONDITIONS,
    DAY,
    DEVICE,
    DIRECT_CARE,
    EMERGENCY,
    FAMILY_CARE,
    GENOMICS,
    IMAGING,
    MEDICATIONS,
    MENTAL_HEALTH,
    OBSERVATIONS,
    READ,
    RESEARCH,
    WRITE,
    ZERO32,
    key,
    mask,
    terms,
)

# ---------------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------------


def rid(n: int) -> str:
    """A record id (random in real use; distinct and non-zero here)."""
    return "0x" + keccak(text=f"record-{n}").hex()


def fp(n: int) -> str:
    """A keyed fingerprint (an HMAC in real use)."""
    return "0x" + keccak(text=f"fingerprint-{n}").hex()


def cid(n: int) -> bytes:
    """The bytes of a CID of ciphertext (a CIDv1 prefix and a digest here)."""
    return bytes.fromhex("01551220") + keccak(text=f"cid-{n}")


def assert_event(tx, name: str, index: int = 0, **fields) -> None:
    """`tx` emitted event `name` (its `index`-th) with exactly the arguments `fields`."""
    assert name in tx.events, f"{name} not emitted; got {list(tx.events.keys())}"
    got = dict(tx.events[name][index])
    assert set(got) == set(fields), f"{name} fields {sorted(got)} != {sorted(fields)}"
    for field, value in fields.items():
        if isinstance(value, bytes):
            value = "0x" + value.hex()
        elif not isinstance(value, (bool, int)):
            value = str(value)
        assert got[field] == value, f"{name}.{field}: {got[field]!r} != {value!r}"


def event_names(tx) -> list[str]:
    return [name for name in tx.events.keys()]


def logs_since(contract, block: int, event: str) -> list:
    """Raw logs of `event` emitted by `contract` from `block` on (reverted transactions leave none)."""
    return web3.eth.get_logs(
        {"fromBlock": block, "toBlock": "latest", "address": contract.address, "topics": [contract.topics[event]]}
    )


def now() -> int:
    """The chain's clock: the latest block's timestamp.

    Not `chain.time()`: after brownie's per-test revert, anvil rewinds its clock to the snapshot block
    while brownie restores its wall-clock offset, so `chain.time()` runs ahead of the chain by the
    seconds the run has taken so far, and an expiry computed from it lies that much too late."""
    return web3.eth.get_block("latest").timestamp


def info(registry, record_id) -> dict:
    return registry.record(record_id).dict()


# ---- Merkle trees as OpenZeppelin's MerkleProof reads them (sorted pairs, keccak256) ----


def leaf(reading_id: bytes, fingerprint: bytes) -> bytes:
    """keccak256(bytes.concat(keccak256(abi.encode(readingId, fingerprint)))): a double-hashed leaf."""
    return keccak(keccak(eth_abi.encode(["bytes32", "bytes32"], [reading_id, fingerprint])))


def hash_pair(a: bytes, b: bytes) -> bytes:
    return keccak(a + b) if a < b else keccak(b + a)


def merkle_tree(leaves: list[bytes]) -> list[list[bytes]]:
    """Levels from the leaves up to the root; an unpaired last node is carried up unchanged."""
    levels = [list(leaves)]
    while len(levels[-1]) > 1:
        below = levels[-1]
        above = [hash_pair(below[i], below[i + 1]) for i in range(0, len(below) - 1, 2)]
        if len(below) % 2:
            above.append(below[-1])
        levels.append(above)
    return levels


def merkle_proof(levels: list[list[bytes]], index: int) -> list[bytes]:
    proof = []
    for level in levels[:-1]:
        sibling = index ^ 1
        if sibling < len(level):
            proof.append(level[sibling])
        index //= 2
    return proof


def readings(n: int, salt: str = "") -> list[tuple[bytes, bytes]]:
    """`n` (readingId, fingerprint) pairs of a device batch."""
    return [(keccak(text=f"reading-{salt}{i}"), keccak(text=f"reading-fp-{salt}{i}")) for i in range(n)]


# ---------------------------------------------------------------------------------------------------
# Fixtures (function-scoped: each test sees only the consents it asks for)
# ---------------------------------------------------------------------------------------------------

CARE = mask(CONDITIONS, OBSERVATIONS, MEDICATIONS)


@pytest.fixture
def writer(network, patient, clinician):
    """The clinician may write and read conditions, observations and medications for direct care."""
    network.grant(patient, clinician, WRITE, terms(CARE, mask(DIRECT_CARE)), ZERO32, {"from": patient})
    network.grant(patient, clinician, READ, terms(CARE, mask(DIRECT_CARE)), ZERO32, {"from": patient})
    return clinician


@pytest.fixture
def reader(network, patient, researcher):
    """The researcher may read observations and device data for research."""
    network.grant(patient, researcher, READ, terms(mask(OBSERVATIONS, DEVICE), mask(RESEARCH)), ZERO32,
                  {"from": patient})
    return researcher


@pytest.fixture
def rec(network, registry, patient):
    """A record of the patient's conditions, registered by the patient."""
    registry.registerRecord(rid(1), patient, CONDITIONS, DIRECT_CARE, fp(1), cid(1), {"from": patient})
    return rid(1)


@pytest.fixture
def batch(network, registry, patient):
    """A batch of 3 device readings anchored by the patient; returns (root, levels, readings)."""
    pairs = readings(3, "fixture")
    levels = merkle_tree([leaf(r, f) for r, f in pairs])
    root = "0x" + levels[-1][0].hex()
    registry.anchorBatch(root, patient, DEVICE, DIRECT_CARE, 3, cid(50), {"from": patient})
    return root, levels, pairs


# ---------------------------------------------------------------------------------------------------
# registerRecord
# ---------------------------------------------------------------------------------------------------


def test_patient_registers_own_record(network, registry, patient):
    tx = registry.registerRecord(rid(1), patient, CONDITIONS, DIRECT_CARE, fp(1), cid(1), {"from": patient})
    assert event_names(tx) == ["RecordRegistered"]
    assert_event(tx, "RecordRegistered", recordId=rid(1), patient=patient, author=patient, category=CONDITIONS,
                 purpose=DIRECT_CARE, fingerprint=fp(1), cid=cid(1))
    assert info(registry, rid(1)) == {
        "patient": patient, "category": CONDITIONS, "createdAt": tx.timestamp, "erased": False,
        "isBatch": False, "leafCount": 0, "fingerprint": fp(1), "previousVersion": ZERO32, "nextVersion": ZERO32,
    }


def test_write_grantee_registers_record(network, registry, patient, writer):
    tx = registry.registerRecord(rid(2), patient, OBSERVATIONS, DIRECT_CARE, fp(2), cid(2), {"from": writer})
    assert event_names(tx) == ["RecordRegistered"]
    assert_event(tx, "RecordRegistered", recordId=rid(2), patient=patient, author=writer, category=OBSERVATIONS,
                 purpose=DIRECT_CARE, fingerprint=fp(2), cid=cid(2))
    got = info(registry, rid(2))
    assert got["patient"] == patient and got["category"] == OBSERVATIONS and got["fingerprint"] == fp(2)
    assert got["createdAt"] == tx.timestamp


def test_cid_of_any_length_is_logged_verbatim(network, registry, patient):
    long_cid = b"bafkrei" + b"x" * 200
    tx = registry.registerRecord(rid(3), patient, IMAGING, DIRECT_CARE, fp(3), long_cid, {"from": patient})
    assert bytes(tx.events["RecordRegistered"]["cid"]) == long_cid


def test_register_refused_with_read_only_consent(network, registry, patient, clinician):
    network.grant(patient, clinician, READ, terms(CARE, mask(DIRECT_CARE)), ZERO32, {"from": patient})
    with assert_reverts("ConsentNotFound", patient, clinician, WRITE):
        registry.registerRecord(rid(1), patient, CONDITIONS, DIRECT_CARE, fp(1), cid(1), {"from": clinician})


def test_register_refused_after_write_consent_expired(network, registry, patient, clinician):
    expiry = now() + DAY
    network.grant(patient, clinician, WRITE, terms(CARE, mask(DIRECT_CARE), 0, expiry), ZERO32, {"from": patient})
    registry.registerRecord(rid(1), patient, CONDITIONS, DIRECT_CARE, fp(1), cid(1), {"from": clinician})
    chain.sleep(DAY + 60)
    with assert_reverts("ConsentExpired", patient, clinician, expiry):
        registry.registerRecord(rid(2), patient, CONDITIONS, DIRECT_CARE, fp(2), cid(2), {"from": clinician})


def test_register_refused_before_write_consent_starts(network, registry, patient, clinician):
    start = now() + DAY
    network.grant(patient, clinician, WRITE, terms(CARE, mask(DIRECT_CARE), start, start + DAY), ZERO32,
                  {"from": patient})
    with assert_reverts("ConsentNotYetValid", patient, clinician, start):
        registry.registerRecord(rid(1), patient, CONDITIONS, DIRECT_CARE, fp(1), cid(1), {"from": clinician})
    chain.sleep(DAY + 60)
    registry.registerRecord(rid(1), patient, CONDITIONS, DIRECT_CARE, fp(1), cid(1), {"from": clinician})


def test_register_refused_for_uncovered_category(network, registry, patient, writer):
    with assert_reverts("ConsentCategoryNotCovered", patient, writer, MENTAL_HEALTH):
        registry.registerRecord(rid(1), patient, MENTAL_HEALTH, DIRECT_CARE, fp(1), cid(1), {"from": writer})


def test_register_refused_for_uncovered_purpose(network, registry, patient, writer):
    with assert_reverts("ConsentPurposeNotCovered", patient, writer, RESEARCH):
        registry.registerRecord(rid(1), patient, CONDITIONS, RESEARCH, fp(1), cid(1), {"from": writer})


def test_register_refused_while_grantee_suspended(network, registry, registrar, patient, writer):
    network.suspendParticipant(writer, key(99), {"from": registrar})
    with assert_reverts("RegistryParticipantSuspended", writer):
        registry.registerRecord(rid(1), patient, CONDITIONS, DIRECT_CARE, fp(1), cid(1), {"from": writer})
    network.reinstateParticipant(writer, {"from": registrar})
    registry.registerRecord(rid(1), patient, CONDITIONS, DIRECT_CARE, fp(1), cid(1), {"from": writer})


def test_register_refused_for_stranger(network, registry, patient, stranger):
    with assert_reverts("ConsentNotFound", patient, stranger, WRITE):
        registry.registerRecord(rid(1), patient, CONDITIONS, DIRECT_CARE, fp(1), cid(1), {"from": stranger})


def test_register_refused_for_delegate_who_only_reads(network, registry, patient, delegate):
    network.appointDelegate(delegate, mask(CONDITIONS), now() + 30 * DAY, {"from": patient})
    with assert_reverts("ConsentNotFound", patient, delegate, WRITE):
        registry.registerRecord(rid(1), patient, CONDITIONS, FAMILY_CARE, fp(1), cid(1), {"from": delegate})


def test_register_refused_for_unregistered_patient(network, registry, stranger):
    with assert_reverts("RegistryPatientNotRegistered", stranger):
        registry.registerRecord(rid(1), stranger, CONDITIONS, DIRECT_CARE, fp(1), cid(1), {"from": stranger})


@pytest.mark.parametrize("category, purpose", [(13, DIRECT_CARE), (255, DIRECT_CARE), (CONDITIONS, 6)])
def test_register_refused_for_unknown_codes(network, registry, patient, category, purpose):
    with assert_reverts("ConsentUnknownCode", category, purpose):
        registry.registerRecord(rid(1), patient, category, purpose, fp(1), cid(1), {"from": patient})


@pytest.mark.parametrize(
    "record_id, fingerprint, content, error",
    [
        (ZERO32, fp(1), cid(1), "RecordInvalidId"),
        (rid(1), ZERO32, cid(1), "RecordInvalidFingerprint"),
        (rid(1), fp(1), b"", "RecordInvalidCid"),
    ],
)
def test_register_rejects_empty_inputs(network, registry, patient, record_id, fingerprint, content, error):
    with assert_reverts(error):
        registry.registerRecord(record_id, patient, CONDITIONS, DIRECT_CARE, fingerprint, content, {"from": patient})


def test_register_duplicate_id(network, registry, patient, writer, rec):
    with assert_reverts("RecordAlreadyExists", rec):
        registry.registerRecord(rec, patient, CONDITIONS, DIRECT_CARE, fp(2), cid(2), {"from": patient})
    # Not even another author with the right to write may take the id over.
    with assert_reverts("RecordAlreadyExists", rec):
        registry.registerRecord(rec, patient, OBSERVATIONS, DIRECT_CARE, fp(2), cid(2), {"from": writer})
    assert info(registry, rec)["fingerprint"] == fp(1)


def test_register_id_taken_by_batch_root(network, registry, patient, batch):
    root = batch[0]
    with assert_reverts("RecordAlreadyExists", root):
        registry.registerRecord(root, patient, CONDITIONS, DIRECT_CARE, fp(2), cid(2), {"from": patient})


def test_unknown_record_reads_as_zero(network, registry):
    assert info(registry, rid(404)) == {
        "patient": "0x" + "00" * 20, "category": 0, "createdAt": 0, "erased": False, "isBatch": False,
        "leafCount": 0, "fingerprint": ZERO32, "previousVersion": ZERO32, "nextVersion": ZERO32,
    }


def test_verify_fingerprint(network, registry, patient, rec):
    registry.registerRecord(rid(2), patient, CONDITIONS, DIRECT_CARE, fp(2), cid(2), {"from": patient})
    assert registry.verifyFingerprint(rec, fp(1)) is True
    assert registry.verifyFingerprint(rid(2), fp(2)) is True
    assert registry.verifyFingerprint(rec, fp(2)) is False  # another record's fingerprint
    assert registry.verifyFingerprint(rid(404), fp(1)) is False  # unknown record
    assert registry.verifyFingerprint(rid(404), ZERO32) is False  # zero never verifies
    assert registry.verifyFingerprint(rec, ZERO32) is False


def test_consent_manager_is_the_deployment_itself(registry):
    assert registry.consentManager() == registry.address


# ---------------------------------------------------------------------------------------------------
# amendRecord and version chains
# ---------------------------------------------------------------------------------------------------


def test_patient_amends_record(network, registry, patient, rec):
    tx = registry.amendRecord(rec, rid(2), DIRECT_CARE, fp(2), cid(2), {"from": patient})
    assert event_names(tx) == ["RecordRegistered", "RecordAmended"]
    assert_event(tx, "RecordRegistered", recordId=rid(2), patient=patient, author=patient, category=CONDITIONS,
                 purpose=DIRECT_CARE, fingerprint=fp(2), cid=cid(2))
    assert_event(tx, "RecordAmended", previousId=rec, recordId=rid(2), patient=patient)
    new, old = info(registry, rid(2)), info(registry, rec)
    assert new["patient"] == patient and new["category"] == CONDITIONS
    assert new["previousVersion"] == rec and new["nextVersion"] == ZERO32
    assert old["nextVersion"] == rid(2) and old["previousVersion"] == ZERO32
    # The old version stays registered and verifiable: amendments never overwrite.
    assert old["fingerprint"] == fp(1) and not old["erased"]
    assert registry.verifyFingerprint(rec, fp(1)) and registry.verifyFingerprint(rid(2), fp(2))


def test_write_grantee_amends_record_inheriting_patient_and_category(network, registry, patient, writer, rec):
    tx = registry.amendRecord(rec, rid(2), DIRECT_CARE, fp(2), cid(2), {"from": writer})
    assert_event(tx, "RecordRegistered", recordId=rid(2), patient=patient, author=writer, category=CONDITIONS,
                 purpose=DIRECT_CARE, fingerprint=fp(2), cid=cid(2))
    assert_event(tx, "RecordAmended", previousId=rec, recordId=rid(2), patient=patient)
    assert info(registry, rid(2))["patient"] == patient


def test_amend_needs_write_consent_for_the_inherited_category(network, registry, patient, clinician, rec):
    # A write consent for observations only does not cover an amendment of a conditions record.
    network.grant(patient, clinician, WRITE, terms(mask(OBSERVATIONS), mask(DIRECT_CARE)), ZERO32, {"from": patient})
    with assert_reverts("ConsentCategoryNotCovered", patient, clinician, CONDITIONS):
        registry.amendRecord(rec, rid(2), DIRECT_CARE, fp(2), cid(2), {"from": clinician})


def test_amend_refused_for_uncovered_purpose(network, registry, patient, writer, rec):
    with assert_reverts("ConsentPurposeNotCovered", patient, writer, RESEARCH):
        registry.amendRecord(rec, rid(2), RESEARCH, fp(2), cid(2), {"from": writer})


def test_amend_refused_for_stranger_and_reader(network, registry, patient, stranger, reader, rec):
    with assert_reverts("ConsentNotFound", patient, stranger, WRITE):
        registry.amendRecord(rec, rid(2), DIRECT_CARE, fp(2), cid(2), {"from": stranger})
    with assert_reverts("ConsentNotFound", patient, reader, WRITE):
        registry.amendRecord(rec, rid(2), RESEARCH, fp(2), cid(2), {"from": reader})
    assert info(registry, rec)["nextVersion"] == ZERO32


def test_amend_superseded_record(network, registry, patient, rec):
    registry.amendRecord(rec, rid(2), DIRECT_CARE, fp(2), cid(2), {"from": patient})
    with assert_reverts("RecordAlreadySuperseded", rec, rid(2)):
        registry.amendRecord(rec, rid(3), DIRECT_CARE, fp(3), cid(3), {"from": patient})


def test_amend_erased_record(network, registry, patient, rec):
    registry.eraseRecord(rec, {"from": patient})
    with assert_reverts("RecordIsErased", rec):
        registry.amendRecord(rec, rid(2), DIRECT_CARE, fp(2), cid(2), {"from": patient})


def test_amend_batch(network, registry, patient, batch):
    root = batch[0]
    with assert_reverts("RecordIsBatch", root):
        registry.amendRecord(root, rid(2), DIRECT_CARE, fp(2), cid(2), {"from": patient})


def test_amend_unknown_record(network, registry, patient):
    with assert_reverts("RecordNotFound", rid(404)):
        registry.amendRecord(rid(404), rid(2), DIRECT_CARE, fp(2), cid(2), {"from": patient})


@pytest.mark.parametrize(
    "new_id, fingerprint, content, error",
    [
        (ZERO32, fp(2), cid(2), ("RecordInvalidId",)),
        (rid(2), ZERO32, cid(2), ("RecordInvalidFingerprint",)),
        (rid(2), fp(2), b"", ("RecordInvalidCid",)),
        (rid(1), fp(2), cid(2), ("RecordAlreadyExists", rid(1))),  # amending into itself
    ],
)
def test_amend_rejects_bad_new_version(network, registry, patient, rec, new_id, fingerprint, content, error):
    with assert_reverts(*error):
        registry.amendRecord(rec, new_id, DIRECT_CARE, fingerprint, content, {"from": patient})
    assert info(registry, rec)["nextVersion"] == ZERO32


def test_version_chain_of_three(network, registry, patient, writer, rec):
    registry.amendRecord(rec, rid(2), DIRECT_CARE, fp(2), cid(2), {"from": writer})
    registry.amendRecord(rid(2), rid(3), DIRECT_CARE, fp(3), cid(3), {"from": patient})

    forward, current = [rec], rec
    while (current := info(registry, current)["nextVersion"]) != ZERO32:
        forward.append(current)
    backward, current = [rid(3)], rid(3)
    while (current := info(registry, current)["previousVersion"]) != ZERO32:
        backward.append(current)

    assert forward == [rid(1), rid(2), rid(3)]
    assert backward == forward[::-1]
    assert all(info(registry, r)["patient"] == patient for r in forward)
    assert all(info(registry, r)["category"] == CONDITIONS for r in forward)
    # Only the head can be amended.
    with assert_reverts("RecordAlreadySuperseded", rid(2), rid(3)):
        registry.amendRecord(rid(2), rid(4), DIRECT_CARE, fp(4), cid(4), {"from": patient})


def test_erasing_the_middle_version_keeps_links(network, registry, patient, rec):
    registry.amendRecord(rec, rid(2), DIRECT_CARE, fp(2), cid(2), {"from": patient})
    registry.amendRecord(rid(2), rid(3), DIRECT_CARE, fp(3), cid(3), {"from": patient})
    registry.eraseRecord(rid(2), {"from": patient})
    middle = info(registry, rid(2))
    assert middle["erased"] and middle["fingerprint"] == ZERO32
    assert middle["previousVersion"] == rec and middle["nextVersion"] == rid(3)
    registry.amendRecord(rid(3), rid(4), DIRECT_CARE, fp(4), cid(4), {"from": patient})


# ---------------------------------------------------------------------------------------------------
# eraseRecord
# ---------------------------------------------------------------------------------------------------


def test_patient_erases_record(network, registry, patient, rec):
    assert registry.eraseRecord.call(rec, {"from": patient}) is True
    tx = registry.eraseRecord(rec, {"from": patient})
    assert event_names(tx) == ["RecordErased"]
    assert_event(tx, "RecordErased", recordId=rec, patient=patient)
    got = info(registry, rec)
    assert got["erased"] is True and got["fingerprint"] == ZERO32
    assert got["patient"] == patient and got["category"] == CONDITIONS  # the header stays
    assert registry.verifyFingerprint(rec, fp(1)) is False


def test_erase_twice_is_a_no_op(network, registry, patient, rec):
    registry.eraseRecord(rec, {"from": patient})
    assert registry.eraseRecord.call(rec, {"from": patient}) is False
    tx = registry.eraseRecord(rec, {"from": patient})
    assert tx.status == 1 and len(tx.events) == 0


@pytest.mark.parametrize("who", ["writer", "delegate", "stranger", "admin"])
def test_only_the_patient_erases(network, registry, patient, delegate, stranger, admin, writer, rec, who):
    caller = {"writer": writer, "delegate": delegate, "stranger": stranger, "admin": admin}[who]
    if who == "delegate":
        network.appointDelegate(delegate, mask(CONDITIONS), now() + 30 * DAY, {"from": patient})
    with assert_reverts("RecordNotPatient", caller, patient):
        registry.eraseRecord(rec, {"from": caller})
    assert info(registry, rec)["erased"] is False


def test_erase_record_registered_by_grantee(network, registry, patient, writer):
    registry.registerRecord(rid(2), patient, CONDITIONS, DIRECT_CARE, fp(2), cid(2), {"from": writer})
    with assert_reverts("RecordNotPatient", writer, patient):
        registry.eraseRecord(rid(2), {"from": writer})  # the author is not the owner
    tx = registry.eraseRecord(rid(2), {"from": patient})
    assert_event(tx, "RecordErased", recordId=rid(2), patient=patient)


def test_erase_unknown_record(network, registry, patient):
    with assert_reverts("RecordNotFound", rid(404)):
        registry.eraseRecord(rid(404), {"from": patient})


# ---------------------------------------------------------------------------------------------------
# recordAccess: the audit trail
# ---------------------------------------------------------------------------------------------------


def test_access_with_read_consent_is_logged(network, registry, patient, writer, rec):
    assert registry.recordAccess.call(rec, DIRECT_CARE, {"from": writer}) is False
    tx = registry.recordAccess(rec, DIRECT_CARE, {"from": writer})
    assert event_names(tx) == ["RecordAccessed"]
    assert_event(tx, "RecordAccessed", recordId=rec, patient=patient, accessor=writer, purpose=DIRECT_CARE,
                 emergency=False)


def test_access_by_researcher_for_research(network, registry, patient, reader):
    registry.registerRecord(rid(2), patient, OBSERVATIONS, DIRECT_CARE, fp(2), cid(2), {"from": patient})
    tx = registry.recordAccess(rid(2), RESEARCH, {"from": reader})
    assert_event(tx, "RecordAccessed", recordId=rid(2), patient=patient, accessor=reader, purpose=RESEARCH,
                 emergency=False)


def test_write_consent_alone_does_not_allow_reading(network, registry, patient, clinician, rec):
    network.grant(patient, clinician, WRITE, terms(CARE, mask(DIRECT_CARE)), ZERO32, {"from": patient})
    with assert_reverts("ConsentNotFound", patient, clinician, READ):
        registry.recordAccess(rec, DIRECT_CARE, {"from": clinician})


def _refusal_setup(case, network, registry, registrar, patient, clinician):
    """Gives `clinician` a read consent that fails in the way `case` names; returns (purpose, error args)."""
    t = now()
    if case == "not found":
        return DIRECT_CARE, ("ConsentNotFound", patient, clinician, READ)
    if case == "not yet valid":
        start = t + DAY
        network.grant(patient, clinician, READ, terms(CARE, mask(DIRECT_CARE), start, start + DAY), ZERO32,
                      {"from": patient})
        return DIRECT_CARE, ("ConsentNotYetValid", patient, clinician, start)
    if case == "expired":
        expiry = t + DAY
        network.grant(patient, clinician, READ, terms(CARE, mask(DIRECT_CARE), 0, expiry), ZERO32, {"from": patient})
        chain.sleep(DAY + 60)
        chain.mine()
        return DIRECT_CARE, ("ConsentExpired", patient, clinician, expiry)
    if case == "category":
        network.grant(patient, clinician, READ, terms(mask(ALLERGIES), mask(DIRECT_CARE)), ZERO32, {"from": patient})
        return DIRECT_CARE, ("ConsentCategoryNotCovered", patient, clinician, CONDITIONS)
    if case == "purpose":
        network.grant(patient, clinician, READ, terms(CARE, mask(DIRECT_CARE)), ZERO32, {"from": patient})
        return RESEARCH, ("ConsentPurposeNotCovered", patient, clinician, RESEARCH)
    if case == "suspended":
        network.grant(patient, clinician, READ, terms(CARE, mask(DIRECT_CARE)), ZERO32, {"from": patient})
        network.suspendParticipant(clinician, key(99), {"from": registrar})
        return DIRECT_CARE, ("RegistryParticipantSuspended", clinician)
    if case == "revoked":
        network.grant(patient, clinician, READ, terms(CARE, mask(DIRECT_CARE)), ZERO32, {"from": patient})
        network.revoke(patient, clinician, READ, {"from": patient})
        return DIRECT_CARE, ("ConsentNotFound", patient, clinician, READ)
    raise AssertionError(case)


REFUSALS = ["not found", "not yet valid", "expired", "category", "purpose", "suspended", "revoked"]


@pytest.mark.parametrize("case", REFUSALS)
def test_access_refused_and_not_logged(case, network, registry, registrar, patient, clinician, rec):
    purpose, error = _refusal_setup(case, network, registry, registrar, patient, clinician)
    block = web3.eth.block_number + 1
    with assert_reverts(*error):
        registry.recordAccess(rec, purpose, {"from": clinician})
    assert logs_since(registry, block, "RecordAccessed") == []
    # checkAccess gives the same reason, isPermitted says no.
    with assert_reverts(*error):
        network.checkAccess(patient, clinician, READ, CONDITIONS, purpose)
    assert network.isPermitted(patient, clinician, READ, CONDITIONS, purpose) is False


def test_access_to_erased_record(network, registry, patient, writer, rec):
    registry.eraseRecord(rec, {"from": patient})
    for caller in (writer, patient):
        with assert_reverts("RecordIsErased", rec):
            registry.recordAccess(rec, DIRECT_CARE, {"from": caller})


def test_access_to_unknown_record(network, registry, patient):
    with assert_reverts("RecordNotFound", rid(404)):
        registry.recordAccess(rid(404), DIRECT_CARE, {"from": patient})


def test_access_with_unknown_purpose(network, registry, patient, rec):
    with assert_reverts("ConsentUnknownCode", CONDITIONS, 6):
        registry.recordAccess(rec, 6, {"from": patient})


@pytest.mark.parametrize("purpose", [DIRECT_CARE, RESEARCH, FAMILY_CARE, EMERGENCY])
def test_patient_accesses_own_record(network, registry, patient, rec, purpose):
    tx = registry.recordAccess(rec, purpose, {"from": patient})
    assert_event(tx, "RecordAccessed", recordId=rec, patient=patient, accessor=patient, purpose=purpose,
                 emergency=False)


def test_delegate_reads_for_family_care_within_its_categories(network, registry, patient, delegate, rec):
    expiry = now() + 10 * DAY
    network.appointDelegate(delegate, mask(CONDITIONS, MEDICATIONS), expiry, {"from": patient})
    tx = registry.recordAccess(rec, FAMILY_CARE, {"from": delegate})
    assert_event(tx, "RecordAccessed", recordId=rec, patient=patient, accessor=delegate, purpose=FAMILY_CARE,
                 emergency=False)
    # Another purpose is not covered by the delegation.
    with assert_reverts("ConsentNotFound", patient, delegate, READ):
        registry.recordAccess(rec, DIRECT_CARE, {"from": delegate})
    # Outside its categories: refused.
    registry.registerRecord(rid(2), patient, GENOMICS, DIRECT_CARE, fp(2), cid(2), {"from": patient})
    with assert_reverts("ConsentNotFound", patient, delegate, READ):
        registry.recordAccess(rid(2), FAMILY_CARE, {"from": delegate})
    # Once the delegation lapses: refused.
    chain.sleep(10 * DAY + 60)
    chain.mine()
    with assert_reverts("ConsentNotFound", patient, delegate, READ):
        registry.recordAccess(rec, FAMILY_CARE, {"from": delegate})


def test_removed_delegate_cannot_read(network, registry, patient, delegate, rec):
    network.appointDelegate(delegate, mask(CONDITIONS), now() + 10 * DAY, {"from": patient})
    network.removeDelegate(delegate, {"from": patient})
    with assert_reverts("ConsentNotFound", patient, delegate, READ):
        registry.recordAccess(rec, FAMILY_CARE, {"from": delegate})


def test_emergency_access_is_flagged(network, registry, patient, clinician, rec):
    network.openEmergencyAccess(patient, 3600, key(77), {"from": clinician})
    assert registry.recordAccess.call(rec, EMERGENCY, {"from": clinician}) is True
    tx = registry.recordAccess(rec, EMERGENCY, {"from": clinician})
    assert_event(tx, "RecordAccessed", recordId=rec, patient=patient, accessor=clinician, purpose=EMERGENCY,
                 emergency=True)
    # Only for the emergency purpose.
    with assert_reverts("ConsentNotFound", patient, clinician, READ):
        registry.recordAccess(rec, DIRECT_CARE, {"from": clinician})


def test_emergency_access_ends_with_window_or_closing(network, registry, patient, clinician, rec):
    network.openEmergencyAccess(patient, 3600, key(77), {"from": clinician})
    chain.sleep(3601)
    chain.mine()
    with assert_reverts("ConsentNotFound", patient, clinician, READ):
        registry.recordAccess(rec, EMERGENCY, {"from": clinician})
    network.openEmergencyAccess(patient, 3600, key(77), {"from": clinician})
    registry.recordAccess(rec, EMERGENCY, {"from": clinician})
    network.closeEmergencyAccess(patient, clinician, {"from": patient})
    with assert_reverts("ConsentNotFound", patient, clinician, READ):
        registry.recordAccess(rec, EMERGENCY, {"from": clinician})


def test_emergency_access_stops_while_suspended(network, registry, registrar, patient, clinician, rec):
    network.openEmergencyAccess(patient, 3600, key(77), {"from": clinician})
    network.suspendParticipant(clinician, key(99), {"from": registrar})
    with assert_reverts("RegistryParticipantSuspended", clinician):
        registry.recordAccess(rec, EMERGENCY, {"from": clinician})


def test_consent_covered_access_is_not_flagged_emergency(network, registry, patient, clinician, rec):
    network.grant(patient, clinician, READ, terms(CARE, mask(EMERGENCY)), ZERO32, {"from": patient})
    network.openEmergencyAccess(patient, 3600, key(77), {"from": clinician})
    tx = registry.recordAccess(rec, EMERGENCY, {"from": clinician})
    assert tx.events["RecordAccessed"]["emergency"] is False


# ---------------------------------------------------------------------------------------------------
# anchorBatch and Merkle inclusion
# ---------------------------------------------------------------------------------------------------


def test_patient_anchors_batch(network, registry, patient):
    root = "0x" + merkle_tree([leaf(r, f) for r, f in readings(7)])[-1][0].hex()
    tx = registry.anchorBatch(root, patient, DEVICE, DIRECT_CARE, 7, cid(9), {"from": patient})
    assert event_names(tx) == ["BatchAnchored"]
    assert_event(tx, "BatchAnchored", root=root, patient=patient, author=patient, category=DEVICE,
                 purpose=DIRECT_CARE, leafCount=7, cid=cid(9))
    assert info(registry, root) == {
        "patient": patient, "category": DEVICE, "createdAt": tx.timestamp, "erased": False, "isBatch": True,
        "leafCount": 7, "fingerprint": ZERO32, "previousVersion": ZERO32, "nextVersion": ZERO32,
    }
    assert registry.verifyFingerprint(root, ZERO32) is False


def test_write_grantee_anchors_batch(network, registry, patient, app):
    network.grant(patient, app, WRITE, terms(mask(DEVICE), mask(DIRECT_CARE)), ZERO32, {"from": patient})
    tx = registry.anchorBatch(rid(100), patient, DEVICE, DIRECT_CARE, 2**32 - 1, cid(9), {"from": app})
    assert_event(tx, "BatchAnchored", root=rid(100), patient=patient, author=app, category=DEVICE,
                 purpose=DIRECT_CARE, leafCount=2**32 - 1, cid=cid(9))
    assert info(registry, rid(100))["leafCount"] == 2**32 - 1


@pytest.mark.parametrize(
    "root, leaf_count, content, error",
    [
        (ZERO32, 3, cid(9), ("RecordInvalidId",)),
        (rid(100), 0, cid(9), ("RecordEmptyBatch",)),
        (rid(100), 3, b"", ("RecordInvalidCid",)),
    ],
)
def test_anchor_rejects_empty_inputs(network, registry, patient, root, leaf_count, content, error):
    with assert_reverts(*error):
        registry.anchorBatch(root, patient, DEVICE, DIRECT_CARE, leaf_count, content, {"from": patient})


def test_anchor_duplicate_root(network, registry, patient, batch, rec):
    with assert_reverts("RecordAlreadyExists", batch[0]):
        registry.anchorBatch(batch[0], patient, DEVICE, DIRECT_CARE, 3, cid(9), {"from": patient})
    with assert_reverts("RecordAlreadyExists", rec):  # a record id is taken too
        registry.anchorBatch(rec, patient, DEVICE, DIRECT_CARE, 3, cid(9), {"from": patient})


def test_anchor_unauthorised(network, registry, registrar, patient, stranger, reader, app):
    with assert_reverts("ConsentNotFound", patient, stranger, WRITE):
        registry.anchorBatch(rid(100), patient, DEVICE, DIRECT_CARE, 3, cid(9), {"from": stranger})
    with assert_reverts("ConsentNotFound", patient, reader, WRITE):
        registry.anchorBatch(rid(100), patient, DEVICE, RESEARCH, 3, cid(9), {"from": reader})
    network.grant(patient, app, WRITE, terms(mask(DEVICE), mask(DIRECT_CARE)), ZERO32, {"from": patient})
    with assert_reverts("ConsentCategoryNotCovered", patient, app, OBSERVATIONS):
        registry.anchorBatch(rid(100), patient, OBSERVATIONS, DIRECT_CARE, 3, cid(9), {"from": app})
    with assert_reverts("ConsentPurposeNotCovered", patient, app, RESEARCH):
        registry.anchorBatch(rid(100), patient, DEVICE, RESEARCH, 3, cid(9), {"from": app})
    network.suspendParticipant(app, key(99), {"from": registrar})
    with assert_reverts("RegistryParticipantSuspended", app):
        registry.anchorBatch(rid(100), patient, DEVICE, DIRECT_CARE, 3, cid(9), {"from": app})
    assert info(registry, rid(100))["patient"] == "0x" + "00" * 20


def _indices(n: int) -> list[int]:
    """Every index of a small batch; for a large one the edges, the carried-up tail and a spread."""
    if n <= 16:
        return list(range(n))
    return sorted({0, 1, 2, n // 2, n - 3, n - 2, n - 1, *range(37, n, 97)})


@pytest.mark.parametrize("n", [1, 2, 3, 7, 1000])
def test_batch_inclusion_proofs(network, registry, patient, n):
    pairs = readings(n, f"n{n}-")
    levels = merkle_tree([leaf(r, f) for r, f in pairs])
    root = "0x" + levels[-1][0].hex()
    registry.anchorBatch(root, patient, DEVICE, DIRECT_CARE, n, cid(n), {"from": patient})
    assert info(registry, root)["leafCount"] == n

    for i in _indices(n):
        reading_id, fingerprint = pairs[i]
        proof = merkle_proof(levels, i)
        assert registry.verifyBatchInclusion(root, reading_id, fingerprint, proof) is True, i
        # A wrong fingerprint or reading id is not included.
        assert registry.verifyBatchInclusion(root, reading_id, keccak(fingerprint), proof) is False
        assert registry.verifyBatchInclusion(root, keccak(reading_id), fingerprint, proof) is False
        # Swapped fields do not verify (the leaf encodes the order).
        if n > 1:
            assert registry.verifyBatchInclusion(root, fingerprint, reading_id, proof) is False
    if n > 1:
        reading_id, fingerprint = pairs[0]
        other = merkle_proof(levels, n - 1)
        assert registry.verifyBatchInclusion(root, reading_id, fingerprint, other) is False  # another leaf's proof
        tampered = merkle_proof(levels, 0)
        tampered[0] = keccak(tampered[0])
        assert registry.verifyBatchInclusion(root, reading_id, fingerprint, tampered) is False
        assert registry.verifyBatchInclusion(root, reading_id, fingerprint, merkle_proof(levels, 0)[:-1]) is False
        # An inner node presented as a leaf is not a reading (leaves are double-hashed).
        assert registry.verifyBatchInclusion(root, levels[0][0], levels[0][1], merkle_proof(levels, 0)[1:]) is False
    else:
        assert registry.verifyBatchInclusion(root, pairs[0][0], pairs[0][1], [keccak(b"x")]) is False


def test_inclusion_needs_an_anchored_batch(network, registry, patient, rec):
    pairs = readings(2, "unanchored")
    levels = merkle_tree([leaf(r, f) for r, f in pairs])
    root = "0x" + levels[-1][0].hex()
    # A correct proof against a root nobody anchored proves nothing.
    assert registry.verifyBatchInclusion(root, pairs[0][0], pairs[0][1], merkle_proof(levels, 0)) is False
    # Nor does a record id (not a batch), even when it happens to equal a leaf with an empty proof.
    single = readings(1, "as-record")
    as_record = "0x" + leaf(*single[0]).hex()
    registry.registerRecord(as_record, patient, DEVICE, DIRECT_CARE, fp(5), cid(5), {"from": patient})
    assert registry.verifyBatchInclusion(as_record, single[0][0], single[0][1], []) is False


def test_inclusion_false_after_batch_erased(network, registry, patient, batch):
    root, levels, pairs = batch
    assert registry.verifyBatchInclusion(root, *pairs[1], merkle_proof(levels, 1)) is True
    tx = registry.eraseRecord(root, {"from": patient})
    assert_event(tx, "RecordErased", recordId=root, patient=patient)
    got = info(registry, root)
    assert got["erased"] and got["isBatch"] and got["leafCount"] == 3
    for i in range(3):
        assert registry.verifyBatchInclusion(root, *pairs[i], merkle_proof(levels, i)) is False


def test_access_to_batch_is_logged_like_a_record(network, registry, patient, reader, batch):
    root = batch[0]
    tx = registry.recordAccess(root, RESEARCH, {"from": reader})
    assert event_names(tx) == ["RecordAccessed"]
    assert_event(tx, "RecordAccessed", recordId=root, patient=patient, accessor=reader, purpose=RESEARCH,
                 emergency=False)
    with assert_reverts("ConsentPurposeNotCovered", patient, reader, DIRECT_CARE):
        registry.recordAccess(root, DIRECT_CARE, {"from": reader})


def test_access_to_batch_refused_and_erased(network, registry, patient, clinician, writer, batch):
    root = batch[0]
    # The clinician's consent covers conditions, observations, medications, not device data.
    with assert_reverts("ConsentCategoryNotCovered", patient, clinician, DEVICE):
        registry.recordAccess(root, DIRECT_CARE, {"from": clinician})
    registry.eraseRecord(root, {"from": patient})
    with assert_reverts("RecordIsErased", root):
        registry.recordAccess(root, DIRECT_CARE, {"from": patient})


# ---------------------------------------------------------------------------------------------------
# Every state-changing function, called by an account with no rights
# ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "function", ["registerRecord", "amendRecord", "anchorBatch", "eraseRecord", "recordAccess"]
)
def test_unauthorised_caller(function, network, registry, patient, stranger, rec):
    calls = {
        "registerRecord": (("ConsentNotFound", patient, stranger, WRITE),
                           lambda: registry.registerRecord(rid(2), patient, CONDITIONS, DIRECT_CARE, fp(2), cid(2),
                                                           {"from": stranger})),
        "amendRecord": (("ConsentNotFound", patient, stranger, WRITE),
                        lambda: registry.amendRecord(rec, rid(2), DIRECT_CARE, fp(2), cid(2), {"from": stranger})),
        "anchorBatch": (("ConsentNotFound", patient, stranger, WRITE),
                        lambda: registry.anchorBatch(rid(2), patient, DEVICE, DIRECT_CARE, 4, cid(2),
                                                     {"from": stranger})),
        "eraseRecord": (("RecordNotPatient", stranger, patient),
                        lambda: registry.eraseRecord(rec, {"from": stranger})),
        "recordAccess": (("ConsentNotFound", patient, stranger, READ),
                         lambda: registry.recordAccess(rec, DIRECT_CARE, {"from": stranger})),
    }
    error, call = calls[function]
    block = web3.eth.block_number + 1
    with assert_reverts(*error):
        call()
    assert web3.eth.get_logs({"fromBlock": block, "toBlock": "latest", "address": registry.address}) == []
    assert info(registry, rid(2))["patient"] == "0x" + "00" * 20
    assert info(registry, rec)["erased"] is False and info(registry, rec)["nextVersion"] == ZERO32
