"""An IPFS node is trusted with nothing (issue 8 items 8 and 9, issue 12 item 1): every object
fetched is checked against the CID asked for, every CID of an upload is computed here, and a node
that hangs or babbles is named as such. Against a hostile endpoint on 127.0.0.1 (a proxy in front
of the real js-ipfs node where a real node is needed)."""

from __future__ import annotations

import os
import time

import pytest
import requests
from hostile_ipfs import HostileIpfs

from medledger.errors import ContentNotFound, ServiceUnavailable, StorageError, TamperingDetected
from medledger.node import free_port
from medledger.storage import IpfsStore, normalize_cid
from medledger.storage.unixfs import CHUNK_BYTES, MAX_LINKS, cid_of_bytes

MiB = 1024 * 1024


@pytest.fixture
def proxy(node, node_config):
    with HostileIpfs(upstream=node_config.ipfs_api_url) as hostile:
        yield hostile


def via(hostile: HostileIpfs, timeout: float = 10) -> IpfsStore:
    return IpfsStore(hostile.multiaddr, timeout=timeout)


def node_hash(node_config, data: bytes) -> str:
    """What the real node answers for ``add --only-hash`` (CIDv1, raw leaves)."""
    session = requests.Session()
    session.trust_env = False
    answer = session.post(f"{node_config.ipfs_api_url}/api/v0/add",
                          params={"only-hash": "true", "cid-version": "1", "raw-leaves": "true"},
                          files={"file": ("", data, "application/octet-stream")}, timeout=60)
    return normalize_cid(answer.json()["Hash"])


# --- local CIDs ----------------------------------------------------------------------------------
@pytest.mark.parametrize("size", [0, 1, CHUNK_BYTES, CHUNK_BYTES + 1, 3 * CHUNK_BYTES + 5,
                                  MAX_LINKS * CHUNK_BYTES + 1])
def test_local_cid_equals_the_nodes(node, node_config, size: int) -> None:
    data = os.urandom(size)
    assert normalize_cid(cid_of_bytes(data)) == node_hash(node_config, data)


def test_cid_of_is_computed_without_any_node() -> None:
    down = IpfsStore(f"http://127.0.0.1:{free_port()}", timeout=1)
    assert down.cid_of(b"hello world") == "bafkreifzjut3te2nhyekklss27nh3k72ysco7y32koao5eei66wof36n5e"
    assert down.cid_of(iter([b"hello ", b"world"])) == down.cid_of(b"hello world")


# --- what a node serves --------------------------------------------------------------------------
@pytest.mark.parametrize("size", [100, 700_000], ids=["raw-block", "unixfs-dag"])
def test_forged_content_is_refused(store, proxy, size: int) -> None:
    real = os.urandom(size)
    cid = store.add_bytes(real)
    hostile = via(proxy)
    assert hostile.cat(cid) == real  # an honest answer passes through the proxy
    for forged in (os.urandom(size), real[:-1] + bytes([real[-1] ^ 1]), real[: size // 2], real + b"\0",
                   b'{"patient": "0x0", "keys": {}}'):
        proxy.forge_cat[cid] = forged
        with pytest.raises(TamperingDetected, match=cid):
            hostile.cat(cid)
    store.unpin(cid)


def test_forged_stream_is_refused_before_its_last_piece(store, proxy) -> None:
    real = os.urandom(3 * CHUNK_BYTES)
    cid = store.add_bytes(real)
    proxy.forge_cat[cid] = real[:-1] + b"\0"
    got = b""
    with pytest.raises(TamperingDetected):
        for piece in via(proxy).cat_stream(cid, chunk_size=64 * 1024):
            got += piece
    assert len(got) < len(real) and got == real[: len(got)]
    store.unpin(cid)


def test_cid_the_node_cannot_be_checked_against_is_refused(store) -> None:
    identity = "bafkqaaa"  # identity multihash: nothing to check the content against
    with pytest.raises(StorageError, match="cannot check"):
        store.cat(identity)


# --- what a node claims --------------------------------------------------------------------------
def test_a_wrong_cid_from_add_is_refused_and_nothing_is_pinned(store, proxy) -> None:
    other = store.cid_of(b"something else " + os.urandom(8))
    proxy.add_answer = other
    data = b"the patient's key directory " + os.urandom(8)
    with pytest.raises(TamperingDetected, match=other) as raised:
        via(proxy).add_bytes(data)
    assert store.cid_of(data) in str(raised.value)
    assert "/api/v0/pin/add" not in proxy.calls
    assert not store.is_pinned(store.cid_of(data)) and not store.is_pinned(other)


def test_an_honest_add_through_the_proxy_is_accepted(store, proxy) -> None:
    data = os.urandom(300_000)
    cid = via(proxy).add_bytes(data)
    assert cid == store.cid_of(data) and store.is_pinned(cid)
    store.unpin(cid)


# --- a node that hangs or babbles ----------------------------------------------------------------
def test_a_hanging_node_is_reported_as_hanging_not_as_missing_content() -> None:
    """Issue 8 item 8: js-ipfs' own 'not found' is a timeout too; a probe tells them apart."""
    with HostileIpfs() as hostile:
        hostile.hang = True
        store = via(hostile, timeout=1)
        cid = store.cid_of(b"anything")
        for call in (lambda: store.cat(cid), lambda: store.add_bytes(b"x"), store.version, lambda: store.pin(cid)):
            started = time.monotonic()
            with pytest.raises(ServiceUnavailable, match="not answering") as raised:
                call()
            assert time.monotonic() - started < 1 + 4, "the timeout and a short probe, no more"
            assert hostile.url in str(raised.value)
            assert not isinstance(raised.value, ContentNotFound)
        assert store.ping() is False


def test_missing_content_on_a_live_node_is_still_content_not_found(store) -> None:
    unknown = store.cid_of(b"nobody has this " + os.urandom(16))
    with pytest.raises(ContentNotFound, match=unknown):
        store.cat(unknown, timeout=1.5)


def test_a_node_that_answers_garbage_says_so() -> None:
    with HostileIpfs() as hostile:
        hostile.garbage = True
        store = via(hostile, timeout=3)
        for call in (lambda: store.add_bytes(b"x"), store.version, lambda: store.pin(store.cid_of(b"x"))):
            with pytest.raises(ServiceUnavailable, match="not .*IPFS") as raised:
                call()
            assert hostile.url in str(raised.value)
        with pytest.raises(TamperingDetected):  # a page instead of the content: it is not the content
            store.cat(store.cid_of(b"x"))
        assert store.ping() is False


def test_a_server_that_is_no_ipfs_node_says_so() -> None:
    with HostileIpfs() as nothing:  # no upstream: 404 for everything but version
        store = via(nothing, timeout=3)
        with pytest.raises(ServiceUnavailable, match="not .*IPFS"):
            store.add_bytes(b"x")
