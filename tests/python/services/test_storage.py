"""medledger.storage against a real js-ipfs daemon (started once per session by conftest.py)."""

from __future__ import annotations

import hashlib
import io
import os
import time

import psutil
import pytest
from multiformats import CID

from medledger.errors import ContentNotFound, ServiceUnavailable, StorageError
from medledger.node import free_port
from medledger.storage import (
    DEFAULT_IPFS_API,
    ENV_IPFS_API,
    IpfsStore,
    cid_from_bytes,
    cid_to_bytes,
    normalize_cid,
)

MiB = 1024 * 1024


def _assert_base32_v1(cid: str) -> None:
    assert cid.startswith(("bafk", "bafy")), cid
    decoded = CID.decode(cid)
    assert decoded.version == 1
    assert decoded.base.name == "base32"
    assert str(decoded) == cid


@pytest.mark.parametrize("size", [0, 11, 256 * 1024, 256 * 1024 + 1, 300_000, MiB + 12345],
                         ids=["empty", "small", "one-chunk", "chunk+1", "multi-chunk", "over-1MiB"])
def test_add_cat_round_trip(store: IpfsStore, size: int) -> None:
    data = os.urandom(size)
    cid = store.add_bytes(data)
    _assert_base32_v1(cid)
    assert store.cat(cid) == data
    assert store.cid_of(data) == cid
    assert store.is_pinned(cid)
    assert store.has(cid)
    # a single raw block for <= 256 KiB, a dag-pb (UnixFS) root above
    assert CID.decode(cid).codec.name == ("raw" if size <= 256 * 1024 else "dag-pb")


def test_cids_match_kubo(store: IpfsStore) -> None:
    # what `ipfs add --cid-version=1` (Kubo, raw leaves) prints for the same bytes
    assert store.cid_of(b"") == "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"
    assert store.cid_of(b"hello world") == \
        "bafkreifzjut3te2nhyekklss27nh3k72ysco7y32koao5eei66wof36n5e"


def test_stream_sources_give_same_cid(store: IpfsStore, tmp_path) -> None:
    data = os.urandom(700_000)
    expected = store.cid_of(data)
    # odd-sized chunks, bytearray/memoryview chunks, a file object, a path
    chunks = [data[i:i + 9999] for i in range(0, len(data), 9999)]
    assert store.add_stream(iter(chunks)) == expected
    assert store.add_stream(bytearray(c) if i % 2 else memoryview(c)
                            for i, c in enumerate(chunks)) == expected
    assert store.add_stream(io.BytesIO(data)) == expected
    path = tmp_path / "blob.bin"
    path.write_bytes(data)
    assert store.add_stream(path) == expected
    with open(path, "rb") as fh:
        assert store.add_stream(fh) == expected
    with pytest.raises(TypeError):
        store.add_stream("a str is ambiguous")


def test_cat_stream_yields_chunks(store: IpfsStore) -> None:
    data = os.urandom(3 * MiB)
    cid = store.add_bytes(data)
    pieces = list(store.cat_stream(cid, chunk_size=64 * 1024))
    assert len(pieces) >= 3 * MiB // (64 * 1024)
    assert max(len(p) for p in pieces) <= 64 * 1024
    assert b"".join(pieces) == data


def test_cid_bytes_round_trip(store: IpfsStore) -> None:
    cid = store.add_bytes(b"cid bytes round trip")
    raw = cid_to_bytes(cid)
    assert raw[0] == 0x01  # CIDv1
    assert cid_from_bytes(raw) == cid
    # base58btc (what js-ipfs prints) and /ipfs/ paths normalise to the same base32 string
    b58 = str(CID.decode(cid).set(base="base58btc"))
    assert b58.startswith("z")
    assert normalize_cid(b58) == cid
    assert normalize_cid("/ipfs/" + cid) == cid
    assert cid_to_bytes(b58) == raw
    # CIDv0 becomes the equivalent CIDv1
    v0 = "QmZfF6C9j4VtoCsTp4KSrhYH47QMd3DNXVZBKaxJdhaPab"
    assert normalize_cid(v0).startswith("bafy")
    assert cid_from_bytes(cid_to_bytes(v0)) == normalize_cid(v0)
    for bad in ["not-a-cid", ""]:
        with pytest.raises(StorageError):
            normalize_cid(bad)
    with pytest.raises(StorageError):
        cid_from_bytes(b"")
    with pytest.raises(StorageError):
        cid_from_bytes(b"\x01\x55")


def test_streaming_add_keeps_memory_small(store: IpfsStore) -> None:
    total_mib = 200
    block = os.urandom(MiB)

    def generate():
        for i in range(total_mib):
            yield block[:-8] + i.to_bytes(8, "big")  # distinct chunks: no deduplication

    expected = hashlib.sha256()
    for chunk in generate():
        expected.update(chunk)

    proc = psutil.Process()
    rss_before = proc.memory_info().rss
    peak = rss_before
    seen = 0

    def measured():
        nonlocal peak, seen
        for chunk in generate():
            seen += len(chunk)
            if seen % (16 * MiB) == 0:
                peak = max(peak, proc.memory_info().rss)
            yield chunk

    cid = store.add_stream(measured())
    peak = max(peak, proc.memory_info().rss)
    assert seen == total_mib * MiB
    assert (peak - rss_before) < 60 * MiB, f"RSS grew by {(peak - rss_before) / MiB:.1f} MiB"

    got = hashlib.sha256()
    size = 0
    for piece in store.cat_stream(cid):
        got.update(piece)
        size += len(piece)
        if size % (32 * MiB) < len(piece):
            peak = max(peak, proc.memory_info().rss)
    assert size == total_mib * MiB
    assert got.digest() == expected.digest()
    assert (peak - rss_before) < 60 * MiB
    store.unpin(cid)
    store.gc()


def test_pin_unpin_gc(store: IpfsStore) -> None:
    kept = store.add_bytes(b"keep me " + os.urandom(16))
    loose = store.add_bytes(b"collect me " + os.urandom(16), pin=False)
    assert store.is_pinned(kept)
    assert not store.is_pinned(loose)
    assert store.has(loose)

    store.pin(loose)
    store.pin(loose)  # idempotent
    assert store.is_pinned(loose)
    assert loose in store.pins()
    store.unpin(loose)
    assert not store.is_pinned(loose)
    store.unpin(loose)  # unpinning an unpinned CID is not an error
    store.unpin("bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy")  # never seen

    removed = store.gc()
    assert loose in removed
    assert kept not in removed
    assert not store.has(loose)
    assert store.has(kept)
    with pytest.raises(ContentNotFound):
        store.cat(loose, timeout=1)
    store.unpin(kept)


def test_pin_of_missing_content_is_content_not_found(store: IpfsStore) -> None:
    missing = store.cid_of(b"never stored " + os.urandom(16))
    with pytest.raises(ContentNotFound) as info:
        store.pin(missing, timeout=1)
    assert missing in str(info.value)
    assert not store.is_pinned(missing)


def test_cid_of_does_not_store(store: IpfsStore) -> None:
    data = b"only hashed " + os.urandom(16)
    cid = store.cid_of(data)
    assert not store.has(cid)
    assert not store.is_pinned(cid)


def test_failed_upload_leaves_no_pin(store: IpfsStore) -> None:
    before = store.pins()

    def broken():
        for _ in range(3):
            yield os.urandom(MiB)
        raise RuntimeError("source failed")

    with pytest.raises(RuntimeError, match="source failed"):
        store.add_stream(broken())
    assert store.pins() == before
    assert store.ping()
    # the node is not left waiting for the rest of the upload (which would block gc)
    started = time.monotonic()
    store.gc()
    assert time.monotonic() - started < 5


def test_cat_unknown_cid_times_out(store: IpfsStore) -> None:
    unknown = store.cid_of(b"nobody has this " + os.urandom(16))
    started = time.monotonic()
    with pytest.raises(ContentNotFound) as info:
        store.cat(unknown, timeout=1.5)
    elapsed = time.monotonic() - started
    assert elapsed < 5, elapsed
    assert unknown in str(info.value)
    assert "1.5 s" in str(info.value)
    # the stream variant raises on iteration
    with pytest.raises(ContentNotFound):
        next(iter(store.cat_stream(unknown, timeout=1)))


def test_node_down_is_service_unavailable(monkeypatch) -> None:
    port = free_port()
    down = IpfsStore(f"http://127.0.0.1:{port}", timeout=2)
    for call in (lambda: down.add_bytes(b"x"), lambda: down.cat(
            "bafkreifzjut3te2nhyekklss27nh3k72ysco7y32koao5eei66wof36n5e"),
            down.version, lambda: down.unpin(
            "bafkreifzjut3te2nhyekklss27nh3k72ysco7y32koao5eei66wof36n5e"), down.gc):
        with pytest.raises(ServiceUnavailable) as info:
            call()
        message = str(info.value)
        assert f"127.0.0.1:{port}" in message
        assert "medledger node up" in message
        assert ENV_IPFS_API in message
    assert down.ping() is False
    with pytest.raises(ServiceUnavailable):
        down.check()


def test_address_forms(monkeypatch, node_config) -> None:
    monkeypatch.delenv(ENV_IPFS_API, raising=False)
    assert IpfsStore().multiaddr == DEFAULT_IPFS_API
    monkeypatch.setenv(ENV_IPFS_API, node_config.ipfs_api_url)
    from_env = IpfsStore(timeout=5)
    assert from_env.multiaddr == node_config.ipfs_api
    assert IpfsStore(f"127.0.0.1:{node_config.ipfs_api_port}").multiaddr == node_config.ipfs_api


def test_version_and_ping(store: IpfsStore) -> None:
    assert store.version()
    assert store.check() == store.version()
    assert store.ping() is True


def test_damaged_content_is_content_not_found_and_node_survives(store: IpfsStore,
                                                                node_config) -> None:
    """A DAG with a block missing (deleted behind our back) times out without killing js-ipfs."""
    import json

    import requests

    data = os.urandom(MiB)
    cid = store.add_bytes(data, pin=False)
    api = node_config.ipfs_api_url + "/api/v0"
    session = requests.Session()
    session.trust_env = False
    refs = [json.loads(line)["Ref"]
            for line in session.post(f"{api}/refs", params={"arg": cid}, timeout=10).text.split()]
    assert len(refs) == 4  # 4 raw leaves of 256 KiB
    removed = session.post(f"{api}/block/rm", params={"arg": refs[-1]}, timeout=10)
    assert removed.status_code == 200
    assert store.has(cid)
    with pytest.raises(ContentNotFound):
        store.cat(cid, timeout=1.5)
    time.sleep(0.3)
    assert store.ping(), "the IPFS daemon died"
    assert store.add_bytes(b"still works") and store.cat(store.add_bytes(b"ok")) == b"ok"


def test_remove_deletes_exactly_the_blocks_of_one_cid(store):
    import os

    keep = store.add_bytes(os.urandom(300_000))
    gone = store.add_bytes(os.urandom(600_000))  # several blocks
    removed = store.remove(gone)
    assert gone in removed and len(removed) > 1
    assert not store.has(gone)
    assert not store.is_pinned(gone)
    assert store.has(keep) and store.is_pinned(keep)
    assert store.remove(gone) == []  # idempotent: nothing left to remove
