"""anvil, the local chain: its command line and environment (its state: :mod:`.chainstate`)."""

from __future__ import annotations

import os

from medledger.keystore.names import without_secrets

from . import chainstate
from .config import HOST, NodeConfig
from .process import find_binary


def command(config: NodeConfig) -> list[str]:
    cmd = [
        str(find_binary("anvil", config)),
        "--host",
        HOST,
        "--port",
        str(config.port("anvil_port")),
        "--chain-id",
        str(config.chain_id),
        "--accounts",
        str(config.anvil_accounts),
        "--balance",
        str(config.anvil_balance),
        "--mnemonic",
        config.mnemonic,
        # no banner: it lists the dev accounts' private keys, which must not land in logs
        "--quiet",
    ]
    return cmd + chainstate.load_arguments(config)


def env() -> dict[str, str]:
    """anvil's environment: ours, without secrets and without what would change where it listens
    or what it logs."""
    return {k: v for k, v in without_secrets(os.environ).items() if k not in ("RUST_LOG", "ANVIL_IP_ADDR")}
