"""Bulk ingest (medledger.ingest.Ingestor) against the real anvil and IPFS node."""

from __future__ import annotations

import io
import json
import threading

import pytest

import medledger.storage.store as store_module
from medledger import codes, consent, crypto, ingest, records
from medledger.chain import events as ev
from medledger.chain.outbox import JournalEntry
from medledger.client import cid_from_digest
from medledger.errors import (
    AccessDenied,
    ContractRevert,
    KeyNotFound,
    RecordFormatError,
    StaleCategoryKey,
    StorageError,
)
from medledger.ingest import SMALL_RECORD, Ingestor
from medledger.keyring import Keyring
from medledger.records.journal import journal_dir
from medledger.storage import cid_from_bytes

from .child import child_args, run_child
from .test_rotation_property import everything_held

C, P, A = codes.Category, codes.Purpose, codes.Access


def observation(i: int) -> bytes:
    return json.dumps(
        {
            "resourceType": "Observation",
            "id": f"hr-{i}",
            "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
            "valueQuantity": {"value": 60 + i, "unit": "beats/minute"},
        }
    ).encode()


@pytest.fixture
def writer(client, patient, clinician):
    consent.grant(client, patient, clinician.address, A.WRITE, [C.OBSERVATIONS], [P.DIRECT_CARE])
    return clinician


def registered_ids(client, patient) -> set[bytes]:
    return {bytes(e.record_id) for e in client.contract.logs(ev.RecordRegistered, patient=patient.address)}


def test_ingest_registers_every_record_and_each_reads_back(client, patient, writer):
    with Ingestor(client, writer, patient.address, category=C.OBSERVATIONS) as ingest:
        futures = [ingest.submit(observation(i)) for i in range(12)]
    results = [f.result() for f in futures]
    assert registered_ids(client, patient) == {r.record_id for r in results}
    events = client.contract.logs(ev.RecordRegistered, patient=patient.address)
    assert [e.record_id for e in events] == [r.record_id for r in results]  # in the order submitted
    assert len({e.log.tx_hash for e in events}) < len(results)  # several records per transaction
    assert {e.key_epoch for e in events} == {1} and {e.author for e in events} == {writer.address}
    for i, result in enumerate(results):
        assert records.verify_fingerprint(client, result.record_id, result.fingerprint)
        read = records.read_record(client, patient, result.record_id)
        assert json.loads(read.data)["id"] == f"hr-{i}"
    assert not list((client.settings.cache_dir / "pending").rglob("*.json"))


def test_ingest_refuses_to_start_without_write_consent(client, patient, researcher):
    with pytest.raises(AccessDenied) as refused:
        Ingestor(client, researcher, patient.address, category=C.OBSERVATIONS)
    assert "holds no write consent" in str(refused.value)


def test_ingest_rejects_invalid_fhir_at_submit_and_uploads_nothing_for_it(client, patient, writer, store):
    pins_before = set(store.pins())
    with Ingestor(client, writer, patient.address, category=C.OBSERVATIONS) as ingest:
        with pytest.raises(RecordFormatError):
            ingest.submit(b'{"resourceType": "Observation", "status": 12}')
        good = ingest.submit(observation(1))
    result = good.result()
    assert set(store.pins()) - pins_before == {result.cid}


def test_ingest_rolls_back_records_whose_registration_fails(client, patient, writer, store):
    ingest = Ingestor(client, writer, patient.address, category=C.OBSERVATIONS)
    first = ingest.submit(observation(0))
    assert first.result(timeout=60).record_id in registered_ids(client, patient)
    consent.revoke(client, patient, writer.address, A.WRITE)  # consent ends mid-ingest
    pins_before = set(store.pins())
    later = [ingest.submit(observation(i)) for i in range(1, 4)]
    ingest.close()
    for future in later:
        with pytest.raises(AccessDenied) as refused:
            future.result()
        assert "holds no write consent" in str(refused.value)
    assert registered_ids(client, patient) == {first.result().record_id}
    assert set(store.pins()) == pins_before  # the ciphertexts of the refused records were unpinned
    assert not list((client.settings.cache_dir / "pending").rglob("*.json"))


def _hold_the_workers(monkeypatch) -> threading.Event:
    """Make the workers wait before their first group until the returned event is set, so that every
    record submitted meanwhile is queued behind the first and goes into the same transaction."""
    release = threading.Event()
    real = Ingestor._store_group

    def held(self, jobs):
        release.wait(30)
        return real(self, jobs)

    monkeypatch.setattr(Ingestor, "_store_group", held)
    return release


def test_a_bulk_registration_registers_all_its_records_or_none(client, patient, writer, store, monkeypatch):
    """One bad entry (an id the patient already has) reverts its whole registerRecords transaction:
    every record in it fails with the chain's reason and loses its ciphertext; none is registered."""
    with Ingestor(client, writer, patient.address, category=C.OBSERVATIONS) as bulk:
        taken = bulk.submit(observation(0)).result(timeout=60).record_id
    pins_before = set(store.pins())
    ids = iter([b"\x01" * 32, b"\x02" * 32, taken, b"\x04" * 32, b"\x05" * 32])
    monkeypatch.setattr(ingest.secrets, "token_bytes", lambda n: next(ids))
    release = _hold_the_workers(monkeypatch)
    bulk = Ingestor(client, writer, patient.address, category=C.OBSERVATIONS)
    futures = [bulk.submit(observation(i)) for i in range(1, 6)]
    release.set()
    bulk.close()
    for future in futures:
        with pytest.raises(ContractRevert, match="already has a record") as refused:
            future.result()
        assert refused.value.error_name == "RecordAlreadyExists"
    assert registered_ids(client, patient) == {taken}
    assert set(store.pins()) == pins_before
    assert not list((client.settings.cache_dir / "pending").rglob("*.json"))


def test_ingest_checks_the_category_key_per_record(client, patient, writer, researcher, store):
    """A key that goes stale mid-ingest (a reader holding it lost access) is refused for every record
    sealed afterwards, before anything is uploaded; once rotated, the same ingest seals to the new epoch."""
    bulk = Ingestor(client, writer, patient.address, category=C.OBSERVATIONS)
    assert bulk.submit(observation(0)).result(timeout=60)
    consent.grant(client, patient, researcher.address, A.READ, [C.OBSERVATIONS], [P.RESEARCH])
    consent.revoke(client, patient, researcher.address, A.READ, rotate=False)  # its keys: stale now
    pins_before = set(store.pins())
    with pytest.raises(StaleCategoryKey):
        bulk.submit(observation(1)).result(timeout=60)
    assert set(store.pins()) == pins_before
    Keyring(client).rotate(patient, patient.address, [C.OBSERVATIONS])
    after = bulk.submit(observation(2)).result(timeout=60)
    bulk.close()
    assert client.contract.record(patient.address, after.record_id).key_epoch == 2
    assert json.loads(records.read_record(client, patient, after.record_id).data)["id"] == "hr-2"


def journaled(client) -> dict[str, dict]:
    """The journal entries of writes in flight, by CID."""
    entries = (JournalEntry.load(p) for p in journal_dir(client).glob("*.json"))
    return {e.fields["cid"]: e.fields for e in entries if e is not None}


def held_ingest(client, writer, patient, monkeypatch, count: int, **options):
    """Ingest ``count`` observations with the workers held until all are submitted; the futures."""
    release = _hold_the_workers(monkeypatch)
    bulk = Ingestor(client, writer, patient.address, category=C.OBSERVATIONS, **options)
    futures = [bulk.submit(observation(i)) for i in range(count)]
    release.set()
    bulk.close()
    return futures


def test_small_records_go_many_per_add_request_each_journaled_before_it(client, patient, writer, monkeypatch):
    requests: list[int] = []
    real = client.store.add_many

    def add_many(blobs, **kwargs):
        assert {client.store.cid_of(b) for b in blobs} <= set(journaled(client))  # journaled first
        requests.append(len(blobs))
        return real(blobs, **kwargs)

    monkeypatch.setattr(client.store, "add_many", add_many)
    results = [f.result() for f in held_ingest(client, writer, patient, monkeypatch, 30, workers=2, group=8)]
    assert sum(requests) == 30 and max(requests) == 8 and len(requests) <= 6  # two held groups, then 8 each
    assert registered_ids(client, patient) == {r.record_id for r in results}
    assert all(client.store.is_pinned(r.cid) for r in results) and journaled(client) == {}
    assert json.loads(records.read_record(client, patient, results[17].record_id).data)["id"] == "hr-17"


def test_a_failed_add_request_fails_its_records_only_and_leaves_nothing_behind(
    client, patient, writer, store, monkeypatch
):
    pins_before = set(store.pins())
    real = client.store.add_many
    calls = []

    def add_many(blobs, **kwargs):
        calls.append(len(blobs))
        cids = real(blobs, **kwargs)  # stored and pinned; then the answer is lost
        if len(calls) == 1:
            raise StorageError("IPFS add failed: the connection was reset")
        return cids

    monkeypatch.setattr(client.store, "add_many", add_many)
    futures = held_ingest(client, writer, patient, monkeypatch, 6, workers=1, group=4)
    failed = [f for f in futures if f.exception() is not None]
    assert len(failed) == calls[0] and all(isinstance(f.exception(), StorageError) for f in failed)
    written = [f.result() for f in futures if f.exception() is None]
    assert len(written) == 6 - calls[0] and registered_ids(client, patient) == {r.record_id for r in written}
    assert set(store.pins()) == pins_before | {r.cid for r in written}  # the failed request's pins are gone
    assert journaled(client) == {}


def test_a_request_the_node_stops_midway_fails_its_records_and_leaves_nothing_behind(
    client, patient, writer, store, monkeypatch
):
    """The real node adds and pins the first part of the first request, then refuses the second (no
    Content-Type) and ends its answer: the request's four records fail, their journal entries and the
    pin the node made go; the next request's records are written."""
    pins_before = set(store.pins())
    real = store_module.multipart_body
    requests: list[int] = []

    def body(blobs):
        data, content_type = real(blobs)
        requests.append(len(blobs))
        if len(requests) == 1:
            data = data.replace(b'filename="p1"\r\nContent-Type: application/octet-stream\r\n', b'filename="p1"\r\n')
        return data, content_type

    monkeypatch.setattr(store_module, "multipart_body", body)
    futures = held_ingest(client, writer, patient, monkeypatch, 6, workers=1, group=4)
    failed = [f.exception() for f in futures if f.exception() is not None]
    assert requests == [4, 2] and len(failed) == 4
    assert all(isinstance(e, StorageError) and "stored 1 of the 4 contents" in str(e) for e in failed)
    written = [f.result() for f in futures if f.exception() is None]
    assert registered_ids(client, patient) == {r.record_id for r in written} and len(written) == 2
    assert set(store.pins()) == pins_before | {r.cid for r in written}  # the first part's pin is gone too
    assert journaled(client) == {}


def test_large_records_stream_beside_the_small_ones(client, patient, writer, monkeypatch):
    streamed = []
    real = ingest.seal_and_store

    def seal_and_store(*args, **kwargs):
        streamed.append(kwargs["record_id"])
        return real(*args, **kwargs)

    monkeypatch.setattr(ingest, "seal_and_store", seal_and_store)
    big = json.loads(observation(1))
    big["note"] = [{"text": "x" * (SMALL_RECORD + 1)}]
    inputs = [observation(0), json.dumps(big).encode(), observation(2)]
    with Ingestor(client, writer, patient.address, category=C.OBSERVATIONS) as bulk:
        futures = [bulk.submit(data) for data in inputs]
    results = [f.result() for f in futures]
    assert streamed == [results[1].record_id]  # only the large one took the streaming path
    events = client.contract.logs(ev.RecordRegistered, patient=patient.address)
    assert [e.record_id for e in events] == [r.record_id for r in results]
    assert json.loads(records.read_record(client, patient, results[1].record_id).data) == big


@pytest.mark.parametrize("when", ["before-add", "before-chain"])
def test_a_crashed_ingest_is_rolled_back_by_the_next_write(client, settings, patient, writer, store, when):
    """The process dies after journaling a group and before adding it, or after adding (pinned) and
    before registering: the journal names every record that may be pinned, and the next write rolls
    them all back (nothing registered, nothing left pinned)."""
    pins_before = set(store.pins())
    args = child_args(settings, writer, patient=patient.address, when=when,
                      records=[observation(i).decode() for i in range(5)])  # fmt: skip
    done = run_child("crash_ingestor.py", args)
    assert done.returncode == 1, done.stdout + done.stderr
    pending = journaled(client)
    assert pending and registered_ids(client, patient) == set()
    assert all(store.is_pinned(cid) == (when == "before-chain") for cid in pending)
    records.write_record(client, writer, patient.address, observation(9))  # settles interrupted writes first
    assert journaled(client) == {} and not any(store.is_pinned(cid) for cid in pending)
    assert len(set(store.pins()) - pins_before) == 1  # the new record's


def test_a_record_submitted_after_a_revocation_mid_ingest_is_never_sealed_to_the_old_epoch(
    client, patient, writer, researcher, store
):
    """Issue 12 item 4 (the ingestor once cached the key when it started, and the revoked study read a
    record submitted after the revocation): the study is revoked while records are in flight. Every
    record either fails alone (sealed to the old key, refused: its ciphertext unpinned) or is
    registered with the epoch it was sealed to, and none registered after the revocation is sealed to
    the old epoch, so the study opens none of them."""
    consent.grant(client, patient, researcher.address, A.READ, [C.OBSERVATIONS], [P.RESEARCH])
    pins_before = set(store.pins())
    with Ingestor(client, writer, patient.address, category=C.OBSERVATIONS, max_per_tx=3) as bulk:
        futures = [bulk.submit(observation(i)) for i in range(6)]
        consent.revoke(client, patient, researcher.address, A.READ)  # rotates to epoch 2 meanwhile
        revoked_in = client.chain.block_number()
        futures += [bulk.submit(observation(i)) for i in range(6, 12)]
    results = []
    for future in futures:
        try:
            results.append(future.result())
        except StaleCategoryKey:
            continue
    events = {e.record_id: e for e in client.contract.logs(ev.RecordRegistered, patient=patient.address)}
    assert {r.record_id for r in results} == set(events)
    assert len(results) >= 6  # at least every record submitted after the rotation
    after = [e for e in events.values() if e.log.block_number > revoked_in]
    assert after and {e.key_epoch for e in after} == {2}
    held = everything_held(client, researcher, patient.address)
    for e in after:
        blob = store.cat(cid_from_bytes(e.cid))
        with pytest.raises(KeyNotFound):
            crypto.open_record_blob(io.BytesIO(blob), {int(C.OBSERVATIONS): dict(enumerate(held))},
                                    expected_record_id=e.record_id, expected_patient=patient.address,
                                    category=C.OBSERVATIONS)  # fmt: skip
    # a record refused for its stale key left nothing pinned behind: what is new is the registered
    # records' ciphertext and the key envelopes of the grant and the rotation
    envelopes = {e.envelope for e in client.contract.logs(ev.KeyEnvelopePublished, patient=patient.address)}
    envelopes |= {e.key_envelope for e in client.contract.logs(ev.ConsentGranted, patient=patient.address)}
    expected = {cid_from_bytes(e.cid) for e in events.values()} | {cid_from_digest(d) for d in envelopes if any(d)}
    assert set(store.pins()) - pins_before <= expected
    assert {cid_from_bytes(e.cid) for e in events.values()} <= set(store.pins())
    assert not list((client.settings.cache_dir / "pending").rglob("*.json"))
