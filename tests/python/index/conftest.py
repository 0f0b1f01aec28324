"""Fixtures for the index, oversight and export tests: one real anvil per session (no IPFS: the
index reads only the chain), the Medledger contract deployed and a cast registered, a private
PostgreSQL server per session (127.0.0.1, temporary directory), and per test an anvil
snapshot/revert plus a fresh database on the backend under test (SQLite file or a new PostgreSQL
database).

Transactions go through anvil's unlocked dev accounts (``eth_sendTransaction``), so the tests
exercise the index against the real contract without the package's domain modules.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from web3 import HTTPProvider, Web3

from medledger.index.pgtemp import create_database, temporary_postgres
from medledger.services import NodeConfig, running_services

from .helpers import KINDS, PATIENTS, Chain, deploy


@pytest.fixture(scope="session")
def anvil(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeConfig]:
    config = NodeConfig.ephemeral(tmp_path_factory.mktemp("index-anvil"), services=("anvil",), anvil_accounts=12,
                                  anvil_state_interval=None)
    with running_services(config):
        yield config


@pytest.fixture(scope="session")
def chain_session(anvil: NodeConfig, tmp_path_factory: pytest.TempPathFactory) -> Chain:
    w3 = Web3(HTTPProvider(anvil.rpc_url))
    contract, deployment = deploy(w3, tmp_path_factory.mktemp("index-home") / "deployments")
    chain = Chain(w3, contract, deployment, anvil.rpc_url)
    for name in PATIENTS:
        chain.send(name, "registerPatient", b"\x01" * 32)
    for name, kind in KINDS.items():
        chain.send("registrar", "registerParticipant", chain[name], int(kind), b"\x02" * 32, b"\x03" * 32)
    return chain


@pytest.fixture
def chain(chain_session: Chain) -> Iterator[Chain]:
    """The session chain, reverted to its state before the test afterwards."""
    snapshot = chain_session.rpc("evm_snapshot", [])
    yield chain_session
    chain_session.rpc("evm_revert", [snapshot])


@pytest.fixture(scope="session")
def postgres() -> Iterator[str]:
    with temporary_postgres() as admin_url:
        yield admin_url


_db_numbers = itertools.count(1)


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty database on each backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'index.sqlite'}"
    admin = request.getfixturevalue("postgres")
    return create_database(admin, f"index_{os.getpid()}_{next(_db_numbers)}")


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'index.sqlite'}"
