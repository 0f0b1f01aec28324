"""A connected session: the chain, the medledger deployment on it, and the IPFS store.

Everything above it (:mod:`~medledger.access`, :mod:`~medledger.consent`, :mod:`~medledger.records`,
:mod:`~medledger.keyring`, :mod:`~medledger.audit`) takes a :class:`Client`, so the library is
usable without the CLI::

    from medledger.client import Client
    from medledger.config import load_settings
    client = Client.connect(load_settings())
    client.contract.consent(patient, grantee, Access.READ)   # the typed contract facade
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

from multiformats import CID, multihash

from .chain import Chain, Deployment, MedledgerContract
from .chain.addresses import checked_address
from .chain.deployments import checked_deployment
from .chain.durability import Durability
from .chain.history import EventHistory, LogScan
from .config import Settings
from .errors import StorageError
from .keystore import Identity
from .storage import IpfsStore, normalize_cid


@dataclass
class Client:
    """One deployment on one chain plus one IPFS node."""

    settings: Settings
    chain: Chain
    deployment: Deployment
    store: IpfsStore
    _history: EventHistory | None = field(default=None, repr=False, compare=False)

    @classmethod
    def connect(cls, settings: Settings, store: IpfsStore | None = None) -> Client:
        chain = connect_chain(settings)
        deployment = checked_deployment(chain, settings.deployments)
        return cls(settings, chain, deployment, store or IpfsStore(settings.ipfs_api, settings.ipfs_timeout))

    @cached_property
    def contract(self) -> MedledgerContract:
        """The typed facade over the deployment (every contract call goes through it)."""
        return MedledgerContract(self.chain, self.deployment)

    @property
    def history(self) -> EventHistory:
        """Where the history views (audit trail, grants, records listings) read events: a scan of the
        chain's logs, unless :meth:`use_history` gave another source (the event index:
        ``medledger.index.open_history(client)``). ``history.source`` says which."""
        if self._history is None:
            self._history = LogScan(self.contract)
        return self._history

    def use_history(self, history: EventHistory | None) -> None:
        """Read history from ``history`` from now on (None: a log scan again)."""
        self._history = history

    def now(self) -> int:
        """Chain time: the timestamp of the latest block."""
        return self.chain.now()

    def block_time(self, block_number: int) -> int:
        return self.chain.block_time(block_number)

    # --- IPFS pointers on chain --------------------------------------------------------------------
    def put_small(self, data: bytes) -> bytes:
        """Add a small object (an envelope, a key directory) and return its on-chain pointer:
        the sha2-256 digest of its CIDv1 raw block."""
        return self.pointer_of(self.store.add_bytes(data), len(data))

    @staticmethod
    def pointer_of(cid: str, size: int) -> bytes:
        """The on-chain pointer of a small object IPFS stored as ``cid`` (``size`` bytes): the sha2-256
        digest of its CIDv1 raw block."""
        decoded = CID.decode(cid)
        codec, digest = _raw_sha256(decoded)
        if codec != "raw":
            raise StorageError(f"IPFS stored {size} bytes as {decoded.codec.name}, expected a single raw block")
        return digest

    def get_small(self, digest: bytes) -> bytes:
        return self.store.cat(cid_from_digest(digest))


def connect_chain(settings: Settings) -> Chain:
    """The chain of ``settings``, with the home's durability: its journal, nonce locks and what
    "written" means there (:mod:`medledger.chain.durability`)."""
    durability = Durability.for_settings(settings)
    return Chain(settings.rpc_url, settings.chain_id, settings.rpc_timeout, durability=durability)


def cid_from_digest(digest: bytes) -> str:
    """The CIDv1 (raw codec, sha2-256) whose digest is ``digest``, in base32."""
    return normalize_cid(CID("base32", 1, "raw", multihash.wrap(bytes(digest), "sha2-256")))


def _raw_sha256(cid: CID) -> tuple[str, bytes]:
    if cid.hashfun.name != "sha2-256":
        raise StorageError(f"CID {cid} does not use sha2-256, which the chain pointers assume")
    return cid.codec.name, bytes(multihash.unwrap(cid.digest))


def as_address(value: str | Identity) -> str:
    if isinstance(value, Identity):
        return value.address
    return checked_address(value)
