"""A connection to an EVM JSON-RPC endpoint: calls, signed transactions, blocks and logs.

:class:`Chain` is the only place medledger talks to the node. Transport failures become
:class:`~medledger.errors.ServiceUnavailable` (with the URL), node refusals
:class:`~medledger.errors.ChainError` (:class:`~medledger.errors.InsufficientFunds` for an unfunded
sender), and contract reverts the decoded error of :mod:`medledger.chain.reverts`. Transactions are
signed locally; a revert in simulation raises before anything is sent.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar, cast

import requests
from eth_account.signers.local import LocalAccount
from eth_utils import to_checksum_address
from web3 import Web3
from web3.contract.contract import ContractFunction
from web3.exceptions import ContractLogicError, Web3Exception, Web3RPCError
from web3.types import BlockIdentifier, TxParams, TxReceipt

from medledger.errors import (
    ChainError,
    InsufficientFunds,
    MedledgerError,
    ServiceError,
    ServiceUnavailable,
    WrongChain,
)

from .addresses import checked_address
from .endpoint import PROBE_TIMEOUT, SERVICE, BareTransport, CheckedProvider, garbage
from .reverts import ErrorDecoder, revert_data
from .sending import describe_call, send_transaction

if TYPE_CHECKING:
    from .durability import Durability

T = TypeVar("T")
LOG_CHUNK_BLOCKS = 50_000


@dataclass
class Chain:
    """A connection to an EVM JSON-RPC endpoint."""

    rpc_url: str
    expected_chain_id: int | None = None
    timeout: float = 30.0
    #: the home's view of this chain: what "written" means, the journal, the nonce locks (None: a bare
    #: connection: mined is written, nothing journaled, nonces locked in this process only)
    durability: Durability | None = None

    def __post_init__(self) -> None:
        self.w3 = Web3(CheckedProvider(self.rpc_url, self.timeout))
        self._chain_id: int | None = None
        self._bare = BareTransport(self.rpc_url)
        self._rpc_id = 0
        self._block_times: dict[int, int] = {}

    # --- bare JSON-RPC ------------------------------------------------------------------------------
    def rpc(self, method: str, params: list[Any], *, timeout: float | None = None) -> Any:
        """A bare JSON-RPC call, without web3's middleware (hot paths, node control in tests)."""
        self._rpc_id += 1
        answer = self._bare.post(method, params, self._rpc_id, timeout or self.timeout)
        if "error" in answer:
            error = answer["error"]
            raise ChainError(f"{method} failed: {error.get('message', error)}")
        return answer["result"]

    def rpc_batch(self, calls: Sequence[tuple[str, list[Any]]]) -> list[Any]:
        """Several bare JSON-RPC calls in one request (one round trip); their results in order."""
        first = self._rpc_id + 1
        self._rpc_id += len(calls)
        results = []
        for (method, _), answer in zip(calls, self._bare.post_batch(list(calls), first, self.timeout), strict=True):
            if "error" in answer:
                raise ChainError(f"{method} failed: {answer['error'].get('message', answer['error'])}")
            results.append(answer["result"])
        return results

    def guarded(self, call: Callable[[], T]) -> T:
        """Run one request to the node, mapping transport failures and node refusals to medledger's
        errors."""
        try:
            return call()
        except (requests.ConnectionError, requests.Timeout) as exc:
            raise ServiceUnavailable(SERVICE, self.rpc_url, f"stopped answering: {type(exc).__name__}") from exc
        except Web3RPCError as exc:
            message = exc.rpc_response.get("error", {}).get("message") if exc.rpc_response else None
            if message and "insufficient funds" in message.lower():
                raise InsufficientFunds(self.rpc_url, message) from exc
            raise ChainError(f"The node at {self.rpc_url} refused the request: {message or exc}.") from exc

    # --- the chain ------------------------------------------------------------------------------------
    @property
    def chain_id(self) -> int:
        if self._chain_id is None:
            # the first request of a session: an Ethereum node answers it at once, so a short wait
            served = self.rpc("eth_chainId", [], timeout=min(PROBE_TIMEOUT, self.timeout))
            try:
                self._chain_id = int(served, 16)
            except (TypeError, ValueError):
                raise garbage(self.rpc_url, "eth_chainId", f"chain id {served!r}") from None
            if self.expected_chain_id is not None and self._chain_id != self.expected_chain_id:
                raise WrongChain(self.rpc_url, self._chain_id, self.expected_chain_id)
        return self._chain_id

    def check(self) -> int:
        """Raise :class:`ServiceUnavailable` unless the node answers; return the chain id."""
        return self.chain_id

    def now(self) -> int:
        """The timestamp of the latest block (what the contracts compare expiries with)."""
        return int(self.guarded(lambda: self.w3.eth.get_block("latest"))["timestamp"])

    def block_number(self) -> int:
        return int(self.guarded(lambda: self.w3.eth.block_number))

    def block_time(self, block_number: int) -> int:
        if block_number not in self._block_times:
            block = self.guarded(lambda: self.w3.eth.get_block(block_number))
            self._block_times[block_number] = int(block["timestamp"])
        return self._block_times[block_number]

    def balance(self, address: str) -> int:
        return int(self.guarded(lambda: self.w3.eth.get_balance(checked_address(address))))

    def nonce(self, address: str) -> int:
        """The next nonce of ``address``, counting pending transactions."""
        return int(self.rpc("eth_getTransactionCount", [checked_address(address), "pending"]), 16)

    def transaction_sender(self, tx_hash: str) -> str:
        return to_checksum_address(self.guarded(lambda: self.w3.eth.get_transaction(tx_hash))["from"])  # type: ignore[arg-type]

    def has_code(self, address: str) -> bool:
        return len(self.guarded(lambda: self.w3.eth.get_code(checked_address(address)))) > 0

    def logs(self, address: str, topics: Sequence[str | list[str] | None], from_block: int) -> list[dict[str, Any]]:
        """Raw logs of ``address`` matching ``topics`` from ``from_block`` to the latest block: one request,
        or, if the node refuses it (nodes cap the range of one request), in chunks."""
        query = {"address": address, "topics": list(topics), "fromBlock": hex(from_block), "toBlock": "latest"}
        try:
            return list(self.rpc("eth_getLogs", [query]))
        except ChainError:
            pass  # too wide for this node: ask in chunks (a real failure repeats there and is raised)
        latest = self.block_number()
        out: list[dict[str, Any]] = []
        for lo in range(from_block, latest + 1, LOG_CHUNK_BLOCKS):
            hi = min(lo + LOG_CHUNK_BLOCKS - 1, latest)
            query = {"address": address, "topics": list(topics), "fromBlock": hex(lo), "toBlock": hex(hi)}
            out.extend(self.rpc("eth_getLogs", [query]))
        return out

    # --- transactions ----------------------------------------------------------------------------------
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
            gas = self.guarded(lambda: fn.estimate_gas(tx_params))
        except ContractLogicError as exc:
            raise decoder.to_exception(revert_data(exc), context, str(exc)) from None
        # the nonce is a placeholder: send() takes the real one under the account's nonce lock
        params = cast(TxParams, {**tx_params, "gas": int(gas * 1.2) + 10_000, "nonce": 0})
        tx = self.guarded(lambda: fn.build_transaction(params))
        what = describe_call(fn.fn_name, fn.args)
        return self.send(tx, account, decoder, context, replay=lambda: fn.call(tx_params), what=what)

    #: Send a transaction (nonce chosen here), journaled until written; the receipt once written
    #: (:func:`medledger.chain.sending.send_transaction`).
    send = send_transaction

    def call(
        self,
        fn: ContractFunction,
        decoder: ErrorDecoder,
        sender: str | None = None,
        context: Mapping[str, Any] | None = None,
        block: BlockIdentifier = "latest",
    ) -> Any:
        """``eth_call`` of ``fn``; a revert raises the decoded error."""
        try:
            return self.guarded(lambda: fn.call({"from": sender} if sender else {}, block_identifier=block))
        except ContractLogicError as exc:
            raise decoder.to_exception(revert_data(exc), context, str(exc)) from None


def foreign_error(exc: BaseException) -> MedledgerError | None:
    """An error of web3 or requests that escaped the mapping above, as a medledger error (None if it is
    neither): the last net of a caller that must not show a traceback."""
    if isinstance(exc, Web3Exception):
        return ChainError(f"The Ethereum call failed: {type(exc).__name__}: {exc}")
    if isinstance(exc, (requests.exceptions.ConnectionError, requests.exceptions.Timeout)):
        return ServiceError(f"A service stopped answering ({type(exc).__name__}: {exc})")
    return None
