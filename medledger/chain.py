"""The chain: a web3 connection, transactions signed locally, deployment, and revert decoding.

Contract reverts come back from the node as custom-error data; :func:`decode_revert` turns them into
a :class:`~medledger.errors.ContractRevert` (or a more specific subclass) whose message is a plain
sentence built from the ABI's error entries and what the caller was trying to do.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import requests
from eth_abi import decode as abi_decode
from eth_account.signers.local import LocalAccount
from eth_utils import keccak, to_checksum_address
from web3 import HTTPProvider, Web3
from web3.contract import Contract
from web3.contract.contract import ContractFunction
from web3.exceptions import ContractLogicError, TimeExhausted, Web3RPCError
from web3.types import TxParams, TxReceipt

from . import codes
from .artifacts import Artifact, medledger_artifact
from .deployments import Deployment, read_deployment, write_deployment
from .errors import (
    AccessDenied,
    ChainError,
    ContractRevert,
    DeploymentNotFound,
    RecordErased,
    ServiceUnavailable,
)

# Errors that mean "you may not do this" (mapped to AccessDenied, exit code 10).
_ACCESS_ERRORS = {
    "ConsentUnauthorized",
    "ConsentDelegateOutOfBounds",
    "ConsentNotFound",
    "ConsentNotYetValid",
    "ConsentExpired",
    "ConsentCategoryNotCovered",
    "ConsentPurposeNotCovered",
    "ConsentSignatureExpired",
    "ConsentInvalidSignature",
    "InvalidAccountNonce",
    "RegistryParticipantSuspended",
    "EmergencyOptedOut",
    "EmergencyNotClinician",
    "RecordNotPatient",
    "AccessControlUnauthorizedAccount",
}


def utc(timestamp: int) -> str:
    """A unix time as ``2026-12-01 10:00 UTC`` (the form every message uses)."""
    if timestamp >= 2**63 - 1:
        return "never"
    return _dt.datetime.fromtimestamp(timestamp, _dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def _short(value: Any) -> str:
    if isinstance(value, bytes):
        return "0x" + value.hex()
    return str(value)


def _consent_subject(args: Mapping[str, Any], context: Mapping[str, Any]) -> str:
    """'consent for research on genomics' when the caller said what it asked for."""
    purpose = context.get("purpose")
    category = context.get("category")
    if purpose is not None and category is not None:
        return f"consent for {codes.label(codes.Purpose(purpose))} on {codes.label(codes.Category(category))}"
    grantee = args.get("grantee")
    patient = args.get("patient")
    return f"the consent of patient {patient} to {grantee}"


def _sentence(text: str) -> str:
    """Upper-case the first letter only (str.capitalize would also lower-case "UTC" and addresses)."""
    return text[:1].upper() + text[1:]


def describe_revert(name: str, args: Mapping[str, Any], context: Mapping[str, Any] | None = None) -> str:
    """A plain sentence for a decoded custom error."""
    ctx = context or {}
    a = args
    if name == "ConsentExpired":
        return _sentence(f"{_consent_subject(a, ctx)} expired at {utc(a['expiry'])}")
    if name == "ConsentNotYetValid":
        return _sentence(f"{_consent_subject(a, ctx)} starts only at {utc(a['start'])}")
    if name == "ConsentNotFound":
        access = codes.label(codes.Access(a["access"]))
        what = ""
        if ctx.get("category") is not None and ctx.get("purpose") is not None:
            what = (
                f" (needed to {access} {codes.label(codes.Category(ctx['category']))} "
                f"for {codes.label(codes.Purpose(ctx['purpose']))})"
            )
        return f"{a['grantee']} holds no {access} consent from patient {a['patient']}{what}"
    if name == "ConsentCategoryNotCovered":
        return (
            f"The consent of patient {a['patient']} to {a['grantee']} does not cover "
            f"{codes.label(codes.Category(a['category']))}"
        )
    if name == "ConsentPurposeNotCovered":
        return (
            f"The consent of patient {a['patient']} to {a['grantee']} does not cover the purpose "
            f"{codes.label(codes.Purpose(a['purpose']))}"
        )
    if name == "ConsentUnauthorized":
        return f"{a['caller']} may not manage the consents of patient {a['patient']} (not the patient or a live delegate)"
    if name == "ConsentDelegateOutOfBounds":
        allowed = ", ".join(codes.label(c) for c in sorted(codes.mask_to_categories(a["allowed"]))) or "nothing"
        asked = ", ".join(codes.label(c) for c in sorted(codes.mask_to_categories(a["requested"])))
        return f"Delegate {a['delegate']} may manage only {allowed}, not {asked}"
    if name == "ConsentInvalidWindow":
        return (
            f"The consent window from {utc(a['start'])} to {utc(a['expiry'])} is empty or already over "
            f"(chain time {utc(a['nowTime'])})"
        )
    if name == "ConsentSignatureExpired":
        return f"The signed request expired at {utc(a['deadline'])}; ask the patient to sign a new one"
    if name == "ConsentInvalidSignature":
        return f"The signature is not patient {a['patient']}'s signature of this request (wrong key, chain or contract, or altered)"
    if name == "InvalidAccountNonce":
        return (
            f"The signed request was already used or is out of order: patient {a['account']}'s next nonce "
            f"is {a['currentNonce']}"
        )
    if name == "RegistryParticipantSuspended":
        return f"{a['account']} is suspended by a registrar; nothing it was granted works until it is reinstated"
    if name == "RegistryParticipantNotRegistered":
        return f"{a['account']} is not a registered participant; a registrar must register it first"
    if name == "RegistryPatientNotRegistered":
        return f"{a['patient']} is not a registered patient; register with `medledger patient register`"
    if name == "RegistryPatientAlreadyRegistered":
        return f"{a['patient']} is already registered as a patient"
    if name == "RegistryParticipantAlreadyRegistered":
        return f"{a['account']} is already a registered participant"
    if name == "EmergencyOptedOut":
        return f"Patient {a['patient']} has opted out of emergency access"
    if name == "EmergencyNotClinician":
        return f"{a['account']} is not a registered clinician or care provider, so it cannot open emergency access"
    if name == "EmergencyInvalidWindow":
        return f"An emergency window must be between 1 and {a['maximum']} seconds, not {a['requested']}"
    if name == "RecordIsErased":
        return f"Record {_short(a['recordId'])} was erased by its patient; it can no longer be read"
    if name == "RecordNotFound":
        return f"No record or batch has id {_short(a['recordId'])} on this chain"
    if name == "RecordAlreadyExists":
        return f"Record id {_short(a['recordId'])} is already registered"
    if name == "RecordAlreadySuperseded":
        return (
            f"Record {_short(a['recordId'])} was already superseded by {_short(a['supersededBy'])}; "
            "amend the latest version"
        )
    if name == "RecordNotPatient":
        return f"Only patient {a['patient']} may do this to its records (caller {a['caller']})"
    if name == "AccessControlUnauthorizedAccount":
        return f"{a['account']} lacks the role {_short(a['neededRole'])} (registrars only)"
    if name == "DelegationInvalidDelegate":
        return f"{a['delegate']} cannot be a delegate of {a['patient']}: it must be another registered patient"
    rendered = ", ".join(f"{k}={_short(v)}" for k, v in a.items())
    return f"The contract refused the call: {name}({rendered})"


class ErrorDecoder:
    """Maps 4-byte selectors to the ABI's custom errors."""

    def __init__(self, abi: list[dict[str, Any]]) -> None:
        self._errors: dict[bytes, dict[str, Any]] = {}
        for entry in abi:
            if entry.get("type") != "error":
                continue
            signature = f"{entry['name']}({','.join(_abi_type(i) for i in entry['inputs'])})"
            self._errors[keccak(text=signature)[:4]] = entry

    def decode(self, data: str | bytes | None) -> tuple[str, dict[str, Any]] | None:
        if data is None:
            return None
        raw = bytes.fromhex(data[2:] if data.startswith("0x") else data) if isinstance(data, str) else data
        entry = self._errors.get(raw[:4])
        if entry is None:
            return None
        types = [_abi_type(i) for i in entry["inputs"]]
        values = abi_decode(types, raw[4:])
        args = {}
        for spec, value in zip(entry["inputs"], values):
            if spec["type"] == "address":
                value = to_checksum_address(value)
            args[spec["name"]] = value
        return entry["name"], args

    def to_exception(
        self, data: str | bytes | None, context: Mapping[str, Any] | None = None, fallback: str = ""
    ) -> ChainError:
        decoded = self.decode(data)
        if decoded is None:
            return ChainError(f"The transaction reverted without a known reason{': ' + fallback if fallback else ''}")
        name, args = decoded
        message = describe_revert(name, args, context)
        cls: type[ContractRevert] = ContractRevert
        if name == "RecordIsErased":
            cls = RecordErased
        elif name in _ACCESS_ERRORS:
            cls = AccessDenied
        return cls(message, name, args)


def _abi_type(spec: dict[str, Any]) -> str:
    if spec["type"].startswith("tuple"):
        inner = ",".join(_abi_type(c) for c in spec["components"])
        return f"({inner}){spec['type'][5:]}"
    return spec["type"]


def _revert_data(exc: ContractLogicError) -> str | None:
    data = exc.data
    if isinstance(data, dict):
        data = data.get("data")
    return data if isinstance(data, str) else None


@dataclass
class Chain:
    """A connection to an EVM JSON-RPC endpoint."""

    rpc_url: str
    expected_chain_id: int | None = None
    timeout: float = 30.0

    def __post_init__(self) -> None:
        self.w3 = Web3(HTTPProvider(self.rpc_url, request_kwargs={"timeout": self.timeout}))
        self._chain_id: int | None = None
        self._session: requests.Session | None = None
        self._rpc_id = 0

    def rpc(self, method: str, params: list[Any]) -> Any:
        """A bare JSON-RPC call, without web3's middleware: for hot paths (bulk ingest)."""
        if self._session is None:
            self._session = requests.Session()
        session = self._session
        self._rpc_id += 1
        body = {"jsonrpc": "2.0", "id": self._rpc_id, "method": method, "params": params}
        response = self._rpc(lambda: session.post(self.rpc_url, json=body, timeout=self.timeout))
        answer = response.json()
        if "error" in answer:
            error = answer["error"]
            raise ChainError(f"{method} failed: {error.get('message', error)}")
        return answer["result"]

    @property
    def chain_id(self) -> int:
        if self._chain_id is None:
            try:
                self._chain_id = int(self.w3.eth.chain_id)
            except (requests.ConnectionError, requests.Timeout, OSError) as exc:
                raise ServiceUnavailable(
                    f"No Ethereum node answers at {self.rpc_url}. Start the local one with "
                    "`medledger node up`, or point MEDLEDGER_RPC_URL (or [chain] rpc_url in the config "
                    "file) at a running node."
                ) from exc
            if self.expected_chain_id is not None and self._chain_id != self.expected_chain_id:
                raise ChainError(
                    f"The node at {self.rpc_url} serves chain {self._chain_id}, but chain "
                    f"{self.expected_chain_id} was configured; refusing to continue."
                )
        return self._chain_id

    def check(self) -> int:
        """Raise :class:`ServiceUnavailable` unless the node answers; return the chain id."""
        return self.chain_id

    def now(self) -> int:
        """The timestamp of the latest block (what the contracts compare expiries with)."""
        return int(self._rpc(lambda: self.w3.eth.get_block("latest"))["timestamp"])

    def _rpc(self, call: Callable[[], Any]) -> Any:
        try:
            return call()
        except (requests.ConnectionError, requests.Timeout) as exc:
            raise ServiceUnavailable(
                f"The Ethereum node at {self.rpc_url} stopped answering ({type(exc).__name__}). "
                "Is it still running? (`medledger node status`)"
            ) from exc
        except Web3RPCError as exc:
            message = exc.rpc_response.get("error", {}).get("message") if exc.rpc_response else None
            hint = ""
            if message and "insufficient funds" in message.lower():
                hint = " The sending account needs ETH for gas (or have a relayer submit a signed request)."
            raise ChainError(f"The node at {self.rpc_url} refused the request: {message or exc}.{hint}") from exc

    # ---------------------------------------------------------------------------------------------
    def transact(
        self,
        fn: ContractFunction,
        account: LocalAccount,
        decoder: ErrorDecoder,
        context: Mapping[str, Any] | None = None,
    ) -> TxReceipt:
        """Simulate, sign locally and send ``fn`` from ``account``; wait for the receipt.

        A revert in simulation raises the decoded error and sends nothing.
        """
        self.check()
        tx_params: TxParams = {"from": account.address, "chainId": self.chain_id}
        try:
            gas = self._rpc(lambda: fn.estimate_gas(tx_params))
        except ContractLogicError as exc:
            raise decoder.to_exception(_revert_data(exc), context, str(exc)) from None
        tx = self._rpc(
            lambda: fn.build_transaction(
                {
                    **tx_params,
                    "gas": int(gas * 1.2) + 10_000,
                    "nonce": self.w3.eth.get_transaction_count(account.address, "pending"),
                }
            )
        )
        return self.send(tx, account, decoder, context, replay=lambda: fn.call(tx_params))

    def send(
        self,
        tx: dict[str, Any],
        account: LocalAccount,
        decoder: ErrorDecoder | None = None,
        context: Mapping[str, Any] | None = None,
        replay: Callable[[], Any] | None = None,
    ) -> TxReceipt:
        signed = account.sign_transaction(tx)
        tx_hash = self._rpc(lambda: self.w3.eth.send_raw_transaction(signed.raw_transaction))
        try:
            receipt = self._rpc(lambda: self.w3.eth.wait_for_transaction_receipt(tx_hash, timeout=self.timeout * 4))
        except TimeExhausted as exc:
            raise ChainError(
                f"Transaction 0x{bytes(tx_hash).hex()} was not mined within {self.timeout * 4:.0f} s; "
                "it may still be mined later: check before retrying."
            ) from exc
        if receipt["status"] != 1:
            if replay is not None and decoder is not None:
                try:
                    replay()
                except ContractLogicError as exc:
                    raise decoder.to_exception(_revert_data(exc), context, str(exc)) from None
            raise ChainError(f"Transaction 0x{bytes(tx_hash).hex()} reverted")
        return receipt

    def call(
        self,
        fn: ContractFunction,
        decoder: ErrorDecoder,
        sender: str | None = None,
        context: Mapping[str, Any] | None = None,
    ) -> Any:
        try:
            return self._rpc(lambda: fn.call({"from": sender} if sender else {}))
        except ContractLogicError as exc:
            raise decoder.to_exception(_revert_data(exc), context, str(exc)) from None

    # ---------------------------------------------------------------------------------------------
    def deploy(self, artifact: Artifact, account: LocalAccount, *args: Any) -> tuple[str, TxReceipt]:
        self.check()
        factory = self.w3.eth.contract(abi=artifact.abi, bytecode=artifact.bytecode)
        ctor = factory.constructor(*args)
        gas = self._rpc(lambda: ctor.estimate_gas({"from": account.address}))
        tx = ctor.build_transaction(
            {
                "from": account.address,
                "chainId": self.chain_id,
                "gas": int(gas * 1.2) + 50_000,
                "nonce": self.w3.eth.get_transaction_count(account.address, "pending"),
            }
        )
        receipt = self.send(tx, account)
        contract_address = receipt["contractAddress"]
        assert contract_address is not None, "a mined deployment receipt has a contract address"
        return to_checksum_address(contract_address), receipt

    def has_code(self, address: str) -> bool:
        return len(self._rpc(lambda: self.w3.eth.get_code(to_checksum_address(address)))) > 0


def deploy_medledger(
    chain: Chain,
    account: LocalAccount,
    deployments_dir: Any,
    admin: str | None = None,
    force: bool = False,
) -> tuple[Deployment, bool]:
    """Deploy the Medledger contract unless this chain already has a live deployment.

    Returns the deployment and whether it was deployed now. ``force`` deploys a new one anyway.
    """
    chain_id = chain.check()
    if not force:
        try:
            existing = read_deployment(deployments_dir, chain_id)
            if chain.has_code(existing.address):
                return existing, False
        except DeploymentNotFound:
            pass
    artifact = medledger_artifact()
    address, receipt = chain.deploy(artifact, account, admin or account.address)
    deployment = Deployment(
        chain_id=chain_id,
        name=artifact.name,
        address=address,
        abi=artifact.abi,
        deployer=account.address,
        block_number=int(receipt["blockNumber"]),
        tx_hash="0x" + bytes(receipt["transactionHash"]).hex(),
    )
    write_deployment(deployments_dir, deployment)
    return deployment, True


def contract_at(chain: Chain, deployment: Deployment) -> Contract:
    return chain.w3.eth.contract(address=to_checksum_address(deployment.address), abi=deployment.abi)
