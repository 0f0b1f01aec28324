"""Fixtures for the contract tests (brownie, against a real anvil).

Actors: `admin` (deployer, holds the admin and registrar roles), `registrar` (a second registrar),
`patient`, `clinician`, `researcher`, `app`, `delegate` (a registered patient, e.g. a daughter),
`stranger` (registered nowhere). Each test runs in isolation: brownie snapshots the chain before a
test and reverts after it.
"""

from __future__ import annotations

import pytest
from brownie import Medledger, accounts, chain, web3

# Category codes (IConsentManager) and purpose codes.
DEMOGRAPHICS, ALLERGIES, MEDICATIONS, CONDITIONS, OBSERVATIONS, IMAGING, GENOMICS = range(7)
MENTAL_HEALTH, SEXUAL_HEALTH, DEVICE, PROCEDURES, IMMUNIZATIONS, DOCUMENTS = range(7, 13)
DIRECT_CARE, RESEARCH, COMMISSIONING, COMMERCIAL, FAMILY_CARE, EMERGENCY = range(6)
READ, WRITE = 0, 1
# Participant kinds.
CARE_PROVIDER, CLINICIAN, RESEARCHER, APP, COMMISSIONER, AUDITOR = range(1, 7)

DAY = 24 * 3600
DELEGATE_BOUNDS = (1 << ALLERGIES) | (1 << MEDICATIONS) | (1 << CONDITIONS)  # the usual delegation
ZERO = "0x" + "00" * 20
ZERO32 = "0x" + "00" * 32


def mask(*codes: int) -> int:
    return sum(1 << c for c in codes)


def key(n: int) -> str:
    """A distinct, non-zero bytes32 (stands for an X25519 public key, a credential ref, a digest)."""
    return "0x" + n.to_bytes(32, "big").hex()


def category_keys(n: int) -> list[str]:
    """The 13 category public keys of the patient registered with key(n) (distinct from every key(m))."""
    return [key((n << 16) + 0x100 + category) for category in range(13)]


def register_patient(contract, account, n: int):
    """`account` registers as a patient with encryption key key(n) and category_keys(n)."""
    return contract.registerPatient(key(n), category_keys(n), {"from": account})


@pytest.fixture(autouse=True)
def isolation(fn_isolation):
    pass


@pytest.fixture(scope="module")
def admin():
    return accounts[0]


@pytest.fixture(scope="module")
def registrar():
    return accounts[1]


@pytest.fixture(scope="module")
def patient():
    return accounts[2]


@pytest.fixture(scope="module")
def clinician():
    return accounts[3]


@pytest.fixture(scope="module")
def researcher():
    return accounts[4]


@pytest.fixture(scope="module")
def app():
    return accounts[5]


@pytest.fixture(scope="module")
def delegate():
    return accounts[6]


@pytest.fixture(scope="module")
def stranger():
    return accounts[7]


@pytest.fixture(scope="module")
def medledger(admin, registrar):
    """One deployment: consent manager (IConsentManager) and record registry (IRecordRegistry)."""
    deployed = Medledger.deploy(admin, {"from": admin})
    deployed.grantRole(deployed.REGISTRAR_ROLE(), registrar, {"from": admin})
    return deployed


@pytest.fixture(scope="module")
def consent(medledger):
    """The deployment seen through its consent-manager interface."""
    return medledger


@pytest.fixture(scope="module")
def registry(medledger):
    """The deployment seen through its record-registry interface."""
    return medledger


@pytest.fixture(scope="module")
def network(consent, registry, registrar, patient, clinician, researcher, app, delegate):
    """The usual cast registered: patient and delegate as patients, the rest as participants."""
    register_patient(consent, patient, 1)
    register_patient(consent, delegate, 2)
    consent.registerParticipant(clinician, CLINICIAN, key(10), key(11), {"from": registrar})
    consent.registerParticipant(researcher, RESEARCHER, key(20), key(21), {"from": registrar})
    consent.registerParticipant(app, APP, key(30), key(31), {"from": registrar})
    return consent


def now() -> int:
    """The chain's clock: the latest block's timestamp (what an eth_call sees as block.timestamp).

    Not brownie's `chain.time()`: after brownie's per-test revert, anvil rewinds its clock to the
    snapshot block while brownie keeps its wall-clock offset, so `chain.time()` runs ahead."""
    return web3.eth.get_block("latest").timestamp


def mine_at(timestamp: int) -> None:
    """Mine a block at exactly `timestamp`, so that views see block.timestamp == timestamp.
    (brownie's `chain.mine(timestamp=...)` sends a request anvil rejects.)"""
    assert timestamp > now()
    web3.provider.make_request("evm_setNextBlockTimestamp", [timestamp])
    chain.mine()
    assert now() == timestamp


def consent_terms(contract, patient, grantee, access) -> tuple:
    """The terms (categories, purposes, start, expiry) of a stored consent; all zero if none or revoked."""
    return tuple(contract.consent(patient, grantee, access))[:4]


@pytest.fixture
def appointed(network, patient, delegate):
    """The delegate (delegation id 1) manages DELEGATE_BOUNDS for 10 days. Returns its expiry."""
    expiry = now() + 10 * DAY
    network.appointDelegate(delegate, DELEGATE_BOUNDS, expiry, {"from": patient})
    return expiry


def terms(categories: int, purposes: int, start: int = 0, expiry: int | None = None) -> tuple:
    """A Consent struct; by default valid from now for 30 days. "Now" is the latest block's time:
    brownie's chain.time() runs ahead of anvil after each test's snapshot revert."""
    if expiry is None:
        expiry = web3.eth.get_block("latest").timestamp + 30 * DAY
    return (categories, purposes, start, expiry)


# ---- Exact custom-error and event assertions (added for test_participants/test_consent/test_signed_consent) ----
import contextlib as _contextlib  # noqa: E402

import eth_abi as _eth_abi  # noqa: E402
from brownie.exceptions import VirtualMachineError as _VirtualMachineError  # noqa: E402
from brownie.exceptions import decode_typed_error as _decode_typed_error  # noqa: E402
from eth_utils import keccak as _keccak  # noqa: E402
from hexbytes import HexBytes as _HexBytes  # noqa: E402


def custom_error_message(name: str, *args) -> str:
    """The `revert_msg` brownie gives for Medledger's custom error `name(*args)`: the error is ABI-encoded
    and decoded by brownie itself, so comparing strings compares the error name and every argument."""
    entry = next(e for e in Medledger.abi if e["type"] == "error" and e["name"] == name)
    types = [i["type"] for i in entry["inputs"]]
    assert len(types) == len(args), f"{name} takes {len(types)} arguments, not {len(args)}"
    values = [
        str(a) if t == "address" else bytes(_HexBytes(a)) if t.startswith("bytes") else int(a)
        for t, a in zip(types, args, strict=False)
    ]
    data = _keccak(text=f"{name}({','.join(types)})")[:4] + _eth_abi.encode(types, values)
    return _decode_typed_error("0x" + data.hex())


@_contextlib.contextmanager
def assert_custom_error(name: str, *args):
    """`with assert_custom_error("ConsentExpired", patient, clinician, expiry): ...` (call or transaction)."""
    expected = custom_error_message(name, *args)
    with pytest.raises(_VirtualMachineError) as info:
        yield info
    assert info.value.revert_msg == expected


def assert_only_event(tx, name: str, **fields) -> None:
    """`tx` emitted exactly one event, `name`, with exactly the arguments `fields`."""
    assert list(tx.events.keys()) == [name]
    assert len(tx.events[name]) == 1
    assert dict(tx.events[name][0]) == fields
