"""Writer processes the tests start in their own interpreter (to kill them, or to run them side by
side): how a test hands one its settings and author, and how the child takes them back."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from eth_account import Account

from medledger import crypto
from medledger.client import Client
from medledger.config import Settings
from medledger.crypto import KeyPair
from medledger.keystore import Identity

HERE = Path(__file__).parent
REPO = HERE.parents[2]


# --- the test's side ------------------------------------------------------------------------------
def child_args(settings: Settings, author: Identity, *, home: Path | None = None, **extra: Any) -> dict[str, Any]:
    """What a child needs to act as ``author`` on the test's chain and IPFS node (in ``home``)."""
    return {
        "settings": {
            "home": str(home or settings.home),
            "deployments": str(settings.deployments),
            "rpc_url": settings.rpc_url,
            "ipfs_api": settings.ipfs_api,
            "chain_id": settings.chain_id,
        },
        "private_key": "0x" + bytes(author.account.key).hex(),
        **extra,
    }


def start_child(script: str, args: dict[str, Any]) -> subprocess.Popen[str]:
    """``script`` (a file beside this one) in a new interpreter that imports this checkout."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    return subprocess.Popen(
        [sys.executable, str(HERE / script), json.dumps(args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=REPO,
    )


def run_child(script: str, args: dict[str, Any], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """``script`` run to its end (or its death): its exit code and output."""
    child = start_child(script, args)
    stdout, stderr = child.communicate(timeout=timeout)
    return subprocess.CompletedProcess(child.args, child.returncode, stdout, stderr)


# --- the child's side -----------------------------------------------------------------------------
def child_session(args: dict[str, Any], keypair: KeyPair | None = None) -> tuple[Client, Identity]:
    """The client and author a child was started with (``keypair``: its encryption key, if it
    matters; otherwise a fresh one)."""
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
    author = Identity("author", account.address, account, keypair or crypto.generate_keypair())
    return Client.connect(settings), author
