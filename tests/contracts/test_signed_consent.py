"""Consents signed off-chain (EIP-712) and submitted by a relayer: grantBySig and revokeBySig, for EOA
patients and for ERC-1271 contract-wallet patients (contracts/test/MockContractWallet.sol)."""

import brownie
import pytest
from brownie import Medledger, MockContractWallet, accounts, chain, web3
from conftest import (
    ALLERGIES,
    CONDITIONS,
    DAY,
    DIRECT_CARE,
    GENOMICS,
    MEDICATIONS,
    READ,
    RESEARCH,
    WRITE,
    ZERO32,
    assert_custom_error,
    assert_only_event,
    key,
    mask,
)
from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_utils import keccak

GRANT_TYPE = (
    "Grant(address patient,address grantee,uint8 access,uint16 categories,uint16 purposes,uint64 start,"
    "uint64 expiry,bytes32 keyEnvelope,uint256 nonce,uint256 deadline)"
)
REVOKE_TYPE = "Revoke(address patient,address grantee,uint8 access,uint256 nonce,uint256 deadline)"

GRANT_FIELDS = [
    ("patient", "address"),
    ("grantee", "address"),
    ("access", "uint8"),
    ("categories", "uint16"),
    ("purposes", "uint16"),
    ("start", "uint64"),
    ("expiry", "uint64"),
    ("keyEnvelope", "bytes32"),
    ("nonce", "uint256"),
    ("deadline", "uint256"),
]
REVOKE_FIELDS = [
    ("patient", "address"),
    ("grantee", "address"),
    ("access", "uint8"),
    ("nonce", "uint256"),
    ("deadline", "uint256"),
]
MESSAGE_TYPES = {
    "Grant": [{"name": n, "type": t} for n, t in GRANT_FIELDS],
    "Revoke": [{"name": n, "type": t} for n, t in REVOKE_FIELDS],
}

CARE = mask(ALLERGIES, MEDICATIONS)
SIGNER_KEY = "0x" + keccak(text="medledger test: signing patient").hex()
INTRUDER_KEY = "0x" + keccak(text="medledger test: someone else").hex()
WALLET_OWNER_KEY = "0x" + keccak(text="medledger test: wallet owner").hex()


# ------------------------------------------------------------------------------------------------
# EIP-712 helpers (eth-account)
# ------------------------------------------------------------------------------------------------


def domain(contract, chain_id=None) -> dict:
    return {
        "name": "medledger",
        "version": "1",
        "chainId": chain.id if chain_id is None else chain_id,
        "verifyingContract": contract.address,
    }


def _message(primary: str, values: tuple) -> dict:
    fields = GRANT_FIELDS if primary == "Grant" else REVOKE_FIELDS
    message = {}
    for (name, typ), value in zip(fields, values):
        if typ == "address":
            value = str(value)
        elif typ == "bytes32":
            value = bytes.fromhex(value[2:]) if isinstance(value, str) else bytes(value)
        message[name] = value
    return message


def sign(private_key: str, contract, primary: str, values: tuple, chain_id=None) -> str:
    """The EIP-712 signature of `primary` (`Grant` or `Revoke`) with `values` (in struct order)."""
    signed = Account.sign_typed_data(
        private_key, domain(contract, chain_id), {primary: MESSAGE_TYPES[primary]}, _message(primary, values)
    )
    return signed.signature.to_0x_hex()


def grant_request(patient, grantee, nonce, categories=CARE, purposes=None, access=READ, start=0, expiry=None,
                  envelope=None, deadline=None) -> tuple:
    """A GrantRequest tuple in struct order; valid for 30 days, deadline in one hour by default."""
    return (
        patient,
        grantee,
        access,
        categories,
        mask(DIRECT_CARE) if purposes is None else purposes,
        start,
        chain.time() + 30 * DAY if expiry is None else expiry,
        key(100) if envelope is None else envelope,
        nonce,
        chain.time() + 3600 if deadline is None else deadline,
    )


def revoke_request(patient, grantee, nonce, access=READ, deadline=None) -> tuple:
    return (patient, grantee, access, nonce, chain.time() + 3600 if deadline is None else deadline)


def grant_by_sig(contract, request: tuple, private_key: str, sender):
    """Sign `request` as a Grant with `private_key` and have `sender` submit it."""
    return contract.grantBySig(request, sign(private_key, contract, "Grant", request), {"from": sender})


def revoke_by_sig(contract, request: tuple, private_key: str, sender):
    """Sign `request` as a Revoke with `private_key` and have `sender` submit it."""
    return contract.revokeBySig(request, sign(private_key, contract, "Revoke", request), {"from": sender})


def latest_time() -> int:
    return chain[-1].timestamp


# ------------------------------------------------------------------------------------------------
# Fixtures
# ------------------------------------------------------------------------------------------------


def funded(admin, private_key: str):
    """A brownie LocalAccount with a known private key, funded from the admin."""
    account = accounts.add(private_key)
    admin.transfer(account, "1 ether")
    return account


@pytest.fixture(scope="module")
def signer(admin):
    """A patient with a known private key, so that eth-account can sign for it."""
    return funded(admin, SIGNER_KEY)


@pytest.fixture(scope="module")
def signed_network(network, signer):
    """The usual cast, plus `signer` registered as a patient."""
    network.registerPatient(key(40), {"from": signer})
    return network


@pytest.fixture
def signed_grant(signed_network, signer, clinician, stranger):
    """The clinician holds a read consent granted by signature (nonce 0). Returns the request."""
    request = grant_request(signer, clinician, 0)
    grant_by_sig(signed_network, request, signer.private_key, stranger)
    return request


@pytest.fixture(scope="module")
def wallet_owner(admin):
    """The EOA that owns the ERC-1271 contract wallet."""
    return funded(admin, WALLET_OWNER_KEY)


@pytest.fixture(scope="module")
def wallet(signed_network, wallet_owner):
    """An ERC-1271 contract wallet owned by `wallet_owner`, registered as a patient through execute()."""
    deployed = MockContractWallet.deploy(wallet_owner, {"from": wallet_owner})
    deployed.execute(
        signed_network, signed_network.registerPatient.encode_input(key(41)), {"from": wallet_owner}
    )
    return deployed


# ------------------------------------------------------------------------------------------------
# Type hashes and domain
# ------------------------------------------------------------------------------------------------


def test_grant_typehash_is_keccak_of_grant_type(medledger):
    assert medledger.GRANT_TYPEHASH() == "0x" + keccak(text=GRANT_TYPE).hex()


def test_revoke_typehash_is_keccak_of_revoke_type(medledger):
    assert medledger.REVOKE_TYPEHASH() == "0x" + keccak(text=REVOKE_TYPE).hex()


def test_domain_separator_matches_eth_account(medledger, signer, clinician):
    request = grant_request(signer, clinician, 0)
    signable = encode_typed_data(domain(medledger), {"Grant": MESSAGE_TYPES["Grant"]}, _message("Grant", request))
    assert medledger.DOMAIN_SEPARATOR() == "0x" + signable.header.hex()


def test_eip5267_domain_describes_name_version_chain_and_contract(medledger):
    fields, name, version, chain_id, verifying_contract, salt, extensions = medledger.eip712Domain()
    assert fields == "0x0f"
    assert (name, version, chain_id, verifying_contract) == ("medledger", "1", chain.id, medledger.address)
    assert salt == ZERO32
    assert list(extensions) == []


# ------------------------------------------------------------------------------------------------
# grantBySig: accepted
# ------------------------------------------------------------------------------------------------


def test_grant_by_sig_from_relayer_applies_grant_and_emits_event(signed_network, signer, clinician, stranger):
    request = grant_request(signer, clinician, 0, envelope=key(77))
    signature = sign(signer.private_key, signed_network, "Grant", request)
    sent_by_patient = web3.eth.get_transaction_count(signer.address)

    tx = signed_network.grantBySig(request, signature, {"from": stranger})

    assert tx.sender == stranger  # the relayer sends and pays; the patient sends nothing
    assert web3.eth.get_transaction_count(signer.address) == sent_by_patient
    assert tx.return_value is True
    assert_only_event(
        tx,
        "ConsentGranted",
        patient=signer,
        grantee=clinician,
        access=READ,
        categories=CARE,
        purposes=mask(DIRECT_CARE),
        start=0,
        expiry=request[6],
        keyEnvelope=key(77),
        by=signer,
    )
    assert tuple(signed_network.consent(signer, clinician, READ)) == (CARE, mask(DIRECT_CARE), 0, request[6])
    assert signed_network.isPermitted(signer, clinician, READ, ALLERGIES, DIRECT_CARE) is True
    assert signed_network.nonces(signer) == 1


def test_grant_by_sig_nonce_increments_with_each_request(signed_network, signer, clinician, researcher, stranger):
    assert signed_network.nonces(signer) == 0
    for nonce, grantee in enumerate([clinician, researcher, clinician]):
        request = grant_request(signer, grantee, nonce, access=WRITE if nonce == 2 else READ)
        grant_by_sig(signed_network, request, signer.private_key, stranger)
        assert signed_network.nonces(signer) == nonce + 1


def test_grant_by_sig_can_be_submitted_by_the_patient_itself(signed_network, signer, clinician):
    request = grant_request(signer, clinician, 0)
    tx = grant_by_sig(signed_network, request, signer.private_key, signer)
    assert tx.events["ConsentGranted"]["by"] == signer


def test_grant_by_sig_with_unchanged_terms_consumes_nonce_and_emits_nothing(
    signed_network, signer, clinician, stranger, signed_grant
):
    request = (*signed_grant[:8], 1, signed_grant[9])
    tx = grant_by_sig(signed_network, request, signer.private_key, stranger)

    assert tx.return_value is False
    assert len(tx.events) == 0
    assert signed_network.nonces(signer) == 2


def test_grant_by_sig_accepted_at_deadline(signed_network, signer, clinician, stranger):
    deadline = latest_time() + 100
    request = grant_request(signer, clinician, 0, deadline=deadline)
    signature = sign(signer.private_key, signed_network, "Grant", request)
    web3.provider.make_request("evm_setNextBlockTimestamp", [deadline])
    tx = signed_network.grantBySig(request, signature, {"from": stranger})
    assert tx.timestamp == deadline
    assert tx.return_value is True


def test_signed_grant_gas_once_nonce_slot_exists(signed_network, signer, researcher, stranger, signed_grant, capsys):
    """Not an assertion on gas: the benchmark measures it. Recorded for the report."""
    request = grant_request(signer, researcher, 1, purposes=mask(RESEARCH))
    tx = grant_by_sig(signed_network, request, signer.private_key, stranger)
    assert tx.return_value is True
    with capsys.disabled():
        print(f"\n[gas] grantBySig, new consent, nonce slot already written: {tx.gas_used}")


# ------------------------------------------------------------------------------------------------
# grantBySig: rejected
# ------------------------------------------------------------------------------------------------


def test_grant_by_sig_replay_reverts_with_invalid_nonce(signed_network, signer, clinician, stranger):
    request = grant_request(signer, clinician, 0)
    signature = sign(signer.private_key, signed_network, "Grant", request)
    signed_network.grantBySig(request, signature, {"from": stranger})

    with assert_custom_error("InvalidAccountNonce", signer, 1):
        signed_network.grantBySig(request, signature, {"from": stranger})
    assert signed_network.nonces(signer) == 1


def test_grant_by_sig_replay_after_revocation_is_rejected(signed_network, signer, clinician, stranger):
    request = grant_request(signer, clinician, 0)
    signature = sign(signer.private_key, signed_network, "Grant", request)
    signed_network.grantBySig(request, signature, {"from": stranger})
    signed_network.revoke(signer, clinician, READ, {"from": signer})

    with assert_custom_error("InvalidAccountNonce", signer, 1):
        signed_network.grantBySig(request, signature, {"from": clinician})
    assert tuple(signed_network.consent(signer, clinician, READ)) == (0, 0, 0, 0)


def test_grant_by_sig_with_future_nonce_reverts(signed_network, signer, clinician, stranger):
    request = grant_request(signer, clinician, 5)
    with assert_custom_error("InvalidAccountNonce", signer, 0):
        grant_by_sig(signed_network, request, signer.private_key, stranger)


def test_grant_by_sig_reverts_after_deadline(signed_network, signer, clinician, stranger):
    deadline = latest_time() - 1
    request = grant_request(signer, clinician, 0, deadline=deadline)
    with assert_custom_error("ConsentSignatureExpired", deadline):
        grant_by_sig(signed_network, request, signer.private_key, stranger)
    assert signed_network.nonces(signer) == 0


def test_grant_by_sig_reverts_when_deadline_passes_before_submission(signed_network, signer, clinician, stranger):
    deadline = chain.time() + 3600
    request = grant_request(signer, clinician, 0, deadline=deadline)
    signature = sign(signer.private_key, signed_network, "Grant", request)
    chain.sleep(7200)
    with assert_custom_error("ConsentSignatureExpired", deadline):
        signed_network.grantBySig(request, signature, {"from": stranger})


@pytest.mark.parametrize("chain_id", [1, 1337])
def test_grant_by_sig_reverts_for_signature_on_other_chain(signed_network, signer, clinician, stranger, chain_id):
    assert chain_id != chain.id
    request = grant_request(signer, clinician, 0)
    signature = sign(signer.private_key, signed_network, "Grant", request, chain_id=chain_id)
    with assert_custom_error("ConsentInvalidSignature", signer):
        signed_network.grantBySig(request, signature, {"from": stranger})
    assert signed_network.nonces(signer) == 0


def test_grant_by_sig_reverts_for_signature_on_other_contract(
    signed_network, admin, registrar, signer, clinician, stranger
):
    other = Medledger.deploy(admin, {"from": admin})
    request = grant_request(signer, clinician, 0)
    signature = sign(signer.private_key, other, "Grant", request)

    with assert_custom_error("ConsentInvalidSignature", signer):
        signed_network.grantBySig(request, signature, {"from": stranger})

    # The very same signature is good on the deployment it names.
    other.registerPatient(key(40), {"from": signer})
    other.registerParticipant(clinician, 2, key(10), key(11), {"from": admin})
    assert other.grantBySig(request, signature, {"from": stranger}).return_value is True


def test_grant_by_sig_reverts_when_signed_by_wrong_key(signed_network, signer, clinician, stranger):
    request = grant_request(signer, clinician, 0)
    with assert_custom_error("ConsentInvalidSignature", signer):
        grant_by_sig(signed_network, request, INTRUDER_KEY, stranger)
    assert signed_network.nonces(signer) == 0


def test_grant_by_sig_reverts_when_intruder_names_itself_grantee(signed_network, signer, researcher, stranger):
    request = grant_request(signer, researcher, 0)
    with assert_custom_error("ConsentInvalidSignature", signer):
        grant_by_sig(signed_network, request, INTRUDER_KEY, researcher)


@pytest.mark.parametrize(
    "index, value",
    [
        (1, "researcher"),  # grantee
        (2, WRITE),  # access
        (3, mask(ALLERGIES, MEDICATIONS, GENOMICS)),  # categories
        (4, mask(DIRECT_CARE, RESEARCH)),  # purposes
        (5, 1),  # start
        (6, "later"),  # expiry
        (7, key(666)),  # keyEnvelope
        (9, "later"),  # deadline
    ],
    ids=["grantee", "access", "categories", "purposes", "start", "expiry", "keyEnvelope", "deadline"],
)
def test_grant_by_sig_reverts_when_field_tampered_after_signing(
    signed_network, request, signer, clinician, stranger, index, value
):
    signed = grant_request(signer, clinician, 0)
    signature = sign(signer.private_key, signed_network, "Grant", signed)
    if value == "researcher":
        value = request.getfixturevalue("researcher")
    elif value == "later":
        value = signed[index] + 1
    tampered = signed[:index] + (value,) + signed[index + 1:]

    with assert_custom_error("ConsentInvalidSignature", signer):
        signed_network.grantBySig(tampered, signature, {"from": stranger})
    assert signed_network.nonces(signer) == 0


def test_grant_by_sig_reverts_when_patient_field_tampered(signed_network, signer, delegate, clinician, stranger):
    signed = grant_request(signer, clinician, 0)
    signature = sign(signer.private_key, signed_network, "Grant", signed)
    with assert_custom_error("ConsentInvalidSignature", delegate):
        signed_network.grantBySig((delegate, *signed[1:]), signature, {"from": stranger})


@pytest.mark.parametrize("signature", ["0x", "0x" + "11" * 64, "0x" + "00" * 65, "0x" + "ab" * 66])
def test_grant_by_sig_reverts_on_malformed_signature(signed_network, signer, clinician, stranger, signature):
    request = grant_request(signer, clinician, 0)
    with assert_custom_error("ConsentInvalidSignature", signer):
        signed_network.grantBySig(request, signature, {"from": stranger})


def test_grant_by_sig_checks_terms_like_grant(signed_network, signer, clinician, stranger):
    request = grant_request(signer, clinician, 0, categories=1 << 13)
    with assert_custom_error("ConsentInvalidCategories", 1 << 13):
        grant_by_sig(signed_network, request, signer.private_key, stranger)
    request = grant_request(signer, signer, 0)
    with assert_custom_error("ConsentSelfGrant", signer):
        grant_by_sig(signed_network, request, signer.private_key, stranger)
    assert signed_network.nonces(signer) == 0


def test_grant_by_sig_reverts_for_unregistered_grantee(signed_network, signer, stranger):
    request = grant_request(signer, stranger, 0)
    with assert_custom_error("RegistryParticipantNotRegistered", stranger):
        grant_by_sig(signed_network, request, signer.private_key, stranger)


def test_grant_by_sig_reverts_for_suspended_grantee(signed_network, registrar, signer, clinician, stranger):
    signed_network.suspendParticipant(clinician, key(3), {"from": registrar})
    request = grant_request(signer, clinician, 0)
    with assert_custom_error("RegistryParticipantSuspended", clinician):
        grant_by_sig(signed_network, request, signer.private_key, stranger)


def test_grant_by_sig_reverts_for_unregistered_patient(signed_network, clinician, stranger):
    unregistered = Account.from_key(INTRUDER_KEY)
    request = grant_request(unregistered.address, clinician, 0)
    with assert_custom_error("RegistryPatientNotRegistered", unregistered.address):
        grant_by_sig(signed_network, request, INTRUDER_KEY, stranger)


# ------------------------------------------------------------------------------------------------
# revokeBySig
# ------------------------------------------------------------------------------------------------


def test_revoke_by_sig_from_relayer_revokes_and_emits_event(signed_network, signer, clinician, stranger, signed_grant):
    request = revoke_request(signer, clinician, 1)
    tx = revoke_by_sig(signed_network, request, signer.private_key, stranger)

    assert tx.return_value is True
    assert_only_event(tx, "ConsentRevoked", patient=signer, grantee=clinician, access=READ, by=signer)
    assert tuple(signed_network.consent(signer, clinician, READ)) == (0, 0, 0, 0)
    assert signed_network.isPermitted(signer, clinician, READ, ALLERGIES, DIRECT_CARE) is False
    assert signed_network.nonces(signer) == 2


def test_revoke_by_sig_without_consent_consumes_nonce_and_emits_nothing(signed_network, signer, clinician, stranger):
    request = revoke_request(signer, clinician, 0)
    tx = revoke_by_sig(signed_network, request, signer.private_key, stranger)
    assert tx.return_value is False
    assert len(tx.events) == 0
    assert signed_network.nonces(signer) == 1


def test_revoke_by_sig_replay_reverts_with_invalid_nonce(signed_network, signer, clinician, stranger, signed_grant):
    request = revoke_request(signer, clinician, 1)
    signature = sign(signer.private_key, signed_network, "Revoke", request)
    signed_network.revokeBySig(request, signature, {"from": stranger})
    with assert_custom_error("InvalidAccountNonce", signer, 2):
        signed_network.revokeBySig(request, signature, {"from": stranger})


def test_grant_and_revoke_share_one_nonce_sequence(signed_network, signer, clinician, stranger, signed_grant):
    request = revoke_request(signer, clinician, 0)  # signed for the nonce the grant already used
    with assert_custom_error("InvalidAccountNonce", signer, 1):
        revoke_by_sig(signed_network, request, signer.private_key, stranger)


def test_revoke_by_sig_reverts_after_deadline(signed_network, signer, clinician, stranger, signed_grant):
    deadline = latest_time() - 1
    request = revoke_request(signer, clinician, 1, deadline=deadline)
    with assert_custom_error("ConsentSignatureExpired", deadline):
        revoke_by_sig(signed_network, request, signer.private_key, stranger)
    assert signed_network.isPermitted(signer, clinician, READ, ALLERGIES, DIRECT_CARE) is True


def test_revoke_by_sig_reverts_for_signature_on_other_chain(signed_network, signer, clinician, stranger, signed_grant):
    request = revoke_request(signer, clinician, 1)
    signature = sign(signer.private_key, signed_network, "Revoke", request, chain_id=1)
    with assert_custom_error("ConsentInvalidSignature", signer):
        signed_network.revokeBySig(request, signature, {"from": stranger})


def test_revoke_by_sig_reverts_for_signature_on_other_contract(
    signed_network, admin, signer, clinician, stranger, signed_grant
):
    other = Medledger.deploy(admin, {"from": admin})
    request = revoke_request(signer, clinician, 1)
    with assert_custom_error("ConsentInvalidSignature", signer):
        signed_network.revokeBySig(request, sign(signer.private_key, other, "Revoke", request), {"from": stranger})


def test_revoke_by_sig_reverts_when_signed_by_wrong_key(signed_network, signer, clinician, stranger, signed_grant):
    request = revoke_request(signer, clinician, 1)
    with assert_custom_error("ConsentInvalidSignature", signer):
        revoke_by_sig(signed_network, request, INTRUDER_KEY, clinician)
    assert signed_network.isPermitted(signer, clinician, READ, ALLERGIES, DIRECT_CARE) is True


@pytest.mark.parametrize(
    "index, value", [(1, "researcher"), (2, WRITE), (4, "later")], ids=["grantee", "access", "deadline"]
)
def test_revoke_by_sig_reverts_when_field_tampered_after_signing(
    signed_network, request, signer, clinician, stranger, signed_grant, index, value
):
    signed = revoke_request(signer, clinician, 1)
    signature = sign(signer.private_key, signed_network, "Revoke", signed)
    if value == "researcher":
        value = request.getfixturevalue("researcher")
    elif value == "later":
        value = signed[index] + 1
    tampered = signed[:index] + (value,) + signed[index + 1:]
    with assert_custom_error("ConsentInvalidSignature", signer):
        signed_network.revokeBySig(tampered, signature, {"from": stranger})


def test_grant_signature_is_not_a_revoke_signature(signed_network, signer, clinician, stranger, signed_grant):
    """Type separation: a Grant signature cannot be passed off as a Revoke with the same leading fields."""
    grant = grant_request(signer, clinician, 1)
    signature = sign(signer.private_key, signed_network, "Grant", grant)
    with assert_custom_error("ConsentInvalidSignature", signer):
        revoke = revoke_request(signer, clinician, 1, deadline=grant[9])
        signed_network.revokeBySig(revoke, signature, {"from": stranger})


# ------------------------------------------------------------------------------------------------
# ERC-1271 contract-wallet patients
# ------------------------------------------------------------------------------------------------


def test_contract_wallet_is_registered_patient_through_execute(signed_network, wallet, wallet_owner):
    assert wallet.owner() == wallet_owner
    assert signed_network.isPatient(wallet) is True
    assert signed_network.isPatient(wallet_owner) is False
    assert signed_network.patientEncryptionKey(wallet) == key(41)


def test_contract_wallet_execute_reverts_when_caller_is_not_owner(signed_network, wallet, stranger):
    with brownie.reverts(f"MockWalletNotOwner: {stranger.address.lower()}"):
        wallet.execute(signed_network, signed_network.rotatePatientKey.encode_input(key(9)), {"from": stranger})


def test_contract_wallet_execute_bubbles_up_revert(signed_network, wallet, wallet_owner):
    with assert_custom_error("RegistryPatientAlreadyRegistered", wallet):
        wallet.execute(signed_network, signed_network.registerPatient.encode_input(key(9)), {"from": wallet_owner})


def test_contract_wallet_patient_signed_grant_is_accepted(signed_network, wallet, wallet_owner, clinician, stranger):
    request = grant_request(wallet, clinician, 0)
    tx = grant_by_sig(signed_network, request, wallet_owner.private_key, stranger)

    assert tx.return_value is True
    assert_only_event(
        tx,
        "ConsentGranted",
        patient=wallet,
        grantee=clinician,
        access=READ,
        categories=CARE,
        purposes=mask(DIRECT_CARE),
        start=0,
        expiry=request[6],
        keyEnvelope=key(100),
        by=wallet,
    )
    assert signed_network.isPermitted(wallet, clinician, READ, MEDICATIONS, DIRECT_CARE) is True
    assert signed_network.nonces(wallet) == 1
    assert signed_network.nonces(wallet_owner) == 0


def test_contract_wallet_patient_signed_revoke_is_accepted(signed_network, wallet, wallet_owner, clinician, stranger):
    grant = grant_request(wallet, clinician, 0, categories=mask(CONDITIONS))
    grant_by_sig(signed_network, grant, wallet_owner.private_key, stranger)
    request = revoke_request(wallet, clinician, 1)
    tx = revoke_by_sig(signed_network, request, wallet_owner.private_key, stranger)
    assert_only_event(tx, "ConsentRevoked", patient=wallet, grantee=clinician, access=READ, by=wallet)


def test_contract_wallet_patient_rejects_signature_of_wrong_owner(signed_network, wallet, clinician, stranger):
    request = grant_request(wallet, clinician, 0)
    for wrong_key in (INTRUDER_KEY, SIGNER_KEY):
        with assert_custom_error("ConsentInvalidSignature", wallet):
            grant_by_sig(signed_network, request, wrong_key, stranger)
    assert signed_network.nonces(wallet) == 0


def test_contract_wallet_replay_reverts_with_invalid_nonce(signed_network, wallet, wallet_owner, clinician, stranger):
    request = grant_request(wallet, clinician, 0)
    signature = sign(wallet_owner.private_key, signed_network, "Grant", request)
    signed_network.grantBySig(request, signature, {"from": stranger})
    with assert_custom_error("InvalidAccountNonce", wallet, 1):
        signed_network.grantBySig(request, signature, {"from": stranger})


def test_owner_signature_does_not_count_for_owner_address_itself(
    signed_network, wallet, wallet_owner, clinician, stranger
):
    """The owner EOA is not a patient: its own signed grant fails on registration, not on the signature."""
    request = grant_request(wallet_owner, clinician, 0)
    with assert_custom_error("RegistryPatientNotRegistered", wallet_owner):
        grant_by_sig(signed_network, request, wallet_owner.private_key, stranger)
