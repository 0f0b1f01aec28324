"""The compiled contract that ships with the package: ABI, bytecode and compiler metadata of
``Medledger`` in Foundry's artifact layout (``data/Medledger.json``).

An installed medledger deploys and talks to its contract from this file alone: no repository, no
Node, no compiler. The file is generated from ``contracts/`` and committed (a wheel cannot count on
Node and solc-js at build time); ``make artifacts`` (``medledger artifacts build`` in a checkout)
regenerates it, and a test fails, naming that command, whenever it differs from a fresh compile.

In a checkout whose contract sources no longer match the shipped file (the compiler metadata
records a keccak-256 of every source it was built from), :func:`deployable_artifact` compiles the
sources instead and warns, so contract work is never deployed from stale bytecode.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from importlib import resources
from pathlib import Path
from typing import Any

from eth_utils import keccak

from medledger.errors import ChainError
from medledger.fsutil import atomic_write

from . import artifacts
from .artifacts import MAIN_CONTRACT, ROOT, Artifact

#: Where the artifact lives inside the package.
DATA_FILE = "data/Medledger.json"
#: The command that regenerates it (named by the drift test and the stale warning).
REGENERATE = "make artifacts"
_SOURCE = f"contracts/{MAIN_CONTRACT}.sol"
_OUTPUTS = [
    "abi",
    "evm.bytecode.object",
    "evm.bytecode.sourceMap",
    "evm.bytecode.linkReferences",
    "evm.deployedBytecode.object",
    "evm.deployedBytecode.sourceMap",
    "evm.deployedBytecode.linkReferences",
    "evm.deployedBytecode.immutableReferences",
    "evm.methodIdentifiers",
    "metadata",
]


class StaleArtifactWarning(UserWarning):
    """The checkout's contract sources differ from those the shipped artifact was built from."""


def shipped_path() -> Path:
    """The shipped artifact file (inside the installed package or the checkout)."""
    return Path(str(resources.files("medledger.chain").joinpath(DATA_FILE)))


def foundry_artifact() -> dict[str, Any]:
    """The shipped artifact as Foundry writes it (``abi``, ``bytecode.object``, ``deployedBytecode``,
    ``methodIdentifiers``, ``metadata``): what a dapp front end or a Foundry script loads."""
    try:
        data: dict[str, Any] = json.loads(shipped_path().read_text())
    except (OSError, ValueError) as exc:
        raise ChainError(f"The contract artifact shipped with medledger is missing or unreadable: {exc}") from exc
    return data


def shipped_artifact() -> Artifact:
    """The shipped ABI and creation bytecode."""
    data = foundry_artifact()
    return Artifact(MAIN_CONTRACT, data["abi"], data["bytecode"]["object"])


def _local_source(name: str) -> Path:
    """Where a source named in the compiler metadata lives in this checkout."""
    if name.startswith("@openzeppelin/"):
        return ROOT / "node_modules" / name
    return ROOT / name


def stale_sources(artifact: dict[str, Any] | None = None) -> list[str]:
    """Sources of this checkout that differ from those the shipped artifact was built from (empty
    outside a checkout, or where a source cannot be read: only a real difference counts)."""
    if not (ROOT / "contracts").is_dir():
        return []
    metadata = (artifact or foundry_artifact())["metadata"]
    changed = []
    for name, entry in sorted(metadata["sources"].items()):
        path = _local_source(name)
        if name.startswith("contracts/") and not path.exists():
            changed.append(name)
            continue
        try:
            digest = "0x" + keccak(path.read_bytes()).hex()
        except OSError:
            continue
        if digest != entry["keccak256"]:
            changed.append(name)
    return changed


def deployable_artifact() -> Artifact:
    """The artifact to deploy: the shipped one, unless this checkout's sources have changed since it
    was built (then a fresh compile, with a :class:`StaleArtifactWarning`)."""
    changed = stale_sources()
    if not changed:
        return shipped_artifact()
    warnings.warn(
        f"The shipped contract artifact predates changes to {', '.join(changed[:3])}"
        f"{' and more' if len(changed) > 3 else ''}; deploying a fresh compile of the sources. "
        f"Run `{REGENERATE}` to ship it.",
        StaleArtifactWarning,
        stacklevel=2,
    )
    return artifacts.compile_contracts()[MAIN_CONTRACT]


# --- building it (a checkout with the npm toolchain) ---------------------------------------------------
def build(force: bool = False) -> dict[str, Any]:
    """Compile ``Medledger`` from this checkout and shape the output as Foundry's artifact; cached
    under ``build/medledger/`` by a hash of the whole compiler input (sources and settings)."""
    standard_input = artifacts._standard_input(artifacts._sources(), {_SOURCE: {MAIN_CONTRACT: _OUTPUTS}})
    compiler = f"solc {artifacts.SOLC_VERSION} oz {artifacts._openzeppelin_version()}"  # imports are not in the input
    key = hashlib.sha256((compiler + json.dumps(standard_input, sort_keys=True)).encode()).hexdigest()[:16]
    cache = ROOT / "build" / "medledger" / f"foundry-{key}.json"
    if cache.exists() and not force:
        cached: dict[str, Any] = json.loads(cache.read_text())
        return cached
    output = artifacts._compile(standard_input)
    entry = output["contracts"][_SOURCE][MAIN_CONTRACT]
    evm = entry["evm"]
    shaped = {
        "abi": entry["abi"],
        "bytecode": {**evm["bytecode"], "object": "0x" + evm["bytecode"]["object"]},
        "deployedBytecode": {**evm["deployedBytecode"], "object": "0x" + evm["deployedBytecode"]["object"]},
        "methodIdentifiers": evm["methodIdentifiers"],
        "metadata": json.loads(entry["metadata"]),
    }
    cache.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(cache, json.dumps(shaped), durable=False)  # a cache: rebuilt if lost
    return shaped


def dumps(artifact: dict[str, Any]) -> str:
    """The artifact as it is written to disk (stable key order, one trailing newline)."""
    return json.dumps(artifact, indent=2, sort_keys=True) + "\n"
