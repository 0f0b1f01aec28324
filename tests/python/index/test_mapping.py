"""The generic decoder and the derived tables without a chain: an ABI in the shape the new contracts
announce (extra event fields, a dynamic array) decodes and fills the optional columns; consent
decisions split into chunks at any boundaries end up exactly as in one chunk (hypothesis, real
SQLite)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from eth_abi import encode
from eth_utils import keccak
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from medledger.chain.logsource import Header
from medledger.chain.rawlogs import DecodedLog, EventDecoder
from medledger.index import IndexReader, IndexStore, Target, schema
from medledger.index.store import Checkpoint, Chunk


def _event(name: str, *inputs: tuple[str, str, bool]) -> dict[str, Any]:
    return {
        "type": "event",
        "name": name,
        "anonymous": False,
        "inputs": [{"name": n, "type": t, "indexed": i} for n, t, i in inputs],
    }


#: Events in the shape the contracts branch gives them (a consent's delegation id, delegations with
#: ids, records with key epoch and a CID as codec + digest) and one with dynamic types (eth_abi path)
NEW_ABI = [
    _event(
        "ConsentGranted",
        ("patient", "address", True),
        ("grantee", "address", True),
        ("access", "uint8", True),
        ("categories", "uint16", False),
        ("purposes", "uint16", False),
        ("start", "uint64", False),
        ("expiry", "uint64", False),
        ("keyEnvelope", "bytes32", False),
        ("by", "address", False),
        ("delegation", "uint24", False),
    ),
    _event(
        "ConsentRevoked",
        ("patient", "address", True),
        ("grantee", "address", True),
        ("access", "uint8", True),
        ("by", "address", False),
    ),
    _event("DelegateRemoved", ("patient", "address", True), ("delegate", "address", True), ("id", "uint24", True)),
    _event(
        "RecordRegistered",
        ("recordId", "bytes32", True),
        ("patient", "address", True),
        ("author", "address", True),
        ("category", "uint8", False),
        ("purpose", "uint8", False),
        ("keyEpoch", "uint32", False),
        ("fingerprint", "bytes32", False),
        ("cidCodec", "uint8", False),
        ("cidDigest", "bytes32", False),
    ),
    _event(
        "CategoryKeysRotated",
        ("patient", "address", True),
        ("epochs", "uint32[]", False),
        ("note", "string", False),
        ("delta", "int16", False),
        ("ok", "bool", False),
    ),
]
PATIENTS = ["0x" + f"{i:040x}" for i in (0xA1, 0xA2)]
GRANTEES = ["0x" + f"{i:040x}" for i in (0xB1, 0xB2)]


def _topic(kind: str, value: Any) -> str:
    return "0x" + encode([kind], [value]).hex()


def raw_log(name: str, block: int, index: int, args: dict[str, Any]) -> dict[str, Any]:
    spec = next(e for e in NEW_ABI if e["name"] == name)
    signature = f"{name}({','.join(i['type'] for i in spec['inputs'])})"
    topics = ["0x" + keccak(text=signature).hex()]
    topics += [_topic(i["type"], args[i["name"]]) for i in spec["inputs"] if i["indexed"]]
    data = [i for i in spec["inputs"] if not i["indexed"]]
    return {
        "topics": topics,
        "data": "0x" + encode([i["type"] for i in data], [args[i["name"]] for i in data]).hex(),
        "blockNumber": hex(block),
        "logIndex": hex(index),
        "blockHash": "0x" + f"{block:064x}",
        "transactionHash": "0x" + f"{block * 1000 + index:064x}",
        "transactionIndex": hex(index),
    }


def test_decoder_follows_an_abi_with_new_fields_and_dynamic_types() -> None:
    decoder = EventDecoder(NEW_ABI)
    granted = decoder.decode(
        raw_log(
            "ConsentGranted",
            5,
            0,
            {
                "patient": PATIENTS[0],
                "grantee": GRANTEES[0],
                "access": 1,
                "categories": 3,
                "purposes": 1,
                "start": 0,
                "expiry": 2**64 - 1,
                "keyEnvelope": b"\x07" * 32,
                "by": PATIENTS[1],
                "delegation": 4,
            },
        )
    )
    assert granted is not None and granted.indexed == (PATIENTS[0], GRANTEES[0], "1")
    assert granted.args["delegation"] == 4 and granted.args["by"] == PATIENTS[1]
    assert granted.args["keyEnvelope"] == "0x" + "07" * 32 and granted.args["expiry"] == 2**64 - 1
    rotated = decoder.decode(
        raw_log(
            "CategoryKeysRotated",
            6,
            1,
            {"patient": PATIENTS[0], "epochs": [1, 2, 3], "note": "épocas", "delta": -2, "ok": True},
        )
    )
    assert rotated is not None and rotated.args == {
        "patient": PATIENTS[0],
        "epochs": [1, 2, 3],
        "note": "épocas",
        "delta": -2,
        "ok": True,
    }
    assert (
        decoder.decode(
            {
                **raw_log(
                    "ConsentRevoked",
                    7,
                    0,
                    {"patient": PATIENTS[0], "grantee": GRANTEES[0], "access": 0, "by": PATIENTS[0]},
                ),
                "topics": ["0x" + "ee" * 32],
            }
        )
        is None
    )  # not in this ABI: skipped


def test_a_record_in_the_new_shape_fills_key_epoch_and_rebuilds_its_cid(tmp_path: Path) -> None:
    digest = bytes(range(32))
    log = EventDecoder(NEW_ABI).decode(
        raw_log(
            "RecordRegistered",
            10,
            0,
            {
                "recordId": b"\x01" * 32,
                "patient": PATIENTS[0],
                "author": GRANTEES[0],
                "category": 4,
                "purpose": 0,
                "keyEpoch": 3,
                "fingerprint": b"\x02" * 32,
                "cidCodec": 0x55,
                "cidDigest": digest,
            },
        )
    )
    assert log is not None
    store = IndexStore.open(f"sqlite:///{tmp_path / 'r.sqlite'}", Target(1, "0x" + "cc" * 20, NEW_ABI, 10))
    store.write_chunk(
        Chunk(10, 10, "0x" + f"{10:064x}", [(log, 1_010)], [Header(10, "0x" + f"{10:064x}", "0x", 1_010)], {}),
        store.checkpoint(),
    )
    entry = IndexReader(store.engine).record(b"\x01" * 32, PATIENTS[0])
    assert entry is not None and entry.key_epoch == 3 and entry.author is not None
    assert entry.cid == b"\x01\x55\x12\x20" + digest  # the binary CIDv1 the contract checks


# --- consent decisions in chunks -------------------------------------------------------------------
#: (kind, patient, grantee, access, categories, delegation id: 0 = the patient's own decision)
decisions = st.lists(
    st.tuples(
        st.sampled_from(["grant", "grant", "revoke", "remove"]),
        st.sampled_from(PATIENTS),
        st.sampled_from(GRANTEES),
        st.integers(0, 1),
        st.integers(1, 2**13 - 1),
        st.integers(0, 2),
    ),
    min_size=1,
    max_size=30,
)
Step = tuple[str, str, str, int, int, int]
_EVENTS = {"grant": "ConsentGranted", "revoke": "ConsentRevoked", "remove": "DelegateRemoved"}


def _logs(steps: list[Step]) -> list[tuple[DecodedLog, int]]:
    decoder, out = EventDecoder(NEW_ABI), []
    for n, (kind, patient, grantee, access, categories, delegation) in enumerate(steps):
        block = 10 + n // 2  # two logs per block
        args = {"patient": patient, "grantee": grantee, "access": access, "by": patient}
        if kind == "grant":
            args |= {
                "categories": categories,
                "purposes": 1,
                "start": 0,
                "expiry": 2**40,
                "keyEnvelope": b"\0" * 32,
                "delegation": delegation,
            }
        elif kind == "remove":
            args = {"patient": patient, "delegate": grantee, "id": max(1, delegation)}
        log = decoder.decode(raw_log(_EVENTS[kind], block, n % 2, args))
        assert log is not None
        out.append((log, 1_000 + block))
    return out


def _write(url: str, logs: list[tuple[DecodedLog, int]], cuts: set[int]) -> list[tuple[Any, ...]]:
    store = IndexStore.open(url, Target(1, "0x" + "cc" * 20, NEW_ABI, 10), reset=True)
    blocks = sorted({log.block_number for log, _ in logs})
    groups: list[list[int]] = [[]]
    for b in blocks:
        if b in cuts and groups[-1]:
            groups.append([])
        groups[-1].append(b)
    for group in groups:
        cp = store.checkpoint()
        chunk_logs = [(log, ts) for log, ts in logs if log.block_number in group]
        headers = [Header(b, "0x" + f"{b:064x}", "0x", 1_000 + b) for b in group]
        store.write_chunk(
            Chunk(cp.block_number + 1, group[-1], "0x" + f"{group[-1]:064x}", chunk_logs, headers, {}),
            Checkpoint(cp.block_number, cp.block_hash),
        )
    g = schema.grants
    with store.engine.connect() as conn:
        rows = conn.execute(
            select(
                g.c.block_number,
                g.c.log_index,
                g.c.categories,
                g.c.delegation_id,
                g.c.ended_block,
                g.c.ended_log,
                g.c.ended_how,
            ).order_by(g.c.block_number, g.c.log_index)
        ).all()
    store.close()
    return [tuple(r) for r in rows]


def _model(steps: list[Step]) -> list[tuple[Any, ...]]:
    """What the grants table must say: a decision ends at the next decision for its key, or when
    the delegation that made it is removed."""
    rows: list[list[Any]] = []
    open_rows: dict[tuple[str, str, int], list[Any]] = {}
    for n, (kind, patient, grantee, access, categories, delegation) in enumerate(steps):
        position = [10 + n // 2, n % 2]
        if kind == "remove":
            for key in [k for k, row in open_rows.items() if k[0] == patient and row[3] == max(1, delegation)]:
                open_rows.pop(key)[4:7] = [*position, "delegation-ended"]
            continue
        previous = open_rows.pop((patient, grantee, access), None)
        if previous is not None:
            previous[4:7] = [*position, "replaced" if kind == "grant" else "revoked"]
        if kind == "grant":
            row = [*position, categories, delegation, None, None, None]
            rows.append(row)
            open_rows[(patient, grantee, access)] = row
    return [tuple(r) for r in rows]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=decisions, cuts=st.sets(st.integers(10, 25)))
def test_chunk_boundaries_never_change_the_grant_history(tmp_path: Path, steps: list[Any], cuts: set[int]) -> None:
    url = f"sqlite:///{tmp_path / 'grants.sqlite'}"
    assert _write(url, _logs(steps), cuts) == _model(steps)
