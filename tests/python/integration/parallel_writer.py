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

from medledger import records
from medledger.errors import MedledgerError
from tests.python.integration.child import child_session


def main() -> None:
    args = json.loads(sys.argv[1])
    client, author = child_session(args)
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
