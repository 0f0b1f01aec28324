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
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from eth_account import Account
from web3 import HTTPProvider, Web3

from medledger.cli import cli
from medledger.index.pgtemp import create_database, temporary_postgres
from medledger.keystore import Keystore, passphrase_env_var
from medledger.node import NodeConfig, running_services

from .helpers import ACTORS, KINDS, PATIENTS, Chain, deploy


@pytest.fixture(scope="session")
def anvil(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeConfig]:
    config = NodeConfig.ephemeral(
        tmp_path_factory.mktemp("index-anvil"), services=("anvil",), anvil_accounts=12, anvil_state_interval=None
    )
    with running_services(config):
        yield config


@pytest.fixture(scope="session")
def chain_session(anvil: NodeConfig, tmp_path_factory: pytest.TempPathFactory) -> Chain:
    w3 = Web3(HTTPProvider(anvil.rpc_url))
    deployments = tmp_path_factory.mktemp("index-home") / "deployments"
    contract, deployment = deploy(w3, deployments)
    chain = Chain(w3, contract, deployment, anvil.rpc_url, deployments)
    for name in PATIENTS:
        chain.register_patient(name)
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


@pytest.fixture(scope="session")
def keystore(anvil: NodeConfig, tmp_path_factory: pytest.TempPathFactory) -> Keystore:
    """The actors' dev keys in a keystore (low scrypt cost), for commands run with --as."""
    Account.enable_unaudited_hdwallet_features()
    keystore = Keystore(tmp_path_factory.mktemp("index-keys"), scrypt_n=2**4)
    for name, i in ACTORS.items():
        account = Account.from_mnemonic(anvil.mnemonic, account_path=f"m/44'/60'/0'/0/{i}")
        keystore.create(name, f"pass-{name}", account.key)
    return keystore


@pytest.fixture
def run(chain: Chain, keystore: Keystore, tmp_path: Path) -> Callable[..., Result]:
    """``run("index", "status", as_="commissioner")``: medledger in-process against the session chain."""
    env: dict[str, str | None] = {
        "MEDLEDGER_HOME": str(tmp_path / "home"),
        "MEDLEDGER_KEYSTORE": str(keystore.path),
        "MEDLEDGER_RPC_URL": chain.rpc_url,
        "MEDLEDGER_CHAIN_ID": str(chain.deployment.chain_id),
        "MEDLEDGER_DEPLOYMENTS": str(chain.deployments_dir),
        "MEDLEDGER_CONFIG": None,
        "MEDLEDGER_IDENTITY": None,
        "MEDLEDGER_INDEX_URL": None,
        **{passphrase_env_var(name): f"pass-{name}" for name in ACTORS},
    }

    def invoke(*args: Any, as_: str | None = None) -> Result:
        argv = [str(a) for a in args] + (["--as", as_] if as_ else [])
        return CliRunner().invoke(cli, argv, env=env, catch_exceptions=False)

    return invoke
