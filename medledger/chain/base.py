"""The plumbing of the contract facade: transactions, views, simulation and event logs.

:class:`ContractBase` is what :class:`~medledger.chain.contract.MedledgerContract` and its parts
(:class:`~medledger.chain.records.RecordCalls`) share.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from eth_account.signers.local import LocalAccount
from eth_typing import ChecksumAddress
from web3.contract import Contract
from web3.contract.contract import ContractFunction

from .addresses import checked_address
from .bounds import check_arguments
from .deployments import Deployment
from .events import ChainEvent, EventCodec, Receipt, encode_topic
from .reverts import ErrorDecoder
from .rpc import Chain

E = TypeVar("E", bound=ChainEvent)


class Sender(Protocol):
    """Who signs a transaction: a keystore identity, or anything with an address and a local key."""

    @property
    def address(self) -> str: ...

    @property
    def account(self) -> LocalAccount: ...


@dataclass(frozen=True)
class Tx:
    """A contract transaction, prepared but not sent."""

    function: str
    args: tuple[Any, ...]
    context: dict[str, int] = field(default_factory=dict)


def address_of(value: str) -> ChecksumAddress:
    """``value`` as a checksummed address; mixed case must be a valid EIP-55 checksum."""
    return checked_address(value)


class ContractBase:
    """The plumbing every part of the facade shares: views, transactions, simulation, logs."""

    def __init__(self, chain: Chain, deployment: Deployment) -> None:
        self.chain = chain
        self.deployment = deployment
        self.address = address_of(deployment.address)
        self.decoder = ErrorDecoder(deployment.abi)
        self.codec = EventCodec(deployment.abi)
        self._contract: Contract = chain.w3.eth.contract(address=self.address, abi=deployment.abi)

    # --- plumbing ---------------------------------------------------------------------------------
    def bound(self, tx: Tx) -> ContractFunction:
        """``tx`` as a web3 contract function (for the chain layer's own use); every integer argument
        checked against its ABI type first."""
        function = self._contract.functions[tx.function]
        check_arguments(function.abi, tx.args)
        return function(*tx.args)

    def calldata(self, tx: Tx) -> str:
        """``tx``'s ABI-encoded call data (``0x``...), for callers that sign and send raw transactions."""
        return str(self._contract.encode_abi(tx.function, list(tx.args)))

    def _view(self, name: str, *args: Any, sender: str | None = None, **context: int) -> Any:
        return self.chain.call(self.bound(Tx(name, args)), self.decoder, sender, context)

    def send(self, tx: Tx, sender: Sender) -> Receipt:
        """Send ``tx`` from ``sender`` and wait for it (the one way a transaction leaves medledger)."""
        raw = self.chain.transact(self.bound(tx), sender.account, self.decoder, tx.context)
        return Receipt(
            tx_hash="0x" + bytes(raw["transactionHash"]).hex(),
            block_number=int(raw["blockNumber"]),
            gas_used=int(raw["gasUsed"]),
            events=tuple(self.codec.decode_all(raw["logs"])),
        )

    def simulate(self, tx: Tx, sender: Sender | str) -> Any:
        """Run ``tx`` as an ``eth_call`` from ``sender``: its return value, or the decoded refusal."""
        address = sender if isinstance(sender, str) else sender.address
        return self.chain.call(self.bound(tx), self.decoder, address, tx.context)

    def _transact(self, tx: Tx, sender: Sender, simulate: bool) -> Receipt:
        if simulate:
            self.simulate(tx, sender)
            return Receipt(tx_hash="", block_number=0, gas_used=0, simulated=True)
        return self.send(tx, sender)

    def logs(self, kind: type[E], *, from_block: int | None = None, **filters: Any) -> list[E]:
        """Every ``kind`` event since the deployment whose indexed arguments match ``filters``
        (snake_case names, e.g. ``patient=``, ``record_id=``), oldest first."""
        start = self.deployment.block_number if from_block is None else from_block
        topics = self.codec.topics(kind, {k: v for k, v in filters.items() if v is not None})
        raw = self.chain.logs(self.address, topics, start)
        return [e for e in self.codec.decode_all(raw) if isinstance(e, kind)]

    def raw_logs(self, topics: list[Any], *, from_block: int | None = None) -> list[ChainEvent]:
        """The decoded events matching raw ``topics`` (a position may list several alternatives: a
        list of topics), oldest first."""
        start = self.deployment.block_number if from_block is None else from_block
        return self.codec.decode_all(self.chain.logs(self.address, topics, start))

    def logs_of(self, kinds: tuple[type[ChainEvent], ...], *indexed: str | bytes) -> list[ChainEvent]:
        """Events of any of ``kinds`` (one query) whose leading indexed arguments are ``indexed``, in
        order: the kinds must index the same types there (e.g. a patient, then a grantee or recipient)."""
        topics: list[Any] = [[self.codec.topic0(k) for k in kinds]]
        for value in indexed:
            topics.append(encode_topic("address" if isinstance(value, str) else "bytes32", value))
        return self.raw_logs(topics)
