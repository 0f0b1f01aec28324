"""The deployments file keeps the deployment in use and every one it replaced."""

from __future__ import annotations

import json

import pytest

from medledger.chain.deployments import Deployment, read_deployment, write_deployment
from medledger.errors import DeploymentNotFound


def _deployment(address: str, block: int) -> Deployment:
    return Deployment(1337, "Medledger", address, [{"type": "constructor"}], "0x" + "aa" * 20, block, f"0x{block:064x}")


def test_a_new_address_moves_the_old_one_to_the_history(tmp_path):
    first, second, third = (_deployment("0x" + c * 40, n) for n, c in ((3, "1"), (7, "2"), (9, "3")))
    write_deployment(tmp_path, first)
    assert read_deployment(tmp_path, 1337).history == ()
    write_deployment(tmp_path, second)
    write_deployment(tmp_path, second)  # the same deployment again adds nothing
    path = write_deployment(tmp_path, third)

    current = read_deployment(tmp_path, 1337)
    assert current.address == third.address and current.abi == third.abi
    assert [(p.address, p.block_number, p.tx_hash) for p in current.history] == [
        (first.address, 3, first.tx_hash),
        (second.address, 7, second.tx_hash),
    ]
    assert all(p.replaced_at.endswith("Z") and "T" in p.replaced_at for p in current.history)
    entry = json.loads(path.read_text())["contracts"]["Medledger"]
    assert "abi" not in entry["history"][0]  # the history names addresses, not interfaces


def test_a_missing_or_malformed_file_is_named(tmp_path):
    with pytest.raises(DeploymentNotFound) as missing:
        read_deployment(tmp_path, 5)
    assert missing.value.reason == "" and "chain 5" in str(missing.value)
    (tmp_path / "5.json").write_text("{ not json")
    with pytest.raises(DeploymentNotFound, match=r"5\.json is malformed"):
        read_deployment(tmp_path, 5)
