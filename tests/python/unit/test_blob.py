"""The record blob (issue 12 item 7): a blob names no record, patient, category or key epoch, binds
every header field and the reader's context into the AEAD's associated data, and its length gives
only a Padmé-rounded size. Format 1 blobs (the JSON header) are still read."""

from __future__ import annotations

import base64
import gc
import io
import json
import struct
import tracemalloc

import pytest
from eth_utils import to_checksum_address
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from medledger import crypto
from medledger.crypto import (
    HEADER_BYTES,
    KeyPair,
    RecordEncryptor,
    blob_size,
    fingerprint_of,
    generate_keypair,
    make_envelope,
    open_envelope,
    open_record_blob,
    open_record_blob_into,
    padme,
    parse_record_header,
    seal,
    unseal,
    write_record_blob,
)
from medledger.errors import (
    CryptoError,
    DecryptionError,
    KeyNotFound,
    NoKeyOpens,
    RecordFormatError,
    TamperingDetected,
)

from .test_crypto import (
    OTHER_PATIENT,
    OTHER_RECORD_ID,
    PATIENT,
    RECORD_ID,
    SECRET_TEXT,
    SMALL,
    IterStream,
    PatternStream,
    fast,
)

CATEGORY, EPOCH = 4, 2
REFUSED = (TamperingDetected, RecordFormatError, DecryptionError, KeyNotFound)

prop = settings(max_examples=80, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])


def make_blob(data: bytes = SECRET_TEXT, *, category: int = CATEGORY, epoch: int = EPOCH,
              pair: KeyPair | None = None, chunk_size: int = SMALL, record_id: bytes = RECORD_ID,
              patient: bytes = PATIENT) -> tuple[bytes, crypto.RecordBlobWriter, KeyPair]:
    pair = pair or generate_keypair()
    writer = write_record_blob(io.BytesIO(data), record_id, patient, category, epoch, pair.public,
                               chunk_size=chunk_size)
    return b"".join(writer), writer, pair


def open_blob(blob: bytes, keys: crypto.CategoryKeys, *, record_id: bytes = RECORD_ID, patient: bytes = PATIENT,
              category: int = CATEGORY, fingerprint: bytes | None = None) -> bytes:
    """Open and read to the end (the checks of the end run only then)."""
    return b"".join(open_record_blob(io.BytesIO(blob), keys, expected_record_id=record_id,
                                     expected_patient=patient, category=category,
                                     expected_fingerprint=fingerprint))


# --- what a blob shows -----------------------------------------------------------------------------
def test_blob_names_no_record_patient_category_or_epoch() -> None:
    """Reproduces issue 12 item 7 against format 1 (its JSON header named all four)."""
    checksummed = to_checksum_address(PATIENT)
    blobs = [make_blob(record_id=rid, patient=who, category=cat, epoch=ep)[0]
             for rid, who, cat, ep in [(RECORD_ID, PATIENT, 8, 5), (OTHER_RECORD_ID, OTHER_PATIENT, 3, 0)]]
    for blob in blobs:
        for needle in (RECORD_ID, RECORD_ID.hex().encode(), PATIENT, PATIENT.hex().encode(),
                       checksummed.encode(), checksummed[2:].encode(), b"category", b"epoch", b"patient"):
            assert needle not in blob
    # the same content size gives the same blob size whatever the patient, category and epoch
    assert len(blobs[0]) == len(blobs[1])


def test_blob_length_gives_only_a_padme_rounded_size() -> None:
    """Reproduces issue 12 item 7: format 1 blob sizes grew with every byte of content."""
    sizes = {len(make_blob(bytes(n), chunk_size=1024)[0]) for n in range(1000, 1064)}
    assert len(sizes) <= 2


@prop
@given(size=st.integers(0, 5_000_000), chunk_size=st.sampled_from([64, 1000, 65536]))
def test_padding_overhead_stays_under_12_percent(size: int, chunk_size: int) -> None:
    assert padme(size + 1) >= size + 1
    assert padme(size + 1) <= (size + 1) * 1.12
    unpadded = HEADER_BYTES + (size + 1) + -(-(size + 1) // chunk_size) * 17
    assert blob_size(size, chunk_size) <= unpadded * 1.12


@fast
@given(size=st.integers(2, 10**9))
def test_padme_keeps_only_the_top_bits(size: int) -> None:
    padded = padme(size)
    exponent = size.bit_length() - 1
    kept = exponent.bit_length()
    assert padded >= size and padded % (1 << (exponent - kept)) == 0
    assert padme(padded) == padded


def test_header_is_113_fixed_bytes_of_which_only_random_ones_differ() -> None:
    first, w1, _ = make_blob(category=8, epoch=5)
    second, w2, _ = make_blob(record_id=OTHER_RECORD_ID, patient=OTHER_PATIENT, category=1, epoch=0)
    assert HEADER_BYTES == 113
    assert first[:9] == second[:9] == b"MLR2\x01" + struct.pack(">I", SMALL)
    assert first[:HEADER_BYTES] == w1.header.encode() and second[:HEADER_BYTES] == w2.header.encode()
    assert first[9:89] == w1.header.sealed_record_key and first[89:113] == w1.header.stream_header


# --- round trips ---------------------------------------------------------------------------------------
@prop
@given(data=st.binary(max_size=3000), chunk_size=st.integers(1, 300), category=st.integers(0, 15),
       epoch=st.integers(0, 2**64 - 1), others=st.lists(st.integers(0, 2**64 - 1), max_size=4))
def test_blob_round_trips_and_the_reader_trial_opens_its_epochs(
        data: bytes, chunk_size: int, category: int, epoch: int, others: list[int]) -> None:
    pair = generate_keypair()
    blob, writer, _ = make_blob(data, category=category, epoch=epoch, pair=pair, chunk_size=chunk_size)
    assert len(blob) == blob_size(len(data), chunk_size)
    keys = {e: generate_keypair().secret for e in others if e != epoch} | {epoch: pair.secret}
    for shape in (keys, {category: keys}):
        decryptor = open_record_blob(io.BytesIO(blob), shape, expected_record_id=RECORD_ID,
                                     expected_patient=PATIENT, category=category,
                                     expected_fingerprint=writer.fingerprint)
        assert b"".join(decryptor) == data
        assert decryptor.verified and decryptor.key_epoch == epoch and decryptor.plaintext_size == len(data)
        assert decryptor.record_key == writer.record_key
    assert writer.fingerprint == fingerprint_of(writer.record_key, data)


@pytest.mark.parametrize("size", [0, 1, SMALL - 2, SMALL - 1, SMALL, SMALL + 1, 2 * SMALL, 7 * SMALL + 3, 5000])
def test_round_trip_at_frame_boundaries(size: int) -> None:
    data = bytes(range(256)) * (size // 256 + 1)
    blob, writer, pair = make_blob(data[:size])
    assert open_blob(blob, pair, fingerprint=writer.fingerprint) == data[:size]


def test_blob_opens_with_keys_from_an_envelope() -> None:
    blob, _, pair = make_blob(category=6, epoch=3)
    recipient = generate_keypair()
    envelope = open_envelope(recipient, make_envelope(recipient.public, PATIENT, {6: {3: pair.secret}}))
    assert open_blob(blob, envelope["keys"], category=6) == SECRET_TEXT
    with pytest.raises(KeyNotFound):
        open_blob(blob, {5: {3: pair.secret}}, category=6)


def test_open_record_blob_into_writes_the_plaintext() -> None:
    blob, writer, pair = make_blob(bytes(range(256)) * 3)
    out = io.BytesIO()
    decryptor = open_record_blob_into(io.BytesIO(blob), out, {EPOCH: pair.secret}, expected_record_id=RECORD_ID,
                                      expected_patient=PATIENT, category=CATEGORY,
                                      expected_fingerprint=writer.fingerprint)
    assert out.getvalue() == bytes(range(256)) * 3 and decryptor.verified


def test_each_blob_gets_a_fresh_record_key_sealed_to_the_category_key() -> None:
    pair = generate_keypair()
    first, w1, _ = make_blob(pair=pair)
    _, w2, _ = make_blob(pair=pair)
    assert w1.record_key != w2.record_key and len(w1.record_key) == 32
    assert unseal(pair, first[9:89]) == w1.record_key


def test_the_reader_must_name_record_patient_and_category() -> None:
    blob, _, pair = make_blob()
    with pytest.raises(CryptoError, match="expected_record_id, expected_patient and category"):
        open_record_blob(io.BytesIO(blob), pair)


def test_write_record_blob_rejects_out_of_range_category_and_epoch() -> None:
    pair = generate_keypair()
    with pytest.raises(CryptoError, match="category"):
        write_record_blob(io.BytesIO(b""), RECORD_ID, PATIENT, 16, 0, pair.public)
    with pytest.raises(CryptoError, match="epoch"):
        write_record_blob(io.BytesIO(b""), RECORD_ID, PATIENT, 0, -1, pair.public)


def test_blob_memory_stays_flat_for_16_mb() -> None:
    total = 16 * 1024 * 1024
    pair = generate_keypair()
    gc.collect()
    tracemalloc.start()
    try:
        baseline = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        writer = write_record_blob(PatternStream(total), RECORD_ID, PATIENT, CATEGORY, EPOCH, pair.public)
        decryptor = open_record_blob(IterStream(writer), pair, expected_record_id=RECORD_ID,
                                     expected_patient=PATIENT, category=CATEGORY)
        produced = sum(len(chunk) for chunk in decryptor)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert produced == total and decryptor.fingerprint == writer.fingerprint
    assert peak - baseline < 8 * 1024 * 1024, f"peak grew by {(peak - baseline) / 2**20:.1f} MiB"


# --- tampering: header fields ----------------------------------------------------------------------
@prop
@given(position=st.integers(0, HEADER_BYTES - 1), mask=st.integers(1, 255), size=st.integers(0, 300))
def test_any_altered_header_byte_is_refused(position: int, mask: int, size: int) -> None:
    blob, writer, pair = make_blob(bytes(size))
    altered = blob[:position] + bytes([blob[position] ^ mask]) + blob[position + 1:]
    with pytest.raises(REFUSED):
        open_blob(altered, {EPOCH: pair.secret}, fingerprint=writer.fingerprint)


def test_every_header_byte_is_bound() -> None:
    blob, writer, pair = make_blob(bytes(100))
    for position in range(HEADER_BYTES):
        altered = blob[:position] + bytes([blob[position] ^ 0x01]) + blob[position + 1:]
        with pytest.raises(REFUSED):
            open_blob(altered, {EPOCH: pair.secret}, fingerprint=writer.fingerprint)


@prop
@given(chunk_size=st.integers(1, 2**24))
def test_another_chunk_size_fails_authentication(chunk_size: int) -> None:
    """Format 1 accepted a rewritten chunk size for a record shorter than both sizes."""
    blob, _, pair = make_blob(b"short record", chunk_size=SMALL)
    assume(chunk_size != SMALL)
    altered = blob[:5] + struct.pack(">I", chunk_size) + blob[9:]
    with pytest.raises(TamperingDetected, match="authentication failed"):
        open_blob(altered, pair)


def test_a_resealed_record_key_fails_authentication() -> None:
    """Someone who knows the record key seals it again (a valid sealed box): the header changed, so
    the associated data no longer matches."""
    blob, writer, pair = make_blob()
    resealed = seal(pair.public, writer.record_key)
    with pytest.raises(TamperingDetected, match="authentication failed"):
        open_blob(blob[:9] + resealed + blob[89:], pair)


@pytest.mark.parametrize("magic,error,says", [(b"MLR3", RecordFormatError, "upgrade"),
                                              (b"%PDF", RecordFormatError, "MLR2"),
                                              (b"MLR2", None, None)])
def test_magic(magic: bytes, error: type[Exception] | None, says: str | None) -> None:
    blob, _, pair = make_blob()
    if error is None:
        assert open_blob(magic + blob[4:], pair) == SECRET_TEXT
        return
    with pytest.raises(error, match=says):
        open_blob(magic + blob[4:], pair)


def test_unknown_suite_asks_to_upgrade() -> None:
    blob, _, pair = make_blob()
    with pytest.raises(RecordFormatError, match="suite 2"):
        open_blob(blob[:4] + b"\x02" + blob[5:], pair)


@pytest.mark.parametrize("chunk_size", [0, 2**24 + 1, 2**32 - 1])
def test_chunk_size_out_of_range_is_malformed(chunk_size: int) -> None:
    blob, _, pair = make_blob()
    with pytest.raises(TamperingDetected, match="malformed"):
        open_blob(blob[:5] + struct.pack(">I", chunk_size) + blob[9:], pair)


@pytest.mark.parametrize("cut", [2, 4, 8, 50, HEADER_BYTES - 1])
def test_blob_truncated_inside_its_header_is_refused(cut: int) -> None:
    blob, _, _ = make_blob()
    with pytest.raises((TamperingDetected, RecordFormatError)):
        parse_record_header(io.BytesIO(blob[:cut]))


# --- tampering: the reader's context ---------------------------------------------------------------
@prop
@given(record_id=st.binary(min_size=32, max_size=32), patient=st.binary(min_size=20, max_size=20),
       category=st.integers(0, 15))
def test_another_record_patient_or_category_fails(record_id: bytes, patient: bytes, category: int) -> None:
    blob, _, pair = make_blob()
    for context in ({"record_id": record_id}, {"patient": patient}, {"category": category}):
        honest = context == {"record_id": RECORD_ID} or context == {"patient": PATIENT} \
            or context == {"category": CATEGORY}
        if honest:
            continue
        with pytest.raises(TamperingDetected, match="authentication failed"):
            open_blob(blob, pair, **context)  # type: ignore[arg-type]


def test_keys_of_another_category_do_not_open_it() -> None:
    blob, _, pair = make_blob()
    with pytest.raises(NoKeyOpens, match=f"category {CATEGORY}, epoch {EPOCH}") as raised:
        open_blob(blob, {EPOCH: generate_keypair().secret})
    assert isinstance(raised.value, DecryptionError) and isinstance(raised.value, KeyNotFound)
    with pytest.raises(KeyNotFound, match="no key for category 5"):
        open_blob(blob, {CATEGORY: {EPOCH: pair.secret}}, category=5)


def test_a_reader_without_the_epoch_gets_no_key_opens() -> None:
    blob, _, pair = make_blob(epoch=2)
    with pytest.raises(NoKeyOpens, match="epoch 1, 0"):
        open_blob(blob, {0: generate_keypair().secret, 1: generate_keypair().secret})


# --- tampering: the frames -------------------------------------------------------------------------
@prop
@given(size=st.integers(0, 400), data=st.data())
def test_any_altered_or_cut_ciphertext_is_refused(size: int, data: st.DataObject) -> None:
    blob, writer, pair = make_blob(bytes(size))
    position = data.draw(st.integers(HEADER_BYTES, len(blob) - 1))
    flipped = blob[:position] + bytes([blob[position] ^ 1]) + blob[position + 1:]
    for altered in (flipped, blob[:position], blob + data.draw(st.binary(min_size=1, max_size=40))):
        with pytest.raises(TamperingDetected):
            open_blob(altered, pair, fingerprint=writer.fingerprint)


def test_dropped_reordered_or_duplicated_frames_are_refused() -> None:
    # 1000 bytes in frames of 16: 62 content frames, the marker frame (PUSH), a padding frame (FINAL)
    blob, _, pair = make_blob(bytes(1000), chunk_size=16)
    head, body = blob[:HEADER_BYTES], blob[HEADER_BYTES:]
    frame = 16 + 17
    frames = [body[i:i + frame] for i in range(0, len(body), frame)]
    assert len(frames) == 64 and len(body) == 64 * frame
    variants = [frames[:2] + frames[3:], [frames[1], frames[0]] + frames[2:], frames[:3] + frames[2:],
                frames[:-2] + frames[-1:], frames[:-1], frames[:-2] + frames[-1:] + frames[-2:-1]]
    for variant in variants:
        with pytest.raises(TamperingDetected):
            open_blob(head + b"".join(variant), pair)


def test_non_canonical_padding_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    from medledger.crypto import padded

    real = padded.padded_length
    monkeypatch.setattr(padded, "padded_length", lambda size: real(size) + 1)
    blob, _, pair = make_blob(bytes(100))
    monkeypatch.setattr(padded, "padded_length", real)
    with pytest.raises(TamperingDetected, match="canonical"):
        open_blob(blob, pair)


def test_fingerprint_mismatch_is_raised_before_the_last_piece_is_yielded() -> None:
    blob, _, pair = make_blob(bytes(4 * SMALL + 5))
    decryptor = open_record_blob(io.BytesIO(blob), pair, expected_record_id=RECORD_ID, expected_patient=PATIENT,
                                 category=CATEGORY, expected_fingerprint=b"\x01" * 32)
    got = b""
    with pytest.raises(TamperingDetected, match="fingerprint mismatch"):
        for piece in decryptor:
            got += piece
    assert len(got) < 4 * SMALL + 5 and not decryptor.finished


# --- format 1 (read only) --------------------------------------------------------------------------
def legacy_blob(data: bytes = SECRET_TEXT, *, category: int = CATEGORY, epoch: int = EPOCH,
                pair: KeyPair | None = None, chunk_size: int = SMALL) -> tuple[bytes, RecordEncryptor, KeyPair]:
    """A format 1 blob, as medledger wrote them before format 2."""
    pair = pair or generate_keypair()
    key = crypto.new_record_key()
    encryptor = RecordEncryptor(key, RECORD_ID, PATIENT, io.BytesIO(data), chunk_size=chunk_size)
    header = crypto.LegacyRecordHeader(
        record_id=RECORD_ID, patient=to_checksum_address(PATIENT), category=category, key_epoch=epoch,
        sealed_record_key=seal(pair.public, key), stream_header=encryptor.header, chunk_size=chunk_size)
    return header.encode() + b"".join(encryptor), encryptor, pair


def split_legacy(blob: bytes) -> tuple[dict, bytes]:
    (length,) = struct.unpack(">I", blob[4:8])
    return json.loads(blob[8:8 + length]), blob[8 + length:]


def join_legacy(header: dict, body: bytes) -> bytes:
    raw = json.dumps(header).encode()
    return b"MLR1" + struct.pack(">I", len(raw)) + raw + body


def test_legacy_blob_still_opens_and_checks_its_fingerprint() -> None:
    data = bytes(range(256)) * 3
    blob, encryptor, pair = legacy_blob(data)
    decryptor = open_record_blob(io.BytesIO(blob), {EPOCH: pair.secret}, expected_record_id=RECORD_ID,
                                 expected_patient=PATIENT, expected_fingerprint=encryptor.fingerprint)
    assert b"".join(decryptor) == data and decryptor.verified and decryptor.key_epoch == EPOCH
    header, rest = parse_record_header(io.BytesIO(blob))
    assert isinstance(header, crypto.LegacyRecordHeader) and rest.read() == split_legacy(blob)[1]


def test_legacy_blob_header_for_another_record_or_patient_is_tampering() -> None:
    blob, _, pair = legacy_blob()
    with pytest.raises(TamperingDetected, match="not the expected"):
        open_record_blob(io.BytesIO(blob), pair.secret, expected_record_id=OTHER_RECORD_ID)
    with pytest.raises(TamperingDetected, match="patient"):
        open_record_blob(io.BytesIO(blob), pair.secret, expected_patient=OTHER_PATIENT)


@pytest.mark.parametrize("field,value", [("record_id", "0x" + OTHER_RECORD_ID.hex()),
                                         ("patient", to_checksum_address(OTHER_PATIENT))])
def test_legacy_rewritten_binding_fails_authentication(field: str, value: str) -> None:
    blob, _, pair = legacy_blob()
    header, body = split_legacy(blob)
    header[field] = value
    with pytest.raises(TamperingDetected, match="authentication failed"):
        b"".join(open_record_blob(io.BytesIO(join_legacy(header, body)), pair.secret))


def test_legacy_blob_of_newer_inner_format_asks_to_upgrade() -> None:
    blob, _, pair = legacy_blob()
    header, body = split_legacy(blob)
    header["format"] = 2
    with pytest.raises(RecordFormatError, match="upgrade"):
        open_record_blob(io.BytesIO(join_legacy(header, body)), pair.secret)


def test_legacy_blob_with_invalid_json_header_is_tampering() -> None:
    raw = b"{not json"
    with pytest.raises(TamperingDetected, match="JSON"):
        parse_record_header(io.BytesIO(b"MLR1" + struct.pack(">I", len(raw)) + raw))


@pytest.mark.parametrize("field", ["record_id", "patient", "category", "key_epoch", "sealed_record_key",
                                   "stream_header", "chunk_size", "cipher"])
def test_legacy_header_missing_a_field_is_tampering(field: str) -> None:
    blob, _, _ = legacy_blob()
    header, body = split_legacy(blob)
    del header[field]
    with pytest.raises(TamperingDetected, match=f"missing fields: {field}"):
        parse_record_header(io.BytesIO(join_legacy(header, body)))


@pytest.mark.parametrize("field,value", [("category", -1), ("category", "4"), ("key_epoch", 1.5),
                                         ("chunk_size", 0), ("chunk_size", 2**40), ("record_id", "0x12"),
                                         ("patient", "nobody"), ("sealed_record_key", "!!"),
                                         ("stream_header", base64.b64encode(b"short").decode()),
                                         ("extra", "field")])
def test_legacy_header_with_invalid_field_is_tampering(field: str, value: object) -> None:
    blob, _, _ = legacy_blob()
    header, body = split_legacy(blob)
    header[field] = value
    with pytest.raises(TamperingDetected, match="malformed|altered"):
        parse_record_header(io.BytesIO(join_legacy(header, body)))


def test_legacy_header_length_beyond_limit_is_tampering() -> None:
    with pytest.raises(TamperingDetected, match="limit"):
        parse_record_header(io.BytesIO(b"MLR1" + struct.pack(">I", 2**31) + b"{}"))


def test_legacy_truncated_or_extended_ciphertext_is_tampering() -> None:
    blob, _, pair = legacy_blob(bytes(4 * SMALL))
    with pytest.raises(TamperingDetected, match="truncated"):
        b"".join(open_record_blob(io.BytesIO(blob[: -(SMALL + 17)]), pair.secret))
    with pytest.raises(TamperingDetected, match="extra data"):
        b"".join(open_record_blob(io.BytesIO(legacy_blob(bytes(2 * SMALL), pair=pair)[0] + b"\x00"), pair.secret))
    with pytest.raises(TamperingDetected, match="authentication failed on chunk 0 .*extended"):
        b"".join(open_record_blob(io.BytesIO(legacy_blob(b"short", pair=pair)[0] + b"\x00"), pair.secret))


def test_legacy_keys_of_another_epoch_or_category() -> None:
    blob, _, pair = legacy_blob(epoch=2)
    with pytest.raises(DecryptionError, match="category 4, epoch 2"):
        open_record_blob(io.BytesIO(blob), {2: generate_keypair().secret})
    with pytest.raises(KeyNotFound, match="category 4 epoch 2"):
        open_record_blob(io.BytesIO(blob), {1: pair.secret})
    with pytest.raises(KeyNotFound):
        open_record_blob(io.BytesIO(blob), {5: {2: pair.secret}})
