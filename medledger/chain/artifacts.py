"""Compiled contract artifacts (ABI and bytecode), built with py-solc-x from the repo's sources.

The compiler is the repo's solc-js wrapper (``tools/solc``); the output is cached under
``build/medledger/`` keyed by a hash of every source file and the compiler settings, so only the
first call after a change pays the compile (~8-25 s: the deployed contract fits EIP-170's 24,576
bytes only through the IR pipeline, ``viaIR``, which the cache key includes).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from medledger.errors import ChainError
from medledger.fsutil import atomic_write

ROOT = Path(__file__).resolve().parents[2]
SOLC_VERSION = "0.8.37"
OPTIMIZER_RUNS = 200
#: The IR pipeline: without it the runtime code is ~29 KB and a node refuses the deployment.
VIA_IR = True
MAIN_CONTRACT = "Medledger"
_SOURCE_DIRS = ("contracts", "interfaces")


@dataclass(frozen=True)
class Artifact:
    """What is needed to deploy and talk to one contract."""

    name: str
    abi: list[dict[str, Any]]
    bytecode: str

    @property
    def errors(self) -> list[dict[str, Any]]:
        return [entry for entry in self.abi if entry.get("type") == "error"]


def _sources() -> dict[str, Path]:
    sources: dict[str, Path] = {}
    for directory in _SOURCE_DIRS:
        for path in sorted((ROOT / directory).rglob("*.sol")):
            rel = path.relative_to(ROOT).as_posix()
            if "/test/" in f"/{rel}":
                continue  # test doubles are not part of a deployment
            sources[rel] = path
    return sources


def _openzeppelin_version() -> str:
    package = ROOT / "node_modules" / "@openzeppelin" / "contracts" / "package.json"
    try:
        return str(json.loads(package.read_text())["version"])
    except (OSError, ValueError, KeyError) as exc:
        raise ChainError(
            f"OpenZeppelin Contracts are not installed under {package.parent}; run `make setup` "
            "(or `npm install`) in the medledger repository."
        ) from exc


def _source_hash(sources: dict[str, Path]) -> str:
    digest = hashlib.sha256()
    digest.update(f"solc {SOLC_VERSION} runs {OPTIMIZER_RUNS} viaIR {VIA_IR} oz {_openzeppelin_version()}".encode())
    for rel, path in sources.items():
        digest.update(rel.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def solc_binary() -> Path:
    binary = ROOT / "tools" / "solc"
    if not (ROOT / "node_modules" / "solc").is_dir():
        raise ChainError(
            "The Solidity compiler (npm package solc) is not installed; run `make setup` "
            "(or `npm install`) in the medledger repository."
        )
    return binary


def _standard_input(sources: dict[str, Path], selection: dict[str, Any]) -> dict[str, Any]:
    return {
        "language": "Solidity",
        "sources": {rel: {"content": path.read_text()} for rel, path in sources.items()},
        "settings": {
            "remappings": ["@openzeppelin/=node_modules/@openzeppelin/"],
            "optimizer": {"enabled": True, "runs": OPTIMIZER_RUNS},
            "viaIR": VIA_IR,
            "outputSelection": selection,
        },
    }


def _compile(standard_input: dict[str, Any]) -> dict[str, Any]:
    import solcx  # imported lazily: the CLI starts faster without it

    try:
        output: dict[str, Any] = solcx.compile_standard(
            standard_input, base_path=str(ROOT), allow_paths=[str(ROOT)], solc_binary=str(solc_binary())
        )
    except solcx.exceptions.SolcError as exc:
        raise ChainError(f"Compiling the contracts failed:\n{exc}") from exc
    return output


def compile_contracts(force: bool = False) -> dict[str, Artifact]:
    """Compile the contracts (or load the cached output) and return artifacts by contract name."""
    sources = _sources()
    cache_dir = ROOT / "build" / "medledger"
    cache = cache_dir / f"artifacts-{_source_hash(sources)}.json"
    if cache.exists() and not force:
        raw = json.loads(cache.read_text())
        return {name: Artifact(name, entry["abi"], entry["bytecode"]) for name, entry in raw.items()}

    output = _compile(_standard_input(sources, {"*": {"*": ["abi", "evm.bytecode.object"]}}))
    artifacts: dict[str, Artifact] = {}
    for rel, contracts in output.get("contracts", {}).items():
        if not rel.startswith("contracts/"):
            continue
        for name, data in contracts.items():
            bytecode = data["evm"]["bytecode"]["object"]
            if bytecode:  # skip abstract contracts and interfaces
                artifacts[name] = Artifact(name, data["abi"], "0x" + bytecode)
    cache_dir.mkdir(parents=True, exist_ok=True)
    entries = {n: {"abi": a.abi, "bytecode": a.bytecode} for n, a in artifacts.items()}
    atomic_write(cache, json.dumps(entries), durable=False)  # a cache: rebuilt if lost
    return artifacts


def compile_test_double(name: str) -> Artifact:
    """Contract ``name`` of ``contracts/test/`` (a test double such as the ERC-1271
    ``MockContractWallet``; never part of a deployment), compiled on its own and cached."""
    rel = f"contracts/test/{name}.sol"
    sources = {rel: ROOT / rel}
    cache = ROOT / "build" / "medledger" / f"{name}-{_source_hash(sources)}.json"
    if not cache.exists():
        output = _compile(_standard_input(sources, {rel: {name: ["abi", "evm.bytecode.object"]}}))
        data = output["contracts"][rel][name]
        cache.parent.mkdir(parents=True, exist_ok=True)
        entry = {"abi": data["abi"], "bytecode": "0x" + data["evm"]["bytecode"]["object"]}
        atomic_write(cache, json.dumps(entry), durable=False)  # a cache: rebuilt if lost
    entry = json.loads(cache.read_text())
    return Artifact(name, entry["abi"], entry["bytecode"])


def source_asts() -> dict[str, Any]:
    """The compiler's AST of every source file, by path (for checks against the sources' constants
    and enums; no code generation, so it is quick)."""
    output = _compile(_standard_input(_sources(), {"*": {"": ["ast"]}}))
    return {rel: entry["ast"] for rel, entry in output.get("sources", {}).items()}


def medledger_artifact() -> Artifact:
    """The artifact of the deployed contract."""
    return compile_contracts()[MAIN_CONTRACT]
