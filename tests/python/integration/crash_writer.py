"""Helper for the crash tests: write a record in a separate process that dies mid-write.

Usage: ``python crash_writer.py '<json>'`` with keys ``settings`` (home, deployments, rpc_url,
ipfs_api, chain_id), ``private_key`` (the author's), ``patient``, ``record_id`` (hex) or ``count``
(an ingest of that many records, all in one ``registerRecords`` transaction) or ``previous`` (hex:
amend that record) or ``op`` (a plain write by the patient, whose key this is, with
``encryption_secret``: ``grant`` read observations to ``grantee``, ``revoke`` it, ``rotate`` the
observations key), ``data`` (the FHIR JSON text), ``skip`` (let that many transactions pass first)
and ``when``, the moment the process exits (``os._exit(1)``, no cleanup of any kind), in the order
a write takes its steps:

* ``"after-journal"``: the ciphertext was added (unpinned) and journaled, not yet pinned;
* ``"after-pin"``: pinned, no transaction signed yet;
* ``"before-chain"``: the contract call is about to be made (nothing signed);
* ``"mid-journal"``: the transaction was signed and kept in the journal entries of the first half of
  the records it carries only (an ingest), not sent;
* ``"after-sign"``: the transaction was signed and kept in the journal, not sent;
* ``"after-send"``: sent, not yet known to be mined;
* ``"after-mine"``: mined, not yet written (the local node's state not saved);
* ``"after-save"``: written (saved), the journal entry not yet removed;
* ``"after-chain"``: the whole contract call returned, the write not finished.

Prints ``CID <cid>`` as soon as the ciphertext is on IPFS.
"""

from __future__ import annotations

import json
import os
import sys
import threading

from medledger import codes, consent, ingest, records
from medledger.chain import MedledgerContract, outbox, sending
from medledger.chain.durability import Durability
from medledger.client import Client
from medledger.crypto import KeyPair, public_from_secret
from medledger.keyring import Keyring
from medledger.keystore import Identity
from medledger.records import write as records_write
from tests.python.integration.child import child_session


def main() -> None:
    args = json.loads(sys.argv[1])
    secret = bytes.fromhex(args.get("encryption_secret", ""))
    client, author = child_session(args, KeyPair(secret, public_from_secret(secret)) if secret else None)

    add_stream = client.store.add_stream

    printing = threading.Lock()  # (an ingest adds from several threads)

    def add_and_report(source, **kwargs):
        cid = add_stream(source, **kwargs)
        with printing:
            print(f"CID {cid}", flush=True)
        return cid

    add_many = client.store.add_many

    def add_many_and_report(blobs, **kwargs):
        cids = add_many(blobs, **kwargs)
        with printing:
            for cid in cids:
                print(f"CID {cid}", flush=True)
        return cids

    client.store.add_stream = add_and_report  # type: ignore[method-assign]
    client.store.add_many = add_many_and_report  # type: ignore[method-assign]

    _crash_at(args["when"], client, int(args.get("skip", 0)))
    if args.get("count"):
        _ingest(client, author, args["patient"], args["data"].encode(), int(args["count"]))
    elif args.get("op"):
        _plain(client, author, args["op"], args.get("grantee", ""))
    elif args.get("previous"):
        records.amend_record(
            client, author, bytes.fromhex(args["previous"]), args["data"].encode(), patient=args["patient"]
        )
    else:
        records.write_record(
            client, author, args["patient"], args["data"].encode(), record_id=bytes.fromhex(args["record_id"])
        )
    print("the write finished, which it should not have", flush=True)
    sys.exit(3)


def _ingest(client: Client, author: Identity, patient: str, data: bytes, count: int) -> None:
    """Ingest ``count`` records in one transaction: none is sealed before all are submitted."""
    submitted = threading.Event()
    store_group = ingest.Ingestor._store_group

    def seal_once_all_are_queued(self, jobs):
        submitted.wait(60)
        return store_group(self, jobs)

    ingest.Ingestor._store_group = seal_once_all_are_queued  # type: ignore[method-assign]
    with ingest.Ingestor(client, author, patient, category=codes.Category.OBSERVATIONS, max_per_tx=count) as bulk:
        futures = [bulk.submit(data) for _ in range(count)]
        submitted.set()
    for future in futures:
        future.result()


def _plain(client: Client, patient: Identity, op: str, grantee: str) -> None:
    """A write by the patient that is not a record: its transactions are journaled on their own."""
    obs = [codes.Category.OBSERVATIONS]
    if op == "grant":
        consent.grant(client, patient, grantee, codes.Access.READ, obs, [codes.Purpose.RESEARCH])
    elif op == "revoke":
        consent.revoke(client, patient, grantee, codes.Access.READ)
    elif op == "rotate":
        Keyring(client).rotate(patient, patient.address, obs)
    else:
        raise SystemExit(f"unknown op {op!r}")


def _exit_at(owner, name: str, calls, *, after: bool) -> None:
    """Replace ``owner.name`` by a version that ends the process at once, instead of running it or
    (``after``) right after it ran; while ``calls`` (shared by every function hooked for one moment)
    yields, calls run and return as usual."""
    real = getattr(owner, name)

    def then_exit(*args, **kwargs):
        if next(calls, None) is not None:
            return real(*args, **kwargs)
        if after:
            real(*args, **kwargs)
        os._exit(1)

    setattr(owner, name, then_exit)


def _crash_at(when: str, client: Client, skip: int = 0) -> None:
    """Make the write end the process at ``when`` (see the module's docstring)."""
    instead_of = {"before-chain": [(MedledgerContract, "send")], "after-mine": [(Durability, "settle")]}
    right_after = {
        "after-journal": [(records_write, "journal_write")],
        "after-pin": [(client.store, "pin")],
        # a record's transaction goes into its entry; a plain one gets an entry of its own
        "after-sign": [(sending, "record_in_all"), (outbox.Journal, "transaction_entry")],
        "after-send": [(sending.Sender, "_send_raw")],
        "after-save": [(Durability, "settle")],
        "after-chain": [(MedledgerContract, "send")],
    }
    if when == "mid-journal":
        keep = sending.record_in_all
        sending.record_in_all = lambda entries, tx: (keep(entries[: len(entries) // 2], tx), os._exit(1))  # type: ignore[assignment]
    elif when in instead_of or when in right_after:
        calls = iter(range(skip))  # the first ``skip`` moments pass, whichever function marks them
        for owner, name in instead_of.get(when, []) + right_after.get(when, []):
            _exit_at(owner, name, calls, after=when in right_after)
    else:
        raise SystemExit(f"unknown moment {when!r}")


if __name__ == "__main__":
    main()
