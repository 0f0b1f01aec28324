"""Signed consent from real wallets (issue 7 item 6): requests signed by MetaMask's signing library
(@metamask/eth-sig-util, signTypedData V4) and ethers v6 (Wallet.signTypedData, EIP-2098 compact
signatures), through scripts/wallet-sign.mjs, submitted with `medledger consent submit` against the
session's anvil. What a dapp may hand over (a bare payload, JSON numbers, hex strings, v 0/1) is taken;
what the contract would refuse is refused before any gas, with the reason; a read grant signed
without keys is followed by `consent send-keys`; an ERC-1271 contract wallet keeps working."""

from __future__ import annotations

import copy
import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
from test_cli import OBS, add_observation, as_json, fails, ok, write_json

from medledger import codes
from medledger.chain import Tx, eip712
from medledger.chain.artifacts import ROOT, compile_test_double
from medledger.crypto import generate_keypair
from medledger.errors import AccessDenied
from medledger.keystore import Identity

WALLET = ROOT / "scripts" / "wallet-sign.mjs"
HOUR = 3600


def wallet_sign(payload: dict | Path, who: Identity, *, library: str = "ethers", form: str = "rsv") -> str:
    """The signature ``who``'s wallet makes of ``payload`` with the real library (ethers or metamask)."""
    text = payload.read_text() if isinstance(payload, Path) else json.dumps(payload)
    done = subprocess.run(
        ["node", str(WALLET), "-", "--with", library, "--form", form],
        input=text,
        capture_output=True,
        text=True,
        env={**os.environ, "WALLET_PRIVATE_KEY": "0x" + bytes(who.account.key).hex()},
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def prepare(run, workdir: Path, *extra: str, grantee: str = "researcher", name: str = "request.json") -> Path:
    """`consent prepare` of a read grant of observations for research, for the patient's wallet."""
    out = workdir / name
    ok(run("consent", "prepare", grantee, "--patient", "patient", "--read", "--categories", "obs",
           "--purposes", "research", "--out", out, *extra))  # fmt: skip
    return out


def unchanged_chain(client, relayer):
    """What must not move when a request is refused before sending: the block and the relayer's nonce."""
    return client.chain.block_number(), client.chain.nonce(relayer.address), client.chain.balance(relayer.address)


def refused(run, client, relayer, code: int, *args: Any, fragments: tuple[str, ...], input: str | None = None) -> str:
    before = unchanged_chain(client, relayer)
    result = fails(run("consent", "submit", *args, as_="relayer", input=input), code, *fragments)
    assert unchanged_chain(client, relayer) == before  # no transaction, no gas
    return result.stderr


# --- the real libraries, the whole flow ------------------------------------------------------------
def test_metamask_signed_read_grant_without_keys_then_the_keys_follow(run, workdir, client, patient, researcher):
    """MetaMask's signTypedData V4 of the file `consent prepare` wrote; the grant carries no envelope, so
    the study cannot read until the patient's own medledger sends the keys (`consent send-keys`)."""
    written = add_observation(run, workdir)
    request = prepare(run, workdir)
    body = json.loads(request.read_text())
    assert body["message"]["keyEnvelope"] == "0x" + "00" * 32 and body["message"]["expiry"] == str(2**64 - 1)
    assert body["message"]["deadline"] == str(int(body["message"]["issuedAt"]) + 24 * HOUR)  # hours, not months
    assert "signature" not in body
    signature = wallet_sign(request, patient, library="metamask")

    submitted = run("consent", "submit", request, "--signature", signature, "--json", as_="relayer")
    answer = as_json(submitted)
    assert answer["changed"] and answer["keys_follow"] and answer["signer"] == patient.address
    assert "consent send-keys" in submitted.stderr
    state = client.contract.consent(patient.address, researcher.address, codes.Access.READ)
    assert state.exists and not state.keys_released
    read = ["records", "read", written["record_id"], "--purpose", "research"]
    fails(run(*read, as_="researcher"), 4)  # no key yet

    sent = as_json(run("consent", "send-keys", "researcher", "--json", as_="patient"))
    assert sent == {"patient": patient.address, "grantee": researcher.address, "categories": ["observations"]}
    assert client.contract.consent(patient.address, researcher.address, codes.Access.READ).keys_released
    assert json.loads(ok(run(*read, as_="researcher")).stdout) == OBS


def test_a_delegate_sends_the_keys_and_nobody_else_can(run, workdir, client, patient, delegate, researcher):
    ok(run("delegate", "add", "delegate", "--categories", "obs", "--days", "30", as_="patient"))
    request = prepare(run, workdir)
    ok(run("consent", "submit", request, "--signature", wallet_sign(request, patient), as_="relayer"))
    fails(run("consent", "send-keys", "researcher", "--patient", "patient", as_="stranger"), 10, "may not manage")
    sent = as_json(run("consent", "send-keys", "researcher", "--patient", "patient", "--json", as_="delegate"))
    assert sent["categories"] == ["observations"]
    fails(run("consent", "send-keys", "app", as_="patient"), 10, "holds no read consent")


@pytest.mark.parametrize(
    ("library", "form"),
    [("ethers", "rsv"), ("ethers", "compact"), ("metamask", "yparity"), ("ethers", "yparity")],
)
def test_what_ethers_and_metamask_return_is_submitted(run, workdir, client, patient, researcher, library, form):
    """65-byte v 27/28, 64-byte EIP-2098 and v 0/1 signatures: one normalisation serves the pre-check and
    the contract, which itself refuses every form but the first."""
    request = prepare(run, workdir)
    signature = wallet_sign(request, patient, library=library, form=form)
    assert len(bytes.fromhex(signature[2:])) == (64 if form == "compact" else 65)
    if form != "rsv":  # what the contract says to the form as the wallet gave it: hence the normalisation
        typed = eip712.parse(json.loads(request.read_text())).request
        with pytest.raises(AccessDenied, match=r"not patient .* signature") as err:
            client.contract.grant_by_sig(typed, bytes.fromhex(signature[2:]), sender=researcher)
        assert err.value.error_name == "ConsentInvalidSignature"
    submitted = run("consent", "submit", request, "--signature", signature, "--json", as_="relayer")
    assert as_json(submitted)["changed"]
    assert ("signature normalised" in submitted.stderr) == (form != "rsv")
    assert client.contract.consent(patient.address, researcher.address, codes.Access.READ).exists


def test_a_bare_payload_as_a_dapp_hands_it_over(run, workdir, client, patient, researcher):
    """No medledger metadata, no EIP712Domain type (as ethers takes types), numbers as JSON numbers
    (a date, not "no expiry": JavaScript keeps those exact), the signature inside."""
    request = prepare(run, workdir, "--days", "30")
    payload = json.loads(request.read_text())
    del payload["medledger"], payload["types"]["EIP712Domain"]
    payload["domain"]["chainId"] = int(payload["domain"]["chainId"])
    payload["message"] = {k: (int(v) if v.isdigit() else v) for k, v in payload["message"].items()}
    payload["signature"] = wallet_sign(payload, patient)
    ok(run("consent", "submit", write_json(workdir / "dapp.json", payload), as_="relayer"))
    assert client.contract.consent(patient.address, researcher.address, codes.Access.READ).exists


def test_a_payload_with_hex_numbers_from_standard_input(run, workdir, client, patient, researcher, cli_env):
    request = prepare(run, workdir, "--days", "30")
    payload = json.loads(request.read_text())
    payload["domain"]["chainId"] = hex(int(payload["domain"]["chainId"]))
    payload["message"] = {k: (hex(int(v)) if v.isdigit() else v) for k, v in payload["message"].items()}
    signature = wallet_sign(payload, patient, library="metamask")
    ok(run("consent", "submit", "-", "--signature", signature, as_="relayer", input=json.dumps(payload)))
    assert client.contract.consent(patient.address, researcher.address, codes.Access.READ).exists


def test_no_expiry_rounded_by_javascript_is_refused_with_the_reason(run, workdir, client, patient, relayer):
    request = prepare(run, workdir)
    signature = wallet_sign(request, patient)
    rounded = subprocess.run(  # a dapp that turned the decimal strings into numbers
        ["node", "-e", "const p = JSON.parse(require('fs').readFileSync(0, 'utf8'));"
         "p.message.expiry = Number(p.message.expiry); process.stdout.write(JSON.stringify(p));"],
        input=request.read_text(), capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert '"expiry":18446744073709552000' in rounded
    refused(run, client, relayer, 2, "-", "--signature", signature, input=rounded, fragments=(
        "message.expiry is 18446744073709552000, more than a uint64 holds", "a JavaScript number rounded it"
    ))  # fmt: skip


# --- refused before any gas, with the reason -----------------------------------------------------------
@pytest.mark.parametrize("change", ["chain", "contract"])
def test_a_request_signed_for_another_chain_or_contract(run, workdir, client, patient, relayer, change):
    payload = json.loads(prepare(run, workdir).read_text())
    if change == "chain":
        payload["domain"]["chainId"] = "1"
    else:
        payload["domain"]["verifyingContract"] = "0x" + "11" * 20
    payload["signature"] = wallet_sign(payload, patient)  # a valid signature, for that other domain
    stderr = refused(run, client, relayer, 10, write_json(workdir / "other.json", payload),
                     fragments=("The request was signed for chain",))  # fmt: skip
    assert ("chain 1 and" in stderr) == (change == "chain") and ("0x1111" in stderr) == (change == "contract")


def test_an_altered_request_and_another_signer(run, workdir, client, patient, researcher, relayer):
    request = prepare(run, workdir)
    payload = json.loads(request.read_text())
    payload["signature"] = wallet_sign(payload, patient)
    altered = copy.deepcopy(payload)
    altered["message"]["purposes"] = str(0b1111)  # research, and commercial use too
    refused(run, client, relayer, 10, write_json(workdir / "altered.json", altered),
            fragments=("is not patient", "changed after it was signed"))  # fmt: skip
    stderr = refused(run, client, relayer, 10, request, "--signature", wallet_sign(request, researcher),
                     fragments=(f"it recovers to {researcher.address}",))  # fmt: skip
    assert "The signature was made by" in stderr and "(researcher)" in stderr
    refused(run, client, relayer, 10, request, "--signature", wallet_sign(request, researcher), "--check-only",
            fragments=("is not patient",))  # fmt: skip
    refused(run, client, relayer, 2, request, fragments=("The request is not signed",))
    refused(run, client, relayer, 2, request, "--signature", "0x" + "ab" * 70, fragments=("70 bytes",))


def test_a_request_held_back_past_its_deadline_superseded_or_invalidated(run, workdir, client, patient, relayer):
    """What a relayer that held a request back is told: expired (with the chain's time), overridden by a
    later decision (which one, when), cancelled by the patient."""
    short = prepare(run, workdir, "--valid-hours", "1", name="short.json")
    ok(run("consent", "submit", short, "--signature", wallet_sign(short, patient), "--check-only", as_="relayer"))
    client.chain.rpc("evm_increaseTime", [2 * HOUR])
    client.chain.rpc("evm_mine", [])
    refused(run, client, relayer, 10, short, "--signature", wallet_sign(short, patient), fragments=(
        "could be submitted until", "the chain's time is", "later: it has expired"
    ))  # fmt: skip

    held = prepare(run, workdir, name="held.json")
    held_signature = wallet_sign(held, patient)
    client.chain.rpc("evm_increaseTime", [5])
    ok(run("consent", "grant", "researcher", "--read", "--categories", "obs,conditions", "--purposes", "research",
           "--yes", as_="patient"))  # fmt: skip
    refused(run, client, relayer, 10, held, "--signature", held_signature, fragments=(
        "is not newer than the last decision", "that was changed", "an older request never undoes a newer decision"
    ))  # fmt: skip

    client.chain.rpc("evm_increaseTime", [5])
    client.chain.rpc("evm_mine", [])
    cancelled = prepare(run, workdir, name="cancelled.json")
    cancelled_signature = wallet_sign(cancelled, patient)
    ok(run("consent", "invalidate-requests", as_="patient"))
    refused(run, client, relayer, 10, cancelled, "--signature", cancelled_signature,
            fragments=("invalidated its outstanding signed requests",))  # fmt: skip


def test_check_only_sends_nothing_and_needs_no_identity(run, workdir, client, patient, relayer):
    request = prepare(run, workdir)
    before = unchanged_chain(client, relayer)
    answer = as_json(run("consent", "submit", request, "--signature", wallet_sign(request, patient), "--check-only",
                         "--json"))  # fmt: skip
    assert answer["valid"] and answer["signer"] == patient.address and not answer["contract_wallet"]
    assert unchanged_chain(client, relayer) == before


# --- deadlines and help ---------------------------------------------------------------------------
def test_signed_requests_are_valid_for_hours_by_default_and_never_for_months(run, workdir, client):
    out = workdir / "grant.json"
    ok(run("consent", "sign", "researcher", "--read", "--categories", "obs", "--purposes", "research", "--out", out,
           as_="patient"))  # fmt: skip
    message = json.loads(out.read_text())["message"]
    assert int(message["deadline"]) - int(message["issuedAt"]) == 24 * HOUR
    ok(run("consent", "sign-revoke", "researcher", "--read", "--valid-hours", "2", "--out", out, as_="patient"))
    message = json.loads(out.read_text())["message"]
    assert int(message["deadline"]) - int(message["issuedAt"]) == 2 * HOUR
    fails(run("consent", "sign-revoke", "researcher", "--read", "--valid-hours", "2000", "--out", out, as_="patient"),
          2, "2000")  # fmt: skip


def test_invalidate_requests_help_says_when_to_use_it(run):
    def unwrapped(*args: str) -> str:  # help text as one line (click wraps lines, also after a hyphen)
        return re.sub(r"-\s+", "-", " ".join(ok(run(*args, "--help")).stdout.split()))

    text = unwrapped("consent", "invalidate-requests")
    assert "a relayer (or anyone given a signed request) holds one back" in text and "superseded" in text
    assert "`consent invalidate-requests` is the way" in unwrapped("consent", "sign")


# --- ERC-1271 contract wallets -----------------------------------------------------------------------------
@pytest.fixture
def contract_wallet(client, patient) -> str:
    """A MockContractWallet owned by the patient's key, registered as a patient through execute()."""
    artifact = compile_test_double("MockContractWallet")
    factory = client.chain.w3.eth.contract(abi=artifact.abi, bytecode=artifact.bytecode)
    owner = patient.account
    deploy = factory.constructor(owner.address).build_transaction(
        {"from": owner.address, "nonce": client.chain.nonce(owner.address), "chainId": client.chain.chain_id}
    )
    address = client.chain.send(deploy, owner)["contractAddress"]
    wallet = client.chain.w3.eth.contract(address=address, abi=artifact.abi)
    keys = [generate_keypair().public for _ in codes.Category]
    register = client.contract.bound(Tx("registerPatient", (generate_keypair().public, keys)))
    call = wallet.functions.execute(client.contract.address, register._encode_transaction_data())
    client.chain.transact(call, owner, client.contract.decoder)
    assert client.contract.patient_encryption_key(address) != bytes(32)
    return str(address)


@pytest.mark.parametrize("form", ["rsv", "yparity"])
def test_a_contract_wallet_patient_signs_through_its_owner(
    run, workdir, client, patient, clinician, contract_wallet, form
):
    """The wallet judges its own signatures (ERC-1271): its owner's, as given or, since this wallet
    wants v 27/28 (OpenZeppelin's ECDSA, like most), normalised; anyone else's is refused before gas."""
    out = workdir / "wallet.json"
    ok(run("consent", "prepare", "clinician", "--patient", contract_wallet, "--write", "--categories", "obs",
           "--purposes", "direct-care", "--out", out))  # fmt: skip
    signature = wallet_sign(out, patient, form=form)  # the owner's key
    answer = as_json(run("consent", "submit", out, "--signature", signature, "--json", as_="relayer"))
    assert answer["changed"] and answer["contract_wallet"] and answer["signer"] == contract_wallet
    assert client.contract.consent(contract_wallet, clinician.address, codes.Access.WRITE).exists


def test_a_contract_wallet_refuses_a_stranger_s_signature(run, workdir, client, stranger, relayer, contract_wallet):
    out = workdir / "wallet.json"
    ok(run("consent", "prepare", "clinician", "--patient", contract_wallet, "--write", "--categories", "obs",
           "--purposes", "direct-care", "--out", out))  # fmt: skip
    refused(run, client, relayer, 10, out, "--signature", wallet_sign(out, stranger),
            fragments=("is a contract wallet and does not accept this signature",))  # fmt: skip
