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
from medledger.chain.deployments import Deployment, write_deployment
from medledger.chain.logsource import RpcSource
from medledger.chain.shipped import deployable_artifact
from medledger.index import Indexer, IndexReader, IndexStore, Target

#: anvil dev account index of each actor
ACTORS = {
    "registrar": 0,
    "patient": 1,
    "patient2": 2,
    "delegate": 3,
    "clinician": 4,
    "researcher": 5,
    "app": 6,
    "commissioner": 7,
    "auditor": 8,
    "emergency_clinician": 9,
    "stranger": 10,
}
KINDS = {
    "clinician": codes.ParticipantKind.CLINICIAN,
    "researcher": codes.ParticipantKind.RESEARCHER,
    "app": codes.ParticipantKind.APP,
    "commissioner": codes.ParticipantKind.COMMISSIONER,
    "auditor": codes.ParticipantKind.AUDITOR,
    "emergency_clinician": codes.ParticipantKind.CLINICIAN,
}
PATIENTS = ("patient", "patient2", "delegate")
NEVER = 2**64 - 1
ALL_CATEGORIES = codes.all_mask(codes.Category)
ALL_PURPOSES = codes.all_mask(codes.Purpose)
CATEGORY_COUNT = len(codes.Category)
RAW = 0x55  # the CID codec of a raw block
ZERO = b"\x00" * 32


class Chain:
    """The contract on the session's anvil, driven through unlocked dev accounts."""

    def __init__(
        self, w3: Web3, contract: Contract, deployment: Deployment, rpc_url: str, deployments_dir: Path
    ) -> None:
        self.w3 = w3
        self.deployments_dir = deployments_dir
        self.contract = contract
        self.deployment = deployment
        self.rpc_url = rpc_url
        self.accounts = {name: w3.eth.accounts[i] for name, i in ACTORS.items()}
        self._ids = itertools.count(1)
        self.headers: dict[bytes, tuple[str, tuple[Any, ...]]] = {}

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

    def register_patient(self, name: str) -> Any:
        """Register ``name`` as a patient: an encryption key and 13 category keys (epoch 1)."""
        return self.send(name, "registerPatient", b"\x01" * 32, [os.urandom(32) for _ in range(CATEGORY_COUNT)])

    def grant(
        self,
        patient: str,
        grantee: str,
        access: int = 0,
        categories: int = ALL_CATEGORIES,
        purposes: int = ALL_PURPOSES,
        expiry: int = NEVER,
        by: str | None = None,
        release: bool = True,
    ) -> Any:
        """A consent; a read grant releases the category keys (an envelope) unless ``release`` is False
        (revoking one that did makes the keys stale: writes then need a rotation)."""
        envelope = b"\x07" * 32 if access == 0 and release else b"\x00" * 32  # never with a write grant
        return self.send(
            by or patient, "grant", self[patient], self[grantee], access, (categories, purposes, 0, expiry), envelope
        )

    def revoke(self, patient: str, grantee: str, access: int = 0) -> Any:
        return self.send(patient, "revoke", self[patient], self[grantee], access)

    def header(self, rid: bytes) -> tuple[str, tuple[Any, ...]]:
        """(patient address, current header) of a record or batch written through these helpers."""
        return self.headers[rid]

    def register(self, author: str, patient: str, category: int = 4, purpose: int = 0) -> bytes:
        rid, fingerprint = self.new_id(), os.urandom(32)
        self.send(author, "registerRecord", self[patient], rid, category, purpose, 1, fingerprint, RAW, os.urandom(32))
        self.headers[rid] = (self[patient], (self[author], category, 1, False, False, 0, fingerprint, ZERO, ZERO))
        return rid

    def anchor(self, author: str, patient: str, category: int = 9, leaves: int = 3) -> bytes:
        root = self.new_id()
        self.send(author, "anchorBatch", self[patient], root, category, 0, 1, leaves, RAW, os.urandom(32))
        self.headers[root] = (self[patient], (self[author], category, 1, False, True, leaves, ZERO, ZERO, ZERO))
        return root

    def amend(self, author: str, rid: bytes) -> bytes:
        patient, old = self.headers[rid]
        new, fingerprint = self.new_id(), os.urandom(32)
        self.send(author, "amendRecord", patient, rid, old, new, 0, 1, fingerprint, RAW, os.urandom(32))
        self.headers[rid] = (patient, (*old[:8], new))
        self.headers[new] = (patient, (self[author], old[1], 1, False, False, 0, fingerprint, rid, ZERO))
        return new

    def erase(self, rid: bytes) -> Any:
        patient, header = self.headers[rid]
        receipt = self.send(patient, "eraseRecord", patient, rid, header)
        self.headers[rid] = (patient, (*header[:3], True, *header[4:6], ZERO, *header[7:]))
        return receipt

    def access(self, accessor: str, rid: bytes, purpose: int = 0) -> Any:
        patient, header = self.headers[rid]
        return self.send(accessor, "recordAccess", patient, rid, header, purpose)

    def new_patient(self, name: str) -> str:
        """A fresh address (impersonated, funded) registered as a patient under ``name``."""
        address = Web3.to_checksum_address("0x" + os.urandom(20).hex())
        self.rpc("anvil_impersonateAccount", [address])
        self.rpc("anvil_setBalance", [address, hex(10**20)])
        self.accounts[name] = address
        self.register_patient(name)
        return address

    def advance(self, seconds: int) -> None:
        self.rpc("evm_increaseTime", [seconds])
        self.mine()


def deploy(w3: Web3, deployments_dir: Path) -> tuple[Contract, Deployment]:
    artifact = deployable_artifact()
    registrar = w3.eth.accounts[ACTORS["registrar"]]
    factory = w3.eth.contract(abi=artifact.abi, bytecode=artifact.bytecode)
    receipt = w3.eth.wait_for_transaction_receipt(factory.constructor(registrar).transact({"from": registrar}))
    deployment = Deployment(
        chain_id=int(w3.eth.chain_id),
        name=artifact.name,
        address=receipt["contractAddress"],
        abi=artifact.abi,
        deployer=registrar,
        block_number=int(receipt["blockNumber"]),
        tx_hash="0x" + bytes(receipt["transactionHash"]).hex(),
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
    out["root"] = chain.anchor("clinician", "patient", category=9, leaves=3)
    out["narrow"] = chain.grant("patient", "clinician", categories=OBS)
    out["revoke_write"] = chain.revoke("patient", "clinician", access=1)
    out["new"] = chain.amend("patient", rid)
    out["erase"] = chain.erase(out["new"])
    chain.send("patient", "appointDelegate", chain["delegate"], ALL_CATEGORIES, 2**40)
    chain.send("emergency_clinician", "openEmergencyAccess", chain["patient"], 3600, b"\x05" * 32)
    out["emergency_read"] = chain.access("emergency_clinician", rid, 5)
    chain.grant("patient2", "researcher", purposes=1 << int(codes.Purpose.RESEARCH))
    return out
