"""The index against a real anvil and real SQLite / PostgreSQL: what it stores, the query API,
checkpoints, idempotence, confirmations and reorgs (anvil_reorg, evm_snapshot/evm_revert)."""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest
from sqlalchemy import select
from web3 import Web3

from medledger import codes
from medledger.chain.logsource import RpcSource
from medledger.errors import ServiceUnavailable
from medledger.index import Indexer, IndexMismatch, IndexReader, IndexStore, Target, schema
from medledger.index.store import Checkpoint
from medledger.node import free_port

from .helpers import ALL_CATEGORIES, Chain, open_store, story, sync, tx


def dump(store: IndexStore) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every block table, in key order (JSON made canonical)."""
    out = {}
    with store.engine.connect() as conn:
        for table in schema.BLOCK_TABLES:
            rows = conn.execute(select(table).order_by(*table.primary_key.columns)).all()
            out[table.name] = [
                tuple(json.dumps(v, sort_keys=True) if isinstance(v, dict) else v for v in r) for r in rows
            ]
    return out


def all_logs(chain: Chain) -> list[dict[str, Any]]:
    return list(
        chain.rpc("eth_getLogs", [{"address": chain.deployment.address, "fromBlock": "0x0", "toBlock": "latest"}])
    )


def test_indexes_every_event_and_answers_the_queries(chain: Chain, db_url: str) -> None:
    s = story(chain)
    store, reader, result = sync(db_url, chain)
    logs = all_logs(chain)
    assert result.events == len(logs) and reader.status().events == len(logs)
    assert result.indexed_to == chain.head() and result.reorgs == 0

    trail = reader.trail(chain["patient"])
    assert [e.name for e in trail] == [
        "PatientRegistered",
        *["CategoryKeyRotated"] * len(codes.Category),
        "ConsentGranted",
        "ConsentGranted",
        "RecordRegistered",
        "RecordAccessed",
        "BatchAnchored",
        "ConsentGranted",
        "ConsentRevoked",
        "RecordRegistered",
        "RecordAmended",
        "RecordErased",
        "DelegateAppointed",
        "EmergencyAccessOpened",
        "RecordAccessed",
    ]
    assert all(e.args["patient"] == chain["patient"] for e in trail)
    amended = next(e for e in trail if e.name == "RecordAmended")
    assert amended.sender == chain["patient"]  # the event names no author: the tx sender is fetched
    accessed = next(e for e in trail if e.name == "RecordAccessed").as_event_data()
    assert accessed["args"]["recordId"] == s["rid"] and accessed["args"]["accessor"] == chain["clinician"]
    assert accessed["transactionHash"] == bytes(s["access"]["transactionHash"])
    assert trail[-1].args["emergency"] is True and trail[-1].args["purpose"] == 5
    assert trail[0].timestamp == chain.w3.eth.get_block(trail[0].block_number)["timestamp"]

    current = reader.grants_held(chain["clinician"])
    assert [(g.grant.patient, g.grant.access, g.grant.categories) for g in current] == [
        (chain["patient"], codes.Access.READ, frozenset({codes.Category.OBSERVATIONS}))
    ]
    assert current[0].granted_tx == tx(s["narrow"]) and current[0].current
    history = reader.grants_held(chain["clinician"], history=True)
    assert [(g.grant.access, g.ended_how, g.ended_tx) for g in history] == [
        (codes.Access.READ, "replaced", tx(s["narrow"])),
        (codes.Access.WRITE, "revoked", tx(s["revoke_write"])),
        (codes.Access.READ, None, None),
    ]
    assert history[1].ended_by == chain["patient"] and history[1].ended_at is not None
    assert history[0].granted_tx == tx(s["grant_read"]) and history[0].grant.expiry == schema.MAX_INT
    assert [g.grant.grantee for g in reader.grants_given(chain["patient2"])] == [chain["researcher"]]
    assert reader.grants_held(chain["researcher"])[0].grant.purposes == frozenset({codes.Purpose.RESEARCH})
    assert len(reader.grant_history(chain["patient"], chain["clinician"], codes.Access.WRITE)) == 1

    records = {r.record_id: r for r in reader.records(chain["patient"])}
    assert set(records) == {s["rid"], s["root"], s["new"]}
    assert records[s["rid"]].next_id == s["new"] and records[s["rid"]].author == chain["clinician"]
    assert records[s["new"]].previous_id == s["rid"] and records[s["new"]].erased
    assert records[s["new"]].erased_tx == tx(s["erase"])
    assert records[s["root"]].is_batch and records[s["root"]].leaf_count == 3
    assert records[s["root"]].category == codes.Category.DEVICE_DATA
    assert [r.record_id for r in reader.records(chain["patient"], include_erased=False)] == [s["rid"], s["root"]]
    assert reader.record(s["rid"], chain["patient"]) == records[s["rid"]]
    header = records[s["new"]].contract_header()  # erased: its fingerprint is no longer committed
    assert header["erased"] and header["fingerprint"] == b"\x00" * 32 and header["previous"] == s["rid"]
    assert records[s["rid"]].contract_header()["next"] == s["new"]
    assert records[s["root"]].contract_header()["leafCount"] == 3
    assert reader.record(b"\x00" * 32) is None
    store.close()


def test_resumes_from_its_checkpoint_and_chunking_changes_nothing(chain: Chain, db_url: str, tmp_path) -> None:
    story(chain)
    middle = (chain.deployment.block_number + chain.head()) // 2
    store, _, first = sync(db_url, chain, until=middle)
    assert first.indexed_to == middle and store.checkpoint().block_number == middle
    store.close()
    # a new process picks up at the checkpoint; one block per chunk exercises every cross-chunk update
    store, _, rest = sync(db_url, chain, chunk_blocks=1)
    assert first.events + rest.events == len(all_logs(chain))
    one_shot, _, _ = sync(f"sqlite:///{tmp_path / 'one-shot.sqlite'}", chain)
    assert dump(store) == dump(one_shot)
    # a second pass finds nothing new; replaying a written range adds no row
    again = Indexer(store, RpcSource(chain.rpc_url)).sync()
    assert again.events == 0 and again.chunks == 0
    before = dump(store)
    start = Checkpoint(chain.deployment.block_number - 1, None)
    chunk = Indexer(store, RpcSource(chain.rpc_url))._read(
        start.block_number + 1, store.checkpoint().block_number, start
    )
    with store.engine.begin() as conn:  # rewind only the checkpoint, as if the commit had been lost
        conn.execute(schema.checkpoint.update().values(block_number=start.block_number, block_hash=None))
    store.write_chunk(chunk, start)
    assert dump(store) == before


def test_confirmations_hold_back_the_newest_blocks(chain: Chain, sqlite_url: str) -> None:
    chain.grant("patient", "clinician")
    head = chain.head()
    store, reader, result = sync(sqlite_url, chain, confirmations=2)
    assert result.indexed_to == head - 2
    assert reader.grants_held(chain["clinician"]) == []
    chain.mine(2)
    Indexer(store, RpcSource(chain.rpc_url), confirmations=2).sync()
    assert len(reader.grants_held(chain["clinician"])) == 1


def _send_request(chain: Chain, sender: str, fn: str, *args: Any) -> dict[str, Any]:
    data = getattr(chain.contract.functions, fn)(*args)._encode_transaction_data()
    return {"from": chain[sender], "to": chain.deployment.address, "data": data, "gas": hex(500_000)}


def test_anvil_reorg_is_rolled_back_to_the_common_ancestor(chain: Chain, db_url: str, tmp_path) -> None:
    rid = chain.register("patient", "patient")
    chain.grant("patient", "clinician")
    chain.access("clinician", rid)
    chain.revoke("patient", "clinician")  # orphaned below: the grant must come back as current
    store, reader, _ = sync(db_url, chain)
    assert reader.grants_held(chain["clinician"]) == []
    before = chain.head()
    # replace the last two blocks (the access and the revocation) by one with a research grant
    chain.rpc(
        "anvil_reorg",
        [
            2,
            [
                [
                    _send_request(
                        chain,
                        "patient2",
                        "grant",
                        chain["patient2"],
                        chain["researcher"],
                        0,
                        (ALL_CATEGORIES, 2, 0, 2**64 - 1),
                        b"\x00" * 32,
                    ),
                    0,
                ]
            ],
        ],
    )
    assert chain.head() == before
    result = Indexer(store, RpcSource(chain.rpc_url)).sync()
    assert result.reorgs == 1 and result.rolled_back_events >= 2
    assert [e.name for e in reader.trail(chain["patient"])][-2:] == ["RecordRegistered", "ConsentGranted"]
    assert [g.current for g in reader.grants_held(chain["clinician"], history=True)] == [True]
    assert [g.grant.grantee for g in reader.grants_given(chain["patient2"])] == [chain["researcher"]]
    assert reader.status().events == len(all_logs(chain))
    fresh, _, _ = sync(f"sqlite:///{tmp_path / 'fresh.sqlite'}", chain)
    assert dump(store) == dump(fresh)


def test_snapshot_revert_to_another_history_is_detected(chain: Chain, db_url: str) -> None:
    rid = chain.register("patient", "patient")
    snapshot = chain.rpc("evm_snapshot", [])
    chain.grant("patient", "clinician")
    chain.access("clinician", rid)
    chain.erase(rid)
    store, reader, _ = sync(db_url, chain)
    assert reader.records(chain["patient"])[0].erased
    chain.rpc("evm_revert", [snapshot])  # the chain is now shorter than the index
    result = Indexer(store, RpcSource(chain.rpc_url)).sync()
    assert result.reorgs == 1 and result.rolled_back_events == 3  # the grant, the access, the erasure
    assert not reader.records(chain["patient"])[0].erased
    assert reader.grants_held(chain["clinician"]) == []
    # a different history at the same heights
    chain.grant("patient", "researcher")
    chain.grant("patient", "app")
    chain.grant("patient", "emergency_clinician")
    result = Indexer(store, RpcSource(chain.rpc_url)).sync()
    assert result.reorgs == 0 and result.events == 3
    assert [g.grant.grantee for g in reader.grants_given(chain["patient"])] == sorted(
        [chain["researcher"], chain["app"], chain["emergency_clinician"]], key=str.lower
    )
    assert reader.status().events == len(all_logs(chain))


def test_another_deployment_is_refused(chain: Chain, sqlite_url: str) -> None:
    open_store(sqlite_url, chain).close()
    other = Target(chain.deployment.chain_id, "0x" + "11" * 20, chain.deployment.abi, chain.deployment.block_number)
    with pytest.raises(IndexMismatch, match="another address"):
        IndexStore.open(sqlite_url, other)
    IndexStore.open(sqlite_url, other, reset=True).close()  # --reset rebuilds it for the other one


def test_follow_picks_up_new_blocks(chain: Chain, sqlite_url: str) -> None:
    store = open_store(sqlite_url, chain)
    reader = IndexReader(store.engine)
    stop = threading.Event()
    seen: list[int] = []

    def on_sync(result: Any) -> None:
        seen.append(result.indexed_to)
        if len(reader.grants_held(chain["clinician"])) == 1:
            stop.set()

    worker = threading.Thread(
        target=Indexer(store, RpcSource(chain.rpc_url)).follow,
        args=(stop,),
        kwargs={"interval": 0.05, "on_sync": on_sync},
    )
    worker.start()
    try:
        chain.grant("patient", "clinician")
        worker.join(timeout=30)
    finally:
        stop.set()
        worker.join(timeout=5)
    assert not worker.is_alive() and seen[-1] == chain.head()


def test_addresses_are_matched_in_any_case(chain: Chain, sqlite_url: str) -> None:
    chain.grant("patient", "clinician")
    _, reader, _ = sync(sqlite_url, chain)
    lower = chain["clinician"].lower()
    assert reader.grants_held(lower) == reader.grants_held(Web3.to_checksum_address(lower))
    assert len(reader.grants_held(lower)) == 1


def test_follow_waits_out_a_node_that_does_not_answer(chain: Chain, sqlite_url: str) -> None:
    chain.grant("patient", "clinician")
    store = open_store(sqlite_url, chain)
    indexer = Indexer(store, RpcSource(f"http://127.0.0.1:{free_port()}", timeout=2))  # nothing listens there
    stop, outages, synced = threading.Event(), [], []

    def outage(exc: Exception) -> None:
        outages.append(exc)
        indexer.source = RpcSource(chain.rpc_url)  # the node is back

    def on_sync(result: Any) -> None:
        synced.append(result)
        stop.set()

    indexer.follow(stop, interval=0.01, on_sync=on_sync, on_outage=outage)
    assert len(outages) == 1 and isinstance(outages[0], ServiceUnavailable)
    assert synced[0].indexed_to == chain.head() and len(IndexReader(store.engine).grants_held(chain["clinician"])) == 1
