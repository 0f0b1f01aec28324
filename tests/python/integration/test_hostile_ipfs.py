"""An IPFS node that lies about the small objects writers and readers trust (issue 12 item 1,
issue 8 item 9): a forged key directory or key envelope is refused before anything is sealed to
it, and a node that answers a wrong CID for an upload gets nothing registered."""

from __future__ import annotations

import dataclasses

import pytest
from hostile_ipfs import HostileIpfs

from medledger import crypto, records
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


def test_a_forged_key_directory_is_refused_before_anything_is_sealed(client, settings, patient, gp_writes, proxy):
    real = Keyring(client).directory(patient.address)
    attacker = crypto.generate_keypair()
    forged = dataclasses.replace(real, categories={
        c: dataclasses.replace(entry, public=attacker.public) for c, entry in real.categories.items()})
    pointer = bytes(client.call(client.contract.functions.keyDirectory(patient.address)))
    proxy.forge_cat[cid_from_digest(pointer)] = forged.encode()
    liar = through(settings, proxy)
    before = registered_ids(client)

    with pytest.raises(TamperingDetected, match=cid_from_digest(pointer)):
        records.write_record(liar, gp_writes, patient.address, obs_bytes())
    assert registered_ids(client) == before
    assert journal_entries(client) == []
    assert "/api/v0/add" not in proxy.calls  # nothing was sealed to the forged key and uploaded


def test_arbitrary_json_is_not_taken_as_a_directory(client, settings, patient, gp_writes, proxy):
    pointer = bytes(client.call(client.contract.functions.keyDirectory(patient.address)))
    proxy.forge_cat[cid_from_digest(pointer)] = b'{"format": "anything", "categories": {}}'
    with pytest.raises(TamperingDetected):
        Keyring(through(settings, proxy)).directory(patient.address)


def test_a_forged_key_envelope_is_refused(client, settings, patient, researcher, gp_writes, proxy):
    from medledger import consent

    written = records.write_record(client, gp_writes, patient.address, obs_bytes())
    consent.grant(client, patient, researcher.address, A.READ, [C.OBSERVATIONS], [P.RESEARCH])
    [event] = client.logs("ConsentGranted", patient=patient.address, grantee=researcher.address)
    envelope = bytes(event["args"]["keyEnvelope"])
    junk = crypto.make_envelope(researcher.encryption.public, patient.address,
                                {C.OBSERVATIONS: {0: crypto.generate_keypair().secret}})
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
