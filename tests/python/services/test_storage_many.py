"""Several small contents in one multipart ``add`` (what the bulk ingest uses), against the real js-ipfs
daemon; the fast CID printing checked against multiformats."""

from __future__ import annotations

import io
import os
import socket
import threading
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from multiformats import CID

import medledger.storage.store as store_module
from medledger.errors import MedledgerError, ServiceUnavailable, StorageError, TamperingDetected
from medledger.storage import IpfsStore, cid_to_bytes, normalize_cid
from medledger.storage.cid import base32_text, base58_text
from medledger.storage.unixfs import CHUNK_BYTES, cid_of_bytes, cid_text_of_bytes
from medledger.storage.upload import IncompleteAdd, added_cids, multipart_body


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
    _lying(store, monkeypatch, lambda answer: [answer[0], answer[2]])  # p1 missing: not a node's answer
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
    for bad in (answers[:2], [*answers, {"Name": "p3", "Hash": "z4"}], [{"Name": "", "Hash": "z"}], {}, []):
        with pytest.raises(ValueError) as refused:
            added_cids(bad, 3)
        assert not isinstance(refused.value, IncompleteAdd)
    with pytest.raises(IncompleteAdd) as stopped:  # the first two answered, then nothing: a node that stopped
        added_cids(answers[1:], 3)
    assert (stopped.value.done, stopped.value.count) == (2, 3)


@settings(deadline=None)  # the first example pays multiformats' warm-up; a loaded machine passes 200 ms
@given(st.binary(max_size=2048))
def test_the_fast_cid_text_is_what_multiformats_prints(data: bytes) -> None:
    text = cid_text_of_bytes(data)
    assert text == normalize_cid(cid_of_bytes(data))
    binary = bytes(CID.decode(text))
    assert cid_to_bytes(text) == binary and base32_text(binary) == text
    assert base58_text(binary) == str(CID.decode(text).set(base="base58btc"))


# --- against the node: the same CIDs as one add each, and failures in the middle of a request -----------
def _node_cid(store: IpfsStore, blob: bytes) -> str:
    """The CID the node itself answers for one add of ``blob`` (not computed here: nothing of ours checks it)."""
    answer = store._client.add(io.BytesIO(blob), cid_version=1, raw_leaves=True, pin=False)
    return str(CID.decode(answer["Hash"]).set(base="base32"))


def test_one_request_gives_each_content_the_cid_the_node_gives_it_alone(store: IpfsStore) -> None:
    blobs = contents()
    alone = [_node_cid(store, blob) for blob in blobs]
    together = store.add_many(blobs)
    assert together == alone
    assert CID.decode(together[3]).codec.name == "raw"  # exactly one chunk: a raw leaf
    assert CID.decode(together[4]).codec.name == "dag-pb"  # one byte over a chunk: a node with two leaves
    for cid in together:
        store.unpin(cid)


def _without_content_type_of(part: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """The request body loses the Content-Type of one part: js-ipfs adds and pins the parts before it,
    then ends its answer (the error goes into an HTTP trailer)."""
    real = store_module.multipart_body

    def body(blobs):
        data, content_type = real(blobs)
        typed = b'filename="p%d"\r\nContent-Type: application/octet-stream\r\n' % part
        return data.replace(typed, b'filename="p%d"\r\n' % part), content_type

    monkeypatch.setattr(store_module, "multipart_body", body)


def test_a_request_the_node_stops_in_the_middle_leaves_nothing_pinned(store, monkeypatch) -> None:
    before = set(store.pins())
    blobs = [os.urandom(2000) for _ in range(5)]
    cids = [store.cid_of(blob) for blob in blobs]
    pinned_at_failure: list[list[bool]] = []
    real_unpin = IpfsStore._unpin_quietly

    def unpin(self, wanted):
        pinned_at_failure.append([self.is_pinned(cid) for cid in cids])
        return real_unpin(self, wanted)

    monkeypatch.setattr(IpfsStore, "_unpin_quietly", unpin)
    _without_content_type_of(3, monkeypatch)
    with pytest.raises(StorageError, match=r"stored 3 of the 5 contents of one request and then stopped") as failed:
        store.add_many(blobs)
    assert not isinstance(failed.value, ServiceUnavailable)  # the node answered: it is not "down" or "not a node"
    assert pinned_at_failure == [[True, True, True, False, False]]  # the node had pinned the first three...
    assert set(store.pins()) == before  # ...and they were unpinned
    assert [store.has(cid) for cid in cids] == [True, True, True, False, False]  # stored, left to the GC


class CuttingProxy:
    """A TCP proxy to the node on 127.0.0.1 that forwards a connection's bytes until it has sent ``after``
    bytes of an ``add`` request, then closes both sides (the network failing in the middle of a body)."""

    def __init__(self, upstream_port: int, after: int) -> None:
        self.upstream_port, self.after = upstream_port, after
        self.cut = threading.Event()
        self._server = socket.create_server(("127.0.0.1", 0))
        threading.Thread(target=self._serve, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.getsockname()[1]}"

    def close(self) -> None:
        self._server.close()

    def _serve(self) -> None:
        while True:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
            threading.Thread(target=self._pump, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, False), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket, watch: bool) -> None:
        sent: int | None = None
        try:
            while data := source.recv(65536):
                if watch and sent is None and b"/api/v0/add" in data:
                    sent = 0
                if sent is not None:
                    data = data[: self.after - sent]
                    sent += len(data)
                sink.sendall(data)
                if sent is not None and sent >= self.after:
                    time.sleep(0.2)  # the node reads what it got
                    self.cut.set()
                    break
        except OSError:
            pass
        for end in (source, sink):
            try:
                end.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            end.close()


def test_a_connection_cut_in_the_middle_of_a_request_leaves_nothing_pinned(store, node_config) -> None:
    before = set(store.pins())
    blobs = [os.urandom(2000) for _ in range(5)]
    cids = [store.cid_of(blob) for blob in blobs]
    port = int(node_config.ipfs_api.split("/tcp/")[1].split("/")[0])
    proxy = CuttingProxy(port, after=6000)  # the headers and about two of the five parts
    try:
        with pytest.raises(MedledgerError, match=r"IPFS add failed|No IPFS node answers"):
            IpfsStore(proxy.url, timeout=10).add_many(blobs)
    finally:
        proxy.close()
    assert proxy.cut.is_set()
    time.sleep(1)  # whatever the node still does with the cut request, it pins nothing later
    assert set(store.pins()) == before
    assert any(store.has(cid) for cid in cids) and not all(store.has(cid) for cid in cids)  # cut mid-body
    assert store.add_many(blobs) == cids  # the node is fine, and the same contents go in whole
    for cid in cids:
        store.unpin(cid)


def test_content_changed_on_the_way_is_tampering_and_neither_cid_stays_pinned(store, monkeypatch) -> None:
    """The node really stores other bytes than ours for one part (here: changed in the request): it answers
    that content's true CID, which is not ours. Both the CIDs we expect and the one it answered are unpinned."""
    before = set(store.pins())
    blobs = [os.urandom(900) for _ in range(3)]
    changed = bytes([blobs[1][0] ^ 1]) + blobs[1][1:]
    real = store_module.multipart_body
    monkeypatch.setattr(store_module, "multipart_body", lambda bl: real([bl[0], changed, bl[2]]))
    with pytest.raises(TamperingDetected, match=rf"answered CID {store.cid_of(changed)} .*\(1 of 3\)"):
        store.add_many(blobs)
    assert set(store.pins()) == before


def test_a_base32_answer_is_accepted_as_kubo_prints_it(store, monkeypatch) -> None:
    def kubo(answer):  # Kubo prints CIDv1 in base32, js-ipfs in base58btc
        return [{**a, "Hash": str(CID.decode(a["Hash"]).set(base="base32"))} for a in answer]

    _lying(store, monkeypatch, kubo)
    blobs = [os.urandom(100) for _ in range(2)]
    cids = store.add_many(blobs)
    assert cids == [store.cid_of(b) for b in blobs] and all(store.is_pinned(c) for c in cids)
    for cid in cids:
        store.unpin(cid)


def test_cid_bytes_take_the_general_path_for_anything_but_a_sha256_cidv1_in_base32() -> None:
    raw = CID("base32", 1, "raw", ("sha2-256", bytes(range(32))))
    for cid in (
        raw.set(codec="dag-pb"),  # fast path, the other codec
        raw,
        raw.set(base="base58btc"),  # js-ipfs's text
        CID("base58btc", 0, "dag-pb", ("sha2-256", bytes(range(32)))),  # CIDv0 ("Qm...")
        CID("base32", 1, "dag-cbor", ("sha2-256", bytes(32))),  # same length, another codec
        CID("base32", 1, "raw", ("sha2-512", bytes(64))),
    ):
        want = bytes(cid.set(version=1)) if cid.version == 0 else bytes(cid)
        assert cid_to_bytes(str(cid)) == want, str(cid)
    with pytest.raises(StorageError):
        cid_to_bytes("b" + "1" * 58)  # the length of a base32 sha2-256 CID, not base32
