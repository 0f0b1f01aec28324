"""Several small contents in one multipart ``add`` (what the bulk ingest uses), against the real js-ipfs
daemon; the fast CID printing checked against multiformats."""

from __future__ import annotations

import os

import pytest
from hypothesis import given
from hypothesis import strategies as st
from multiformats import CID

from medledger.errors import ServiceUnavailable, TamperingDetected
from medledger.storage import IpfsStore, cid_to_bytes, normalize_cid
from medledger.storage.cid import base32_text, base58_text
from medledger.storage.unixfs import CHUNK_BYTES, cid_of_bytes, cid_text_of_bytes
from medledger.storage.upload import added_cids, multipart_body


def contents() -> list[bytes]:
    """Sizes around the edges: one byte, small, one chunk exactly, and a two-chunk (dag-pb) file."""
    return [os.urandom(n) for n in (1, 1024, 100 * 1024, CHUNK_BYTES, CHUNK_BYTES + 1, 1024)]


def test_add_many_stores_each_content_under_its_own_cid_pinned(store: IpfsStore) -> None:
    blobs = contents()
    cids = store.add_many(blobs)
    assert cids == [store.cid_of(b) for b in blobs]  # in order, the CID one add of each would give
    assert len(set(cids)) == len(blobs)
    for blob, cid in zip(blobs, cids, strict=True):
        assert store.is_pinned(cid)
        assert store.cat(cid) == blob
        store.unpin(cid)


def test_add_many_unpinned_leaves_the_pins_alone(store: IpfsStore) -> None:
    before = set(store.pins())
    cids = store.add_many([os.urandom(512) for _ in range(3)], pin=False)
    assert set(store.pins()) == before
    assert all(store.has(cid) for cid in cids)


def _lying(store: IpfsStore, monkeypatch: pytest.MonkeyPatch, alter) -> None:
    """The real node stores (and pins) what it is sent, but its answer to ``add`` is ``alter``-ed."""
    cls = type(store._http)  # ipfshttpclient's HTTP client has slots: patch its class for this test
    real = cls.request

    def request(self, path, *args, **kwargs):
        answer = real(self, path, *args, **kwargs)
        return alter(answer) if path == "/add" else answer

    monkeypatch.setattr(cls, "request", request)


def test_a_node_answering_other_cids_is_tampering_and_nothing_stays_pinned(store, monkeypatch) -> None:
    before = set(store.pins())
    blobs = [os.urandom(700) for _ in range(3)]

    def swap(answer):  # each file named with another one's CID
        hashes = [a["Hash"] for a in answer]
        return [{**a, "Hash": hashes[(i + 1) % len(hashes)]} for i, a in enumerate(answer)]

    _lying(store, monkeypatch, swap)
    with pytest.raises(TamperingDetected, match=r"answered CID .* for content whose CID is .*\(3 of 3\)"):
        store.add_many(blobs)
    assert set(store.pins()) == before


def test_an_answer_that_names_not_every_file_is_refused_and_nothing_stays_pinned(store, monkeypatch) -> None:
    before = set(store.pins())
    _lying(store, monkeypatch, lambda answer: answer[:-1])
    with pytest.raises(ServiceUnavailable, match="not as an IPFS node's RPC API"):
        store.add_many([os.urandom(300) for _ in range(4)])
    assert set(store.pins()) == before


def test_the_multipart_answer_is_matched_by_name_not_by_order() -> None:
    body, content_type = multipart_body([b"a", b"bb", b"ccc"])
    assert content_type.startswith('multipart/form-data; boundary="')
    assert body.count(b"Content-Type: application/octet-stream") == 3  # js-ipfs needs one per part
    assert [b'filename="p0"' in body, b'filename="p2"' in body] == [True, True]
    answers = [{"Name": "p2", "Hash": "z3"}, {"Name": "p0", "Hash": "z1"}, {"Name": "p1", "Hash": "z2"}]
    assert added_cids(answers, 3) == ["z1", "z2", "z3"]
    for bad in (answers[:2], [*answers, {"Name": "p3", "Hash": "z4"}], [{"Name": "", "Hash": "z"}], {}):
        with pytest.raises(ValueError):
            added_cids(bad, 3)


@given(st.binary(max_size=2048))
def test_the_fast_cid_text_is_what_multiformats_prints(data: bytes) -> None:
    text = cid_text_of_bytes(data)
    assert text == normalize_cid(cid_of_bytes(data))
    binary = bytes(CID.decode(text))
    assert cid_to_bytes(text) == binary and base32_text(binary) == text
    assert base58_text(binary) == str(CID.decode(text).set(base="base58btc"))
