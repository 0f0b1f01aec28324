"""Helper for the crash tests: write a record in a separate process that dies mid-write.

Usage: ``python crash_writer.py '<json>'`` with keys ``settings`` (home, deployments, rpc_url,
ipfs_api, chain_id), ``private_key`` (the author's), ``patient``, ``record_id`` (hex), ``data``
(the FHIR JSON text) and ``when``, the moment the process exits (``os._exit(1)``, no cleanup of any
kind), in the order a write takes its steps:

* ``"after-journal"``: the ciphertext was added (unpinned) and journaled, not yet pinned;
* ``"after-pin"``: pinned, no transaction signed yet;
* ``"before-chain"``: the contract call is about to be made (nothing signed);
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
from pathlib import Path

from eth_account import Account

from medledger import crypto, records
from medledger.chain import MedledgerContract, sending
from medledger.chain.durability import Durability
from medledger.client import Client
from medledger.config import Settings
from medledger.keystore import Identity
from medledger.records import write as records_write


def main() -> None:
    args = json.loads(sys.argv[1])
    s = args["settings"]
    settings = Settings(
        home=Path(s["home"]),
        deployments_dir=Path(s["deployments"]),
        rpc_url=s["rpc_url"],
        ipfs_api=s["ipfs_api"],
        chain_id=s["chain_id"],
        ipfs_timeout=10,
    )
    account = Account.from_key(args["private_key"])
    author = Identity("author", account.address, account, crypto.generate_keypair())
    client = Client.connect(settings)

    add_stream = client.store.add_stream

    def add_and_report(source, **kwargs):
        cid = add_stream(source, **kwargs)
        print(f"CID {cid}", flush=True)
        return cid

    client.store.add_stream = add_and_report  # type: ignore[method-assign]

    _crash_at(args["when"], client)
    records.write_record(
        client, author, args["patient"], args["data"].encode(), record_id=bytes.fromhex(args["record_id"])
    )
    print("the write finished, which it should not have", flush=True)
    sys.exit(3)


def _exit_after(owner, name: str) -> None:
    """Replace ``owner.name`` by a version that runs it, then ends the process at once."""
    real = getattr(owner, name)

    def then_exit(*args, **kwargs):
        real(*args, **kwargs)
        os._exit(1)

    setattr(owner, name, then_exit)


def _crash_at(when: str, client: Client) -> None:
    """Make the write end the process at ``when`` (see the module's docstring)."""
    instead_of = {"before-chain": (MedledgerContract, "send"), "after-mine": (Durability, "settle")}
    right_after = {
        "after-journal": (records_write, "journal_write"),
        "after-pin": (client.store, "pin"),
        "after-sign": (sending, "record_in_all"),
        "after-send": (sending.Sender, "_send_raw"),
        "after-save": (Durability, "settle"),
        "after-chain": (MedledgerContract, "send"),
    }
    if when in instead_of:
        setattr(*instead_of[when], lambda *args, **kwargs: os._exit(1))
    elif when in right_after:
        _exit_after(*right_after[when])
    else:
        raise SystemExit(f"unknown moment {when!r}")


if __name__ == "__main__":
    main()
