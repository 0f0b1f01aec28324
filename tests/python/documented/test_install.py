"""`pip install <checkout>` into a clean venv gives a working medledger: its dependencies are declared,
the compiled contract ships as package data, and the installed command deploys and answers against a
real chain from a directory that has no checkout in sight."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from medledger.chain import shipped

from .checkout import ROOT, clean_env


def _checkout_copy(target: Path) -> Path:
    """The files a clean clone would have (tracked, or new and not ignored): no venv, no node_modules,
    no build output."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for rel in filter(None, listed.split("\0")):
        source = ROOT / rel
        if source.is_file():
            (target / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / rel)
    return target


def test_pip_install_of_a_checkout_into_a_clean_venv_runs_and_deploys(tmp_path, node_config, client, cast):
    source = _checkout_copy(tmp_path / "checkout")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", venv], check=True, timeout=120)
    pip = subprocess.run(
        [venv / "bin" / "pip", "install", "--quiet", source], capture_output=True, text=True, timeout=900
    )
    assert pip.returncode == 0, pip.stderr[-3000:]
    shutil.rmtree(source)  # nothing of the checkout is left to lean on

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    home = tmp_path / "home"
    env = clean_env(
        PATH=os.pathsep.join(p for p in os.environ.get("PATH", "").split(os.pathsep) if str(ROOT) not in p),
        MEDLEDGER_HOME=str(home),
        MEDLEDGER_RPC_URL=node_config.rpc_url,
        MEDLEDGER_CHAIN_ID=str(node_config.chain_id),
        MEDLEDGER_PASSPHRASE="an installed passphrase",
        MEDLEDGER_IMPORT_KEY=cast["stranger"].account.key.hex(),
    )

    def medledger(*args: str) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [venv / "bin" / "medledger", *args], cwd=elsewhere, env=env, capture_output=True, text=True, timeout=300
        )
        assert done.returncode == 0, f"medledger {' '.join(args)}: {done.returncode}\n{done.stdout}\n{done.stderr}"
        return done

    assert medledger("--version").stdout.strip() == "medledger, version 0.1.0"
    where = subprocess.run(
        [venv / "bin" / "python", "-c", "import medledger; print(medledger.__file__)"],
        cwd=elsewhere,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert where.startswith(str(venv)), where

    exported = elsewhere / "Medledger.json"
    medledger("artifacts", "export", "--out", str(exported))
    assert json.loads(exported.read_text()) == shipped.foundry_artifact()

    medledger("keys", "create", "deployer", "--import-key")
    deployed = json.loads(medledger("--as", "deployer", "deploy", "--json").stdout)
    assert deployed["deployed"] is True and deployed["deployer"] == cast["stranger"].address
    assert client.chain.has_code(deployed["address"])
    assert Path(deployed["deployments_file"]) == home / "deployments" / f"{node_config.chain_id}.json"
    # the installed package talks to what it deployed (the contract answers through the facade)
    shown = json.loads(medledger("patient", "show", "deployer", "--json").stdout)
    assert shown["address"] == cast["stranger"].address and shown["patient"] is False
