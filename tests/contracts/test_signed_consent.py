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
    category_keys,
    custom_error_message,
    key,
    mask,
    mine_at,
    now,
    register_patient,
)
from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_utils import keccak

GRANT_TYPE = (
    "Grant(address patient,address grantee,uint8 access,uint16 categories,uint16 purposes,uint64 start,"
    "uint64 expiry,bytes32 keyEnvelope,uint64 issuedAt,uint256 nonce,uint256 deadline)"
)
REVOKE_TYPE = "Revoke(address patient,address grantee,uint8 access,uint64 issuedAt,uint256 nonce,uint256 deadline)"

GRANT_FIELDS = [
    ("patient", "address"),
    ("grantee", "address"),
    ("access", "uint8"),
    ("categories", "uint16"),
    ("purposes", "uint16"),
    ("start", "uint64"),
    ("expiry", "uint64"),
    ("keyEnvelope", "bytes32"),
    ("issuedAt", "uint64"),
    ("nonce", "uint256"),
    ("deadline", "uint256"),
]
REVOKE_FIELDS = [
    ("patient", "address"),
    ("grantee", "address"),
    ("access", "uint8"),
    ("issuedAt", "uint64"),
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
    for (name, typ), value in zip(fields, values, strict=False):
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


def grant_request(
    patient,
    grantee,
    nonce=0,
    categories=CARE,
    purposes=None,
    access=READ,
    start=0,
    expiry=None,
    envelope=None,
    deadline=None,
    issued_at=None,
) -> tuple:
    """A GrantRequest tuple in struct order: issued now (the latest block's time), valid for 30 days,
    deadline in one hour, no key envelope (a wallet without medledger keys signs it) by default."""
    return (
        patient,
        grantee,
        access,
        categories,
        mask(DIRECT_CARE) if purposes is None else purposes,
        start,
        now() + 30 * DAY if expiry is None else expiry,
        ZERO32 if envelope is None else envelope,
        now() if issued_at is None else issued_at,
        nonce,
        now() + 3600 if deadline is None else deadline,
    )


def revoke_request(patient, grantee, nonce=0, access=READ, deadline=None, issued_at=None) -> tuple:
    return (
        patient,
        grantee,
        access,
        now() if issued_at is None else issued_at,
        nonce,
        now() + 3600 if deadline is None else deadline,
    )


def grant_by_sig(contract, request: tuple, private_key: str, sender):
    """Sign `request` as a Grant with `private_key` and have `sender` submit it."""
    return contract.grantBySig(request, sign(private_key, contract, "Grant", request), {"from": sender})


def revoke_by_sig(contract, request: tuple, private_key: str, sender):
    """Sign `request` as a Revoke with `private_key` and have `sender` submit it."""
    return contract.revokeBySig(request, sign(private_key, contract, "Revoke", request), {"from": sender})


def tick(seconds: int = 1) -> None:
    """Let chain time move on, so that a request "signed now" is newer than the last decision."""
    chain.sleep(seconds)
    chain.mine()


def full_consent(contract, patient, grantee, access=READ) -> tuple:
    return tuple(contract.consent(patient, grantee, access))


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
    register_patient(network, signer, 40)
    return network


@pytest.fixture
def signed_grant(signed_network, signer, clinician, stranger):
    """The clinician holds a read consent granted by signature. Returns the request."""
    request = grant_request(signer, clinician)
    grant_by_sig(signed_network, request, signer.private_key, stranger)
    tick()
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
        signed_network,
        signed_network.registerPatient.encode_input(key(41), category_keys(41)),
        {"from": wallet_owner},
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
    request = grant_request(signer, clinician)
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
    request = grant_request(signer, clinician, envelope=key(77))
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
        delegation=0,
    )
    # updatedAt is the time the wallet signed (issuedAt), not the time the relayer submitted.
    assert full_consent(signed_network, signer, clinician) == (
        CARE,
        mask(DIRECT_CARE),
        0,
        request[6],
        request[8],
        0,
        True,
    )
    assert signed_network.isPermitted(signer, clinician, READ, ALLERGIES, DIRECT_CARE) is True
    assert signed_network.nonces(signer) == 0  # not consumed: the nonce is a cancellation generation


def test_grant_by_sig_without_envelope_releases_no_keys(signed_network, signer, clinician, stranger):
    """A wallet that holds no medledger keys signs a read grant; the envelope follows separately."""
    request = grant_request(signer, clinician)
    grant_by_sig(signed_network, request, signer.private_key, stranger)
    assert full_consent(signed_network, signer, clinician)[6] is False
    assert signed_network.categoryKey(signer, ALLERGIES)[2] == 2**64 - 1
    tx = signed_network.publishKeyEnvelope(signer, clinician, CARE, key(78), {"from": signer})
    assert "KeyEnvelopePublished" in tx.events
    assert full_consent(signed_network, signer, clinician)[6] is True
    assert signed_network.categoryKey(signer, ALLERGIES)[2] == request[6]


def test_requests_carry_the_current_nonce_and_do_not_consume_it(
    signed_network, signer, clinician, researcher, stranger
):
    for grantee, access in ((clinician, READ), (researcher, READ), (clinician, WRITE)):
        request = grant_request(signer, grantee, 0, access=access)
        assert grant_by_sig(signed_network, request, signer.private_key, stranger).return_value is True
        assert signed_network.nonces(signer) == 0


def test_grant_by_sig_can_be_submitted_by_the_patient_itself(signed_network, signer, clinician):
    request = grant_request(signer, clinician)
    tx = grant_by_sig(signed_network, request, signer.private_key, signer)
    assert tx.events["ConsentGranted"]["by"] == signer


def test_grant_by_sig_with_unchanged_terms_moves_updated_at_and_says_so(
    signed_network, signer, clinician, stranger, signed_grant
):
    request = grant_request(signer, clinician, expiry=signed_grant[6])  # same terms, issued later
    assert request[8] > signed_grant[8]
    tx = grant_by_sig(signed_network, request, signer.private_key, stranger)

    assert tx.return_value is False
    assert_only_event(tx, "SignedConsentConsumed", patient=signer, grantee=clinician, access=READ, issuedAt=request[8])
    assert full_consent(signed_network, signer, clinician)[:5] == (*signed_grant[3:7], request[8])
    with assert_custom_error("ConsentRequestSuperseded", signer, clinician, request[8], request[8]):
        grant_by_sig(signed_network, request, signer.private_key, stranger)  # and it cannot be replayed


def test_grant_by_sig_accepted_at_deadline(signed_network, signer, clinician, stranger):
    deadline = now() + 100
    request = grant_request(signer, clinician, deadline=deadline)
    signature = sign(signer.private_key, signed_network, "Grant", request)
    web3.provider.make_request("evm_setNextBlockTimestamp", [deadline])
    tx = signed_network.grantBySig(request, signature, {"from": stranger})
    assert tx.timestamp == deadline
    assert tx.return_value is True


def test_grant_by_sig_issued_in_the_same_second_as_its_execution_is_accepted(
    signed_network, signer, clinician, stranger
):
    issued = now() + 50
    request = grant_request(signer, clinician, issued_at=issued)
    signature = sign(signer.private_key, signed_network, "Grant", request)
    web3.provider.make_request("evm_setNextBlockTimestamp", [issued])
    assert signed_network.grantBySig(request, signature, {"from": stranger}).return_value is True


def test_signed_grant_gas_without_envelope(signed_network, signer, researcher, stranger, signed_grant, capsys):
    """Not an assertion on gas: the benchmark measures it. Recorded for the report."""
    request = grant_request(signer, researcher, purposes=mask(RESEARCH))
    tx = grant_by_sig(signed_network, request, signer.private_key, stranger)
    assert tx.return_value is True
    with capsys.disabled():
        print(f"\n[gas] grantBySig, new consent, no envelope: {tx.gas_used}")


# ------------------------------------------------------------------------------------------------
# The lifecycle of signed requests (issue 7 item 5)
# ------------------------------------------------------------------------------------------------


def test_replay_is_refused_as_superseded(signed_network, signer, clinician, stranger):
    request = grant_request(signer, clinician)
    signature = sign(signer.private_key, signed_network, "Grant", request)
    signed_network.grantBySig(request, signature, {"from": stranger})

    block = web3.eth.block_number + 1
    with assert_custom_error("ConsentRequestSuperseded", signer, clinician, request[8], request[8]):
        signed_network.grantBySig(request, signature, {"from": stranger})
    assert web3.eth.get_logs({"fromBlock": block, "address": signed_network.address}) == []


def test_request_held_back_by_a_relayer_blocks_nothing(signed_network, signer, clinician, researcher, stranger):
    held = grant_request(signer, clinician)
    held_signature = sign(signer.private_key, signed_network, "Grant", held)
    tick()
    later = grant_request(signer, researcher, purposes=mask(RESEARCH))
    assert grant_by_sig(signed_network, later, signer.private_key, stranger).return_value is True
    # The held-back one still works afterwards: requests for other consents do not queue behind it.
    assert signed_network.grantBySig(held, held_signature, {"from": stranger}).return_value is True
    assert signed_network.isPermitted(signer, clinician, READ, ALLERGIES, DIRECT_CARE) is True
    assert signed_network.isPermitted(signer, researcher, READ, ALLERGIES, RESEARCH) is True


def test_direct_revoke_is_not_undone_by_an_older_signed_renewal(
    signed_network, signer, clinician, stranger, signed_grant
):
    renewal = grant_request(signer, clinician, expiry=now() + 90 * DAY)
    renewal_signature = sign(signer.private_key, signed_network, "Grant", renewal)  # held back
    tick()
    revoked = signed_network.revoke(signer, clinician, READ, {"from": signer})

    with assert_custom_error("ConsentRequestSuperseded", signer, clinician, renewal[8], revoked.timestamp):
        signed_network.grantBySig(renewal, renewal_signature, {"from": stranger})
    assert signed_network.isPermitted(signer, clinician, READ, ALLERGIES, DIRECT_CARE) is False


def test_signed_revoke_is_not_undone_by_an_older_signed_grant(
    signed_network, signer, clinician, stranger, signed_grant
):
    regrant = grant_request(signer, clinician, categories=mask(ALLERGIES))
    regrant_signature = sign(signer.private_key, signed_network, "Grant", regrant)
    tick()
    revoke = revoke_request(signer, clinician)
    revoke_by_sig(signed_network, revoke, signer.private_key, stranger)

    with assert_custom_error("ConsentRequestSuperseded", signer, clinician, regrant[8], revoke[3]):
        signed_network.grantBySig(regrant, regrant_signature, {"from": stranger})


def test_older_signed_request_cannot_undo_a_newer_direct_grant(signed_network, signer, clinician, stranger):
    narrow = grant_request(signer, clinician, categories=mask(ALLERGIES))
    narrow_signature = sign(signer.private_key, signed_network, "Grant", narrow)
    tick()
    direct = signed_network.grant(
        signer, clinician, READ, (CARE, mask(DIRECT_CARE), 0, now() + DAY), ZERO32, {"from": signer}
    )
    with assert_custom_error("ConsentRequestSuperseded", signer, clinician, narrow[8], direct.timestamp):
        signed_network.grantBySig(narrow, narrow_signature, {"from": stranger})


def test_request_issued_in_the_future_reverts(signed_network, signer, clinician, stranger):
    issued = now() + 3600
    request = grant_request(signer, clinician, issued_at=issued)
    signature = sign(signer.private_key, signed_network, "Grant", request)
    with pytest.raises(brownie.exceptions.VirtualMachineError) as info:
        signed_network.grantBySig(request, signature, {"from": stranger})
    at = brownie.history[-1].timestamp
    assert info.value.revert_msg == custom_error_message("ConsentInvalidIssuedAt", issued, at)


def test_request_dated_in_the_future_counts_from_that_time_and_can_be_voided(
    signed_network, signer, clinician, stranger
):
    """What a request says about itself is the wallet's word (README, threat model): a request dated
    ahead cannot be used before then, then outranks a decision taken in between; cancelling voids it."""
    issued = now() + 3600
    request = grant_request(signer, clinician, issued_at=issued, deadline=issued + 3600)
    signature = sign(signer.private_key, signed_network, "Grant", request)
    with pytest.raises(brownie.exceptions.VirtualMachineError) as info:
        signed_network.grantBySig(request, signature, {"from": stranger})
    at = brownie.history[-1].timestamp
    assert info.value.revert_msg == custom_error_message("ConsentInvalidIssuedAt", issued, at)
    # A decision taken in between (a grant, then its revocation) ...
    signed_network.grant(signer, clinician, READ, (CARE, mask(DIRECT_CARE), 0, now() + DAY), ZERO32, {"from": signer})
    signed_network.revoke(signer, clinician, READ, {"from": signer})
    mine_at(issued)
    # ... is outranked once chain time reaches the request's date,
    assert signed_network.grantBySig.call(request, signature, {"from": stranger}) is True
    # unless the patient cancels outstanding requests.
    signed_network.invalidateSignedRequests(signer, {"from": signer})
    with assert_custom_error("InvalidAccountNonce", signer, 1):
        signed_network.grantBySig(request, signature, {"from": stranger})


def test_request_whose_terms_ran_out_before_submission_leaves_nothing_stuck(
    signed_network, signer, clinician, researcher, stranger
):
    """A request delayed past its consent's expiry fails on its own and blocks no other request."""
    expiry = now() + 60
    stale = grant_request(signer, clinician, expiry=expiry)
    stale_signature = sign(signer.private_key, signed_network, "Grant", stale)
    chain.sleep(120)
    with pytest.raises(brownie.exceptions.VirtualMachineError) as info:
        signed_network.grantBySig(stale, stale_signature, {"from": stranger})
    at = brownie.history[-1].timestamp
    assert info.value.revert_msg == custom_error_message("ConsentInvalidWindow", 0, expiry, at)
    fresh = grant_request(signer, researcher, purposes=mask(RESEARCH))
    assert grant_by_sig(signed_network, fresh, signer.private_key, stranger).return_value is True


@pytest.mark.parametrize("caller_name", ["signer", "delegate"])
def test_invalidate_signed_requests_voids_every_outstanding_request(
    signed_network, request, signer, delegate, clinician, researcher, stranger, caller_name
):
    caller = request.getfixturevalue(caller_name)
    if caller_name == "delegate":
        signed_network.appointDelegate(delegate, mask(ALLERGIES), now() + DAY, {"from": signer})
    outstanding = [grant_request(signer, g) for g in (clinician, researcher)]
    signatures = [sign(signer.private_key, signed_network, "Grant", r) for r in outstanding]

    tx = signed_network.invalidateSignedRequests(signer, {"from": caller})

    assert tx.return_value == 1
    assert_only_event(tx, "SignedRequestsInvalidated", patient=signer, newNonce=1, by=caller)
    assert signed_network.nonces(signer) == 1
    for held, signature in zip(outstanding, signatures, strict=False):
        with assert_custom_error("InvalidAccountNonce", signer, 1):
            signed_network.grantBySig(held, signature, {"from": stranger})
    renewed = grant_request(signer, clinician, nonce=1)
    assert grant_by_sig(signed_network, renewed, signer.private_key, stranger).return_value is True


def test_invalidate_signed_requests_again_moves_the_nonce_again(signed_network, signer):
    """Not idempotent by design: every call is a new cancellation, and says so."""
    signed_network.invalidateSignedRequests(signer, {"from": signer})
    tx = signed_network.invalidateSignedRequests(signer, {"from": signer})
    assert_only_event(tx, "SignedRequestsInvalidated", patient=signer, newNonce=2, by=signer)


@pytest.mark.parametrize("caller_name", ["stranger", "clinician", "delegate"])
def test_invalidate_signed_requests_reverts_for_others(signed_network, request, signer, caller_name):
    caller = request.getfixturevalue(caller_name)  # the delegate has not been appointed by the signer
    with assert_custom_error("ConsentUnauthorized", caller, signer):
        signed_network.invalidateSignedRequests(signer, {"from": caller})
    assert signed_network.nonces(signer) == 0


def test_invalidate_signed_requests_reverts_for_suspended_delegate(signed_network, registrar, signer, delegate):
    signed_network.appointDelegate(delegate, mask(ALLERGIES), now() + DAY, {"from": signer})
    signed_network.registerParticipant(delegate, 3, key(5), key(6), {"from": registrar})
    signed_network.suspendParticipant(delegate, key(7), {"from": registrar})
    with assert_custom_error("RegistryParticipantSuspended", delegate):
        signed_network.invalidateSignedRequests(signer, {"from": delegate})


def test_invalidate_signed_requests_reverts_for_unregistered_patient(signed_network, stranger):
    with assert_custom_error("RegistryPatientNotRegistered", stranger):
        signed_network.invalidateSignedRequests(stranger, {"from": stranger})


# ------------------------------------------------------------------------------------------------
# grantBySig: rejected
# ------------------------------------------------------------------------------------------------


def test_grant_by_sig_with_another_nonce_reverts(signed_network, signer, clinician, stranger):
    for nonce in (1, 5):
        request = grant_request(signer, clinician, nonce)
        with assert_custom_error("InvalidAccountNonce", signer, 0):
            grant_by_sig(signed_network, request, signer.private_key, stranger)


def test_grant_by_sig_reverts_after_deadline(signed_network, signer, clinician, stranger):
    deadline = now() - 1
    request = grant_request(signer, clinician, deadline=deadline)
    with assert_custom_error("ConsentSignatureExpired", deadline):
        grant_by_sig(signed_network, request, signer.private_key, stranger)


def test_grant_by_sig_reverts_when_deadline_passes_before_submission(signed_network, signer, clinician, stranger):
    deadline = now() + 3600
    request = grant_request(signer, clinician, deadline=deadline)
    signature = sign(signer.private_key, signed_network, "Grant", request)
    chain.sleep(7200)
    with assert_custom_error("ConsentSignatureExpired", deadline):
        signed_network.grantBySig(request, signature, {"from": stranger})


@pytest.mark.parametrize("chain_id", [1, 1337])
def test_grant_by_sig_reverts_for_signature_on_other_chain(signed_network, signer, clinician, stranger, chain_id):
    assert chain_id != chain.id
    request = grant_request(signer, clinician)
    signature = sign(signer.private_key, signed_network, "Grant", request, chain_id=chain_id)
    with assert_custom_error("ConsentInvalidSignature", signer):
        signed_network.grantBySig(request, signature, {"from": stranger})


def test_grant_by_sig_reverts_for_signature_on_other_contract(
    signed_network, admin, registrar, signer, clinician, stranger
):
    other = Medledger.deploy(admin, {"from": admin})
    request = grant_request(signer, clinician)
    signature = sign(signer.private_key, other, "Grant", request)

    with assert_custom_error("ConsentInvalidSignature", signer):
        signed_network.grantBySig(request, signature, {"from": stranger})

    # The very same signature is good on the deployment it names.
    register_patient(other, signer, 40)
    other.registerParticipant(clinician, 2, key(10), key(11), {"from": admin})
    assert other.grantBySig(request, signature, {"from": stranger}).return_value is True


def test_grant_by_sig_reverts_when_signed_by_wrong_key(signed_network, signer, clinician, stranger):
    request = grant_request(signer, clinician)
    with assert_custom_error("ConsentInvalidSignature", signer):
        grant_by_sig(signed_network, request, INTRUDER_KEY, stranger)


def test_grant_by_sig_reverts_when_intruder_names_itself_grantee(signed_network, signer, researcher, stranger):
    request = grant_request(signer, researcher)
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
        (8, "earlier"),  # issuedAt
        (10, "later"),  # deadline
    ],
    ids=["grantee", "access", "categories", "purposes", "start", "expiry", "keyEnvelope", "issuedAt", "deadline"],
)
def test_grant_by_sig_reverts_when_field_tampered_after_signing(
    signed_network, request, signer, clinician, stranger, index, value
):
    signed = grant_request(signer, clinician)
    signature = sign(signer.private_key, signed_network, "Grant", signed)
    if value == "researcher":
        value = request.getfixturevalue("researcher")
    elif value == "later":
        value = signed[index] + 1
    elif value == "earlier":
        value = signed[index] - 1
    tampered = (*signed[:index], value, *signed[index + 1 :])

    with assert_custom_error("ConsentInvalidSignature", signer):
        signed_network.grantBySig(tampered, signature, {"from": stranger})


def test_grant_by_sig_reverts_when_patient_field_tampered(signed_network, signer, delegate, clinician, stranger):
    signed = grant_request(signer, clinician)
    signature = sign(signer.private_key, signed_network, "Grant", signed)
    with assert_custom_error("ConsentInvalidSignature", delegate):
        signed_network.grantBySig((delegate, *signed[1:]), signature, {"from": stranger})


@pytest.mark.parametrize("signature", ["0x", "0x" + "11" * 64, "0x" + "00" * 65, "0x" + "ab" * 66])
def test_grant_by_sig_reverts_on_malformed_signature(signed_network, signer, clinician, stranger, signature):
    request = grant_request(signer, clinician)
    with assert_custom_error("ConsentInvalidSignature", signer):
        signed_network.grantBySig(request, signature, {"from": stranger})


def test_contract_takes_v_27_or_28_only_the_tooling_normalises(signed_network, signer, clinician, stranger):
    """The wallet forms v = 0/1 and 64-byte EIP-2098 signatures are normalised off chain; the contract
    refuses them, so the tooling's pre-check and the contract must agree on the normalised form."""
    request = grant_request(signer, clinician)
    good = bytes.fromhex(sign(signer.private_key, signed_network, "Grant", request)[2:])
    assert good[64] in (27, 28)
    v01 = good[:64] + bytes([good[64] - 27])
    compact_s = int.from_bytes(good[32:64], "big") | ((good[64] - 27) << 255)
    eip2098 = good[:32] + compact_s.to_bytes(32, "big")
    for wallet_form in (v01, eip2098):
        with assert_custom_error("ConsentInvalidSignature", signer):
            signed_network.grantBySig(request, "0x" + wallet_form.hex(), {"from": stranger})
    assert signed_network.grantBySig(request, "0x" + good.hex(), {"from": stranger}).return_value is True


def test_grant_by_sig_checks_terms_like_grant(signed_network, signer, clinician, stranger):
    request = grant_request(signer, clinician, categories=1 << 13)
    with assert_custom_error("ConsentInvalidCategories", 1 << 13):
        grant_by_sig(signed_network, request, signer.private_key, stranger)
    request = grant_request(signer, signer)
    with assert_custom_error("ConsentSelfGrant", signer):
        grant_by_sig(signed_network, request, signer.private_key, stranger)
    request = grant_request(signer, clinician, access=WRITE, envelope=key(5))
    with assert_custom_error("ConsentEnvelopeForWrite", clinician):
        grant_by_sig(signed_network, request, signer.private_key, stranger)


def test_grant_by_sig_reverts_for_unregistered_grantee(signed_network, signer, stranger):
    request = grant_request(signer, stranger)
    with assert_custom_error("RegistryParticipantNotRegistered", stranger):
        grant_by_sig(signed_network, request, signer.private_key, stranger)


def test_grant_by_sig_reverts_for_suspended_grantee(signed_network, registrar, signer, clinician, stranger):
    signed_network.suspendParticipant(clinician, key(3), {"from": registrar})
    request = grant_request(signer, clinician)
    with assert_custom_error("RegistryParticipantSuspended", clinician):
        grant_by_sig(signed_network, request, signer.private_key, stranger)


def test_grant_by_sig_reverts_for_unregistered_patient(signed_network, clinician, stranger):
    unregistered = Account.from_key(INTRUDER_KEY)
    request = grant_request(unregistered.address, clinician)
    with assert_custom_error("RegistryPatientNotRegistered", unregistered.address):
        grant_by_sig(signed_network, request, INTRUDER_KEY, stranger)


# ------------------------------------------------------------------------------------------------
# revokeBySig
# ------------------------------------------------------------------------------------------------


def test_revoke_by_sig_from_relayer_revokes_and_emits_event(signed_network, signer, clinician, stranger, signed_grant):
    request = revoke_request(signer, clinician)
    tx = revoke_by_sig(signed_network, request, signer.private_key, stranger)

    assert tx.return_value is True
    assert_only_event(tx, "ConsentRevoked", patient=signer, grantee=clinician, access=READ, by=signer)
    assert full_consent(signed_network, signer, clinician) == (0, 0, 0, 0, request[3], 0, False)
    assert signed_network.isPermitted(signer, clinician, READ, ALLERGIES, DIRECT_CARE) is False
    assert signed_network.nonces(signer) == 0


def test_revoke_by_sig_without_consent_records_the_decision_and_says_so(signed_network, signer, clinician, stranger):
    request = revoke_request(signer, clinician)
    tx = revoke_by_sig(signed_network, request, signer.private_key, stranger)
    assert tx.return_value is False
    assert_only_event(tx, "SignedConsentConsumed", patient=signer, grantee=clinician, access=READ, issuedAt=request[3])
    assert full_consent(signed_network, signer, clinician) == (0, 0, 0, 0, request[3], 0, False)


def test_revoke_by_sig_replay_is_superseded(signed_network, signer, clinician, stranger, signed_grant):
    request = revoke_request(signer, clinician)
    signature = sign(signer.private_key, signed_network, "Revoke", request)
    signed_network.revokeBySig(request, signature, {"from": stranger})
    with assert_custom_error("ConsentRequestSuperseded", signer, clinician, request[3], request[3]):
        signed_network.revokeBySig(request, signature, {"from": stranger})


def test_grant_and_revoke_carry_the_same_nonce(signed_network, signer, clinician, stranger, signed_grant):
    request = revoke_request(signer, clinician, 0)  # the nonce the grant carried too
    assert revoke_by_sig(signed_network, request, signer.private_key, stranger).return_value is True


def test_revoke_by_sig_reverts_for_unregistered_patient(signed_network, clinician, stranger):
    unregistered = Account.from_key(INTRUDER_KEY)
    request = revoke_request(unregistered.address, clinician)
    with assert_custom_error("RegistryPatientNotRegistered", unregistered.address):
        revoke_by_sig(signed_network, request, INTRUDER_KEY, stranger)


def test_revoke_by_sig_reverts_after_deadline(signed_network, signer, clinician, stranger, signed_grant):
    deadline = now() - 1
    request = revoke_request(signer, clinician, deadline=deadline)
    with assert_custom_error("ConsentSignatureExpired", deadline):
        revoke_by_sig(signed_network, request, signer.private_key, stranger)
    assert signed_network.isPermitted(signer, clinician, READ, ALLERGIES, DIRECT_CARE) is True


def test_revoke_by_sig_reverts_for_signature_on_other_chain(signed_network, signer, clinician, stranger, signed_grant):
    request = revoke_request(signer, clinician)
    signature = sign(signer.private_key, signed_network, "Revoke", request, chain_id=1)
    with assert_custom_error("ConsentInvalidSignature", signer):
        signed_network.revokeBySig(request, signature, {"from": stranger})


def test_revoke_by_sig_reverts_for_signature_on_other_contract(
    signed_network, admin, signer, clinician, stranger, signed_grant
):
    other = Medledger.deploy(admin, {"from": admin})
    request = revoke_request(signer, clinician)
    with assert_custom_error("ConsentInvalidSignature", signer):
        signed_network.revokeBySig(request, sign(signer.private_key, other, "Revoke", request), {"from": stranger})


def test_revoke_by_sig_reverts_when_signed_by_wrong_key(signed_network, signer, clinician, stranger, signed_grant):
    request = revoke_request(signer, clinician)
    with assert_custom_error("ConsentInvalidSignature", signer):
        revoke_by_sig(signed_network, request, INTRUDER_KEY, clinician)
    assert signed_network.isPermitted(signer, clinician, READ, ALLERGIES, DIRECT_CARE) is True


@pytest.mark.parametrize(
    "index, value",
    [(1, "researcher"), (2, WRITE), (3, "earlier"), (5, "later")],
    ids=["grantee", "access", "issuedAt", "deadline"],
)
def test_revoke_by_sig_reverts_when_field_tampered_after_signing(
    signed_network, request, signer, clinician, stranger, signed_grant, index, value
):
    signed = revoke_request(signer, clinician)
    signature = sign(signer.private_key, signed_network, "Revoke", signed)
    if value == "researcher":
        value = request.getfixturevalue("researcher")
    elif value == "later":
        value = signed[index] + 1
    elif value == "earlier":
        value = signed[index] - 1
    tampered = (*signed[:index], value, *signed[index + 1 :])
    with assert_custom_error("ConsentInvalidSignature", signer):
        signed_network.revokeBySig(tampered, signature, {"from": stranger})


def test_grant_signature_is_not_a_revoke_signature(signed_network, signer, clinician, stranger, signed_grant):
    """Type separation: a Grant signature cannot be passed off as a Revoke with the same leading fields."""
    grant = grant_request(signer, clinician)
    signature = sign(signer.private_key, signed_network, "Grant", grant)
    with assert_custom_error("ConsentInvalidSignature", signer):
        revoke = revoke_request(signer, clinician, issued_at=grant[8], deadline=grant[10])
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
        wallet.execute(signed_network, signed_network.invalidateSignedRequests.encode_input(wallet), {"from": stranger})


def test_contract_wallet_execute_bubbles_up_revert(signed_network, wallet, wallet_owner):
    with assert_custom_error("RegistryPatientAlreadyRegistered", wallet):
        wallet.execute(
            signed_network,
            signed_network.registerPatient.encode_input(key(9), category_keys(9)),
            {"from": wallet_owner},
        )


def test_contract_wallet_patient_signed_grant_is_accepted(signed_network, wallet, wallet_owner, clinician, stranger):
    request = grant_request(wallet, clinician)
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
        keyEnvelope=ZERO32,
        by=wallet,
        delegation=0,
    )
    assert signed_network.isPermitted(wallet, clinician, READ, MEDICATIONS, DIRECT_CARE) is True


def test_contract_wallet_patient_signed_revoke_is_accepted(signed_network, wallet, wallet_owner, clinician, stranger):
    grant = grant_request(wallet, clinician, categories=mask(CONDITIONS))
    grant_by_sig(signed_network, grant, wallet_owner.private_key, stranger)
    tick()
    request = revoke_request(wallet, clinician)
    tx = revoke_by_sig(signed_network, request, wallet_owner.private_key, stranger)
    assert_only_event(tx, "ConsentRevoked", patient=wallet, grantee=clinician, access=READ, by=wallet)


def test_contract_wallet_patient_rejects_signature_of_wrong_owner(signed_network, wallet, clinician, stranger):
    request = grant_request(wallet, clinician)
    for wrong_key in (INTRUDER_KEY, SIGNER_KEY):
        with assert_custom_error("ConsentInvalidSignature", wallet):
            grant_by_sig(signed_network, request, wrong_key, stranger)


def test_contract_wallet_replay_is_superseded(signed_network, wallet, wallet_owner, clinician, stranger):
    request = grant_request(wallet, clinician)
    signature = sign(wallet_owner.private_key, signed_network, "Grant", request)
    signed_network.grantBySig(request, signature, {"from": stranger})
    with assert_custom_error("ConsentRequestSuperseded", wallet, clinician, request[8], request[8]):
        signed_network.grantBySig(request, signature, {"from": stranger})


def test_contract_wallet_invalidates_its_requests_through_execute(
    signed_network, wallet, wallet_owner, clinician, stranger
):
    request = grant_request(wallet, clinician)
    signature = sign(wallet_owner.private_key, signed_network, "Grant", request)
    wallet.execute(signed_network, signed_network.invalidateSignedRequests.encode_input(wallet), {"from": wallet_owner})
    with assert_custom_error("InvalidAccountNonce", wallet, 1):
        signed_network.grantBySig(request, signature, {"from": stranger})


def test_owner_signature_does_not_count_for_owner_address_itself(
    signed_network, wallet, wallet_owner, clinician, stranger
):
    """The owner EOA is not a patient: its own signed grant fails on registration, not on the signature."""
    request = grant_request(wallet_owner, clinician)
    with assert_custom_error("RegistryPatientNotRegistered", wallet_owner):
        grant_by_sig(signed_network, request, wallet_owner.private_key, stranger)
