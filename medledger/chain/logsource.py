"""Where the index reads the chain: bare JSON-RPC (with batch requests) to any EVM node.

Only four methods are used: ``eth_blockNumber``, ``eth_getBlockByNumber`` (headers: hash, parent
hash, time), ``eth_getLogs`` (one contract, a block range) and ``eth_getTransactionByHash`` (the
sender of the few events that name no actor). web3.py's formatters are skipped on purpose: they
cost more than the whole indexing step.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import requests

from medledger.errors import ChainError, ServiceUnavailable

#: Headers fetched per batch request.
BATCH = 500


@dataclass(frozen=True)
class Header:
    number: int
    hash: str
    parent_hash: str
    timestamp: int


class LogRangeTooLarge(ChainError):
    """The node refused an ``eth_getLogs`` range (too many blocks or results): ask for less."""


_RANGE_HINTS = ("range", "too many", "limit", "exceed", "query returned more than", "response size")


class RpcSource:
    """A JSON-RPC endpoint, read without web3's middleware."""

    def __init__(self, url: str, timeout: float = 60.0) -> None:
        self.url = url
        self.timeout = timeout
        self._session = requests.Session()
        self._id = 0

    def _post(self, body: Any) -> Any:
        try:
            response = self._session.post(self.url, json=body, timeout=self.timeout)
        except (requests.ConnectionError, requests.Timeout) as exc:
            raise ServiceUnavailable("Ethereum node", self.url, type(exc).__name__) from exc
        if response.status_code != 200:
            raise ChainError(f"The Ethereum node at {self.url} answered HTTP {response.status_code}")
        return response.json()

    def call(self, method: str, params: list[Any]) -> Any:
        self._id += 1
        answer = self._post({"jsonrpc": "2.0", "id": self._id, "method": method, "params": params})
        return _result(method, answer)

    def batch(self, calls: Sequence[tuple[str, list[Any]]]) -> list[Any]:
        """Several calls in one HTTP request; results in the order of ``calls``."""
        if not calls:
            return []
        first = self._id + 1
        self._id += len(calls)
        body = [{"jsonrpc": "2.0", "id": first + i, "method": m, "params": p} for i, (m, p) in enumerate(calls)]
        answers = self._post(body)
        if not isinstance(answers, list):  # some nodes answer a refused batch with one error object
            raise ChainError(f"The node at {self.url} refused a batch request: {answers}")
        by_id = {a.get("id"): a for a in answers}
        return [_result(calls[i][0], by_id.get(first + i, {})) for i in range(len(calls))]

    # --- what the indexer needs ----------------------------------------------------------------
    def block_number(self) -> int:
        return int(self.call("eth_blockNumber", []), 16)

    def headers(self, numbers: Sequence[int]) -> dict[int, Header | None]:
        """Headers by number (None for a block the chain does not have, e.g. after a rewind)."""
        out: dict[int, Header | None] = {}
        ordered = sorted(set(numbers))
        for lo in range(0, len(ordered), BATCH):
            part = ordered[lo : lo + BATCH]
            blocks = self.batch([("eth_getBlockByNumber", [hex(n), False]) for n in part])
            for n, block in zip(part, blocks, strict=True):
                out[n] = (
                    None
                    if block is None
                    else Header(
                        n, str(block["hash"]).lower(), str(block["parentHash"]).lower(), int(block["timestamp"], 16)
                    )
                )
        return out

    def header(self, number: int) -> Header | None:
        return self.headers([number])[number]

    def logs(self, address: str, from_block: int, to_block: int) -> list[dict[str, Any]]:
        params = [{"address": address, "fromBlock": hex(from_block), "toBlock": hex(to_block)}]
        try:
            result = self.call("eth_getLogs", params)
        except ChainError as exc:
            if any(hint in str(exc).lower() for hint in _RANGE_HINTS) and to_block > from_block:
                raise LogRangeTooLarge(str(exc)) from exc
            raise
        return list(result)

    def senders(self, tx_hashes: Sequence[str]) -> dict[str, str]:
        """The sender of each transaction (lower-case hex)."""
        unique = sorted(set(tx_hashes))
        out: dict[str, str] = {}
        for lo in range(0, len(unique), BATCH):
            part = unique[lo : lo + BATCH]
            for h, tx in zip(part, self.batch([("eth_getTransactionByHash", [h]) for h in part]), strict=True):
                if tx is not None:
                    out[h] = str(tx["from"]).lower()
        return out


def _result(method: str, answer: Any) -> Any:
    if "error" in answer:
        error = answer["error"]
        message = error.get("message", error) if isinstance(error, dict) else error
        raise ChainError(f"{method} failed: {message}")
    if "result" not in answer:
        raise ChainError(f"{method}: the node gave no answer")
    return answer["result"]
