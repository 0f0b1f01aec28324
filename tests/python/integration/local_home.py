"""A home whose chain is its own local node: an anvil the test may kill -9 and restart, started by
medledger.node in ``<home>/node`` (so writes count as written only once its state is saved), with
the session's IPFS node, medledger deployed and the cast registered."""

from __future__ import annotations

import os
import signal
from dataclasses import dataclass
from pathlib import Path

import psutil

from medledger import codes, consent, participants
from medledger.chain import deploy_medledger
from medledger.client import Client, connect_chain
from medledger.config import Settings
from medledger.keystore import Identity
from medledger.localchain import LocalChainFiles
from medledger.node import NodeConfig, NodeStatus, start, status, stop


@dataclass
class LocalHome:
    config: NodeConfig
    settings: Settings

    @property
    def files(self) -> LocalChainFiles:
        return LocalChainFiles(self.config.data_dir)

    def client(self) -> Client:
        return Client.connect(self.settings)

    def kill_anvil(self) -> None:
        """kill -9: no chance to save anything."""
        pid = status(self.config).anvil.pid
        assert pid is not None
        process = psutil.Process(pid)
        os.kill(pid, signal.SIGKILL)
        process.wait(10)

    def restart(self) -> NodeStatus:
        return start(self.config, tie_to_parent=True)

    def rpc(self, method: str, params: list) -> object:
        return connect_chain(self.settings).rpc(method, params)


def make_local_home(tmp_path: Path, ipfs_api: str, cast: dict[str, Identity]) -> LocalHome:
    """Start the home's anvil, deploy, register the patient, the clinician and the researcher, and let
    the clinician write (and read) observations (every step written: saved with the node's state)."""
    home = tmp_path / "home"
    config = NodeConfig.ephemeral(home / "node", services=("anvil",), anvil_accounts=12)
    start(config, tie_to_parent=True)
    settings = Settings(home=home, rpc_url=config.rpc_url, ipfs_api=ipfs_api, chain_id=config.chain_id, ipfs_timeout=10)
    deploy_medledger(connect_chain(settings), cast["registrar"].account, settings.deployments)
    client = Client.connect(settings)
    participants.register_patient(client, cast["patient"])
    clinician = cast["clinician"]
    for name, kind in (
        ("clinician", codes.ParticipantKind.CLINICIAN),
        ("researcher", codes.ParticipantKind.RESEARCHER),
    ):
        who = cast[name]
        participants.register_participant(
            client, cast["registrar"], who.address, kind, b"\1" * 32, who.encryption.public
        )
    for access in (codes.Access.WRITE, codes.Access.READ):
        consent.grant(client, cast["patient"], clinician.address, access, [codes.Category.OBSERVATIONS], [0])
    return LocalHome(config, settings)


def stop_local_home(local: LocalHome) -> None:
    try:
        stop(local.config)
    except Exception:  # noqa: BLE001 - a test may have left it killed or broken on purpose
        pass
