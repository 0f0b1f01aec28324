"""The local node medledger needs: an anvil chain and a js-ipfs node, both on 127.0.0.1 only.

Modules: :mod:`.config` (NodeConfig: data directory, ports), :mod:`.supervisor` (start, stop),
:mod:`.status`, :mod:`.ports` (chosen at start, recorded), :mod:`.process` (pid files, logs,
launching), :mod:`.anvil`, :mod:`.ipfs`, :mod:`.probes`.

Used by ``medledger node up | down | status``, the demo and the tests::

    cfg = NodeConfig()                 # data in $MEDLEDGER_HOME/node (default ~/.medledger/node)
    start(cfg)                         # idempotent; returns NodeStatus once both answer
    status(cfg)                        # per service: running?, pid, address, data path
    stop(cfg)                          # idempotent; SIGTERM, then SIGKILL after a grace period

    with running_services(NodeConfig.ephemeral(tmp_dir)) as st:   # free ports, own data dir
        ...

Layout of the data directory::

    anvil/state.json        chain state (anvil --state: loaded on start, dumped on exit and
                            every ``anvil_state_interval`` seconds); state.json.bak = last good copy
    ipfs/                   the js-ipfs repository (IPFS_PATH)
    logs/anvil.log, logs/ipfs.log, logs/ipfs-init.log
    run/anvil.pid, run/ipfs.pid   JSON: pid and process start time (detects stale pid files)
    ports.json              the ports of the last start; the home's clients connect to them

The processes run detached (own session) in the data directory, so ``node up`` can return,
``node down`` in a later process stops them, and a process of another home is never taken for
this one's. They do not inherit passphrases or keys to import from the environment. Nothing
listens on anything but 127.0.0.1 and nothing dials out: anvil has no fork URL; js-ipfs runs with
the ``test`` profile, an empty bootstrap list, no MDNS, no webRTC-star, no delegates, no DHT, no NAT
port mapping, no gRPC endpoint and preload disabled (``--enable-preload=false`` and
``NODE_ENV=test``, which is js-ipfs's own switch for the default).
"""

from __future__ import annotations

from .config import DEFAULT_MNEMONIC, HOST, NodeConfig, default_data_dir, free_port
from .process import find_binary
from .status import NodeStatus, ServiceStatus, status
from .supervisor import running_services, start, stop

__all__ = [
    "DEFAULT_MNEMONIC",
    "HOST",
    "NodeConfig",
    "NodeStatus",
    "ServiceStatus",
    "default_data_dir",
    "find_binary",
    "free_port",
    "running_services",
    "start",
    "status",
    "stop",
]
