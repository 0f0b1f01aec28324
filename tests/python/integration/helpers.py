"""Helpers shared by the integration tests."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from medledger import codes
from medledger.chain import events as ev
from medledger.client import Client
from medledger.records.journal import journal_dir

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
    return {bytes(e.record_id) for e in client.contract.logs(ev.RecordRegistered)}


def on_chain(client: Client, patient: str, record_id: bytes) -> bool:
    """Whether ``patient`` has a record ``record_id`` (ids are per patient)."""
    return client.contract.record(patient, record_id).exists


def journal_entries(client: Client) -> list[Path]:
    return sorted(journal_dir(client).glob("*.json"))


def accessed(client: Client, record_id: bytes) -> list[Any]:
    return client.contract.logs(ev.RecordAccessed, record_id=record_id)


def eth_balance(client: Client, address: str) -> int:
    return int(client.chain.balance(address))


def block_number(client: Client) -> int:
    return int(client.chain.block_number())


def leftovers(directory: Path) -> list[str]:
    """Temporary (plaintext) files medledger might have left in ``directory``: every hidden file
    (atomic writes stage ``.<name>.<random>.tmp`` beside the destination)."""
    return sorted(n for n in os.listdir(directory) if n.startswith("."))


def advance_time(client: Client, seconds: int) -> None:
    """Move chain time forward (as tests/python/conftest.py's helper of the same name does)."""
    client.chain.rpc("evm_increaseTime", [seconds])
    client.chain.rpc("evm_mine", [])
