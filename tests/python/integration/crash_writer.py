"""Helper for test_crash.py: write a record in a separate process that dies mid-write.

Usage: ``python crash_writer.py '<json>'`` with keys ``settings`` (home, deployments, rpc_url,
ipfs_api, chain_id), ``private_key`` (the author's), ``patient``, ``record_id`` (hex), ``data``
(the FHIR JSON text) and ``when``:

* ``"before-chain"``: the process exits (``os._exit(1)``, no cleanup of any kind) when the chain
  transaction is about to be sent, i.e. after the ciphertext was added to IPFS;
* ``"after-chain"``: the transaction is sent and mined, then the process exits before the write
  finishes (the journal entry is left behind).

Prints ``CID <cid>`` as soon as the ciphertext is on IPFS.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from eth_account import Account

from medledger import crypto, records
from medledger.chain import MedledgerContract
from medledger.client import Client
from medledger.config import Settings
from medledger.keystore import Identity


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

    real_send = MedledgerContract.send

    def crash_before(self, tx, sender):
        os._exit(1)

    def crash_after(self, tx, sender):
        real_send(self, tx, sender)
        os._exit(1)

    MedledgerContract.send = crash_before if args["when"] == "before-chain" else crash_after  # type: ignore[method-assign]
    records.write_record(
        client, author, args["patient"], args["data"].encode(), record_id=bytes.fromhex(args["record_id"])
    )
    print("the write finished, which it should not have", flush=True)
    sys.exit(3)


if __name__ == "__main__":
    main()
