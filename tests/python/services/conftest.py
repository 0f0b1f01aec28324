"""One anvil + js-ipfs pair for the service tests, in a temporary directory on free ports.

Separate from the pair in tests/python/conftest.py on purpose: these tests stop, restart and break
their node, which would destroy the snapshots the integration tests revert to."""

from __future__ import annotations

import pytest

from medledger.node import NodeConfig, running_services
from medledger.storage import IpfsStore


@pytest.fixture(scope="session")
def node_config(tmp_path_factory: pytest.TempPathFactory) -> NodeConfig:
    return NodeConfig.ephemeral(tmp_path_factory.mktemp("medledger-node"))


@pytest.fixture(scope="session")
def node(node_config: NodeConfig):
    """The running services (a NodeStatus); stopped at the end of the session."""
    with running_services(node_config) as st:
        yield st


@pytest.fixture(scope="session")
def store(node, node_config: NodeConfig) -> IpfsStore:
    return IpfsStore(node_config.ipfs_api, timeout=10)
