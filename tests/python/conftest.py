"""Fixtures for the Python tests: one real anvil + js-ipfs pair per session (127.0.0.1, free ports,
temporary data dir), one medledger deployment with the usual cast registered, and isolation between
tests by anvil snapshot/revert plus a fresh home directory (journal, caches) per test.

Actors (anvil's funded accounts, each with a fresh X25519 key pair): `registrar` (deployer),
`patient` (Lisa), `clinician` (her GP), `researcher` (a study), `app` (a commercial app),
`emergency_clinician` (A&E), `delegate` (her daughter, a registered patient), `relayer` (pays gas
for signed requests), `stranger` (registered nowhere).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings

from medledger import codes, participants
from medledger.chain import Chain, deploy_medledger
from medledger.client import Client
from medledger.config import Settings
from medledger.demo import identities
from medledger.keystore import Identity, allow_weak_kdf_for_tests
from medledger.node import NodeConfig, running_services
from medledger.storage import IpfsStore

# Property tests draw the same examples on every run, so a CI result is reproducible and a red run
# is about the change, not the draw. MEDLEDGER_HYPOTHESIS=explore draws fresh examples (run it
# before changing a property test or what it covers); a failure prints the example to keep.
settings.register_profile("ci", derandomize=True, database=None)
settings.register_profile("explore", derandomize=False, database=None)
settings.load_profile(os.environ.get("MEDLEDGER_HYPOTHESIS", "ci"))

# Keystores in the tests use a scrypt cost far below the production floor, to run in milliseconds.
allow_weak_kdf_for_tests()

CAST = [
    "registrar",
    "patient",
    "clinician",
    "researcher",
    "app",
    "emergency_clinician",
    "delegate",
    "relayer",
    "stranger",
]
KINDS = {
    "clinician": codes.ParticipantKind.CLINICIAN,
    "researcher": codes.ParticipantKind.RESEARCHER,
    "app": codes.ParticipantKind.APP,
    "emergency_clinician": codes.ParticipantKind.CLINICIAN,
}


@pytest.fixture(scope="session")
def node_config(tmp_path_factory: pytest.TempPathFactory) -> NodeConfig:
    return NodeConfig.ephemeral(tmp_path_factory.mktemp("medledger-node"), anvil_accounts=12)


@pytest.fixture(scope="session")
def node(node_config: NodeConfig):
    """The running services (a NodeStatus); stopped at the end of the session."""
    with running_services(node_config) as st:
        yield st


@pytest.fixture(scope="session")
def store(node, node_config: NodeConfig) -> IpfsStore:
    return IpfsStore(node_config.ipfs_api, timeout=10)


@pytest.fixture(scope="session")
def cast(node_config: NodeConfig) -> dict[str, Identity]:
    return identities(node_config.mnemonic, CAST)


@pytest.fixture(scope="session")
def deployed(node, node_config: NodeConfig, cast, tmp_path_factory) -> Settings:
    """Deploy once, register the cast; returns base settings (deployments dir shared by all tests)."""
    base = Settings(
        home=tmp_path_factory.mktemp("medledger-home"),
        rpc_url=node_config.rpc_url,
        ipfs_api=node_config.ipfs_api,
        chain_id=node_config.chain_id,
        ipfs_timeout=10,
    )
    base = base.with_overrides(deployments_dir=base.home / "deployments")
    chain = Chain(base.rpc_url, base.chain_id)
    deploy_medledger(chain, cast["registrar"].account, base.deployments)
    client = Client.connect(base)
    participants.register_patient(client, cast["patient"])
    participants.register_patient(client, cast["delegate"])
    for name, kind in KINDS.items():
        who = cast[name]
        participants.register_participant(
            client, cast["registrar"], who.address, kind, b"\x01" * 32, who.encryption.public
        )
    return base


@pytest.fixture
def settings(deployed: Settings, tmp_path: Path) -> Settings:
    """Per-test settings: a fresh home (journal, caches); the shared deployment."""
    return deployed.with_overrides(home=tmp_path / "home")


@pytest.fixture
def client(settings: Settings, node_config: NodeConfig) -> Iterator[Client]:
    """A connected client; the chain is reverted to its state before the test afterwards."""
    client = Client.connect(settings)
    snapshot = client.chain.rpc("evm_snapshot", [])
    yield client
    client.chain.rpc("evm_revert", [snapshot])


def advance_time(client: Client, seconds: int) -> None:
    """Move chain time forward (expiries are checked against block time)."""
    client.chain.rpc("evm_increaseTime", [seconds])
    client.chain.rpc("evm_mine", [])


for _name in CAST:

    def _make(name: str):
        @pytest.fixture(name=name)
        def _actor(cast: dict[str, Identity]) -> Identity:
            return cast[name]

        return _actor

    globals()[f"_actor_{_name}"] = _make(_name)
