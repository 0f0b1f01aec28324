"""scripts/deploy.py: deploys once per chain, records address and ABI, redeploys only when asked."""

import json

import pytest
from brownie import Medledger, web3

from scripts import deploy as deploy_script


@pytest.fixture
def deployments(tmp_path, monkeypatch):
    monkeypatch.setenv("MEDLEDGER_DEPLOYMENTS", str(tmp_path))
    return tmp_path


def test_deploy_writes_address_and_abi_per_chain_id(deployments):
    deployment = deploy_script.main()
    data = json.loads((deployments / f"{web3.eth.chain_id}.json").read_text())
    entry = data["contracts"]["Medledger"]
    assert data["chainId"] == web3.eth.chain_id
    assert entry["address"] == deployment.address
    assert entry["abi"] == Medledger.abi
    assert len(web3.eth.get_code(deployment.address)) > 0


def test_deploy_again_does_not_redeploy(deployments):
    first = deploy_script.main()
    second = deploy_script.main()
    assert second.address == first.address
    assert len(Medledger) == 1


def test_redeploy_deploys_a_new_contract_when_asked(deployments):
    first = deploy_script.main()
    second = deploy_script.redeploy()
    assert second.address != first.address
    data = json.loads((deployments / f"{web3.eth.chain_id}.json").read_text())
    assert data["contracts"]["Medledger"]["address"] == second.address


def test_deploy_replaces_a_recorded_address_that_has_no_code(deployments):
    (deployments / f"{web3.eth.chain_id}.json").write_text(
        json.dumps(
            {
                "format": 1,
                "chainId": web3.eth.chain_id,
                "contracts": {"Medledger": {"address": "0x" + "11" * 20, "abi": []}},
            }
        )
    )
    deployment = deploy_script.main()
    assert deployment.address != "0x" + "11" * 20
    assert len(web3.eth.get_code(deployment.address)) > 0
