"""The history views (audit trail, grants, consent list, records list) read the event index when it is
usable and the chain's logs otherwise, give the same rows either way, and say which they read."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from medledger import audit, records
from medledger.chain.history import LogScan
from medledger.chain.logsource import RpcSource
from medledger.client import Client
from medledger.config import Settings
from medledger.consent.history import grant_history
from medledger.index import Indexer, IndexHistory, IndexStore, Target, open_history
from medledger.index.pgtemp import create_database

from .helpers import Chain, open_store, story, sync

#: Every history listing, as a user runs it (with the account whose history it shows).
VIEWS: dict[str, Callable[[Chain], list[str]]] = {
    "audit": lambda c: ["audit", "--patient", c["patient"]],
    "audit --accesses": lambda c: ["audit", "--accesses", "--patient", c["patient"]],
    "grants --all": lambda c: ["grants", "--all", "--grantee", c["clinician"]],
    "consent list --all": lambda c: ["consent", "list", "--all", "--patient", c["patient"]],
    "records list": lambda c: ["records", "list", "--patient", c["patient"]],
}
LOGS = "Source: a scan of the chain's logs"
INDEX = "Source: the event index"


def listing(run: Callable[..., Result], argv: list[str], *options: str) -> tuple[Any, str]:
    """(the JSON rows, stderr) of a listing."""
    result = run(*argv, "--format", "json", *options)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout), result.stderr


def more_history(chain: Chain, rid: bytes) -> None:
    """Blocks after the index's checkpoint: a grant, a read, a record, a revocation."""
    chain.grant("patient", "researcher")
    chain.access("clinician", rid)
    chain.register("patient", "patient")
    chain.revoke("patient", "researcher")


def test_every_view_gives_the_same_rows_from_the_index_and_from_the_logs(chain: Chain, run) -> None:
    s = story(chain)
    chain.advance(2 * 3600)  # past the emergency window
    scans = {name: listing(run, view(chain), "--source", "logs") for name, view in VIEWS.items()}
    for name, (rows, stderr) in scans.items():
        assert rows, name  # every view has something to show
        assert LOGS in stderr and "--source logs" in stderr, name
    # without an index: auto scans the logs and says why; --source index refuses
    rows, stderr = listing(run, VIEWS["audit"](chain))
    assert rows == scans["audit"][0] and f"{LOGS} from block {chain.deployment.block_number}" in stderr
    assert "no event index" in stderr
    refused = run(*VIEWS["audit"](chain), "--source", "index")
    assert refused.exit_code == 2 and "--source index: no event index" in refused.stderr

    assert run("index").exit_code == 0
    head = chain.head()
    for name, view in VIEWS.items():
        for source in ("auto", "index"):
            rows, stderr = listing(run, view(chain), "--source", source)
            assert rows == scans[name][0], (name, source)
            assert f"{INDEX} (sqlite:///" in stderr and f"to block {head}, then" in stderr, (name, source)
    # CSV and the table read the same source
    csv = run(*VIEWS["grants --all"](chain), "--format", "csv")
    assert csv.stdout == run(*VIEWS["grants --all"](chain), "--format", "csv", "--source", "logs").stdout
    table = run(*VIEWS["records list"](chain))
    assert "0x" + s["rid"].hex() in table.stdout and INDEX in table.stderr


def test_blocks_after_the_checkpoint_come_from_the_logs(chain: Chain, run) -> None:
    s = story(chain)
    assert run("index").exit_code == 0
    checkpoint = chain.head()
    more_history(chain, s["rid"])
    for name, view in VIEWS.items():
        scanned, _ = listing(run, view(chain), "--source", "logs")
        rows, stderr = listing(run, view(chain))
        assert rows == scanned, name
        assert f"to block {checkpoint}, then the chain's logs from block {checkpoint + 1}" in stderr, name
    audited, _ = listing(run, VIEWS["audit"](chain))
    assert audited[-1]["event"] == "ConsentRevoked"  # the newest entry came from the tail


def test_an_index_orphaned_by_a_fork_is_not_used(chain: Chain, run) -> None:
    rid = chain.register("patient", "patient")
    snapshot = chain.rpc("evm_snapshot", [])
    chain.grant("patient", "clinician")
    chain.access("clinician", rid)
    assert run("index").exit_code == 0
    chain.rpc("evm_revert", [snapshot])
    chain.grant("patient", "researcher")  # another history at the same heights
    chain.grant("patient", "app")
    rows, stderr = listing(run, VIEWS["audit"](chain))
    assert LOGS in stderr and "the chain changed below the index's block" in stderr
    assert [r["event"] for r in rows][-2:] == ["ConsentGranted", "ConsentGranted"]
    assert rows == listing(run, VIEWS["audit"](chain), "--source", "logs")[0]
    assert run("index").exit_code == 0  # the index repairs itself (rolls back, reads again)
    repaired, stderr = listing(run, VIEWS["audit"](chain))
    assert repaired == rows and INDEX in stderr


def client_for(chain: Chain, home: Path) -> Client:
    settings = Settings(home=home, rpc_url=chain.rpc_url, chain_id=chain.deployment.chain_id)
    return Client.connect(settings.with_overrides(deployments_dir=chain.deployments_dir))


def test_another_deployments_index_or_an_unreachable_database_falls_back(
    chain: Chain, tmp_path: Path, postgres: str
) -> None:
    client = client_for(chain, tmp_path / "home")
    other = Target(chain.deployment.chain_id, "0x" + "11" * 20, chain.deployment.abi, chain.deployment.block_number)
    foreign = f"sqlite:///{tmp_path / 'other.sqlite'}"
    IndexStore.open(foreign, other).close()
    history = open_history(client, url=foreign)
    assert isinstance(history, LogScan) and "another deployment" in (history.source.reason or "")
    empty = f"sqlite:///{tmp_path / 'empty.sqlite'}"
    open_store(empty, chain).close()  # created, never synced
    assert "is empty" in (open_history(client, url=empty).source.reason or "")
    down = "postgresql://postgres@127.0.0.1:1/nothing"
    assert "does not answer" in (open_history(client, url=down).source.reason or "")
    assert not (tmp_path / "home" / "index").exists()  # opening for a view creates nothing
    url = create_database(postgres, f"views_{os.getpid()}")
    chain.grant("patient", "clinician")
    sync(url, chain)[0].close()
    history = open_history(client, url=url)
    assert isinstance(history, IndexHistory) and history.source.location.startswith("postgresql+psycopg://")
    client.use_history(history)
    assert [g.consent.grantee for g in grant_history(client, patient=chain["patient"])] == [chain["clinician"]]


ACTIONS = st.lists(
    st.sampled_from(["grant", "grant-write", "revoke", "register", "access", "amend", "erase"]), min_size=1, max_size=8
)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(actions=ACTIONS, checkpoint=st.floats(min_value=0, max_value=1))
def test_any_history_and_any_checkpoint_give_the_logs_rows(
    chain: Chain, tmp_path_factory: pytest.TempPathFactory, actions: list[str], checkpoint: float
) -> None:
    """Whatever happened and wherever the index stops, the views read through it equal a log scan."""
    snapshot = chain.rpc("evm_snapshot", [])
    try:
        start = chain.head()
        written: list[bytes] = []
        for action in actions:
            if action == "grant":
                chain.grant("patient", "researcher", release=False)  # its revocation leaves the keys usable
            elif action == "grant-write":
                chain.grant("patient", "clinician", access=1)
            elif action == "revoke":
                chain.revoke("patient", "researcher")
            elif action == "register":
                written.append(chain.register("patient", "patient"))
            elif written and action == "access" and not chain.header(written[-1])[1][3]:
                chain.access("patient", written[-1])  # an erased record refuses access (RecordIsErased)
            elif written and action == "amend" and not chain.header(written[-1])[1][3]:
                written.append(chain.amend("patient", written.pop()))
            elif written and action == "erase" and not chain.header(written[-1])[1][3]:
                chain.erase(written[-1])
        home = tmp_path_factory.mktemp("views-home")
        client = client_for(chain, home)
        store = IndexStore.open(f"sqlite:///{home / 'index.sqlite'}", Target.of(chain.deployment))
        until = start + round(checkpoint * (chain.head() - start))
        Indexer(store, RpcSource(chain.rpc_url)).sync(until=until)
        store.close()

        def views() -> tuple[Any, ...]:
            return (
                audit.trail(client, chain["patient"]),
                grant_history(client, patient=chain["patient"], include_ended=True),
                grant_history(client, grantee=chain["researcher"], include_ended=True),
                records.list_records(client, chain["patient"]),
            )

        scanned = views()
        client.use_history(open_history(client, url=f"sqlite:///{home / 'index.sqlite'}"))
        assert client.history.source.kind == "index" and client.history.source.indexed_to == until
        assert views() == scanned
    finally:
        chain.rpc("evm_revert", [snapshot])


def test_the_tail_is_one_log_query_for_every_kind_and_keeps_only_the_asked_accounts(
    chain: Chain, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    s = story(chain)
    client = client_for(chain, tmp_path / "home")
    url = f"sqlite:///{tmp_path / 'index.sqlite'}"
    sync(url, chain)[0].close()
    more_history(chain, s["rid"])  # the patient's: after the checkpoint
    chain.grant("patient2", "clinician")  # another patient's, to the same grantee, in the same blocks
    chain.revoke("patient2", "researcher")
    scan = LogScan(client.contract)
    history = open_history(client, url=url)
    assert isinstance(history, IndexHistory)
    queries: list[Any] = []
    real = type(client.contract.chain).logs
    monkeypatch.setattr(type(client.contract.chain), "logs", lambda self, *a: queries.append(a) or real(self, *a))
    for view in (
        lambda: audit.trail(client, chain["patient"]),
        lambda: audit.trail(client, chain["patient2"]),
        lambda: grant_history(client, grantee=chain["clinician"], include_ended=True),
        lambda: grant_history(client, grantee=chain["researcher"], include_ended=True),
    ):
        queries.clear()
        client.use_history(history)
        through_index = view()
        assert len(queries) == 1 and queries[0][2] == history.indexed_to + 1  # one query, from the checkpoint on
        client.use_history(scan)
        assert through_index == view()
    patients = {g.consent.patient for g in grant_history(client, grantee=chain["clinician"], include_ended=True)}
    assert patients == {chain["patient"], chain["patient2"]}  # both in the tail: the filter is not trivially true
