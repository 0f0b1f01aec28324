"""Where the history views read the contract's events: a scan of the chain's logs (always there) or
an event index that covers the chain up to some block (``medledger.index``), behind one protocol,
so that the audit trail and the grants and records listings give the same rows from either.

A view asks :class:`EventHistory` for events of some kinds whose indexed arguments match filters
(``patient=``, ``grantee=`` ... as :meth:`ContractBase.logs` takes them), for the time of a block and
for the sender of a transaction (the one event that names no actor, ``RecordAmended``). Each history
says which source it is (:class:`HistorySource`), so a command can tell the user.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol, TypeVar

from .base import ContractBase
from .events import EVENT_TYPES, ChainEvent, LogPosition, build_event
from .rawlogs import python_value

E = TypeVar("E", bound=ChainEvent)


@dataclass(frozen=True)
class HistorySource:
    """Which source a view read: ``index`` (to ``indexed_to``, then the logs up to the head: the
    ``tail``) or ``logs`` (a scan from ``from_block``; ``reason``: why not the index)."""

    kind: Literal["index", "logs"]
    from_block: int
    indexed_to: int | None = None
    location: str | None = None
    reason: str | None = None

    def describe(self) -> str:
        """One line for a human (commands print it on stderr)."""
        if self.kind == "index":
            return (
                f"Source: the event index ({self.location}) to block {self.indexed_to}, "
                f"then the chain's logs from block {(self.indexed_to or 0) + 1}."
            )
        why = f" ({self.reason})" if self.reason else ""
        return f"Source: a scan of the chain's logs from block {self.from_block}{why}."

    def to_json(self) -> dict[str, Any]:
        return {
            "source": self.kind,
            "from_block": self.from_block,
            "indexed_to": self.indexed_to,
            "location": self.location,
            "reason": self.reason,
        }


class EventHistory(Protocol):
    """What a history view reads events through."""

    @property
    def source(self) -> HistorySource: ...

    def events(self, kinds: Sequence[type[E]], **filters: Any) -> list[E]:
        """Events of ``kinds`` whose indexed arguments match ``filters`` (None: any), oldest first."""
        ...

    def block_time(self, block_number: int) -> int: ...

    def sender(self, event: ChainEvent) -> str:
        """The account that sent the transaction which emitted ``event``."""
        ...


class LogScan:
    """History from ``eth_getLogs`` from ``from_block`` (default: the deployment block) to the head."""

    def __init__(self, contract: ContractBase, *, from_block: int | None = None, reason: str | None = None) -> None:
        self.contract = contract
        self.from_block = contract.deployment.block_number if from_block is None else from_block
        self._source = HistorySource("logs", self.from_block, reason=reason)

    @property
    def source(self) -> HistorySource:
        return self._source

    def events(self, kinds: Sequence[type[E]], **filters: Any) -> list[E]:
        found: list[E] = []
        for kind in kinds:
            found.extend(self.contract.logs(kind, from_block=self.from_block, **filters))
        return sorted(found, key=lambda e: (e.log.block_number, e.log.log_index))

    def block_time(self, block_number: int) -> int:
        return self.contract.chain.block_time(block_number)

    def sender(self, event: ChainEvent) -> str:
        return self.contract.chain.transaction_sender(event.log.tx_hash)


def event_from_stored(
    name: str, args: Mapping[str, Any], types: Mapping[str, str], position: LogPosition
) -> ChainEvent | None:
    """The :class:`ChainEvent` of a log stored as JSON by :class:`~medledger.chain.rawlogs.EventDecoder`
    (``types``: each argument's ABI type); None for an event the package does not read."""
    kind = EVENT_TYPES.get(name)
    if kind is None:
        return None
    values = {key: python_value(types.get(key, ""), value) for key, value in args.items()}
    return build_event(kind, values, position)


def topic_text(value: Any) -> str:
    """A filter value as the index stores an indexed argument (lower-case hex, or the integer)."""
    if isinstance(value, (bytes, bytearray)):
        return "0x" + bytes(value).hex()
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(int(value))
    return str(value).lower()
