"""An IPFS node that lies about the small objects readers trust (issue 12 item 1, issue 8 item 9):
a forged key envelope is refused, writers take nothing from it (the keys they seal to are on chain),
and a node that answers a wrong CID for an upload gets nothing registered."""

from __future__ import annotations

import pytest
from hostile_ipfs import HostileIpfs

from medledger import crypto, records
from medledger.chain.events import ConsentGranted, KeyEnvelopePublished
from medledger.client import Client, cid_from_digest
from medledger.errors import TamperingDetected
from medledger.keyring import Keyring
from medledger.storage import IpfsStore

from .helpers import A, C, P, journal_entries, obs_bytes, registered_ids


@pytest.fixture
def proxy(node_config):
    with HostileIpfs(upstream=node_config.ipfs_api_url) as hostile:
        yield hostile


def through(settings, hostile: HostileIpfs) -> Client:
    return Client.connect(settings, store=IpfsStore(hostile.multiaddr, timeout=10))


def test_a_writer_takes_the_category_key_from_the_chain_not_from_ipfs(client, settings, patient, gp_writes, proxy):
    """The public key a record is sealed to is on chain (categoryKey), so a node that lies about small
    objects has nothing to forge: the writer asks it for nothing before sealing."""
    written = records.write_record(through(settings, proxy), gp_writes, patient.address, obs_bytes())
    assert "/api/v0/cat" not in proxy.calls and "/api/v0/add" in proxy.calls
    key = client.contract.category_key(patient.address, C.OBSERVATIONS)
    own = Keyring(client).secrets(patient, patient.address, [C.OBSERVATIONS])[C.OBSERVATIONS][key.epoch]
    assert crypto.public_from_secret(own) == key.public_key
    assert records.read_record(client, patient, written.record_id).data == obs_bytes()


def _own_envelope(client, patient) -> bytes:
    [event] = client.contract.logs(KeyEnvelopePublished, patient=patient.address, recipient=patient.address)
    return event.envelope


def test_a_forged_envelope_to_the_patient_herself_is_refused(client, settings, patient, gp_writes, proxy):
    """The patient's own category secrets live in an envelope to herself; a node serving other bytes
    for it (even a well-formed envelope of attacker keys) is caught by the digest check."""
    written = records.write_record(client, gp_writes, patient.address, obs_bytes())
    pointer = _own_envelope(client, patient)
    forged = crypto.make_envelope(
        patient.encryption.public, patient.address, {C.OBSERVATIONS: {1: crypto.generate_keypair().secret}}
    )
    proxy.forge_cat[cid_from_digest(pointer)] = forged
    with pytest.raises(TamperingDetected, match=cid_from_digest(pointer)):
        records.read_record(through(settings, proxy), patient, written.record_id)


def test_arbitrary_bytes_are_not_taken_as_an_envelope(client, settings, patient, proxy):
    pointer = _own_envelope(client, patient)
    proxy.forge_cat[cid_from_digest(pointer)] = b'{"format": "anything", "categories": {}}'
    with pytest.raises(TamperingDetected):
        Keyring(through(settings, proxy)).secrets(patient, patient.address)


def test_a_forged_key_envelope_is_refused(client, settings, patient, researcher, gp_writes, proxy):
    from medledger import consent

    written = records.write_record(client, gp_writes, patient.address, obs_bytes())
    consent.grant(client, patient, researcher.address, A.READ, [C.OBSERVATIONS], [P.RESEARCH])
    [event] = client.contract.logs(ConsentGranted, patient=patient.address, grantee=researcher.address)
    envelope = event.key_envelope
    junk = crypto.make_envelope(
        researcher.encryption.public, patient.address, {C.OBSERVATIONS: {1: crypto.generate_keypair().secret}}
    )
    proxy.forge_cat[cid_from_digest(envelope)] = junk
    with pytest.raises(TamperingDetected, match=cid_from_digest(envelope)):
        records.read_record(through(settings, proxy), researcher, written.record_id, purpose=P.RESEARCH)


def test_a_wrong_cid_for_the_ciphertext_registers_nothing(client, settings, patient, gp_writes, proxy):
    proxy.add_answer = client.store.cid_of(b"someone else's content")
    before = registered_ids(client)
    with pytest.raises(TamperingDetected, match="nothing was pinned or registered"):
        records.write_record(through(settings, proxy), gp_writes, patient.address, obs_bytes())
    assert registered_ids(client) == before
    assert journal_entries(client) == []
