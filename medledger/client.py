"""A connected session: the chain, the medledger deployment on it, and the IPFS store.

Everything else (:mod:`consent`, :mod:`records`, :mod:`keyring`, :mod:`audit`) takes a
:class:`Client`, so the library is usable without the CLI::

    from medledger.client import Client
    from medledger.config import load_settings
    client = Client.connect(load_settings())
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from eth_utils import to_checksum_address
from multiformats import CID, multihash
from web3.contract import Contract
from web3.logs import DISCARD
from web3.contract.contract import ContractFunction
from web3.types import EventData, TxReceipt

from .chain import Chain, ErrorDecoder, contract_at
from .config import Settings
from .deployments import Deployment, read_deployment
from .errors import StorageError
from .keystore import Identity
from .storage import IpfsStore, normalize_cid

LOG_CHUNK_BLOCKS = 50_000


@dataclass
class Client:
    """One deployment on one chain plus one IPFS node."""

    settings: Settings
    chain: Chain
    deployment: Deployment
    store: IpfsStore
    _block_times: dict[int, int] = field(default_factory=dict, repr=False)

    @classmethod
    def connect(cls, settings: Settings, store: IpfsStore | None = None) -> "Client":
        chain = Chain(settings.rpc_url, settings.chain_id, settings.rpc_timeout)
        deployment = read_deployment(settings.deployments, chain.check())
        return cls(settings, chain, deployment, store or IpfsStore(settings.ipfs_api, settings.ipfs_timeout))

    @cached_property
    def contract(self) -> Contract:
        return contract_at(self.chain, self.deployment)

    @cached_property
    def decoder(self) -> ErrorDecoder:
        return ErrorDecoder(self.deployment.abi)

    # --- chain ------------------------------------------------------------------------------------
    def transact(self, fn: ContractFunction, sender: Identity, **context: Any) -> TxReceipt:
        """Send ``fn`` from ``sender``; a revert raises the decoded error (see :mod:`chain`)."""
        return self.chain.transact(fn, sender.account, self.decoder, context)

    def call(self, fn: ContractFunction, sender: str | None = None, **context: Any) -> Any:
        return self.chain.call(fn, self.decoder, sender, context)

    def events(self, receipt: TxReceipt, name: str) -> list[EventData]:
        """The ``name`` events a transaction emitted."""
        event = getattr(self.contract.events, name)()
        return [e for e in event.process_receipt(receipt, errors=DISCARD) if e["event"] == name]

    def logs(self, name: str, from_block: int | None = None, **filters: Any) -> list[EventData]:
        """Every ``name`` event since the deployment matching the indexed ``filters``."""
        event = getattr(self.contract.events, name)
        start = self.deployment.block_number if from_block is None else from_block
        latest = int(self.chain._rpc(lambda: self.chain.w3.eth.block_number))
        argument_filters = {k: _filter_value(v) for k, v in filters.items() if v is not None}
        out: list[EventData] = []
        for lo in range(start, latest + 1, LOG_CHUNK_BLOCKS):
            hi = min(lo + LOG_CHUNK_BLOCKS - 1, latest)
            out.extend(
                self.chain._rpc(
                    lambda: event.get_logs(  # called at once by _rpc, so lo/hi are this chunk's
                        from_block=lo, to_block=hi, argument_filters=argument_filters or None
                    )
                )
            )
        return out

    def block_time(self, block_number: int) -> int:
        if block_number not in self._block_times:
            block = self.chain._rpc(lambda: self.chain.w3.eth.get_block(block_number))
            self._block_times[block_number] = int(block["timestamp"])
        return self._block_times[block_number]

    def now(self) -> int:
        return self.chain.now()

    # --- IPFS pointers on chain --------------------------------------------------------------------
    def put_small(self, data: bytes) -> bytes:
        """Add a small object (an envelope, a key directory) and return its on-chain pointer:
        the sha2-256 digest of its CIDv1 raw block."""
        cid = CID.decode(self.store.add_bytes(data))
        codec, digest = _raw_sha256(cid)
        if codec != "raw":
            raise StorageError(f"IPFS stored {len(data)} bytes as {cid.codec.name}, expected a single raw block")
        return digest

    def get_small(self, digest: bytes) -> bytes:
        return self.store.cat(cid_from_digest(digest))


def cid_from_digest(digest: bytes) -> str:
    """The CIDv1 (raw codec, sha2-256) whose digest is ``digest``, in base32."""
    return normalize_cid(CID("base32", 1, "raw", multihash.wrap(bytes(digest), "sha2-256")))


def _raw_sha256(cid: CID) -> tuple[str, bytes]:
    if cid.hashfun.name != "sha2-256":
        raise StorageError(f"CID {cid} does not use sha2-256, which the chain pointers assume")
    return cid.codec.name, bytes(multihash.unwrap(cid.digest))


def _filter_value(value: Any) -> Any:
    if isinstance(value, str) and value.startswith("0x") and len(value) == 42:
        return to_checksum_address(value)
    return value


def as_address(value: str | Identity) -> str:
    if isinstance(value, Identity):
        return value.address
    return to_checksum_address(value)
