"""The deployments file: where medledger's contract lives on each chain.

One JSON file per chain id (``<dir>/<chain_id>.json``) with the address, ABI, deployer, block and
transaction of each contract. ``scripts/deploy.py`` (brownie) and ``medledger deploy`` (web3) write
the same format, so either tool can use what the other deployed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from medledger.errors import DeploymentGone, DeploymentNotFound
from medledger.fsutil import atomic_write

if TYPE_CHECKING:
    from .rpc import Chain

FORMAT_VERSION = 1


@dataclass(frozen=True)
class Deployment:
    chain_id: int
    name: str
    address: str
    abi: list[dict[str, Any]]
    deployer: str
    block_number: int
    tx_hash: str

    def to_json(self) -> dict[str, Any]:
        return {
            "address": self.address,
            "deployer": self.deployer,
            "blockNumber": self.block_number,
            "txHash": self.tx_hash,
            "abi": self.abi,
        }


def deployment_file(directory: Path, chain_id: int) -> Path:
    return Path(directory) / f"{chain_id}.json"


def read_deployment(directory: Path, chain_id: int, name: str = "Medledger") -> Deployment:
    path = deployment_file(directory, chain_id)
    try:
        data = json.loads(path.read_text())
        entry = data["contracts"][name]
        return Deployment(
            chain_id=int(data["chainId"]),
            name=name,
            address=entry["address"],
            abi=entry["abi"],
            deployer=entry.get("deployer", ""),
            block_number=int(entry.get("blockNumber", 0)),
            tx_hash=entry.get("txHash", ""),
        )
    except FileNotFoundError as exc:
        raise DeploymentNotFound(chain_id, path) from exc
    except (ValueError, KeyError, TypeError) as exc:
        raise DeploymentNotFound(chain_id, path, reason=str(exc)) from exc


def write_deployment(directory: Path, deployment: Deployment) -> Path:
    """Add or replace ``deployment`` in its chain's file, atomically."""
    path = deployment_file(directory, deployment.chain_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    data: dict[str, Any] = {"format": FORMAT_VERSION, "chainId": deployment.chain_id, "contracts": {}}
    if path.exists():
        try:
            data = json.loads(path.read_text())
        except ValueError:
            pass  # a malformed file is replaced whole
    data.setdefault("contracts", {})[deployment.name] = deployment.to_json()
    data["chainId"] = deployment.chain_id
    data["format"] = FORMAT_VERSION
    atomic_write(path, json.dumps(data, indent=2) + "\n")
    return path


def live_deployment(chain: Chain, directory: Path, name: str = "Medledger") -> Deployment:
    """The deployment recorded for ``chain``, checked to have contract code on it
    (:class:`~medledger.errors.DeploymentGone` if not: a reset chain must never read as empty)."""
    deployment = read_deployment(directory, chain.check(), name)
    if not chain.has_code(deployment.address):
        raise DeploymentGone(deployment.chain_id, deployment_file(directory, deployment.chain_id), deployment.address)
    return deployment
