"""The deployments file: where medledger's contract lives on each chain.

One JSON file per chain id (``<dir>/<chain_id>.json``) with the address, ABI, deployer, block and
transaction of each contract, and the earlier deployments it replaced (``history``, oldest first,
without their ABI). ``scripts/deploy.py`` (brownie) and ``medledger deploy`` (web3) write the same
file of the same folder (the home's ``deployments/``, or ``[paths] deployments`` /
``MEDLEDGER_DEPLOYMENTS``), so either tool uses what the other deployed.
"""

from __future__ import annotations

import datetime as _dt
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from medledger.errors import DeploymentGone, DeploymentNotFound
from medledger.fsutil import atomic_write

from .addresses import checked_address

if TYPE_CHECKING:
    from .durability import Node
    from .rpc import Chain

FORMAT_VERSION = 1


def _where(address: str, deployer: str, block_number: int, tx_hash: str) -> dict[str, Any]:
    return {"address": address, "deployer": deployer, "blockNumber": block_number, "txHash": tx_hash}


@dataclass(frozen=True)
class PastDeployment:
    """A deployment that a later one replaced in the file (``replaced_at``: ISO-8601 UTC)."""

    address: str
    deployer: str
    block_number: int
    tx_hash: str
    replaced_at: str

    def to_json(self) -> dict[str, Any]:
        return {**_where(self.address, self.deployer, self.block_number, self.tx_hash), "replacedAt": self.replaced_at}

    @classmethod
    def from_json(cls, entry: dict[str, Any]) -> PastDeployment:
        return cls(
            address=entry["address"],
            deployer=entry.get("deployer", ""),
            block_number=int(entry.get("blockNumber", 0)),
            tx_hash=entry.get("txHash", ""),
            replaced_at=entry.get("replacedAt", ""),
        )


@dataclass(frozen=True)
class Deployment:
    chain_id: int
    name: str
    address: str
    abi: list[dict[str, Any]]
    deployer: str
    block_number: int
    tx_hash: str
    history: tuple[PastDeployment, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            **_where(self.address, self.deployer, self.block_number, self.tx_hash),
            "abi": self.abi,
            "history": [past.to_json() for past in self.history],
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
            history=tuple(PastDeployment.from_json(past) for past in entry.get("history", [])),
        )
    except FileNotFoundError as exc:
        raise DeploymentNotFound(chain_id, path) from exc
    except (ValueError, KeyError, TypeError) as exc:
        raise DeploymentNotFound(chain_id, path, reason=str(exc)) from exc


def _replaced(entry: Any, now: str) -> list[dict[str, Any]]:
    """The history after the recorded ``entry`` is replaced: its own history, then itself."""
    if not isinstance(entry, dict) or "address" not in entry:
        return []
    history = [past for past in entry.get("history", []) if isinstance(past, dict)]
    return [*history, PastDeployment.from_json({**entry, "replacedAt": now}).to_json()]


def write_deployment(directory: Path, deployment: Deployment) -> Path:
    """Add or replace ``deployment`` in its chain's file, atomically. A different address recorded
    before moves to the entry's ``history``."""
    path = deployment_file(directory, deployment.chain_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    data: dict[str, Any] = {"format": FORMAT_VERSION, "chainId": deployment.chain_id, "contracts": {}}
    if path.exists():
        try:
            data = json.loads(path.read_text())
        except ValueError:
            pass  # a malformed file is replaced whole
    contracts = data.setdefault("contracts", {})
    previous = contracts.get(deployment.name)
    entry = deployment.to_json()
    if isinstance(previous, dict) and previous.get("address") == deployment.address:
        entry["history"] = previous.get("history", [])
    elif previous is not None:
        entry["history"] = _replaced(previous, _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))
    contracts[deployment.name] = entry
    data["chainId"] = deployment.chain_id
    data["format"] = FORMAT_VERSION
    atomic_write(path, json.dumps(data, indent=2) + "\n")
    return path


def checked_deployment(chain: Chain | Node, directory: Path, name: str = "Medledger") -> Deployment:
    """The deployment recorded for ``chain``, checked to have contract code on it
    (:class:`~medledger.errors.DeploymentGone` if not: a reset chain must never read as empty)."""
    deployment = read_deployment(directory, chain.chain_id, name)
    if not chain.has_code(deployment.address):
        raise DeploymentGone(deployment.chain_id, deployment_file(directory, deployment.chain_id), deployment.address)
    return deployment


def journal_fields(
    directory: Path, name: str, abi: list[dict[str, Any]], deployer: str, *, replace: bool = False
) -> dict[str, Any]:
    """What the journal entry of a deployment keeps, so that recovery can record it when it lands
    after its writer stopped (:func:`record_journaled`); ``replace``: it was asked to replace a live
    deployment (``deploy --force``)."""
    fields = {"kind": "deploy", "deployments": str(directory), "name": name, "deployer": deployer, "abi": abi}
    return {**fields, "replace": replace}


def record_journaled(chain: Node, fields: dict[str, Any], receipt: dict[str, Any]) -> str:
    """Record a journaled deployment that landed (``receipt``: its bare JSON-RPC receipt) in its
    deployments folder, as the interrupted ``deploy`` would have; not over another live deployment
    recorded meanwhile, unless it was made to replace one. What was done, in words."""
    directory, name = Path(str(fields["deployments"])), str(fields.get("name", "Medledger"))
    address = checked_address(str(receipt["contractAddress"]))
    try:
        recorded: Deployment | None = checked_deployment(chain, directory, name)
    except DeploymentNotFound:
        recorded = None
    path = deployment_file(directory, chain.chain_id)
    if recorded is not None and recorded.address != address and not fields.get("replace"):
        return f"not recorded: {path} names another live deployment, {recorded.address}"
    deployment = Deployment(
        chain_id=chain.chain_id,
        name=name,
        address=address,
        abi=fields["abi"],
        deployer=str(fields.get("deployer", "")),
        block_number=int(str(receipt["blockNumber"]), 16),
        tx_hash=str(receipt["transactionHash"]),
    )
    write_deployment(directory, deployment)
    return f"{name} at {address}, recorded in {path}"
