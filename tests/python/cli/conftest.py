"""Fixtures for the CLI tests: the session's anvil + IPFS and deployment (tests/python/conftest.py),
the cast imported into a keystore directory with low scrypt cost, and a runner that invokes
``medledger`` in-process with the environment pointing at all of it.

Every test that uses ``run`` also uses ``client``, so the chain is reverted after the test.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from medledger.cli import cli
from medledger.config import Settings
from medledger.keystore import Identity, Keystore, passphrase_env_var

TEST_SCRYPT_N = 2**4
#: The test consortium's secret (keys the emergency reason and credential tags the CLI puts on chain).
CONSORTIUM_SECRET = "c0" * 32


def passphrase_of(name: str) -> str:
    return f"pass-{name}-phrase"


@pytest.fixture(scope="session")
def cli_keys(cast: dict[str, Identity], tmp_path_factory: pytest.TempPathFactory) -> Keystore:
    """The cast in a keystore directory: same Ethereum and encryption keys as the session's actors
    (their encryption keys are the ones registered on chain)."""
    keystore = Keystore(tmp_path_factory.mktemp("cli-keys"), scrypt_n=TEST_SCRYPT_N)
    for name, who in cast.items():
        keystore.create(name, passphrase_of(name), who.account.key, encryption_secret=who.encryption.secret)
    return keystore


@pytest.fixture
def cli_env(settings: Settings, cli_keys: Keystore, cast: dict[str, Identity]) -> dict[str, str | None]:
    env: dict[str, str | None] = {
        "MEDLEDGER_HOME": str(settings.home),
        "MEDLEDGER_KEYSTORE": str(cli_keys.path),
        "MEDLEDGER_RPC_URL": settings.rpc_url,
        "MEDLEDGER_CHAIN_ID": str(settings.chain_id),
        "MEDLEDGER_IPFS_API": settings.ipfs_api,
        "MEDLEDGER_IPFS_TIMEOUT": "10",
        "MEDLEDGER_DEPLOYMENTS": str(settings.deployments),
        "MEDLEDGER_CONSORTIUM_SECRET": CONSORTIUM_SECRET,
        "MEDLEDGER_CONSORTIUM_SECRET_FILE": None,
        # nothing from the developer's own environment
        "MEDLEDGER_CONFIG": None,
        "MEDLEDGER_IDENTITY": None,
        "MEDLEDGER_PASSPHRASE": None,
        "MEDLEDGER_IMPORT_KEY": None,
        "MEDLEDGER_IMPORT_ENCRYPTION_KEY": None,
        "MEDLEDGER_KEYSTORE_SCRYPT_N": None,
    }
    for name in cast:
        env[passphrase_env_var(name)] = passphrase_of(name)
    return env


Run = Callable[..., Result]


@pytest.fixture
def run(client, cli_env: dict[str, str | None]) -> Run:
    """``run("consent", "list", as_="patient", env={...}, input="...")`` -> click Result."""

    def invoke(
        *args: Any, as_: str | None = None, env: dict[str, str | None] | None = None, input: str | None = None
    ) -> Result:
        argv = [str(a) for a in args]
        if as_ is not None:
            argv = ["--as", as_, *argv]
        result = CliRunner().invoke(cli, argv, env={**cli_env, **(env or {})}, input=input, catch_exceptions=False)
        return result

    return invoke


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    path = tmp_path / "work"
    path.mkdir()
    return path
