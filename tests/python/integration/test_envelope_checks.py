"""Envelopes from the wrong hands and conflicting keys (issue 12 items 1-2, tooling side): a holder uses
a delivered secret only if the patient, or a delegate covering those categories when it published,
sent it, and a second, different secret for one category and epoch is flagged, never silently
taken instead of the first."""

from __future__ import annotations

import json

import pytest

from medledger import consent, crypto, records
from medledger.chain import events as ev
from medledger.errors import RejectedKeyWarning
from medledger.keyring import Keyring

from .helpers import DAY, C, observation


def test_a_second_different_key_for_one_category_and_epoch_is_flagged_and_the_first_kept(
    client, patient, delegate, gp_writes, lab
):
    """Before, later envelopes silently overrode earlier ones. X25519 ignores a few bits of a secret,
    so a delegate can send a *different* secret that still matches the chain's public key: it is
    reported as a conflict and the GP keeps the one its grant brought."""
    consent.appoint_delegate(client, patient, delegate.address, [C.OBSERVATIONS], client.now() + 30 * DAY)
    epoch = client.contract.category_key(patient.address, C.OBSERVATIONS).epoch
    real = Keyring(client).secrets(delegate, patient.address, [C.OBSERVATIONS])[C.OBSERVATIONS][epoch]
    variant = bytes([real[0] ^ 0x07]) + real[1:]  # the low three bits are cleared by X25519 anyway
    assert variant != real and crypto.public_from_secret(variant) == crypto.public_from_secret(real)
    pointer = client.put_small(
        crypto.make_envelope(gp_writes.encryption.public, patient.address, {C.OBSERVATIONS: {epoch: variant}})
    )
    client.contract.publish_key_envelope(
        patient.address, gp_writes.address, pointer, categories=[C.OBSERVATIONS], sender=delegate
    )
    keyring = Keyring(client)
    with pytest.warns(RejectedKeyWarning, match="another envelope gave a different key"):
        held = keyring.secrets(gp_writes, patient.address, [C.OBSERVATIONS])
    assert held[C.OBSERVATIONS][epoch] == real
    [flagged] = keyring.rejected
    assert (flagged.envelope, flagged.published_by, flagged.epoch) == (pointer, delegate.address, epoch)
    with pytest.warns(RejectedKeyWarning):
        assert json.loads(records.read_record(client, gp_writes, lab.record_id).data) == observation()


def test_an_envelope_from_someone_not_entitled_is_ignored_and_reported(client, patient, delegate, gp_writes, lab,
                                                                       monkeypatch):  # fmt: skip
    """The chain refuses envelopes from anyone but the patient or a covering delegate, so this one is
    forged in the events a node serves (a fake of the log query; the real path, envelopes from the
    patient and from a delegate, is every other test). Neither a stranger's envelope nor one from a
    delegate for other categories is used, even with the right keys in it."""
    consent.appoint_delegate(client, patient, delegate.address, [C.GENOMICS], client.now() + 30 * DAY)
    epoch = client.contract.category_key(patient.address, C.OBSERVATIONS).epoch
    real = Keyring(client).secrets(patient, patient.address, [C.OBSERVATIONS])[C.OBSERVATIONS]
    pointer = client.put_small(
        crypto.make_envelope(gp_writes.encryption.public, patient.address, {C.OBSERVATIONS: real})
    )
    genuine = client.contract.logs_of
    forged_by = ["0x" + "66" * 20, delegate.address]

    def node_serves_forged_events(kinds, *indexed):
        found = genuine(kinds, *indexed)
        if ev.KeyEnvelopePublished in kinds and list(indexed) == [patient.address, gp_writes.address]:
            last = found[-1].log
            found += [
                ev.KeyEnvelopePublished(log=last, patient=patient.address, recipient=gp_writes.address,
                                        categories=frozenset({C.OBSERVATIONS}), envelope=pointer, by=by)
                for by in forged_by
            ]  # fmt: skip
        return found

    monkeypatch.setattr(client.contract, "logs_of", node_serves_forged_events)
    keyring = Keyring(client)
    with pytest.warns(RejectedKeyWarning, match="neither the patient nor a delegate covering"):
        held = keyring.secrets(gp_writes, patient.address, [C.OBSERVATIONS])
    assert held[C.OBSERVATIONS] == {epoch: real[epoch]}  # from its own grant's envelope, which the patient sent
    assert {r.published_by for r in keyring.rejected} == set(forged_by)
