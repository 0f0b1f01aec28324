"""anvil, the local chain: its command line and its state file."""

from __future__ import annotations

import json
import os
from pathlib import Path

from medledger.errors import ServiceError
from medledger.fsutil import atomic_write
from medledger.keystore.names import without_secrets

from .config import HOST, NodeConfig
from .process import find_binary


def command(config: NodeConfig) -> list[str]:
    cmd = [str(find_binary("anvil", config)),
           "--host", HOST, "--port", str(config.port("anvil_port")),
           "--chain-id", str(config.chain_id),
           "--accounts", str(config.anvil_accounts),
           "--balance", str(config.anvil_balance),
           "--mnemonic", config.mnemonic,
           "--state", str(config.anvil_state),
           # no banner: it lists the dev accounts' private keys, which must not land in logs
           "--quiet"]
    if config.anvil_state_interval:
        cmd += ["--state-interval", str(int(config.anvil_state_interval))]
    return cmd


def valid_json_file(path: Path) -> bool:
    try:
        with open(path, "rb") as fh:
            json.load(fh)
        return True
    except (OSError, ValueError):
        return False


def prepare(config: NodeConfig) -> None:
    """Keep a last good copy of the chain state; restore it if the state file is damaged."""
    state, backup = config.anvil_state, config.anvil_state.with_name("state.json.bak")
    if not state.exists():
        return
    if valid_json_file(state):
        atomic_write(backup, state.read_bytes())
    elif backup.exists() and valid_json_file(backup):
        os.replace(state, state.with_name("state.json.damaged"))
        atomic_write(state, backup.read_bytes())
        with open(config.log_file("anvil"), "ab") as fh:
            fh.write(f"medledger: {state} was damaged; restored {backup.name}\n".encode())
    else:
        raise ServiceError(
            f"anvil state file {state} is damaged (not valid JSON) and there is no good backup; "
            f"move it away to start a fresh chain")


def env() -> dict[str, str]:
    """anvil's environment: ours, without secrets and without what would change where it listens
    or what it logs."""
    return {k: v for k, v in without_secrets(os.environ).items() if k not in ("RUST_LOG", "ANVIL_IP_ADDR")}
