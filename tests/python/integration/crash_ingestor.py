"""Helper for test_ingest.py: a bulk ingest of small records in a separate process that dies mid-way.

Usage: ``python crash_ingestor.py '<json>'`` with keys ``settings`` (home, deployments, rpc_url,
ipfs_api, chain_id), ``private_key`` (the author's), ``patient``, ``records`` (FHIR JSON texts) and
``when``:

* ``"before-add"``: the process exits (``os._exit(1)``, no cleanup) when the first multipart add is
  about to be sent, i.e. after the group's records were journaled;
* ``"before-chain"``: it exits when the first registration is about to be sent, i.e. after the
  records were added and pinned.
"""

from __future__ import annotations

import json
import os
import sys

from medledger import codes
from medledger.chain.fastpath import FastRegistrar
from medledger.ingest import Ingestor
from medledger.storage import IpfsStore
from tests.python.integration.child import child_session


def main() -> None:
    args = json.loads(sys.argv[1])
    client, author = child_session(args)
    real_add = IpfsStore.add_many

    def crash(*_args, **_kwargs):
        os._exit(1)

    if args["when"] == "before-add":
        IpfsStore.add_many = crash  # type: ignore[method-assign]
    else:
        FastRegistrar.send = crash  # type: ignore[method-assign]
        IpfsStore.add_many = real_add  # type: ignore[method-assign]
    ingest = Ingestor(client, author, args["patient"], category=codes.Category.OBSERVATIONS, workers=1)
    futures = [ingest.submit(text.encode()) for text in args["records"]]
    ingest.close()
    print("the ingest finished, which it should not have", [f.exception() for f in futures], flush=True)
    sys.exit(3)


if __name__ == "__main__":
    main()
