"""One anvil + js-ipfs pair for the whole session, in a temporary directory on free ports."""

from __future__ import annotations

import pytest

from medledger.services import NodeConfig, running_services
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
