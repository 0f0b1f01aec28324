"""Record registry (IRecordRegistry, as deployed in Medledger): records in their patient's namespace,
one commitment slot each; bulk registration; versions and who may amend; erasure; the audit trail of
accesses and Merkle-anchored batches, each checked against the consent rules and the category keys.

Every revert is checked by its exact custom error and arguments, every event by its exact arguments,
and every header a test passes is rebuilt from the events (`header_from_events`), as the tooling does.
"""

from __future__ import annotations

import eth_abi
import pytest
from brownie import chain, web3
from conftest import (
    ALLERGIES,
    CONDITIONS,
    DAY,
    DEVICE,
    DIRECT_CARE,
    EMERGENCY,
    FAMILY_CARE,
    GENOMICS,
    MEDICATIONS,
    MENTAL_HEALTH,
    OBSERVATIONS,
    READ,
    RESEARCH,
    WRITE,
    ZERO,
    ZERO32,
    key,
    mask,
    now,
    register_patient,
    terms,
)
from conftest import (
    assert_custom_error as assert_reverts,
)
from eth_utils import keccak

RAW, DAG_PB = 0x55, 0x70
EPOCH = 1  # every category key is at epoch 1 after registration

# ---------------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------------


def rid(n: int) -> str:
    """A record id (random in real use; distinct and non-zero here)."""
    return "0x" + keccak(text=f"record-{n}").hex()


def fp(n: int) -> str:
    """A keyed fingerprint (an HMAC in real use)."""
    return "0x" + keccak(text=f"fingerprint-{n}").hex()


def digest(n: int) -> str:
    """The sha2-256 digest of a CIDv1 of ciphertext."""
    return "0x" + keccak(text=f"cid-{n}").hex()


HEADER_TYPES = ["address", "uint8", "uint32", "bool", "bool", "uint32", "bytes32", "bytes32", "bytes32"]


def header(
    author,
    category,
    epoch=EPOCH,
    erased=False,
    batch=False,
    leaf_count=0,
    fingerprint=ZERO32,
    previous=ZERO32,
    next_=ZERO32,
) -> tuple:
    """A RecordHeader tuple (author, category, keyEpoch, erased, isBatch, leafCount, fingerprint, previous, next)."""
    return (str(author), category, epoch, erased, batch, leaf_count, fingerprint, previous, next_)


def commitment(h: tuple) -> str:
    """The commitment the registry stores: keccak256(abi.encode(every header field))."""
    values = [h[0], h[1], h[2], h[3], h[4], h[5]] + [bytes.fromhex(str(v)[2:]) for v in h[6:]]
    return "0x" + keccak(eth_abi.encode(HEADER_TYPES, values)).hex()


def header_from_events(registry, patient, record_id) -> tuple:
    """Rebuild the current header of `patient`'s record from the registry's events alone."""

    def logs(event, *fields):
        return [e for e in _decoded(registry, event) if all(e["args"][k] == str(v) for k, v in fields)]

    created = logs("RecordRegistered", ("recordId", record_id), ("patient", patient))
    if created:
        a = created[-1]["args"]
        h = [a["author"], a["category"], a["keyEpoch"], False, False, 0, a["fingerprint"], ZERO32, ZERO32]
    else:
        a = logs("BatchAnchored", ("root", record_id), ("patient", patient))[-1]["args"]
        h = [a["author"], a["category"], a["keyEpoch"], False, True, a["leafCount"], ZERO32, ZERO32, ZERO32]
    for amended in logs("RecordAmended", ("recordId", record_id), ("patient", patient)):
        h[7] = amended["args"]["previousId"]
    for amended in logs("RecordAmended", ("previousId", record_id), ("patient", patient)):
        h[8] = amended["args"]["recordId"]
    if logs("RecordErased", ("recordId", record_id), ("patient", patient)):
        h[3], h[6] = True, ZERO32
    return header(*h[:7], previous=h[7], next_=h[8])


def _decoded(registry, event: str) -> list:
    contract = web3.eth.contract(address=registry.address, abi=registry.abi)
    return [
        {"args": {k: _normal(v) for k, v in entry["args"].items()}}
        for entry in getattr(contract.events, event)().get_logs(from_block=0)
    ]


def _normal(value):
    if isinstance(value, (bytes, bytearray)):
        return "0x" + bytes(value).hex()
    return value


def current(registry, patient, record_id) -> tuple:
    """The record's header from its events, checked against the chain's commitment."""
    h = header_from_events(registry, patient, record_id)
    assert registry.recordCommitment(patient, record_id) == commitment(h)
    assert registry.isRecordHeader(patient, record_id, h) is True
    return h


def assert_event(tx, name: str, index: int = 0, **fields) -> None:
    """`tx` emitted event `name` (its `index`-th) with exactly the arguments `fields`."""
    assert name in tx.events, f"{name} not emitted; got {list(tx.events.keys())}"
    got = dict(tx.events[name][index])
    assert set(got) == set(fields), f"{name} fields {sorted(got)} != {sorted(fields)}"
    for field, value in fields.items():
        if not isinstance(value, (bool, int)):
            value = str(value)
        assert got[field] == value, f"{name}.{field}: {got[field]!r} != {value!r}"


def event_names(tx) -> list[str]:
    return list(tx.events.keys())


def no_logs_since(registry, block: int) -> bool:
    return web3.eth.get_logs({"fromBlock": block, "toBlock": "latest", "address": registry.address}) == []


def register(registry, patient, n, category=CONDITIONS, sender=None, purpose=DIRECT_CARE, epoch=EPOCH):
    return registry.registerRecord(
        patient, rid(n), category, purpose, epoch, fp(n), RAW, digest(n), {"from": sender or patient}
    )


def amend(registry, patient, old: int | str, new: int, sender, purpose=DIRECT_CARE, epoch=EPOCH, previous=None):
    old_id = rid(old) if isinstance(old, int) else old
    previous = previous or header_from_events(registry, patient, old_id)
    return registry.amendRecord(
        patient, old_id, previous, rid(new), purpose, epoch, fp(new), RAW, digest(new), {"from": sender}
    )


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
def other_writer(network, patient, app):
    """The app may write conditions too."""
    network.grant(patient, app, WRITE, terms(CARE, mask(DIRECT_CARE)), ZERO32, {"from": patient})
    return app


@pytest.fixture
def reader(network, patient, researcher):
    """The researcher may read observations and device data for research."""
    network.grant(
        patient, researcher, READ, terms(mask(OBSERVATIONS, DEVICE), mask(RESEARCH)), ZERO32, {"from": patient}
    )
    return researcher


@pytest.fixture
def rec(network, registry, patient):
    """A record of the patient's conditions, registered by the patient."""
    register(registry, patient, 1)
    return rid(1)


@pytest.fixture
def authored(network, registry, patient, writer):
    """A record of the patient's conditions written by the clinician."""
    register(registry, patient, 1, sender=writer)
    return rid(1)


@pytest.fixture
def batch(network, registry, patient):
    """A batch of 3 device readings anchored by the patient; returns (root, levels, readings)."""
    pairs = readings(3, "fixture")
    levels = merkle_tree([leaf(r, f) for r, f in pairs])
    root = "0x" + levels[-1][0].hex()
    registry.anchorBatch(patient, root, DEVICE, DIRECT_CARE, EPOCH, 3, DAG_PB, digest(50), {"from": patient})
    return root, levels, pairs


# ---------------------------------------------------------------------------------------------------
# registerRecord
# ---------------------------------------------------------------------------------------------------


def test_patient_registers_own_record(network, registry, patient):
    tx = register(registry, patient, 1)
    assert event_names(tx) == ["RecordRegistered"]
    assert_event(
        tx,
        "RecordRegistered",
        recordId=rid(1),
        patient=patient,
        author=patient,
        category=CONDITIONS,
        purpose=DIRECT_CARE,
        keyEpoch=EPOCH,
        fingerprint=fp(1),
        cidCodec=RAW,
        cidDigest=digest(1),
    )
    expected = header(patient, CONDITIONS, fingerprint=fp(1))
    assert current(registry, patient, rid(1)) == expected


def test_commitment_is_the_hash_of_the_explicit_encoding(network, registry, patient, rec):
    """Pins the formula the tooling relies on (the contract hashes the memory struct directly)."""
    h = header(patient, CONDITIONS, fingerprint=fp(1))
    assert registry.recordCommitment(patient, rec) == commitment(h)
    assert registry.recordCommitment(patient, rec) != ZERO32


def test_write_grantee_registers_record(network, registry, patient, writer):
    tx = registry.registerRecord(
        patient, rid(2), OBSERVATIONS, DIRECT_CARE, EPOCH, fp(2), DAG_PB, digest(2), {"from": writer}
    )
    assert event_names(tx) == ["RecordRegistered"]
    assert_event(
        tx,
        "RecordRegistered",
        recordId=rid(2),
        patient=patient,
        author=writer,
        category=OBSERVATIONS,
        purpose=DIRECT_CARE,
        keyEpoch=EPOCH,
        fingerprint=fp(2),
        cidCodec=DAG_PB,
        cidDigest=digest(2),
    )
    assert current(registry, patient, rid(2)) == header(writer, OBSERVATIONS, fingerprint=fp(2))


def test_ids_are_namespaced_by_patient(network, registry, patient, delegate):
    register(registry, patient, 1)
    register(registry, delegate, 1, category=GENOMICS)
    assert current(registry, patient, rid(1))[1] == CONDITIONS
    assert current(registry, delegate, rid(1))[1] == GENOMICS


def test_stranger_copying_a_pending_write_takes_nothing_from_the_patient(network, registry, patient, stranger):
    """Issue 7 item 4: a stranger registered as a patient front-runs the write under its own namespace."""
    register_patient(network, stranger, 9)
    register(registry, stranger, 1)  # the copied transaction, with a higher fee
    tx = register(registry, patient, 1)  # the real one still goes through
    assert tx.events["RecordRegistered"]["patient"] == patient
    # And the stranger can do nothing to the patient's record.
    h = current(registry, patient, rid(1))
    with assert_reverts("RecordNotPatient", stranger, patient):
        registry.eraseRecord(patient, rid(1), h, {"from": stranger})


def test_stranger_cannot_write_into_the_patients_namespace(network, registry, patient, stranger):
    with assert_reverts("ConsentNotFound", patient, stranger, WRITE):
        register(registry, patient, 1, sender=stranger)


def test_register_refused_with_read_only_consent(network, registry, patient, clinician):
    network.grant(patient, clinician, READ, terms(CARE, mask(DIRECT_CARE)), ZERO32, {"from": patient})
    with assert_reverts("ConsentNotFound", patient, clinician, WRITE):
        register(registry, patient, 1, sender=clinician)


def test_register_refused_after_write_consent_expired(network, registry, patient, clinician):
    expiry = now() + DAY
    network.grant(patient, clinician, WRITE, terms(CARE, mask(DIRECT_CARE), 0, expiry), ZERO32, {"from": patient})
    register(registry, patient, 1, sender=clinician)
    chain.sleep(DAY + 60)
    with assert_reverts("ConsentExpired", patient, clinician, expiry):
        register(registry, patient, 2, sender=clinician)


def test_register_refused_before_write_consent_starts(network, registry, patient, clinician):
    start = now() + DAY
    network.grant(
        patient, clinician, WRITE, terms(CARE, mask(DIRECT_CARE), start, start + DAY), ZERO32, {"from": patient}
    )
    with assert_reverts("ConsentNotYetValid", patient, clinician, start):
        register(registry, patient, 1, sender=clinician)
    chain.sleep(DAY + 60)
    register(registry, patient, 1, sender=clinician)


def test_register_refused_for_uncovered_category(network, registry, patient, writer):
    with assert_reverts("ConsentCategoryNotCovered", patient, writer, MENTAL_HEALTH):
        register(registry, patient, 1, category=MENTAL_HEALTH, sender=writer)


def test_register_refused_for_uncovered_purpose(network, registry, patient, writer):
    with assert_reverts("ConsentPurposeNotCovered", patient, writer, RESEARCH):
        register(registry, patient, 1, sender=writer, purpose=RESEARCH)


def test_register_refused_while_grantee_suspended(network, registry, registrar, patient, writer):
    network.suspendParticipant(writer, key(99), {"from": registrar})
    with assert_reverts("RegistryParticipantSuspended", writer):
        register(registry, patient, 1, sender=writer)
    network.reinstateParticipant(writer, {"from": registrar})
    register(registry, patient, 1, sender=writer)


def test_register_refused_for_delegate_who_only_reads(network, registry, patient, delegate):
    network.appointDelegate(delegate, mask(CONDITIONS), now() + 30 * DAY, {"from": patient})
    with assert_reverts("ConsentNotFound", patient, delegate, WRITE):
        register(registry, patient, 1, sender=delegate, purpose=FAMILY_CARE)


def test_register_refused_for_unregistered_patient(network, registry, stranger):
    with assert_reverts("RegistryPatientNotRegistered", stranger):
        register(registry, stranger, 1)


@pytest.mark.parametrize("category, purpose", [(13, DIRECT_CARE), (255, DIRECT_CARE), (CONDITIONS, 6)])
def test_register_refused_for_unknown_codes(network, registry, patient, category, purpose):
    with assert_reverts("ConsentUnknownCode", category, purpose):
        register(registry, patient, 1, category=category, purpose=purpose)


@pytest.mark.parametrize(
    "record_id, fingerprint, codec, cid, error",
    [
        (ZERO32, fp(1), RAW, digest(1), ("RecordInvalidId",)),
        (rid(1), ZERO32, RAW, digest(1), ("RecordInvalidFingerprint",)),
        (rid(1), fp(1), RAW, ZERO32, ("RecordInvalidCid", RAW, ZERO32)),
        (rid(1), fp(1), 0x71, digest(1), ("RecordInvalidCid", 0x71, digest(1))),  # dag-cbor: not a UnixFS file
        (rid(1), fp(1), 0x00, digest(1), ("RecordInvalidCid", 0x00, digest(1))),
        (rid(1), fp(1), 0x12, digest(1), ("RecordInvalidCid", 0x12, digest(1))),
    ],
)
def test_register_rejects_malformed_inputs(network, registry, patient, record_id, fingerprint, codec, cid, error):
    block = web3.eth.block_number + 1
    with assert_reverts(*error):
        registry.registerRecord(
            patient, record_id, CONDITIONS, DIRECT_CARE, EPOCH, fingerprint, codec, cid, {"from": patient}
        )
    assert no_logs_since(registry, block)


def test_nothing_but_a_cid_digest_reaches_the_chain(network, registry, patient):
    """Issue 7 item 7: 1.1 KB of identifiable text was once accepted as a CID. The registry now takes a
    codec byte and a 32-byte digest, so no free text can be logged in a record's place."""
    entries = [
        e
        for e in registry.abi
        if e.get("name")
        in ("registerRecord", "RecordRegistered", "BatchAnchored", "anchorBatch", "amendRecord", "registerRecords")
    ]
    dynamic = [i["name"] for e in entries for i in e["inputs"] if i["type"] in ("bytes", "string")]
    assert dynamic == []


def test_register_duplicate_id(network, registry, patient, writer, rec):
    with assert_reverts("RecordAlreadyExists", patient, rec):
        register(registry, patient, 1)
    # Not even another author with the right to write may take the id over.
    with assert_reverts("RecordAlreadyExists", patient, rec):
        registry.registerRecord(patient, rec, OBSERVATIONS, DIRECT_CARE, EPOCH, fp(2), RAW, digest(2), {"from": writer})
    assert current(registry, patient, rec)[6] == fp(1)


def test_register_id_taken_by_batch_root(network, registry, patient, batch):
    root = batch[0]
    with assert_reverts("RecordAlreadyExists", patient, root):
        registry.registerRecord(patient, root, CONDITIONS, DIRECT_CARE, EPOCH, fp(2), RAW, digest(2), {"from": patient})


def test_unknown_record_has_no_commitment(network, registry, patient):
    assert registry.recordCommitment(patient, rid(404)) == ZERO32
    assert registry.isRecordHeader(patient, rid(404), header(ZERO, 0)) is False


def test_verify_fingerprint(network, registry, patient, rec):
    register(registry, patient, 2)
    h1, h2 = current(registry, patient, rec), current(registry, patient, rid(2))
    assert registry.verifyFingerprint(patient, rec, h1, fp(1)) is True
    assert registry.verifyFingerprint(patient, rid(2), h2, fp(2)) is True
    assert registry.verifyFingerprint(patient, rec, h1, fp(2)) is False  # another record's fingerprint
    assert registry.verifyFingerprint(patient, rec, h2, fp(2)) is False  # another record's header
    assert registry.verifyFingerprint(patient, rid(404), h1, fp(1)) is False  # unknown record
    assert registry.verifyFingerprint(patient, rec, header(ZERO, 0), ZERO32) is False  # zero never verifies
    forged = header(patient, CONDITIONS, fingerprint=fp(9))
    assert registry.verifyFingerprint(patient, rec, forged, fp(9)) is False  # a header the chain did not commit to
    assert registry.verifyFingerprint(network.address, rec, h1, fp(1)) is False  # another patient's namespace


# ---------------------------------------------------------------------------------------------------
# registerRecords (bulk)
# ---------------------------------------------------------------------------------------------------


def entries(*ns: int, codec: int = RAW) -> list[tuple]:
    return [(rid(n), fp(n), codec, digest(n)) for n in ns]


def test_bulk_registration_registers_every_record_with_its_event(network, registry, patient, writer):
    tx = registry.registerRecords(patient, OBSERVATIONS, DIRECT_CARE, EPOCH, entries(1, 2, 3), {"from": writer})
    assert event_names(tx) == ["RecordRegistered"]
    assert len(tx.events["RecordRegistered"]) == 3
    for index, n in enumerate((1, 2, 3)):
        assert_event(
            tx,
            "RecordRegistered",
            index,
            recordId=rid(n),
            patient=patient,
            author=writer,
            category=OBSERVATIONS,
            purpose=DIRECT_CARE,
            keyEpoch=EPOCH,
            fingerprint=fp(n),
            cidCodec=RAW,
            cidDigest=digest(n),
        )
        assert current(registry, patient, rid(n)) == header(writer, OBSERVATIONS, fingerprint=fp(n))


def test_bulk_registration_of_one(network, registry, patient):
    tx = registry.registerRecords(patient, CONDITIONS, DIRECT_CARE, EPOCH, entries(7), {"from": patient})
    assert len(tx.events["RecordRegistered"]) == 1
    assert current(registry, patient, rid(7)) == header(patient, CONDITIONS, fingerprint=fp(7))


@pytest.mark.parametrize(
    "bad, error",
    [
        ((rid(2), fp(2), RAW, digest(2)), ("RecordAlreadyExists", "patient", rid(2))),  # a duplicate within the call
        ((rid(9), ZERO32, RAW, digest(9)), ("RecordInvalidFingerprint",)),
        ((rid(9), fp(9), 0x71, digest(9)), ("RecordInvalidCid", 0x71, digest(9))),
        ((ZERO32, fp(9), RAW, digest(9)), ("RecordInvalidId",)),
        ((rid(100), fp(9), RAW, digest(9)), ("RecordAlreadyExists", "patient", rid(100))),  # registered before
    ],
)
def test_bulk_registration_is_all_or_nothing(network, registry, patient, writer, bad, error):
    register(registry, patient, 100)
    error = tuple(patient if a == "patient" else a for a in error)
    block = web3.eth.block_number + 1
    with assert_reverts(*error):
        registry.registerRecords(
            patient, CONDITIONS, DIRECT_CARE, EPOCH, [*entries(1, 2), bad, *entries(3)], {"from": writer}
        )
    assert no_logs_since(registry, block)
    for n in (1, 2, 3):
        assert registry.recordCommitment(patient, rid(n)) == ZERO32


def test_bulk_registration_needs_one_record(network, registry, patient):
    with assert_reverts("RecordEmptyBatch"):
        registry.registerRecords(patient, CONDITIONS, DIRECT_CARE, EPOCH, [], {"from": patient})


def test_bulk_registration_checks_consent_and_keys_like_one_record(network, registry, patient, writer, stranger):
    with assert_reverts("ConsentNotFound", patient, stranger, WRITE):
        registry.registerRecords(patient, CONDITIONS, DIRECT_CARE, EPOCH, entries(1), {"from": stranger})
    with assert_reverts("ConsentCategoryNotCovered", patient, writer, GENOMICS):
        registry.registerRecords(patient, GENOMICS, DIRECT_CARE, EPOCH, entries(1), {"from": writer})
    with assert_reverts("RecordStaleKey", patient, CONDITIONS, 2, 1, 2**64 - 1):
        registry.registerRecords(patient, CONDITIONS, DIRECT_CARE, 2, entries(1), {"from": writer})


# ---------------------------------------------------------------------------------------------------
# amendRecord and version chains (issue 7 item 9: only the author or the patient amends)
# ---------------------------------------------------------------------------------------------------


def test_patient_amends_record(network, registry, patient, rec):
    tx = amend(registry, patient, 1, 2, patient)
    assert event_names(tx) == ["RecordRegistered", "RecordAmended"]
    assert_event(
        tx,
        "RecordRegistered",
        recordId=rid(2),
        patient=patient,
        author=patient,
        category=CONDITIONS,
        purpose=DIRECT_CARE,
        keyEpoch=EPOCH,
        fingerprint=fp(2),
        cidCodec=RAW,
        cidDigest=digest(2),
    )
    assert_event(tx, "RecordAmended", previousId=rec, recordId=rid(2), patient=patient)
    assert current(registry, patient, rid(2)) == header(patient, CONDITIONS, fingerprint=fp(2), previous=rec)
    # The old version stays registered and verifiable: amendments never overwrite its content.
    old = current(registry, patient, rec)
    assert old == header(patient, CONDITIONS, fingerprint=fp(1), next_=rid(2))
    assert registry.verifyFingerprint(patient, rec, old, fp(1)) is True


def test_author_amends_its_record_while_it_may_write(network, registry, patient, writer, authored):
    tx = amend(registry, patient, 1, 2, writer)
    assert_event(
        tx,
        "RecordRegistered",
        recordId=rid(2),
        patient=patient,
        author=writer,
        category=CONDITIONS,
        purpose=DIRECT_CARE,
        keyEpoch=EPOCH,
        fingerprint=fp(2),
        cidCodec=RAW,
        cidDigest=digest(2),
    )
    assert current(registry, patient, rid(2))[0] == writer


def test_another_writer_cannot_supersede_the_authors_record(network, registry, patient, writer, other_writer, authored):
    """The wave-1 contract let any writer supersede it, which then blocked the author's own amendment."""
    block = web3.eth.block_number + 1
    with assert_reverts("RecordNotAuthor", other_writer, writer):
        amend(registry, patient, 1, 2, other_writer)
    assert no_logs_since(registry, block)
    amend(registry, patient, 1, 2, writer)  # the author still can


def test_patient_amends_a_record_a_writer_authored(network, registry, patient, writer, authored):
    tx = amend(registry, patient, 1, 2, patient)
    assert tx.events["RecordRegistered"]["author"] == patient
    # The new version's author is the patient: the clinician may not amend that one.
    with assert_reverts("RecordNotAuthor", writer, patient):
        amend(registry, patient, 2, 3, writer)


def test_author_without_write_consent_cannot_amend(network, registry, patient, writer, authored):
    network.revoke(patient, writer, WRITE, {"from": patient})
    with assert_reverts("ConsentNotFound", patient, writer, WRITE):
        amend(registry, patient, 1, 2, writer)


def test_amend_refused_for_uncovered_purpose(network, registry, patient, writer, authored):
    with assert_reverts("ConsentPurposeNotCovered", patient, writer, RESEARCH):
        amend(registry, patient, 1, 2, writer, purpose=RESEARCH)


@pytest.mark.parametrize("who", ["patient", "author"])
def test_an_erased_version_can_still_be_amended(network, registry, patient, writer, authored, who):
    """Erasure never blocks the chain of versions."""
    registry.eraseRecord(patient, authored, current(registry, patient, authored), {"from": patient})
    tx = amend(registry, patient, 1, 2, patient if who == "patient" else writer)
    assert_event(tx, "RecordAmended", previousId=authored, recordId=rid(2), patient=patient)
    assert current(registry, patient, authored) == header(writer, CONDITIONS, erased=True, next_=rid(2))


def test_amend_superseded_record(network, registry, patient, rec):
    amend(registry, patient, 1, 2, patient)
    with assert_reverts("RecordAlreadySuperseded", patient, rec, rid(2)):
        amend(registry, patient, 1, 3, patient)


def test_amend_with_a_stale_header_is_refused(network, registry, patient, rec):
    """A header from before the amendment (next = 0) no longer matches the commitment."""
    stale = current(registry, patient, rec)
    amend(registry, patient, 1, 2, patient)
    with assert_reverts("RecordHeaderMismatch", patient, rec):
        amend(registry, patient, 1, 3, patient, previous=stale)


def test_amend_batch(network, registry, patient, batch):
    root = batch[0]
    with assert_reverts("RecordIsBatch", patient, root):
        amend(registry, patient, root, 2, patient)


def test_amend_unknown_record(network, registry, patient):
    with assert_reverts("RecordNotFound", patient, rid(404)):
        amend(registry, patient, 404, 2, patient, previous=header(patient, CONDITIONS, fingerprint=fp(404)))


def test_amend_refused_with_a_key_of_another_epoch(network, registry, patient, rec):
    with assert_reverts("RecordStaleKey", patient, CONDITIONS, 2, 1, 2**64 - 1):
        amend(registry, patient, 1, 2, patient, epoch=2)


@pytest.mark.parametrize(
    "new_id, fingerprint, error",
    [
        (ZERO32, fp(2), ("RecordInvalidId",)),
        (rid(2), ZERO32, ("RecordInvalidFingerprint",)),
        (rid(1), fp(2), ("RecordAlreadyExists", "patient", rid(1))),  # amending into itself
    ],
)
def test_amend_rejects_bad_new_version(network, registry, patient, rec, new_id, fingerprint, error):
    error = tuple(patient if a == "patient" else a for a in error)
    with assert_reverts(*error):
        registry.amendRecord(
            patient,
            rec,
            current(registry, patient, rec),
            new_id,
            DIRECT_CARE,
            EPOCH,
            fingerprint,
            RAW,
            digest(2),
            {"from": patient},
        )
    assert current(registry, patient, rec)[8] == ZERO32


def test_version_chain_of_three(network, registry, patient, writer, authored):
    amend(registry, patient, 1, 2, writer)
    amend(registry, patient, 2, 3, patient)

    forward, at = [rid(1)], rid(1)
    while (at := current(registry, patient, at)[8]) != ZERO32:
        forward.append(at)
    backward, at = [rid(3)], rid(3)
    while (at := current(registry, patient, at)[7]) != ZERO32:
        backward.append(at)
    assert forward == [rid(1), rid(2), rid(3)]
    assert backward == forward[::-1]
    assert all(current(registry, patient, r)[1] == CONDITIONS for r in forward)
    with assert_reverts("RecordAlreadySuperseded", patient, rid(2), rid(3)):
        amend(registry, patient, 2, 4, patient)


def test_erasing_the_middle_version_keeps_links(network, registry, patient, rec):
    amend(registry, patient, 1, 2, patient)
    amend(registry, patient, 2, 3, patient)
    registry.eraseRecord(patient, rid(2), current(registry, patient, rid(2)), {"from": patient})
    assert current(registry, patient, rid(2)) == header(patient, CONDITIONS, erased=True, previous=rec, next_=rid(3))
    amend(registry, patient, 3, 4, patient)


# ---------------------------------------------------------------------------------------------------
# eraseRecord
# ---------------------------------------------------------------------------------------------------


def test_patient_erases_record(network, registry, patient, rec):
    h = current(registry, patient, rec)
    assert registry.eraseRecord.call(patient, rec, h, {"from": patient}) is True
    tx = registry.eraseRecord(patient, rec, h, {"from": patient})
    assert event_names(tx) == ["RecordErased"]
    assert_event(tx, "RecordErased", recordId=rec, patient=patient)
    erased = current(registry, patient, rec)
    assert erased == header(patient, CONDITIONS, erased=True)  # no fingerprint left in the commitment
    assert registry.verifyFingerprint(patient, rec, h, fp(1)) is False
    assert registry.verifyFingerprint(patient, rec, erased, ZERO32) is False


def test_erase_twice_is_a_no_op(network, registry, patient, rec):
    registry.eraseRecord(patient, rec, current(registry, patient, rec), {"from": patient})
    erased = current(registry, patient, rec)
    assert registry.eraseRecord.call(patient, rec, erased, {"from": patient}) is False
    tx = registry.eraseRecord(patient, rec, erased, {"from": patient})
    assert tx.status == 1 and len(tx.events) == 0


def test_erase_with_an_outdated_header_is_refused(network, registry, patient, rec):
    before = current(registry, patient, rec)
    registry.eraseRecord(patient, rec, before, {"from": patient})
    with assert_reverts("RecordHeaderMismatch", patient, rec):
        registry.eraseRecord(patient, rec, before, {"from": patient})


@pytest.mark.parametrize("who", ["writer", "delegate", "stranger", "admin"])
def test_only_the_patient_erases(network, registry, patient, delegate, stranger, admin, writer, rec, who):
    caller = {"writer": writer, "delegate": delegate, "stranger": stranger, "admin": admin}[who]
    if who == "delegate":
        network.appointDelegate(delegate, mask(CONDITIONS), now() + 30 * DAY, {"from": patient})
    with assert_reverts("RecordNotPatient", caller, patient):
        registry.eraseRecord(patient, rec, current(registry, patient, rec), {"from": caller})
    assert current(registry, patient, rec)[3] is False


def test_erase_record_registered_by_grantee(network, registry, patient, writer, authored):
    h = current(registry, patient, authored)
    with assert_reverts("RecordNotPatient", writer, patient):
        registry.eraseRecord(patient, authored, h, {"from": writer})  # the author is not the owner
    tx = registry.eraseRecord(patient, authored, h, {"from": patient})
    assert_event(tx, "RecordErased", recordId=authored, patient=patient)


def test_erase_unknown_record(network, registry, patient):
    with assert_reverts("RecordNotFound", patient, rid(404)):
        registry.eraseRecord(patient, rid(404), header(patient, CONDITIONS), {"from": patient})


@pytest.mark.parametrize("field, value", [(0, "writer"), (1, GENOMICS), (2, 2), (5, 1), (6, fp(9)), (7, rid(9))])
def test_any_forged_header_field_is_a_mismatch(network, registry, patient, writer, rec, field, value):
    h = list(current(registry, patient, rec))
    h[field] = str(writer) if value == "writer" else value
    with assert_reverts("RecordHeaderMismatch", patient, rec):
        registry.recordAccess(patient, rec, tuple(h), DIRECT_CARE, {"from": patient})


# ---------------------------------------------------------------------------------------------------
# recordAccess: the audit trail
# ---------------------------------------------------------------------------------------------------


def test_access_with_read_consent_is_logged(network, registry, patient, writer, rec):
    h = current(registry, patient, rec)
    assert registry.recordAccess.call(patient, rec, h, DIRECT_CARE, {"from": writer}) is False
    tx = registry.recordAccess(patient, rec, h, DIRECT_CARE, {"from": writer})
    assert event_names(tx) == ["RecordAccessed"]
    assert_event(
        tx, "RecordAccessed", recordId=rec, patient=patient, accessor=writer, purpose=DIRECT_CARE, emergency=False
    )


def test_access_by_researcher_for_research(network, registry, patient, reader):
    register(registry, patient, 2, category=OBSERVATIONS)
    tx = registry.recordAccess(patient, rid(2), current(registry, patient, rid(2)), RESEARCH, {"from": reader})
    assert_event(
        tx, "RecordAccessed", recordId=rid(2), patient=patient, accessor=reader, purpose=RESEARCH, emergency=False
    )


def test_a_forged_header_cannot_change_the_category_checked(network, registry, patient, reader):
    """The reader holds observations; a header claiming the genomics record is an observation fails."""
    register(registry, patient, 2, category=GENOMICS)
    forged = header(patient, OBSERVATIONS, fingerprint=fp(2))
    with assert_reverts("RecordHeaderMismatch", patient, rid(2)):
        registry.recordAccess(patient, rid(2), forged, RESEARCH, {"from": reader})
    with assert_reverts("ConsentCategoryNotCovered", patient, reader, GENOMICS):
        registry.recordAccess(patient, rid(2), current(registry, patient, rid(2)), RESEARCH, {"from": reader})


def test_write_consent_alone_does_not_allow_reading(network, registry, patient, clinician, rec):
    network.grant(patient, clinician, WRITE, terms(CARE, mask(DIRECT_CARE)), ZERO32, {"from": patient})
    with assert_reverts("ConsentNotFound", patient, clinician, READ):
        registry.recordAccess(patient, rec, current(registry, patient, rec), DIRECT_CARE, {"from": clinician})


def _refusal_setup(case, network, registrar, patient, clinician):
    """Gives `clinician` a read consent that fails in the way `case` names; returns (purpose, error args)."""
    t = now()
    if case == "not found":
        return DIRECT_CARE, ("ConsentNotFound", patient, clinician, READ)
    if case == "not yet valid":
        start = t + DAY
        network.grant(
            patient, clinician, READ, terms(CARE, mask(DIRECT_CARE), start, start + DAY), ZERO32, {"from": patient}
        )
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
    h = current(registry, patient, rec)
    purpose, error = _refusal_setup(case, network, registrar, patient, clinician)
    block = web3.eth.block_number + 1
    with assert_reverts(*error):
        registry.recordAccess(patient, rec, h, purpose, {"from": clinician})
    assert no_logs_since(registry, block)
    # checkAccess gives the same reason, isPermitted says no.
    with assert_reverts(*error):
        network.checkAccess(patient, clinician, READ, CONDITIONS, purpose)
    assert network.isPermitted(patient, clinician, READ, CONDITIONS, purpose) is False


def test_access_to_erased_record(network, registry, patient, writer, rec):
    registry.eraseRecord(patient, rec, current(registry, patient, rec), {"from": patient})
    for caller in (writer, patient):
        with assert_reverts("RecordIsErased", patient, rec):
            registry.recordAccess(patient, rec, current(registry, patient, rec), DIRECT_CARE, {"from": caller})


def test_access_to_unknown_record(network, registry, patient):
    with assert_reverts("RecordNotFound", patient, rid(404)):
        registry.recordAccess(patient, rid(404), header(patient, CONDITIONS), DIRECT_CARE, {"from": patient})


def test_access_with_unknown_purpose(network, registry, patient, rec):
    with assert_reverts("ConsentUnknownCode", CONDITIONS, 6):
        registry.recordAccess(patient, rec, current(registry, patient, rec), 6, {"from": patient})


@pytest.mark.parametrize("purpose", [DIRECT_CARE, RESEARCH, FAMILY_CARE, EMERGENCY])
def test_patient_accesses_own_record(network, registry, patient, rec, purpose):
    tx = registry.recordAccess(patient, rec, current(registry, patient, rec), purpose, {"from": patient})
    assert_event(
        tx, "RecordAccessed", recordId=rec, patient=patient, accessor=patient, purpose=purpose, emergency=False
    )


def test_delegate_reads_for_family_care_within_its_categories(network, registry, patient, delegate, rec):
    expiry = now() + 10 * DAY
    network.appointDelegate(delegate, mask(CONDITIONS, MEDICATIONS), expiry, {"from": patient})
    h = current(registry, patient, rec)
    tx = registry.recordAccess(patient, rec, h, FAMILY_CARE, {"from": delegate})
    assert_event(
        tx, "RecordAccessed", recordId=rec, patient=patient, accessor=delegate, purpose=FAMILY_CARE, emergency=False
    )
    with assert_reverts("ConsentNotFound", patient, delegate, READ):
        registry.recordAccess(patient, rec, h, DIRECT_CARE, {"from": delegate})
    register(registry, patient, 2, category=GENOMICS)
    with assert_reverts("ConsentNotFound", patient, delegate, READ):
        registry.recordAccess(patient, rid(2), current(registry, patient, rid(2)), FAMILY_CARE, {"from": delegate})
    chain.sleep(10 * DAY + 60)
    chain.mine()
    with assert_reverts("ConsentNotFound", patient, delegate, READ):
        registry.recordAccess(patient, rec, h, FAMILY_CARE, {"from": delegate})


def test_removed_delegate_cannot_read(network, registry, patient, delegate, rec):
    network.appointDelegate(delegate, mask(CONDITIONS), now() + 10 * DAY, {"from": patient})
    network.removeDelegate(delegate, {"from": patient})
    with assert_reverts("ConsentNotFound", patient, delegate, READ):
        registry.recordAccess(patient, rec, current(registry, patient, rec), FAMILY_CARE, {"from": delegate})


def test_emergency_access_is_flagged(network, registry, patient, clinician, rec):
    network.openEmergencyAccess(patient, 3600, key(77), {"from": clinician})
    h = current(registry, patient, rec)
    assert registry.recordAccess.call(patient, rec, h, EMERGENCY, {"from": clinician}) is True
    tx = registry.recordAccess(patient, rec, h, EMERGENCY, {"from": clinician})
    assert_event(
        tx, "RecordAccessed", recordId=rec, patient=patient, accessor=clinician, purpose=EMERGENCY, emergency=True
    )
    with assert_reverts("ConsentNotFound", patient, clinician, READ):
        registry.recordAccess(patient, rec, h, DIRECT_CARE, {"from": clinician})


def test_emergency_access_ends_with_window_closing_or_opt_out(network, registry, patient, clinician, rec):
    h = current(registry, patient, rec)
    network.openEmergencyAccess(patient, 3600, key(77), {"from": clinician})
    chain.sleep(3601)
    chain.mine()
    with assert_reverts("ConsentNotFound", patient, clinician, READ):
        registry.recordAccess(patient, rec, h, EMERGENCY, {"from": clinician})
    network.openEmergencyAccess(patient, 3600, key(77), {"from": clinician})
    registry.recordAccess(patient, rec, h, EMERGENCY, {"from": clinician})
    network.closeEmergencyAccess(patient, clinician, {"from": patient})
    with assert_reverts("ConsentNotFound", patient, clinician, READ):
        registry.recordAccess(patient, rec, h, EMERGENCY, {"from": clinician})
    network.openEmergencyAccess(patient, 3600, key(77), {"from": clinician})
    network.setEmergencyOptOut(True, {"from": patient})
    with assert_reverts("ConsentNotFound", patient, clinician, READ):
        registry.recordAccess(patient, rec, h, EMERGENCY, {"from": clinician})


def test_emergency_access_stops_while_suspended(network, registry, registrar, patient, clinician, rec):
    network.openEmergencyAccess(patient, 3600, key(77), {"from": clinician})
    network.suspendParticipant(clinician, key(99), {"from": registrar})
    with assert_reverts("RegistryParticipantSuspended", clinician):
        registry.recordAccess(patient, rec, current(registry, patient, rec), EMERGENCY, {"from": clinician})


def test_consent_covered_access_is_not_flagged_emergency(network, registry, patient, clinician, rec):
    network.grant(patient, clinician, READ, terms(CARE, mask(EMERGENCY)), ZERO32, {"from": patient})
    network.openEmergencyAccess(patient, 3600, key(77), {"from": clinician})
    tx = registry.recordAccess(patient, rec, current(registry, patient, rec), EMERGENCY, {"from": clinician})
    assert tx.events["RecordAccessed"]["emergency"] is False


# ---------------------------------------------------------------------------------------------------
# anchorBatch and Merkle inclusion
# ---------------------------------------------------------------------------------------------------


def test_patient_anchors_batch(network, registry, patient):
    root = "0x" + merkle_tree([leaf(r, f) for r, f in readings(7)])[-1][0].hex()
    tx = registry.anchorBatch(patient, root, DEVICE, DIRECT_CARE, EPOCH, 7, DAG_PB, digest(9), {"from": patient})
    assert event_names(tx) == ["BatchAnchored"]
    assert_event(
        tx,
        "BatchAnchored",
        root=root,
        patient=patient,
        author=patient,
        category=DEVICE,
        purpose=DIRECT_CARE,
        keyEpoch=EPOCH,
        leafCount=7,
        cidCodec=DAG_PB,
        cidDigest=digest(9),
    )
    h = current(registry, patient, root)
    assert h == header(patient, DEVICE, batch=True, leaf_count=7)
    assert registry.verifyFingerprint(patient, root, h, ZERO32) is False


def test_write_grantee_anchors_batch(network, registry, patient, app):
    network.grant(patient, app, WRITE, terms(mask(DEVICE), mask(DIRECT_CARE)), ZERO32, {"from": patient})
    tx = registry.anchorBatch(patient, rid(100), DEVICE, DIRECT_CARE, EPOCH, 2**32 - 1, RAW, digest(9), {"from": app})
    assert_event(
        tx,
        "BatchAnchored",
        root=rid(100),
        patient=patient,
        author=app,
        category=DEVICE,
        purpose=DIRECT_CARE,
        keyEpoch=EPOCH,
        leafCount=2**32 - 1,
        cidCodec=RAW,
        cidDigest=digest(9),
    )
    assert current(registry, patient, rid(100))[5] == 2**32 - 1


def test_batch_roots_are_namespaced_by_patient(network, registry, patient, delegate, stranger, batch):
    """Issue 7 item 4: a root derived from content can be anchored for the real patient whoever copies it."""
    root = batch[0]
    register_patient(network, stranger, 9)
    registry.anchorBatch(stranger, root, DEVICE, DIRECT_CARE, EPOCH, 3, DAG_PB, digest(50), {"from": stranger})
    assert current(registry, stranger, root)[0] == stranger
    assert current(registry, patient, root)[0] == patient


@pytest.mark.parametrize(
    "root, leaf_count, codec, cid, error",
    [
        (ZERO32, 3, RAW, digest(9), ("RecordInvalidId",)),
        (rid(100), 0, RAW, digest(9), ("RecordEmptyBatch",)),
        (rid(100), 3, 0x71, digest(9), ("RecordInvalidCid", 0x71, digest(9))),
        (rid(100), 3, RAW, ZERO32, ("RecordInvalidCid", RAW, ZERO32)),
    ],
)
def test_anchor_rejects_malformed_inputs(network, registry, patient, root, leaf_count, codec, cid, error):
    with assert_reverts(*error):
        registry.anchorBatch(patient, root, DEVICE, DIRECT_CARE, EPOCH, leaf_count, codec, cid, {"from": patient})


def test_anchor_duplicate_root(network, registry, patient, batch, rec):
    with assert_reverts("RecordAlreadyExists", patient, batch[0]):
        registry.anchorBatch(patient, batch[0], DEVICE, DIRECT_CARE, EPOCH, 3, RAW, digest(9), {"from": patient})
    with assert_reverts("RecordAlreadyExists", patient, rec):  # a record id is taken too
        registry.anchorBatch(patient, rec, DEVICE, DIRECT_CARE, EPOCH, 3, RAW, digest(9), {"from": patient})


def test_anchor_unauthorised(network, registry, registrar, patient, stranger, reader, app):
    def anchor(category, purpose, sender, epoch=EPOCH):
        return registry.anchorBatch(patient, rid(100), category, purpose, epoch, 3, RAW, digest(9), {"from": sender})

    with assert_reverts("ConsentNotFound", patient, stranger, WRITE):
        anchor(DEVICE, DIRECT_CARE, stranger)
    with assert_reverts("ConsentNotFound", patient, reader, WRITE):
        anchor(DEVICE, RESEARCH, reader)
    network.grant(patient, app, WRITE, terms(mask(DEVICE), mask(DIRECT_CARE)), ZERO32, {"from": patient})
    with assert_reverts("ConsentCategoryNotCovered", patient, app, OBSERVATIONS):
        anchor(OBSERVATIONS, DIRECT_CARE, app)
    with assert_reverts("ConsentPurposeNotCovered", patient, app, RESEARCH):
        anchor(DEVICE, RESEARCH, app)
    with assert_reverts("RecordStaleKey", patient, DEVICE, 0, 1, 2**64 - 1):
        anchor(DEVICE, DIRECT_CARE, app, epoch=0)
    network.suspendParticipant(app, key(99), {"from": registrar})
    with assert_reverts("RegistryParticipantSuspended", app):
        anchor(DEVICE, DIRECT_CARE, app)
    assert registry.recordCommitment(patient, rid(100)) == ZERO32


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
    registry.anchorBatch(patient, root, DEVICE, DIRECT_CARE, EPOCH, n, DAG_PB, digest(n), {"from": patient})
    h = current(registry, patient, root)
    assert h[5] == n

    def included(reading_id, fingerprint, proof, of=h, who=patient):
        return registry.verifyBatchInclusion(who, root, of, reading_id, fingerprint, proof)

    for i in _indices(n):
        reading_id, fingerprint = pairs[i]
        proof = merkle_proof(levels, i)
        assert included(reading_id, fingerprint, proof) is True, i
        assert included(reading_id, keccak(fingerprint), proof) is False
        assert included(keccak(reading_id), fingerprint, proof) is False
        if n > 1:
            assert included(fingerprint, reading_id, proof) is False
    reading_id, fingerprint = pairs[0]
    assert included(reading_id, fingerprint, merkle_proof(levels, 0), who=network.address) is False  # wrong patient
    assert (
        included(
            reading_id, fingerprint, merkle_proof(levels, 0), of=header(patient, DEVICE, batch=True, leaf_count=n + 1)
        )
        is False
    )
    if n > 1:
        other = merkle_proof(levels, n - 1)
        assert included(reading_id, fingerprint, other) is False  # another leaf's proof
        tampered = merkle_proof(levels, 0)
        tampered[0] = keccak(tampered[0])
        assert included(reading_id, fingerprint, tampered) is False
        assert included(reading_id, fingerprint, merkle_proof(levels, 0)[:-1]) is False
        # An inner node presented as a leaf is not a reading (leaves are double-hashed).
        assert included(levels[0][0], levels[0][1], merkle_proof(levels, 0)[1:]) is False
    else:
        assert included(pairs[0][0], pairs[0][1], [keccak(b"x")]) is False


def test_inclusion_needs_an_anchored_batch(network, registry, patient, rec):
    pairs = readings(2, "unanchored")
    levels = merkle_tree([leaf(r, f) for r, f in pairs])
    root = "0x" + levels[-1][0].hex()
    claimed = header(patient, DEVICE, batch=True, leaf_count=2)
    assert (
        registry.verifyBatchInclusion(patient, root, claimed, pairs[0][0], pairs[0][1], merkle_proof(levels, 0))
        is False
    )
    # Nor does a record id (not a batch), even when it happens to equal a leaf with an empty proof.
    single = readings(1, "as-record")
    as_record = "0x" + leaf(*single[0]).hex()
    registry.registerRecord(patient, as_record, DEVICE, DIRECT_CARE, EPOCH, fp(5), RAW, digest(5), {"from": patient})
    h = current(registry, patient, as_record)
    assert registry.verifyBatchInclusion(patient, as_record, h, single[0][0], single[0][1], []) is False


def test_inclusion_false_after_batch_erased(network, registry, patient, batch):
    root, levels, pairs = batch
    h = current(registry, patient, root)
    assert registry.verifyBatchInclusion(patient, root, h, *pairs[1], merkle_proof(levels, 1)) is True
    tx = registry.eraseRecord(patient, root, h, {"from": patient})
    assert_event(tx, "RecordErased", recordId=root, patient=patient)
    erased = current(registry, patient, root)
    assert erased == header(patient, DEVICE, erased=True, batch=True, leaf_count=3)
    for i in range(3):
        for claimed in (h, erased):
            assert registry.verifyBatchInclusion(patient, root, claimed, *pairs[i], merkle_proof(levels, i)) is False


def test_access_to_batch_is_logged_like_a_record(network, registry, patient, reader, batch):
    root = batch[0]
    h = current(registry, patient, root)
    tx = registry.recordAccess(patient, root, h, RESEARCH, {"from": reader})
    assert event_names(tx) == ["RecordAccessed"]
    assert_event(
        tx, "RecordAccessed", recordId=root, patient=patient, accessor=reader, purpose=RESEARCH, emergency=False
    )
    with assert_reverts("ConsentPurposeNotCovered", patient, reader, DIRECT_CARE):
        registry.recordAccess(patient, root, h, DIRECT_CARE, {"from": reader})


def test_access_to_batch_refused_and_erased(network, registry, patient, clinician, writer, batch):
    root = batch[0]
    h = current(registry, patient, root)
    with assert_reverts("ConsentCategoryNotCovered", patient, clinician, DEVICE):
        registry.recordAccess(patient, root, h, DIRECT_CARE, {"from": clinician})
    registry.eraseRecord(patient, root, h, {"from": patient})
    with assert_reverts("RecordIsErased", patient, root):
        registry.recordAccess(patient, root, current(registry, patient, root), DIRECT_CARE, {"from": patient})


# ---------------------------------------------------------------------------------------------------
# Every state-changing function, called by an account with no rights
# ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "function", ["registerRecord", "registerRecords", "amendRecord", "anchorBatch", "eraseRecord", "recordAccess"]
)
def test_unauthorised_caller(function, network, registry, patient, stranger, rec):
    h = current(registry, patient, rec)
    calls = {
        "registerRecord": (
            ("ConsentNotFound", patient, stranger, WRITE),
            lambda: register(registry, patient, 2, sender=stranger),
        ),
        "registerRecords": (
            ("ConsentNotFound", patient, stranger, WRITE),
            lambda: registry.registerRecords(patient, CONDITIONS, DIRECT_CARE, EPOCH, entries(2), {"from": stranger}),
        ),
        "amendRecord": (("RecordNotAuthor", stranger, patient), lambda: amend(registry, patient, 1, 2, stranger)),
        "anchorBatch": (
            ("ConsentNotFound", patient, stranger, WRITE),
            lambda: registry.anchorBatch(
                patient, rid(2), DEVICE, DIRECT_CARE, EPOCH, 4, RAW, digest(2), {"from": stranger}
            ),
        ),
        "eraseRecord": (
            ("RecordNotPatient", stranger, patient),
            lambda: registry.eraseRecord(patient, rec, h, {"from": stranger}),
        ),
        "recordAccess": (
            ("ConsentNotFound", patient, stranger, READ),
            lambda: registry.recordAccess(patient, rec, h, DIRECT_CARE, {"from": stranger}),
        ),
    }
    error, call = calls[function]
    block = web3.eth.block_number + 1
    with assert_reverts(*error):
        call()
    assert no_logs_since(registry, block)
    assert registry.recordCommitment(patient, rid(2)) == ZERO32
    assert current(registry, patient, rec) == h
