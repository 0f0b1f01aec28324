"""Issue 8 items 1-4 for the writes that are not a new record: an amendment, a grant, a revocation and
a key rotation, each in a writer process that dies (``os._exit``, no cleanup: as kill -9) at the
moment that matters, funding with the node killed before its save, and a record whose IPFS node is
killed right after pinning its ciphertext. Recovery then re-applies or
settles what was journaled, loses nothing that was reported written, and leaves no journal entry.

Each test runs its own anvil in ``<home>/node`` (see ``local_home.py``); IPFS is the session's node."""

from __future__ import annotations

import os
import signal

import psutil
import pytest

from medledger import codes, consent, node, participants, records, workflows
from medledger.chain import devfund
from medledger.chain.events import ConsentGranted
from medledger.chain.outbox import JournalEntry
from medledger.client import Client, cid_from_digest, connect_chain
from medledger.errors import AccessDenied, ContractRevert, ServiceUnavailable
from medledger.node import NodeConfig

from .helpers import journal_entries, obs_bytes, on_chain
from .local_home import LocalHome
from .test_crash_and_tampering import crash_writer
from .test_durability import DieBeforeSave, readable

C, P, A = codes.Category, codes.Purpose, codes.Access


def patient_dies(local: LocalHome, patient, when: str, op: str, grantee: str = "", skip: int = 0) -> None:
    """The patient's writer process does ``op`` (grant, revoke, rotate) and dies at ``when``."""
    secret = patient.encryption.secret.hex()
    crash_writer(local.settings, patient, patient, when, op=op, grantee=grantee, encryption_secret=secret, skip=skip)


# --- an amendment --------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("when", "outcome", "lands"),
    [("after-pin", "rolled back", False), ("after-sign", "re-applied", True), ("after-mine", "registered", True)],
)
def test_an_amendment_killed_at_any_step_loses_nothing(local: LocalHome, patient, clinician, when, outcome, lands):
    client = local.client()
    first = records.write_record(client, clinician, patient.address, obs_bytes(5.0, "first"))
    [cid] = crash_writer(local.settings, clinician, patient, when, previous=first.record_id.hex())
    client = local.client()
    [entry] = journal_entries(client)
    new_id = "0x" + entry.name.split("-")[0]

    assert records.recover_pending(client) == [(new_id, outcome)]
    assert journal_entries(client) == [] and client.store.is_pinned(cid) is lands
    previous = client.contract.record(patient.address, first.record_id).current()
    assert (previous.next == bytes.fromhex(new_id[2:])) is lands  # the version chain follows the chain's word
    assert on_chain(client, patient.address, bytes.fromhex(new_id[2:])) is lands
    assert readable(client, patient, first.record_id)  # the first version is never harmed
    if lands:
        assert readable(client, patient, bytes.fromhex(new_id[2:]))
        local.kill_anvil()  # what recovery reported is written
        local.restart()
        client = local.client()
        assert client.contract.record(patient.address, first.record_id).current().next == bytes.fromhex(new_id[2:])
    else:  # rolled back: the record can be amended again
        again = records.amend_record(client, clinician, first.record_id, obs_bytes(5.5), patient=patient.address)
        assert readable(client, patient, again.record_id)


# --- plain transactions: a grant, a key rotation ------------------------------------------------------------
def journaled_envelope(client: Client) -> str:
    """The CID of the one key envelope the journal holds (a direct read grant's)."""
    [path] = journal_entries(client)
    entry = JournalEntry.load(path)
    assert entry is not None and entry.fields["kind"] == "envelope", path
    return str(entry.fields["cid"])


def test_a_grant_killed_after_signing_is_re_applied(local: LocalHome, patient, researcher, clinician):
    patient_dies(local, patient, "after-sign", "grant", researcher.address)
    envelope = journaled_envelope(local.client())  # the grant's key envelope, pinned, with its transaction
    [(what, outcome)] = workflows.recover(local.settings)
    assert what.startswith(f"grant({patient.address}, {researcher.address}, 0") and outcome.startswith("re-applied")
    client = local.client()
    assert journal_entries(client) == [] and client.store.is_pinned(envelope)  # it landed: the envelope stays
    [granted] = client.contract.logs(ConsentGranted, patient=patient.address, grantee=researcher.address)
    assert cid_from_digest(granted.key_envelope) == envelope
    assert client.contract.consent(patient.address, researcher.address, A.READ).live(client.now())
    lab = records.write_record(client, clinician, patient.address, obs_bytes())
    assert records.read_record(client, researcher, lab.record_id, purpose=P.RESEARCH).data == obs_bytes()
    local.kill_anvil()  # re-applied means written
    local.restart()
    client = local.client()
    assert client.contract.consent(patient.address, researcher.address, A.READ).live(client.now())


@pytest.mark.parametrize("when", ["after-pin", "before-chain"])
def test_a_grant_killed_before_its_transaction_leaves_no_key_envelope_pinned(
    local: LocalHome, patient, researcher, when
):
    """The envelope (the category keys sealed to the grantee) was journaled and pinned; the grant was
    never signed. Recovery unpins it: no key material outlives a grant that never happened."""
    patient_dies(local, patient, when, "grant", researcher.address)
    client = local.client()
    envelope = journaled_envelope(client)
    assert client.store.is_pinned(envelope)

    assert workflows.recover(local.settings) == [
        (
            f"key envelope {envelope}",
            f"rolled back (its transaction was never sent): unpinned; {researcher.address} did not get these keys: "
            "grant again, or run `medledger keys sync` (it sends every reader the keys it lacks)",
        )
    ]
    assert not client.store.is_pinned(envelope) and journal_entries(client) == []
    assert not client.contract.consent(patient.address, researcher.address, A.READ).exists
    assert workflows.recover(local.settings) == []  # settled once
    assert consent.grant(client, patient, researcher.address, A.READ, [C.OBSERVATIONS], [P.RESEARCH])  # do it again


def test_a_grant_the_chain_refuses_after_its_envelope_was_pinned_unpins_it_at_once(
    local: LocalHome, patient, researcher, registrar
):
    """Checked first, refused when sent (the researcher suspended in between): the writer is alive,
    so it unpins the envelope itself and leaves no journal entry."""
    client = local.client()
    pinned = set(client.store.pins())
    simulate = client.contract.simulate

    def suspend_after_the_check(tx, sender):
        result = simulate(tx, sender)
        if tx.function == "grant":
            participants.suspend(client, registrar, researcher.address)
        return result

    sealed: list[str] = []
    pin = client.store.pin

    def remember(cid: str, **kwargs):
        sealed.append(cid)
        return pin(cid, **kwargs)

    client.contract.simulate = suspend_after_the_check  # type: ignore[method-assign]
    client.store.pin = remember  # type: ignore[method-assign]
    with pytest.raises(ContractRevert, match=r"(?i)suspended"):
        consent.grant(client, patient, researcher.address, A.READ, [C.OBSERVATIONS], [P.RESEARCH])
    assert len(sealed) == 1 and not client.store.is_pinned(sealed[0])  # pinned, then unpinned
    assert set(client.store.pins()) == pinned and journal_entries(client) == []


@pytest.mark.parametrize(("when", "outcome"), [("after-sign", "re-applied"), ("after-mine", "applied")])
def test_a_key_rotation_killed_at_its_key_transaction_is_completed(local: LocalHome, patient, clinician, when, outcome):
    """The patient's envelope of the new key went first (the first transaction); the writer dies at
    the second, setCategoryKeys: recovery lands it, and the patient opens what is sealed to it."""
    client = local.client()
    before = client.contract.category_key(patient.address, C.OBSERVATIONS).epoch
    patient_dies(local, patient, when, "rotate", skip=1)
    [(what, settled)] = workflows.recover(local.settings)
    assert what.startswith(f"setCategoryKeys({patient.address}, ") and settled.startswith(outcome), settled
    client = local.client()
    assert journal_entries(client) == []
    assert client.contract.category_key(patient.address, C.OBSERVATIONS).epoch == before + 1
    written = records.write_record(client, clinician, patient.address, obs_bytes())  # sealed to the new key
    assert readable(client, patient, written.record_id)
    local.kill_anvil()
    local.restart()
    assert local.client().contract.category_key(patient.address, C.OBSERVATIONS).epoch == before + 1


# --- item 4: a revocation killed before its rotation is finished by a retry -------------------------------------
def test_a_revocation_killed_before_its_rotation_is_finished_by_revoking_again(
    local: LocalHome, patient, researcher, clinician
):
    client = local.client()
    consent.grant(client, patient, researcher.address, A.READ, [C.OBSERVATIONS], [P.RESEARCH])
    before = client.contract.category_key(patient.address, C.OBSERVATIONS).epoch
    patient_dies(local, patient, "after-mine", "revoke", researcher.address)
    [(what, outcome)] = workflows.recover(local.settings)
    assert what.startswith(f"revoke({patient.address}, {researcher.address}") and outcome.startswith("applied")
    client = local.client()
    assert not client.contract.consent(patient.address, researcher.address, A.READ).live(client.now())
    assert client.contract.category_key(patient.address, C.OBSERVATIONS).stale(client.now())  # not rotated
    assert consent.rotation_owed(client, patient.address, researcher.address) == {C.OBSERVATIONS}

    assert not consent.revoke(client, patient, researcher.address, A.READ)  # revoked already; the retry rotates
    key = client.contract.category_key(patient.address, C.OBSERVATIONS)
    assert key.epoch == before + 1 and not key.stale(client.now())
    assert consent.rotation_owed(client, patient.address, researcher.address) == frozenset()
    assert not consent.revoke(client, patient, researcher.address, A.READ)  # now there is nothing left to do
    after = records.write_record(client, clinician, patient.address, obs_bytes(7.0, "after"))
    with pytest.raises(AccessDenied):
        records.read_record(client, researcher, after.record_id, purpose=P.RESEARCH)
    assert readable(client, patient, after.record_id) and journal_entries(client) == []


# --- funding: the node signs it, so it cannot be journaled: never reported before it is written ------------------
def test_funding_whose_save_the_node_did_not_survive_is_not_reported(local: LocalHome):
    newcomer = "0x" + "6b" * 20
    with DieBeforeSave(local), pytest.raises(ServiceUnavailable):
        devfund.fund(connect_chain(local.settings), newcomer, 2 * 10**18)
    local.restart()
    chain = connect_chain(local.settings)
    assert chain.balance(newcomer) == 0 and journal_entries(Client.connect(local.settings)) == []
    assert devfund.fund(chain, newcomer, 2 * 10**18).balance_wei == 2 * 10**18  # done again, as it says
    local.kill_anvil()
    local.restart()
    assert connect_chain(local.settings).balance(newcomer) == 2 * 10**18


# --- the IPFS node killed right after it pinned a ciphertext ------------------------------------------------------
def test_a_record_whose_ipfs_node_was_killed_after_pinning_it_stays_readable(
    local: LocalHome, tmp_path, patient, clinician
):
    config = NodeConfig.ephemeral(tmp_path / "ipfs-node", services=("ipfs",))
    node.start(config, tie_to_parent=True)
    try:
        settings = local.settings.with_overrides(ipfs_api=config.ipfs_api)
        client = Client.connect(settings)
        first = records.write_record(client, clinician, patient.address, obs_bytes(1.0))
        pin = client.store.pin

        def pin_then_die(cid: str) -> None:
            pin(cid)
            pid = node.status(config).ipfs.pid
            assert pid is not None
            os.kill(pid, signal.SIGKILL)
            psutil.Process(pid).wait(10)

        client.store.pin = pin_then_die  # type: ignore[method-assign]
        second = records.write_record(client, clinician, patient.address, obs_bytes(2.0))  # the chain needs no IPFS
        with pytest.raises(ServiceUnavailable):  # the node is down: refused before anything is journaled
            records.write_record(client, clinician, patient.address, obs_bytes(3.0))
        assert journal_entries(client) == []

        node.start(config, tie_to_parent=True)
        client = Client.connect(settings)
        for written in (first, second):  # (a fetch is checked against the CID: this is the very ciphertext)
            assert client.store.is_pinned(written.cid) and len(client.store.cat(written.cid)) > written.size
            assert on_chain(client, patient.address, written.record_id)
        assert records.recover_pending(client) == []
    finally:
        node.stop(config)
