"""The compiled contract shipped as package data (medledger/chain/data/Medledger.json) is exactly
what the compiler makes of contracts/ today, and a checkout never deploys it once stale."""

from __future__ import annotations

import copy
import json
import warnings

import pytest

from medledger.chain import shipped
from medledger.chain.artifacts import compile_contracts


def _differences(shipped_data: dict, fresh: dict) -> str:
    keys = sorted(k for k in set(shipped_data) | set(fresh) if shipped_data.get(k) != fresh.get(k))
    return ", ".join(keys) or "formatting only"


def test_the_shipped_artifact_matches_a_fresh_compile_of_the_contracts():
    fresh = shipped.build(force=True)
    on_disk = shipped.shipped_path().read_text()
    if on_disk != shipped.dumps(fresh):
        pytest.fail(
            f"{shipped.shipped_path()} is not what contracts/ compiles to now (differs in: "
            f"{_differences(json.loads(on_disk), fresh)}). Run `{shipped.REGENERATE}` and commit the file.",
            pytrace=False,
        )


def _type(param: dict) -> str:
    if param["type"].startswith("tuple"):
        return "(" + ",".join(_type(c) for c in param["components"]) + ")" + param["type"][len("tuple") :]
    return param["type"]


def test_the_shipped_artifact_is_foundry_shaped():
    data = shipped.foundry_artifact()
    for code in (data["bytecode"]["object"], data["deployedBytecode"]["object"]):
        assert code.startswith("0x") and len(code) > 10_000 and int(code, 16)
    assert data["metadata"]["settings"]["compilationTarget"] == {"contracts/Medledger.sol": "Medledger"}
    functions = [e for e in data["abi"] if e["type"] == "function"]
    signatures = {f"{e['name']}({','.join(_type(i) for i in e['inputs'])})" for e in functions}
    assert set(data["methodIdentifiers"]) == signatures
    assert shipped.shipped_artifact().bytecode == data["bytecode"]["object"]


def test_a_changed_source_makes_the_artifact_stale():
    data = shipped.foundry_artifact()
    assert shipped.stale_sources(data) == []
    edited = copy.deepcopy(data)
    edited["metadata"]["sources"]["contracts/RecordRegistry.sol"]["keccak256"] = "0x" + "00" * 32
    edited["metadata"]["sources"]["contracts/Removed.sol"] = {"keccak256": "0x" + "11" * 32}
    assert shipped.stale_sources(edited) == ["contracts/RecordRegistry.sol", "contracts/Removed.sol"]


def test_a_stale_checkout_deploys_a_fresh_compile_and_says_so(monkeypatch):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert shipped.deployable_artifact() == shipped.shipped_artifact()  # up to date: no warning
    monkeypatch.setattr(shipped, "stale_sources", lambda artifact=None: ["contracts/RecordRegistry.sol"])
    with pytest.warns(shipped.StaleArtifactWarning, match="make artifacts"):
        artifact = shipped.deployable_artifact()
    assert artifact == compile_contracts()["Medledger"]
