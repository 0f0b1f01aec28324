"""Issue 8 items 1-2: a record the user was told is written stays written, on the home's local node
killed with -9 at any moment, and a transaction that may still be mined is never undone.

Each test runs its own anvil in ``<home>/node`` (started by medledger.node), which it kills and
restarts; IPFS is the session's node."""

from __future__ import annotations

import gzip
import json
import os
import threading

import pytest
from click.testing import CliRunner
from web3.utils.address import get_create_address

from medledger import codes, consent, node, records, workflows
from medledger.chain import Chain, deploy_medledger, devfund
from medledger.chain import durability as chain_durability
from medledger.chain.deployments import (
    deployment_file,
    journal_fields,
    read_deployment,
    record_journaled,
    write_deployment,
)
from medledger.chain.events import RecordRegistered
from medledger.chain.outbox import JournalEntry
from medledger.cli import cli
from medledger.client import Client, connect_chain
from medledger.config import Settings
from medledger.errors import DeploymentGone, MedledgerError, WriteInterrupted
from medledger.ingest import Ingestor
from medledger.keyring import Keyring
from medledger.localchain import LocalChainFiles
from medledger.node import NodeConfig
from medledger.storage import cid_to_bytes

from .helpers import journal_entries, obs_bytes, on_chain
from .local_home import LocalHome, make_local_home, stop_local_home
from .test_crash_and_tampering import crash_writer, run_crashing_writer

C, P, A = codes.Category, codes.Purpose, codes.Access


def readable(client: Client, reader, record_id: bytes, purpose: P = P.DIRECT_CARE) -> bool:
    result = records.read_record(client, reader, record_id, purpose=purpose)
    return json.loads(result.data or b"null")["resourceType"] == "Observation"


# --- item 1: kill -9 of the node -----------------------------------------------------------------------
def test_records_reported_written_survive_a_kill_of_the_node(local: LocalHome, patient, clinician):
    client = local.client()
    written = [records.write_record(client, clinician, patient.address, obs_bytes(6.0 + i)) for i in range(5)]
    local.kill_anvil()

    restored = local.restart().restored
    assert restored is not None and restored.unclean and not restored.lost
    report = "\n".join(restored.lines())
    assert "not stopped cleanly" in report and "nothing acknowledged was lost" in report
    client = local.client()
    for w in written:
        assert on_chain(client, patient.address, w.record_id)
        assert readable(client, patient, w.record_id)
    assert workflows.recover(local.settings) == []  # nothing was missing: nothing to re-apply


def test_ingested_records_survive_a_kill_of_the_node(local: LocalHome, patient, clinician):
    client = local.client()
    with Ingestor(client, clinician, patient.address, category=C.OBSERVATIONS) as ingest:
        futures = [ingest.submit(obs_bytes(float(i), f"obs-{i}")) for i in range(40)]
    results = [f.result() for f in futures]
    saved_states_written = len(local.files.saved())
    local.kill_anvil()

    local.restart()
    client = local.client()
    assert all(on_chain(client, patient.address, r.record_id) for r in results)
    assert readable(client, patient, results[-1].record_id)
    assert saved_states_written >= 1 and journal_entries(client) == []


class DieBeforeSave:
    """Kill the node just before the ``nth`` save of its state from now (the write is mined by then)."""

    def __init__(self, local: LocalHome, nth: int = 1) -> None:
        self.local, self.countdown = local, nth
        self.real = chain_durability.save_state

    def __call__(self, *args, **kwargs):
        self.countdown -= 1
        if self.countdown == 0:
            self.local.kill_anvil()
        return self.real(*args, **kwargs)

    def __enter__(self) -> DieBeforeSave:
        chain_durability.save_state = self
        return self

    def __exit__(self, *exc: object) -> None:
        chain_durability.save_state = self.real


def test_a_kill_between_mined_and_saved_is_re_applied_from_the_journal(
    local: LocalHome, patient, clinician, researcher
):
    """The node dies after mining, before its state is saved: the writer is told it is not written
    (and why), and the journal re-applies the transactions on the restarted node: a grant (by the
    next write's recovery) and a record (by the recovery of the next start)."""
    client = local.client()
    with DieBeforeSave(local), pytest.raises(WriteInterrupted) as err:
        consent.grant(client, patient, researcher.address, A.READ, [C.OBSERVATIONS], [P.RESEARCH])
    assert "was mined, but not yet saved, so it is not written yet" in str(err.value)
    local.restart()
    client = local.client()
    with DieBeforeSave(local, nth=2), pytest.raises(WriteInterrupted):  # 1st save: the grant re-applied
        records.write_record(client, clinician, patient.address, obs_bytes())
    [entry] = journal_entries(client)
    fields = JournalEntry.load(entry).fields  # type: ignore[union-attr]
    record_id, cid = fields["record_id"], fields["cid"]

    restored = local.restart().restored
    assert restored is not None and restored.unclean and not restored.lost
    settled = workflows.recover(local.settings)
    assert settled == [(record_id, "re-applied")]
    client = local.client()
    assert client.contract.consent(patient.address, researcher.address, A.READ).live(client.now())
    assert readable(client, researcher, bytes.fromhex(record_id[2:]), P.RESEARCH)
    assert client.store.is_pinned(cid) and journal_entries(client) == []
    # and that is now saved: another kill loses nothing
    local.kill_anvil()
    local.restart()
    assert on_chain(local.client(), patient.address, bytes.fromhex(record_id[2:]))


def test_a_plain_transaction_re_applied_after_the_grant_was_lost_is_reported(local: LocalHome, patient, researcher):
    client = local.client()
    with DieBeforeSave(local), pytest.raises(WriteInterrupted):
        consent.grant(client, patient, researcher.address, A.READ, [C.OBSERVATIONS], [P.RESEARCH])
    local.restart()
    [(what, outcome)] = workflows.recover(local.settings)
    assert what.startswith(f"grant({patient.address}, {researcher.address}, 0") and outcome.startswith("re-applied")


def test_every_kind_of_write_interrupted_before_its_save_is_re_applied(local: LocalHome, patient, clinician):
    """Not only records and grants: a batch anchor (its entry: the root, no fingerprint) and a key
    rotation (setCategoryKeys, after the patient's envelope) are journaled, re-applied by recovery
    and reported by name."""
    client = local.client()
    readings = [{"t": 1_767_000_000 + 300 * i, "heart_rate": 60 + i} for i in range(4)]
    with DieBeforeSave(local), pytest.raises(WriteInterrupted):
        records.anchor_batch(client, patient, patient.address, readings)
    [entry] = [JournalEntry.load(p) for p in journal_entries(client)]
    root = str(entry.fields["record_id"])  # type: ignore[union-attr]
    local.restart()
    assert workflows.recover(local.settings) == [(root, "re-applied")]
    client = local.client()
    assert [r["data"] for r in records.read_batch(client, patient, bytes.fromhex(root[2:]))] == readings

    before = client.contract.category_key(patient.address, C.OBSERVATIONS).epoch
    with DieBeforeSave(local, nth=2), pytest.raises(WriteInterrupted):  # 1st save: the patient's envelope
        Keyring(client).rotate(patient, patient.address, [C.OBSERVATIONS])
    local.restart()
    [(what, outcome)] = workflows.recover(local.settings)
    assert what.startswith(f"setCategoryKeys({patient.address}, ") and outcome.startswith("re-applied")
    client = local.client()
    assert client.contract.category_key(patient.address, C.OBSERVATIONS).epoch == before + 1
    written = records.write_record(client, clinician, patient.address, obs_bytes())  # sealed to the new key
    assert readable(client, patient, written.record_id)  # her envelope of the new epoch landed first


def test_funding_from_a_dev_account_is_written_too(local: LocalHome):
    newcomer = "0x" + "5a" * 20
    funded = devfund.fund(connect_chain(local.settings), newcomer, 3 * 10**18)
    local.kill_anvil()
    local.restart()
    assert connect_chain(local.settings).balance(newcomer) == funded.balance_wei == 3 * 10**18


def run_cli(*args: str, env: dict[str, str]):
    return CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)


@pytest.mark.parametrize("settled_by", ["node up's recovery", "the next deploy"])
def test_a_deployment_interrupted_before_it_was_saved_is_re_applied_and_recorded_once(tmp_path, cast, settled_by):
    """A home's first deploy, mined but not saved when the node dies: not recorded, and the restarted
    chain forgot it. Recovery sends it again and records it, so deploying again finds it (before:
    a second contract)."""
    config = NodeConfig.ephemeral(tmp_path / "home" / "node", services=("anvil",))
    node.start(config, tie_to_parent=True)
    settings = Settings(home=tmp_path / "home", rpc_url=config.rpc_url, chain_id=config.chain_id)
    local, deployer = LocalHome(config, settings), cast["registrar"].account
    try:
        with DieBeforeSave(local), pytest.raises(WriteInterrupted, match="not yet saved"):
            deploy_medledger(connect_chain(settings), deployer, settings.deployments)
        assert not deployment_file(settings.deployments, config.chain_id).exists()
        local.restart()
        chain = connect_chain(settings)
        assert chain.nonce(deployer.address) == 0  # the chain forgot it

        if settled_by == "node up's recovery":
            [(what, outcome)] = workflows.recover(settings)
            assert what.startswith("deploy Medledger(") and outcome.startswith(
                "re-applied (the chain had forgotten it)"
            )
            assert "recorded in" in outcome
        deployment, deployed = deploy_medledger(chain, deployer, settings.deployments)
        assert not deployed and deployment.address == get_create_address(deployer.address, 0)
        assert chain.nonce(deployer.address) == 1  # one contract, not two
        assert read_deployment(settings.deployments, config.chain_id).address == deployment.address
        assert journal_entries(Client.connect(settings)) == []
        local.kill_anvil()  # and it was made written
        local.restart()
        assert connect_chain(settings).has_code(deployment.address)
    finally:
        stop_local_home(local)


def test_a_recovered_deployment_never_replaces_another_live_one_unless_it_was_forced(client: Client, tmp_path):
    directory = tmp_path / "deployments"
    write_deployment(directory, client.deployment)
    other = "0x" + "42" * 20
    receipt = {"contractAddress": other, "blockNumber": "0x7", "transactionHash": "0x" + "ab" * 32}
    fields = journal_fields(directory, "Medledger", client.deployment.abi, client.deployment.deployer)
    assert record_journaled(client.chain, fields, receipt).startswith("not recorded: ")
    assert read_deployment(directory, client.chain.chain_id).address == client.deployment.address
    assert "recorded in" in record_journaled(client.chain, {**fields, "replace": True}, receipt)  # deploy --force
    recorded = read_deployment(directory, client.chain.chain_id)
    assert recorded.address.lower() == other and recorded.history[-1].address == client.deployment.address


def test_a_node_killed_before_its_first_save_says_so(tmp_path, node, node_config, cast, patient):
    """A deployment made outside medledger's journal (brownie, a bare connection) is lost with a node
    killed before any save: every command then says so, never 'no records'."""
    local = make_local_home(tmp_path, node_config.ipfs_api, cast)
    try:
        bare = Chain(local.settings.rpc_url)  # no durability: like another tool
        deploy_medledger(bare, cast["registrar"].account, local.settings.deployments, force=True)
        local.kill_anvil()
        # the saved state holds only the first deployment; the second one is gone
        restored = local.restart().restored
        assert restored is not None and restored.unclean
        with pytest.raises(DeploymentGone, match="no contract there"):
            workflows.recover(local.settings)
        env = {
            "MEDLEDGER_HOME": str(local.settings.home),
            "MEDLEDGER_RPC_URL": local.settings.rpc_url,
            "MEDLEDGER_IPFS_API": local.settings.ipfs_api,
        }
        mine = ["--patient", patient.address]
        for argv in (["records", "list", *mine], ["consent", "list", *mine], ["records", "recover"]):
            result = run_cli(*argv, env=env)
            assert result.exit_code == 9, result.stdout + result.stderr
            assert "no contract there" in result.stderr and "No records" not in result.stdout
    finally:
        stop_local_home(local)


# --- saved states ---------------------------------------------------------------------------------------
def test_a_torn_periodic_save_is_skipped_and_a_damaged_saved_state_is_named(local: LocalHome, patient, clinician):
    client = local.client()
    first = records.write_record(client, clinician, patient.address, obs_bytes(1.0))
    second = records.write_record(client, clinician, patient.address, obs_bytes(2.0))
    local.kill_anvil()
    local.files.autosave.write_text('{"block": {"number": "0x99"}, "accounts": {')  # torn mid-write
    restored = local.restart().restored
    assert restored is not None and any("autosave.json" in s for s in restored.skipped)
    assert not restored.lost and on_chain(local.client(), patient.address, second.record_id)

    # the newest saved state damaged on disk: the older one is used, and the loss is named
    local.kill_anvil()
    newest_block, newest = local.files.saved()[0]
    newest.write_bytes(gzip.compress(b'{"accounts": '))
    local.files.load_file.unlink()  # (the copy loaded at the last start holds that block too)
    restored = local.restart().restored
    assert restored is not None and restored.lost and restored.block is not None and restored.block < newest_block
    assert any(newest.name in s for s in restored.skipped)
    assert "MISSING: writes were acknowledged up to block" in "\n".join(restored.lines())
    assert on_chain(local.client(), patient.address, first.record_id)


def test_an_older_state_never_replaces_a_newer_one(tmp_path):
    files = LocalChainFiles(tmp_path)
    with files.lock():
        assert files.save(b"state at 7", 7)
        assert not files.save(b"state at 5", 5)
        assert not files.save(b"state at 7 again", 7)
        assert files.save(b"state at 9", 9)
        assert files.save(b"state at 12", 12)
    assert [b for b, _ in files.saved()] == [12, 9]  # the two newest are kept
    assert files.saved()[0][1].read_bytes() == b"state at 12"


# --- the writer killed between every pair of steps ----------------------------------------------------------
@pytest.mark.parametrize(
    ("when", "outcome", "lands"),
    [
        ("after-journal", "rolled back", False),
        ("after-pin", "rolled back", False),
        ("after-sign", "re-applied", True),
        ("after-send", "registered", True),
        ("after-mine", "registered", True),
        ("after-save", "registered", True),
    ],
)
def test_a_writer_killed_at_any_step_loses_nothing(local: LocalHome, patient, clinician, when, outcome, lands):
    record_id = os.urandom(32)
    cid = run_crashing_writer(local.settings, clinician, patient, record_id, when)
    client = local.client()
    assert len(journal_entries(client)) == 1  # the journal was written before anything was pinned

    assert records.recover_pending(client) == [("0x" + record_id.hex(), outcome)]
    assert journal_entries(client) == []
    assert on_chain(client, patient.address, record_id) is lands
    assert client.store.is_pinned(cid) is lands
    if lands:
        assert readable(client, patient, record_id)
        local.kill_anvil()  # what recovery reported registered is saved, too
        local.restart()
        assert on_chain(local.client(), patient.address, record_id)


# --- a bulk registration: one transaction in every record's entry, settled the same way for all --------------
def journaled_records(client: Client) -> dict[str, str | None]:
    """record id -> the transaction hash its journal entry holds (None: none)."""
    entries = [JournalEntry.load(path) for path in journal_entries(client)]
    return {e.fields["record_id"]: (e.tx.tx_hash if e.tx else None) for e in entries if e is not None}


def assert_group(client: Client, patient: str, cids: list[str], lands: bool) -> None:
    """Every record of the group is on chain and pinned, or none is; those on chain came in one transaction."""
    wanted = {cid_to_bytes(cid) for cid in cids}
    events = [e for e in client.contract.logs(RecordRegistered, patient=patient) if bytes(e.cid) in wanted]
    assert len(events) == (len(cids) if lands else 0)
    assert all(on_chain(client, patient, e.record_id) for e in events)
    assert all(client.store.is_pinned(cid) is lands for cid in cids)
    assert len({e.log.tx_hash for e in events}) == (1 if lands else 0)  # sent once, as one transaction


@pytest.mark.parametrize(
    ("when", "outcome", "lands"),
    [
        ("mid-journal", "re-applied", True),  # the entries of half the records never got the transaction
        ("after-sign", "re-applied", True),
        ("after-send", "registered", True),
        ("after-mine", "registered", True),
        ("after-save", "registered", True),
    ],
)
def test_an_ingest_killed_at_any_step_settles_its_whole_transaction_alike(
    local: LocalHome, patient, clinician, when, outcome, lands
):
    cids = crash_writer(local.settings, clinician, patient, when, count=4)
    client = local.client()
    held = journaled_records(client)
    assert len(held) == 4 and len({h for h in held.values() if h}) == 1  # one signed transaction
    assert (None in held.values()) is (when == "mid-journal")

    assert sorted(records.recover_pending(client)) == sorted((rid, outcome) for rid in held)
    assert journal_entries(client) == []
    assert_group(client, patient.address, cids, lands)
    local.kill_anvil()  # and it was made written
    local.restart()
    assert_group(local.client(), patient.address, cids, lands)


@pytest.mark.parametrize("when", ["after-send", "mid-journal"])
def test_a_pending_ingest_transaction_keeps_every_record_of_it(local: LocalHome, patient, clinician, when):
    """Sent (or re-sent by recovery, for records whose entries never got it), not mined: no record of
    it is rolled back, not even one whose entry does not hold the transaction."""
    local.rpc("evm_setAutomine", [False])
    cids = crash_writer(local.settings, clinician, patient, when, count=4)
    client = local.client()
    outcomes = records.recover_pending(client, wait=0.3)
    assert len(outcomes) == 4 and all(o.startswith("pending") for _, o in outcomes), outcomes
    assert all(client.store.is_pinned(cid) for cid in cids) and len(journal_entries(client)) == 4
    miner = threading.Timer(1.0, lambda: local.rpc("evm_mine", []))
    miner.start()
    try:
        assert {o for _, o in records.recover_pending(client, wait=20)} == {"registered"}
    finally:
        miner.join()
    assert_group(client, patient.address, cids, True)


def test_an_ingest_transaction_whose_nonce_was_taken_rolls_back_every_record(local: LocalHome, patient, clinician):
    cids = crash_writer(local.settings, clinician, patient, "mid-journal", count=4)
    client = local.client()
    local.rpc("eth_sendTransaction", [{"from": clinician.address, "to": patient.address, "value": "0x1"}])
    assert {o for _, o in records.recover_pending(client)} == {"rolled back"}
    assert journal_entries(client) == []
    assert_group(client, patient.address, cids, False)


def test_an_ingest_interrupted_between_mined_and_saved_is_re_sent_once(local: LocalHome, patient, clinician):
    """The node dies after mining a group and before saving it: every future fails (not written), and
    the restarted node, which forgot the transaction, gets it once, for all its records."""
    client = local.client()
    with DieBeforeSave(local), Ingestor(client, clinician, patient.address, category=C.OBSERVATIONS) as ingest:
        futures = [ingest.submit(obs_bytes(float(i), f"obs-{i}")) for i in range(6)]
    failures = [f.exception() for f in futures]
    assert all(isinstance(e, MedledgerError) for e in failures), failures
    held = journaled_records(client)
    assert len(held) == 6 and None not in held.values()
    cids = [str(JournalEntry.load(p).fields["cid"]) for p in journal_entries(client)]  # type: ignore[union-attr]

    local.restart()
    settled = workflows.recover(local.settings)
    assert sorted(settled) == sorted((rid, "re-applied") for rid in held)
    client = local.client()
    for tx_hash in set(held.values()):
        assert client.chain.rpc("eth_getTransactionReceipt", [tx_hash]) is not None
    assert_group(client, patient.address, cids, True)


# --- item 2: a transaction that may still be mined ------------------------------------------------------------
def test_recovery_waits_for_a_pending_transaction_and_never_unpins_its_data(local: LocalHome, patient, clinician):
    local.rpc("evm_setAutomine", [False])
    record_id = os.urandom(32)
    cid = run_crashing_writer(local.settings, clinician, patient, record_id, "after-send")
    client = local.client()

    [(rid, outcome)] = records.recover_pending(client, wait=0.5)
    assert rid == "0x" + record_id.hex() and outcome.startswith("pending")
    assert client.store.is_pinned(cid) and len(journal_entries(client)) == 1  # nothing undone
    assert not on_chain(client, patient.address, record_id)

    miner = threading.Timer(1.0, lambda: local.rpc("evm_mine", []))
    miner.start()
    try:
        assert records.recover_pending(client, wait=20) == [("0x" + record_id.hex(), "registered")]
    finally:
        miner.join()
    assert client.store.is_pinned(cid) and readable(client, patient, record_id)


def test_a_journaled_transaction_whose_nonce_was_taken_is_rolled_back(local: LocalHome, patient, clinician):
    record_id = os.urandom(32)
    cid = run_crashing_writer(local.settings, clinician, patient, record_id, "after-sign")
    client = local.client()
    # the clinician's account sends something else with that nonce (anvil's dev accounts are unlocked)
    local.rpc("eth_sendTransaction", [{"from": clinician.address, "to": patient.address, "value": "0x1"}])
    assert records.recover_pending(client) == [("0x" + record_id.hex(), "rolled back")]
    assert not client.store.is_pinned(cid) and not on_chain(client, patient.address, record_id)


def test_the_saved_state_is_taken_once_for_many_writes(local: LocalHome, patient, clinician):
    """Writers share saves: a state already saved that holds a block is enough."""
    client = local.client()
    before = local.files.newest_saved()
    records.write_record(client, clinician, patient.address, obs_bytes())
    after = local.files.newest_saved()
    assert before is not None and after is not None and after > before
    acknowledged = local.files.acknowledged()
    assert acknowledged is not None and acknowledged["block"] == after
    block = client.chain.rpc("eth_getBlockByNumber", [hex(after), False])
    assert acknowledged["hash"] == block["hash"]
    records.write_record(client, clinician, patient.address, obs_bytes())
    assert len(local.files.saved()) == 2  # the newest two are kept


def test_node_up_after_a_kill_says_what_it_found_and_what_it_repaired(
    local: LocalHome, patient, researcher, monkeypatch
):
    client = local.client()
    with DieBeforeSave(local), pytest.raises(WriteInterrupted):
        consent.grant(client, patient, researcher.address, A.READ, [C.OBSERVATIONS], [P.RESEARCH])
    real_start = node.start  # the home's node here is anvil alone (IPFS is the session's)
    monkeypatch.setattr(node, "start", lambda config, **kw: real_start(config.replace(services=("anvil",)), **kw))
    env = {
        "MEDLEDGER_HOME": str(local.settings.home),
        "MEDLEDGER_RPC_URL": local.settings.rpc_url,
        "MEDLEDGER_IPFS_API": local.settings.ipfs_api,
        "MEDLEDGER_CHAIN_ID": str(local.settings.chain_id),
    }
    result = run_cli("node", "up", env=env)
    assert result.exit_code == 0, result.stdout + result.stderr
    assert "The local chain was not stopped cleanly last time" in result.stdout
    assert "Restored the chain from the saved state at block" in result.stdout
    assert "nothing acknowledged was lost" in result.stdout
    assert f"Journal: grant({patient.address}, {researcher.address}" in result.stdout
    assert "re-applied (the chain had forgotten it)" in result.stdout
    assert local.client().contract.consent(patient.address, researcher.address, A.READ).live(client.now())
    node.stop(local.config)  # a clean stop, then a start: nothing to report
    result = run_cli("node", "up", env=env)
    assert result.exit_code == 0 and "not stopped cleanly" not in result.stdout and "Journal:" not in result.stdout
