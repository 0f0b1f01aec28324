"""The rotation property (issue 12 item 3), as a property test against the real anvil and IPFS node:

    however a reader's access to a category ends - a direct or signed revoke, a narrowing, the
    consent's expiry, the end of an emergency window (or its close, or the patient's opt-out), a
    delegate's removal, the narrowing of its delegation or the delegation's expiry - once it has
    ended and the patient's tools have run, a record written afterwards cannot be decrypted by the
    former reader, even with every key, envelope and ciphertext it ever held; and everyone who
    still may read it (and the patient) can.

Each example builds a small world (who reads the category, and through what: a patient- or
delegate-made consent, a delegation, an emergency window with released keys), ends one access in
one way (acting as the patient, her delegate, a relayer or the clinician), runs the patient's key
sync, writes a record, and then attacks it as every account that has no access by the chain's own
decision: it opens every envelope ever addressed to it, without any check, and tries every secret
in them on the new record. Every way of ending access is an explicit example (always run); the
rest are drawn (``MEDLEDGER_ROTATION_EXAMPLES``, default 10, with a fixed seed so CI runs the same
ones; set ``MEDLEDGER_HYPOTHESIS=explore`` for fresh ones).

Reproduced first: run against main's code before :meth:`Keyring.sync` (its tools rotated on a
direct revoke, a narrowing and a delegate's removal; sync a no-op), 6 of the 9 explicit examples
failed (signed revoke, consent expiry, emergency end, close by the clinician, opt-out, delegation
expiry): the keys stayed stale, so no record could be written to the category at all until
someone rotated by hand. (The tenth, a delegation narrowed by the patient, was added afterwards: its
command rotated already; with that sync taken out the example fails, the keys left stale.)
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from medledger import codes, consent, crypto, records
from medledger.chain import FOREVER, ZERO32
from medledger.chain.events import ConsentGranted, KeyEnvelopePublished
from medledger.errors import DecryptionError, KeyNotFound, TamperingDetected
from medledger.keyring import Keyring

from .helpers import DAY, A, C, P, advance_time

CONSENT_WAYS = ("direct_revoke", "signed_revoke", "narrowing", "consent_expiry")
EMERGENCY_WAYS = ("emergency_end", "emergency_close", "opt_out")
DELEGATE_WAYS = ("delegate_removal", "delegation_narrowing", "delegation_expiry")
WAYS = CONSENT_WAYS + EMERGENCY_WAYS + DELEGATE_WAYS
#: Ways in which the patient's own tools end the access (and must sync at once, by themselves).
BY_COMMAND = ("direct_revoke", "narrowing", "opt_out", "delegate_removal", "delegation_narrowing")
PURPOSE = {
    "researcher": P.RESEARCH,
    "clinician": P.DIRECT_CARE,
    "app": P.COMMERCIAL,
    "delegate": P.FAMILY_CARE,
    "emergency_clinician": P.EMERGENCY,
}
EXAMPLES = int(os.environ.get("MEDLEDGER_ROTATION_EXAMPLES", "10"))


@dataclass(frozen=True)
class Scenario:
    way: str
    category: codes.Category
    gp_reads: bool = False  # bystanders who keep reading the category
    app_reads: bool = False
    delegate: bool = False  # a delegate covering the category (always, for the delegate ways)
    by_delegate: bool = False  # the delegate grants, releases, revokes, narrows or closes
    by_clinician: bool = False  # the A&E clinician closes its own window (no patient tool runs then)
    hours: int = 4
    days: int = 30


scenarios = st.builds(
    Scenario,
    way=st.sampled_from(WAYS),
    category=st.sampled_from([C.OBSERVATIONS, C.GENOMICS, C.MENTAL_HEALTH]),
    gp_reads=st.booleans(),
    app_reads=st.booleans(),
    delegate=st.booleans(),
    by_delegate=st.booleans(),
    by_clinician=st.booleans(),
    hours=st.integers(1, 24),
    days=st.integers(1, 400),
)


def _examples(test: Any) -> Any:
    """One explicit example per way (always run), with bystanders and a delegate acting where it can."""
    categories = [C.OBSERVATIONS, C.GENOMICS, C.MENTAL_HEALTH]
    for i, way in enumerate(WAYS):
        scenario = Scenario(
            way,
            categories[i % 3],
            gp_reads=True,
            app_reads=i % 2 == 0,
            delegate=i % 3 != 1,
            by_delegate=i % 2 == 1,
            by_clinician=way == "emergency_close",
            hours=2,
            days=10,
        )
        test = example(scenario=scenario)(test)
    return test


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(scenario=scenarios)
@_examples
def test_after_any_loss_of_access_and_a_sync_a_new_record_is_closed_to_the_former_reader(client, cast, scenario):
    snapshot = client.chain.rpc("evm_snapshot", [])
    try:
        World(client, cast, scenario).play()
    finally:
        client.chain.rpc("evm_revert", [snapshot])


class World:
    """One example: the cast around the patient, the access that ends, and the checks."""

    def __init__(self, client: Any, cast: dict[str, Any], scenario: Scenario) -> None:
        self.client, self.cast, self.s = client, cast, scenario
        self.patient = cast["patient"]
        self.category = scenario.category
        self.kept = C.IMMUNIZATIONS  # what a narrowed consent keeps
        self.has_delegate = scenario.delegate or scenario.way in DELEGATE_WAYS
        self.acting = cast["delegate"] if self.has_delegate and scenario.by_delegate else self.patient

    def play(self) -> None:
        before = self.setup()
        former = self.cast[self.former_role()]
        assert self.opens(former, before), "the reader opened records of the category while it had access"
        self.end_access()
        report = Keyring(self.client).sync(self.patient, self.patient.address)
        if self.s.way in BY_COMMAND or (self.s.way == "emergency_close" and not self.s.by_clinician):
            assert not report.rotated, f"{self.s.way} left stale keys for the patient's next sync: {report}"
        now = self.client.now()
        assert not [c for c, k in self.client.contract.category_keys(self.patient.address).items() if k.stale(now)]
        after = records.write_record(
            self.client, self.patient, self.patient.address, b"written after the loss",
            category=self.category, content_type="text/plain",
        )  # fmt: skip
        assert not self.may_read(self.former_role()) and not self.opens(former, after, everything=True)
        for name in PURPOSE:
            self.check(name, after)
        assert records.read_record(self.client, self.patient, after.record_id).data == b"written after the loss"

    def former_role(self) -> str:
        if self.s.way in EMERGENCY_WAYS:
            return "emergency_clinician"
        return "delegate" if self.s.way in DELEGATE_WAYS else "researcher"

    # --- the world before -------------------------------------------------------------------------
    def setup(self) -> records.WriteResult:
        client, s, c, p = self.client, self.s, self.category, self.patient
        now = client.now()
        if self.has_delegate:
            expiry = now + s.days * DAY if s.way == "delegation_expiry" else now + 500 * DAY
            consent.appoint_delegate(client, p, self.cast["delegate"].address, [c, self.kept], expiry)
        if s.gp_reads:
            consent.grant(client, p, self.cast["clinician"].address, A.READ, [c], [P.DIRECT_CARE])
        if s.app_reads:
            consent.grant(client, p, self.cast["app"].address, A.READ, [c], [P.COMMERCIAL])
        if s.way in CONSENT_WAYS or (self.has_delegate and s.by_delegate):
            expiry = now + s.days * DAY if s.way == "consent_expiry" else FOREVER
            consent.grant(client, self.acting, self.cast["researcher"].address, A.READ, [c, self.kept], [P.RESEARCH],
                          patient=p.address, expiry=expiry)  # fmt: skip
        if s.way in EMERGENCY_WAYS:
            ae = self.cast["emergency_clinician"]
            consent.open_emergency(client, ae, p.address, s.hours * 3600, b"\x11" * 32)
            consent.release_emergency_keys(client, self.acting, ae.address, [c], patient=p.address)
        return records.write_record(client, p, p.address, b"written before", category=c, content_type="text/plain")

    # --- the loss ---------------------------------------------------------------------------------
    def end_access(self) -> None:
        client, s, p, cast = self.client, self.s, self.patient, self.cast
        researcher, ae = cast["researcher"].address, cast["emergency_clinician"]
        if s.way == "direct_revoke":
            consent.revoke(client, self.acting, researcher, A.READ, patient=p.address)
        elif s.way == "signed_revoke":
            advance_time(client, 2)
            consent.submit(client, cast["relayer"], consent.sign_revoke(client, p, researcher, A.READ))
        elif s.way == "narrowing":
            consent.grant(client, self.acting, researcher, A.READ, [self.kept], [P.RESEARCH], patient=p.address)
        elif s.way == "consent_expiry" or s.way == "delegation_expiry":
            advance_time(client, s.days * DAY + 1)
        elif s.way == "emergency_end":
            advance_time(client, s.hours * 3600 + 1)
        elif s.way == "emergency_close":
            closer = ae if s.by_clinician else self.acting
            assert consent.close_emergency(client, closer, p.address, ae.address)
        elif s.way == "opt_out":
            assert consent.set_emergency_opt_out(client, p, True)
        elif s.way == "delegate_removal":
            assert consent.remove_delegate(client, p, cast["delegate"].address)
        elif s.way == "delegation_narrowing":
            expiry = client.contract.delegation(p.address, cast["delegate"].address).expiry
            assert consent.appoint_delegate(client, p, cast["delegate"].address, [self.kept], expiry)

    # --- the checks -------------------------------------------------------------------------------
    def may_read(self, name: str) -> bool:
        """The chain's own decision: may ``name`` read the category now, for any purpose?"""
        who = self.cast[name].address
        return any(self.client.contract.is_permitted(self.patient.address, who, A.READ, self.category, purpose)
                   for purpose in P)  # fmt: skip

    def check(self, name: str, written: records.WriteResult) -> None:
        """Nobody without access opens the new record; everybody with access reads it. (An emergency
        clinician is never left with access here: its window is what ends, in the emergency ways.)"""
        who = self.cast[name]
        if not self.may_read(name):
            assert not self.opens(who, written, everything=True), f"{name} (no access) opened the new record"
        else:
            data = records.read_record(self.client, who, written.record_id, purpose=PURPOSE[name]).data
            assert data == b"written after the loss", f"{name} may read but cannot"

    def opens(self, who: Any, written: records.WriteResult, *, everything: bool = False) -> bool:
        """Whether ``who`` decrypts ``written`` from the ciphertext alone: with the secrets of the
        category it holds, or (``everything``) with every secret any envelope to it ever carried."""
        if everything:
            secrets = everything_held(self.client, who, self.patient.address)
            keys = {int(self.category): dict(enumerate(secrets))}
        else:
            keys = Keyring(self.client).secrets(who, self.patient.address, [self.category])
        try:
            data = b"".join(crypto.open_record_blob(
                io.BytesIO(self.client.store.cat(written.cid)), keys, expected_record_id=written.record_id,
                expected_patient=self.patient.address, category=int(self.category),
            ))  # fmt: skip
        except (KeyNotFound, DecryptionError):
            return False
        return data.endswith(b"written after the loss") or data.endswith(b"written before")


def everything_held(client: Any, who: Any, patient: str) -> list[bytes]:
    """Every secret in every envelope ever addressed to ``who`` for ``patient``, unchecked (as an
    attacker would use them), whatever category or epoch it claims to be."""
    found = []
    for e in client.contract.logs_of((ConsentGranted, KeyEnvelopePublished), patient, who.address):
        pointer = e.envelope if isinstance(e, KeyEnvelopePublished) else e.key_envelope
        if pointer == ZERO32:
            continue
        try:
            contents = crypto.open_envelope(who.encryption, client.get_small(pointer), expected_patient=patient)
        except (DecryptionError, TamperingDetected):
            continue
        found.extend(secret for epochs in contents["keys"].values() for secret in epochs.values())
    return found
