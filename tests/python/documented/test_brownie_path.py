"""`brownie run scripts/deploy.py --network NAME` outside make: a private brownie data folder (no
~/.solcx, no SOLCX_BINARY_PATH from a Makefile), a live network added there that points at this
session's anvil (never port 8545); the deployment lands in the home's deployments folder that the CLI
reads, without a traceback, and a redeployment keeps the old address in the history.

(The `--network anvil` path to the node of `medledger node up` runs in the README test.)"""

from __future__ import annotations

import json
import os
import subprocess

from click.testing import CliRunner

from medledger.chain import read_deployment
from medledger.cli import cli
from medledger.keystore import Keystore

from .checkout import clean_env, project_view, tool_path

NETWORK = "medledger-session"


def test_brownie_deploys_where_the_cli_looks_and_prints_no_traceback(tmp_path, node_config, client, cast):
    home = tmp_path / "medledger-home"
    env = clean_env(
        HOME=str(tmp_path / "user"),  # brownie's data folder ~/.brownie, and no ~/.solcx
        PATH=tool_path(),
        MEDLEDGER_HOME=str(home),
        MEDLEDGER_DEPLOYER_KEY=cast["stranger"].account.key.hex(),
    )
    (tmp_path / "user").mkdir()
    # brownie keeps live deployments in the project's build/deployments/<chain id>: a throwaway chain's
    # must not outlive it, so the project is a view of the checkout with a build folder of its own
    project = project_view(
        tmp_path / "project", "contracts", "interfaces", "scripts", "brownie-config.yaml", "node_modules"
    )

    def brownie(*args: str) -> str:
        done = subprocess.run(["brownie", *args], cwd=project, env=env, capture_output=True, text=True, timeout=600)
        output = done.stdout + done.stderr
        assert done.returncode == 0, output
        assert "Traceback" not in output and "TypeError" not in output and "Solc not installed" not in output, output
        return output

    brownie("networks", "add", "Local", NETWORK, f"host={node_config.rpc_url}", f"chainid={node_config.chain_id}")
    first_run = brownie("run", "scripts/deploy.py", "--network", NETWORK)
    first = read_deployment(home / "deployments", node_config.chain_id)
    assert first.deployer == cast["stranger"].address and first.history == ()
    assert f"at {first.address}; recorded in {home / 'deployments'}" in first_run
    assert client.chain.has_code(first.address)

    # the CLI of the same home finds brownie's deployment and does not deploy a second one
    Keystore(home / "keys", scrypt_n=2**4).create("admin", "a passphrase", cast["registrar"].account.key)
    cli_env = {
        "MEDLEDGER_HOME": str(home),
        "MEDLEDGER_RPC_URL": node_config.rpc_url,
        "MEDLEDGER_PASSPHRASE": "a passphrase",
        **{k: None for k in os.environ if k.startswith("MEDLEDGER_") and k not in ("MEDLEDGER_HOME",)},
    }
    answer = CliRunner().invoke(cli, ["--as", "admin", "deploy", "--json"], env=cli_env, catch_exceptions=False)
    again = json.loads(answer.stdout)
    assert again["deployed"] is False and again["address"] == first.address

    assert f"already deployed on chain {node_config.chain_id} at {first.address}" in brownie(
        "run", "scripts/deploy.py", "--network", NETWORK
    )
    brownie("run", "scripts/deploy.py", "redeploy", "--network", NETWORK)
    second = read_deployment(home / "deployments", node_config.chain_id)
    assert second.address != first.address and [p.address for p in second.history] == [first.address]
