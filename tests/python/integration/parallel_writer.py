"""Helper for test_concurrent_writers.py: write ``count`` records as one author, starting at a given
time (so that several of these processes write at once), and print ``WROTE <record id>`` per record
or ``FAILED <error>`` per failure.

Usage: ``python parallel_writer.py '<json>'`` with keys ``settings`` (home, deployments, rpc_url,
ipfs_api, chain_id), ``private_key``, ``patient``, ``count`` and ``start_at`` (a time.time()).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from eth_account import Account

from medledger import crypto, records
from medledger.client import Client
from medledger.config import Settings
from medledger.errors import MedledgerError
from medledger.keystore import Identity


def main() -> None:
    args = json.loads(sys.argv[1])
    s = args["settings"]
    settings = Settings(
        home=Path(s["home"]), deployments_dir=Path(s["deployments"]), rpc_url=s["rpc_url"],
        ipfs_api=s["ipfs_api"], chain_id=s["chain_id"], ipfs_timeout=10,
    )  # fmt: skip
    account = Account.from_key(args["private_key"])
    author = Identity("author", account.address, account, crypto.generate_keypair())
    client = Client.connect(settings)
    time.sleep(max(0.0, args["start_at"] - time.time()))
    for i in range(args["count"]):
        data = {"resourceType": "Observation", "id": f"p{i}", "status": "final", "code": {"text": "pulse"}}
        try:
            result = records.write_record(client, author, args["patient"], json.dumps(data).encode())
        except MedledgerError as exc:
            print(f"FAILED {type(exc).__name__}: {exc}", flush=True)
            continue
        print(f"WROTE 0x{result.record_id.hex()}", flush=True)


if __name__ == "__main__":
    main()
