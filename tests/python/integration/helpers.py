"""Helpers shared by the integration tests."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from medledger import codes, records
from medledger.client import Client

C = codes.Category
P = codes.Purpose
A = codes.Access
DAY = 24 * 3600


def observation(value: float = 6.1, ident: str = "hba1c-1") -> dict[str, Any]:
    """A small valid FHIR R4 Observation (category: observations & labs)."""
    return {
        "resourceType": "Observation",
        "id": ident,
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "4548-4", "display": "Hemoglobin A1c"}]},
        "subject": {"reference": "Patient/lisa"},
        "valueQuantity": {"value": value, "unit": "%", "system": "http://unitsofmeasure.org", "code": "%"},
    }


def obs_bytes(value: float = 6.1, ident: str = "hba1c-1") -> bytes:
    return json.dumps(observation(value, ident)).encode()


def registered_ids(client: Client) -> set[bytes]:
    """Every record id registered on chain since the deployment (from the event log)."""
    return {bytes(e["args"]["recordId"]) for e in client.logs("RecordRegistered")}


def on_chain(client: Client, record_id: bytes) -> bool:
    info = client.call(client.contract.functions.record(record_id))
    return int(info[0], 16) != 0


def journal_entries(client: Client) -> list[Path]:
    return sorted(records._journal_dir(client).glob("*.json"))


def accessed(client: Client, record_id: bytes) -> list[Any]:
    return client.logs("RecordAccessed", recordId=record_id)


def eth_balance(client: Client, address: str) -> int:
    return int(client.chain.w3.eth.get_balance(address))


def block_number(client: Client) -> int:
    return int(client.chain.w3.eth.block_number)


def leftovers(directory: Path) -> list[str]:
    """Temporary plaintext files medledger might have left in ``directory``."""
    return sorted(n for n in os.listdir(directory) if n.startswith(".medledger-"))


def advance_time(client: Client, seconds: int) -> None:
    """Move chain time forward (as tests/python/conftest.py's helper of the same name does)."""
    client.chain.w3.provider.make_request("evm_increaseTime", [seconds])
    client.chain.w3.provider.make_request("evm_mine", [])
