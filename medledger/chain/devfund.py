"""Funding an identity from a local development node's dev accounts (anvil, Hardhat, Ganache).

Those nodes start with unlocked accounts holding test ether; a new identity needs some for gas before
it can deploy or register. The offer is refused on any other chain, before anything is sent: the
node must be on this machine (a 127.0.0.1/localhost RPC URL, checked before connecting) and say it is
a development node that holds unlocked accounts. Nothing here signs with a key of ours.
"""

from __future__ import annotations

from dataclasses import dataclass

from eth_utils import to_checksum_address

from medledger.config import local_rpc_port
from medledger.errors import ConfigError

from .addresses import checked_address
from .durability import mined_of
from .rpc import Chain

#: ``web3_clientVersion`` prefixes of the development nodes whose unlocked accounts may be used.
DEV_CLIENTS = ("anvil", "hardhatnetwork", "ganache")
WEI_PER_ETH = 10**18


@dataclass(frozen=True)
class Funded:
    address: str
    amount_wei: int
    source: str
    tx_hash: str
    balance_wei: int


def _refuse(chain: Chain, why: str) -> ConfigError:
    return ConfigError(
        f"Funding from dev accounts is offered only on a local development chain (anvil, as `medledger node up` "
        f"starts); {chain.rpc_url} {why}. On this chain, send ETH to the identity from an account that holds some."
    )


def dev_client(chain: Chain) -> str:
    """The development node's client version; :class:`ConfigError` unless the chain is one."""
    if local_rpc_port(chain.rpc_url) is None:
        raise _refuse(chain, "is not on this machine")
    chain.check()
    version = str(chain.rpc("web3_clientVersion", []))
    if not version.lower().replace(" ", "").startswith(DEV_CLIENTS):
        raise _refuse(chain, f"is {version.split('/')[0] or 'a node'}, not a development node")
    return version


def fund(chain: Chain, address: str, amount_wei: int) -> Funded:
    """Send ``amount_wei`` to ``address`` from the first dev account that holds enough."""
    dev_client(chain)
    to = checked_address(address)
    for account in chain.rpc("eth_accounts", []):
        source = to_checksum_address(account)
        if source != to and chain.balance(source) > amount_wei + WEI_PER_ETH // 100:
            break
    else:
        raise _refuse(chain, f"has no unlocked account holding {amount_wei / WEI_PER_ETH:g} ETH")
    tx_hash = chain.rpc("eth_sendTransaction", [{"from": source, "to": to, "value": hex(amount_wei)}])
    receipt = chain.guarded(lambda: chain.w3.eth.wait_for_transaction_receipt(tx_hash, timeout=chain.timeout))
    if receipt["status"] != 1:
        raise ConfigError(f"The dev node at {chain.rpc_url} did not carry out the transfer {tx_hash}")
    if chain.durability is not None:  # the node signed it, so there are no bytes to journal: only made written
        chain.durability.settle(chain, [mined_of(receipt)])
    return Funded(to, amount_wei, source, str(tx_hash), chain.balance(to))
