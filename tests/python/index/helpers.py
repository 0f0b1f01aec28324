"""The contract on a real anvil, driven through its unlocked dev accounts, and the index opened on
it: shared by the index, oversight and export tests."""

from __future__ import annotations

import itertools
import os
from pathlib import Path
from typing import Any

from web3 import Web3
from web3.contract import Contract

from medledger import codes
from medledger.artifacts import medledger_artifact
from medledger.deployments import Deployment, write_deployment
from medledger.index import IndexStore, Indexer, IndexReader, RpcSource, Target

#: anvil dev account index of each actor
ACTORS = {
    "registrar": 0, "patient": 1, "patient2": 2, "delegate": 3, "clinician": 4, "researcher": 5,
    "app": 6, "commissioner": 7, "auditor": 8, "emergency_clinician": 9, "stranger": 10,
}
KINDS = {
    "clinician": codes.ParticipantKind.CLINICIAN, "researcher": codes.ParticipantKind.RESEARCHER,
    "app": codes.ParticipantKind.APP, "commissioner": codes.ParticipantKind.COMMISSIONER,
    "auditor": codes.ParticipantKind.AUDITOR, "emergency_clinician": codes.ParticipantKind.CLINICIAN,
}
PATIENTS = ("patient", "patient2", "delegate")
NEVER = 2**64 - 1
ALL_CATEGORIES = codes.all_mask(codes.Category)
ALL_PURPOSES = codes.all_mask(codes.Purpose)


class Chain:
    """The contract on the session's anvil, driven through unlocked dev accounts."""

    def __init__(self, w3: Web3, contract: Contract, deployment: Deployment, rpc_url: str,
                 deployments_dir: Path) -> None:
        self.w3 = w3
        self.deployments_dir = deployments_dir
        self.contract = contract
        self.deployment = deployment
        self.rpc_url = rpc_url
        self.accounts = {name: w3.eth.accounts[i] for name, i in ACTORS.items()}
        self._ids = itertools.count(1)

    def __getitem__(self, name: str) -> str:
        return self.accounts[name]

    def send(self, sender: str, fn: str, *args: Any) -> Any:
        """Send one transaction (one block with automine) and return its receipt."""
        tx = getattr(self.contract.functions, fn)(*args).transact({"from": self.accounts.get(sender, sender)})
        receipt = self.w3.eth.wait_for_transaction_receipt(tx)
        assert receipt["status"] == 1, f"{fn} reverted"
        return receipt

    def rpc(self, method: str, params: list[Any]) -> Any:
        answer = self.w3.provider.make_request(method, params)  # type: ignore[arg-type]
        assert "error" not in answer, answer
        return answer["result"]

    def mine(self, blocks: int = 1) -> None:
        for _ in range(blocks):
            self.rpc("evm_mine", [])

    def now(self) -> int:
        return int(self.w3.eth.get_block("latest")["timestamp"])

    def head(self) -> int:
        return int(self.w3.eth.block_number)

    # --- the usual steps -------------------------------------------------------------------------
    def new_id(self) -> bytes:
        return next(self._ids).to_bytes(4, "big") + os.urandom(28)

    def grant(self, patient: str, grantee: str, access: int = 0, categories: int = ALL_CATEGORIES,
              purposes: int = ALL_PURPOSES, expiry: int = NEVER, by: str | None = None) -> Any:
        return self.send(by or patient, "grant", self[patient], self[grantee], access,
                         (categories, purposes, 0, expiry), b"\x07" * 32)

    def revoke(self, patient: str, grantee: str, access: int = 0) -> Any:
        return self.send(patient, "revoke", self[patient], self[grantee], access)

    def register(self, author: str, patient: str, category: int = 4, purpose: int = 0) -> bytes:
        rid = self.new_id()
        self.send(author, "registerRecord", rid, self[patient], category, purpose, os.urandom(32),
                  b"\x01\x55\x12\x20" + os.urandom(32))
        return rid

    def access(self, accessor: str, rid: bytes, purpose: int = 0) -> Any:
        return self.send(accessor, "recordAccess", rid, purpose)

    def new_patient(self, name: str) -> str:
        """A fresh address (impersonated, funded) registered as a patient under ``name``."""
        address = Web3.to_checksum_address("0x" + os.urandom(20).hex())
        self.rpc("anvil_impersonateAccount", [address])
        self.rpc("anvil_setBalance", [address, hex(10**20)])
        self.accounts[name] = address
        self.send(name, "registerPatient", b"\x01" * 32)
        return address

    def advance(self, seconds: int) -> None:
        self.rpc("evm_increaseTime", [seconds])
        self.mine()


def deploy(w3: Web3, deployments_dir: Path) -> tuple[Contract, Deployment]:
    artifact = medledger_artifact()
    registrar = w3.eth.accounts[ACTORS["registrar"]]
    factory = w3.eth.contract(abi=artifact.abi, bytecode=artifact.bytecode)
    receipt = w3.eth.wait_for_transaction_receipt(factory.constructor(registrar).transact({"from": registrar}))
    deployment = Deployment(
        chain_id=int(w3.eth.chain_id), name=artifact.name, address=receipt["contractAddress"], abi=artifact.abi,
        deployer=registrar, block_number=int(receipt["blockNumber"]), tx_hash="0x" + bytes(receipt["transactionHash"]).hex(),
    )
    write_deployment(deployments_dir, deployment)
    return w3.eth.contract(address=deployment.address, abi=artifact.abi), deployment


def open_store(url: str, chain: Chain) -> IndexStore:
    return IndexStore.open(url, Target.of(chain.deployment))


def sync(url: str, chain: Chain, **options: Any) -> tuple[IndexStore, IndexReader, Any]:
    """Open the index at ``url``, sync it once; (store, reader, result)."""
    store = open_store(url, chain)
    until = options.pop("until", None)
    result = Indexer(store, RpcSource(chain.rpc_url), **options).sync(until=until)
    return store, IndexReader(store.engine), result


OBS = 1 << int(codes.Category.OBSERVATIONS)


def tx(receipt: Any) -> str:
    return "0x" + bytes(receipt["transactionHash"]).hex()


def story(chain: Chain) -> dict[str, Any]:
    """Every kind of event, with the receipts the assertions need."""
    out: dict[str, Any] = {}
    out["grant_read"] = chain.grant("patient", "clinician")
    out["grant_write"] = chain.grant("patient", "clinician", access=1)
    rid = chain.register("clinician", "patient", category=4)
    out["rid"] = rid
    out["access"] = chain.access("clinician", rid)
    root = chain.new_id()
    chain.send("clinician", "anchorBatch", root, chain["patient"], 9, 0, 3, b"\x01\x55\x12\x20" + os.urandom(32))
    out["root"] = root
    out["narrow"] = chain.grant("patient", "clinician", categories=OBS)
    out["revoke_write"] = chain.revoke("patient", "clinician", access=1)
    new = chain.new_id()
    chain.send("patient", "amendRecord", rid, new, 0, os.urandom(32), b"\x01\x55\x12\x20" + os.urandom(32))
    out["new"] = new
    out["erase"] = chain.send("patient", "eraseRecord", new)
    chain.send("patient", "appointDelegate", chain["delegate"], ALL_CATEGORIES, 2**40)
    chain.send("emergency_clinician", "openEmergencyAccess", chain["patient"], 3600, b"\x05" * 32)
    out["emergency_read"] = chain.access("emergency_clinician", rid, 5)
    chain.grant("patient2", "researcher", purposes=1 << int(codes.Purpose.RESEARCH))
    return out
