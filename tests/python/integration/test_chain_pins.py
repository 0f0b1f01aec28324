"""The Python side's copies of contract facts, pinned against the compiled contract.

The code tables (medledger.codes), the EIP-712 type strings (medledger.chain.eip712) and the event
dataclasses (medledger.chain.events) each restate something the Solidity sources define. These tests
compare them with the compiler's AST, the ABI and the deployed contract, so a contract change that
the Python side has not followed fails here, by name.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from eth_utils import keccak

from medledger import codes
from medledger.chain import ConsentTerms, Tx, eip712
from medledger.chain.artifacts import medledger_artifact, source_asts
from medledger.chain.events import EVENT_TYPES, snake
from medledger.chain.reverts import _SENTENCES, describe_revert
from medledger.chain.types import CID_CODECS
from medledger.errors import ContractRevert

C, P, A = codes.Category, codes.Purpose, codes.Access
IGNORED_EVENTS = {
    "RoleAdminChanged", "RoleGranted", "RoleRevoked", "EIP712DomainChanged", "DefaultAdminTransferScheduled",
    "DefaultAdminTransferCanceled", "DefaultAdminDelayChangeScheduled", "DefaultAdminDelayChangeCanceled",
}  # fmt: skip
#: OpenZeppelin's internal errors, which no medledger call can meet: rendered generically.
GENERIC_ERRORS = {
    "AccessControlBadConfirmation",
    "InvalidShortString",
    "StringTooLong",
    "SafeCastOverflowedUintDowncast",
}


def _walk(node: Any, found: dict[str, Any]) -> None:
    """Enum members and literal constants, by name, anywhere under ``node``."""
    if isinstance(node, dict):
        if node.get("nodeType") == "EnumDefinition":
            found[node["name"]] = [m["name"] for m in node["members"]]
        value = node.get("value")
        constant = node.get("nodeType") == "VariableDeclaration" and node.get("constant")
        if (
            constant
            and isinstance(value, dict)
            and value.get("nodeType") == "Literal"
            and not value.get("subdenomination")
        ):
            found[node["name"]] = int(value["value"], 0)
        for child in node.values():
            _walk(child, found)
    elif isinstance(node, list):
        for child in node:
            _walk(child, found)


@pytest.fixture(scope="module")
def source_facts() -> dict[str, Any]:
    found: dict[str, Any] = {}
    for rel, ast in source_asts().items():
        if rel.startswith(("contracts/", "interfaces/")):
            _walk(ast, found)
    return found


def _upper_snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).upper()


def test_code_tables_match_the_contract_sources(source_facts):
    assert [_upper_snake(n) for n in source_facts["Access"]] == [m.name for m in A]
    assert [_upper_snake(n) for n in source_facts["ParticipantKind"]] == [m.name for m in codes.ParticipantKind]
    assert source_facts["CATEGORY_COUNT"] == len(C) and [int(c) for c in C] == list(range(len(C)))
    assert source_facts["PURPOSE_COUNT"] == len(P) and [int(p) for p in P] == list(range(len(P)))
    assert source_facts["PURPOSE_FAMILY_CARE"] == P.FAMILY_CARE
    assert source_facts["PURPOSE_EMERGENCY"] == P.EMERGENCY
    assert (source_facts["CODEC_RAW"], source_facts["CODEC_DAG_PB"]) == CID_CODECS


def test_code_tables_match_the_deployed_contract(client, patient, researcher):
    """The highest category and purpose are accepted, one bit past either is refused."""
    terms = ConsentTerms(frozenset([max(C)]), frozenset([max(P)]))
    assert client.contract.grant(patient.address, researcher.address, A.WRITE, terms, sender=patient, simulate=True)
    for categories, purposes, error in (
        (1 << len(C), 1, "ConsentInvalidCategories"),
        (1, 1 << len(P), "ConsentInvalidPurposes"),
    ):
        packed = (categories, purposes, 0, 2**64 - 1)
        raw = Tx("grant", (patient.address, researcher.address, int(A.WRITE), packed, b"\0" * 32))
        with pytest.raises(ContractRevert) as err:
            client.contract.simulate(raw, patient)
        assert err.value.error_name == error
    assert codes.MASK_BITS == 16  # the masks are uint16 in every struct and event


@pytest.mark.parametrize("primary", ["Grant", "Revoke"])
def test_eip712_type_strings_match_the_contract_typehashes(client, primary):
    on_chain = client.contract.grant_typehash() if primary == "Grant" else client.contract.revoke_typehash()
    assert eip712.typehash(primary) == on_chain == keccak(text=eip712.type_string(primary))


def test_eip712_domain_matches_the_contract(client):
    from eth_account._utils.encode_typed_data.encoding_and_hashing import hash_domain

    domain = eip712.domain(client.chain.chain_id, client.deployment.address)
    assert hash_domain(domain) == client.contract.domain_separator()


def test_every_contract_event_has_a_dataclass_with_its_arguments():
    abi_events = {e["name"]: e for e in medledger_artifact().abi if e["type"] == "event"}
    assert set(abi_events) - IGNORED_EVENTS == set(EVENT_TYPES)
    for name, cls in EVENT_TYPES.items():
        fields = [f for f in cls.__dataclass_fields__ if f != "log"]
        assert fields == [snake(i["name"]) for i in abi_events[name]["inputs"]], name


def _sample(spec: dict[str, Any]) -> Any:
    kind = spec["type"]
    if kind == "address":
        return "0x" + "11" * 20
    if kind.startswith("bytes"):
        return b"\x22" * 32
    if kind == "bool":
        return True
    return 1  # every integer argument (codes, masks, times, nonces: 1 is valid for each)


def test_every_contract_error_has_a_sentence_built_from_its_arguments():
    """A revert reads as a sentence, not as ``Name(args)``: each error of the ABI has one, and it is
    built from the error's own argument names (a renamed argument fails here, not at a user)."""
    errors = {e["name"]: e for e in medledger_artifact().abi if e["type"] == "error"}
    assert set(errors) - GENERIC_ERRORS == set(_SENTENCES)
    for name, entry in errors.items():
        args = {i["name"]: _sample(i) for i in entry["inputs"]}
        sentence = describe_revert(name, args, {"category": 4, "purpose": 0})
        assert sentence and (name in GENERIC_ERRORS) == sentence.startswith("The contract refused the call"), name
