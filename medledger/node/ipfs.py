"""js-ipfs, the local IPFS node: its repository, settings and daemon environment. It never dials
out: test profile, empty bootstrap list, no MDNS, no webRTC-star, no delegates, no DHT, no NAT port
mapping, no gRPC endpoint and preload disabled."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

from medledger.errors import ServiceError
from medledger.fsutil import atomic_write
from medledger.keystore.names import without_secrets

from .config import HOST, NodeConfig
from .process import find_binary, log_tail, open_log, write_json


def base_env(config: NodeConfig) -> dict[str, str]:
    env = {k: v for k, v in without_secrets(os.environ).items()
           if k not in ("DEBUG", "IPFS_MONITORING", "NODE_OPTIONS")}
    env["IPFS_PATH"] = str(config.ipfs_path)
    env["NODE_ENV"] = "test"  # js-ipfs: preload off by default
    # node (for the jsipfs script) is normally on PATH; also look next to the binary
    return env


#: Preloaded into the js-ipfs daemon (``node --require``). js-ipfs 0.66 leaves a promise rejection
#: unhandled when a read of a partly missing DAG is aborted (the client gave up, or a timeout), and
#: its CLI exits on any unhandled rejection: one ``cat`` of damaged content would take the node
#: down. This lets the CLI's handler see every other rejection but only logs the aborted wants.
_JSIPFS_PRELOAD = r"""'use strict'
// written by medledger.node: keep the daemon alive when an aborted block want is not handled
const once = process.once
process.once = function (event, listener) {
  if (event === 'unhandledRejection') {
    return process.on(event, (reason) => {
      const msg = reason && reason.message ? String(reason.message) : String(reason)
      if (/Want for \S+ aborted|request timed out|The operation was aborted/.test(msg)) {
        console.error('medledger: ignored unhandled rejection: ' + msg)
        return
      }
      listener(reason)
    })
  }
  return once.apply(this, arguments)
}
"""


def daemon_env(config: NodeConfig) -> dict[str, str]:
    env = base_env(config)
    preload = config.run_dir / "jsipfs-preload.cjs"
    if not preload.exists() or preload.read_text() != _JSIPFS_PRELOAD:
        atomic_write(preload, _JSIPFS_PRELOAD)
    env["NODE_OPTIONS"] = f'--require "{preload}"'
    return env


def _ipfs_settings(config: NodeConfig) -> dict[str, Any]:
    return {
        "Addresses": {
            "API": f"/ip4/{HOST}/tcp/{config.port('ipfs_api_port')}",
            "Gateway": f"/ip4/{HOST}/tcp/{config.port('ipfs_gateway_port')}",
            "Swarm": [f"/ip4/{HOST}/tcp/{config.port('ipfs_swarm_port')}"],
            "RPC": "",  # no gRPC-over-websocket endpoint
            "Announce": [], "NoAnnounce": [], "Delegates": [],
        },
        "Bootstrap": [],
        "Discovery": {"MDNS": {"Enabled": False, "Interval": 10},
                      "webRTCStar": {"Enabled": False}},
        "Routing": {"Type": "none"},
        "Pubsub": {"Enabled": False, "Router": "gossipsub"},
    }


def _deep_update(dst: dict[str, Any], src: dict[str, Any]) -> None:
    for k, v in src.items():
        if isinstance(v, dict) and isinstance(dst.get(k), dict):
            _deep_update(dst[k], v)
        else:
            dst[k] = v


def _repo_has_blocks(repo: Path) -> bool:
    blocks = repo / "blocks"
    if not blocks.is_dir():
        return False
    for _root, _dirs, files in os.walk(blocks):
        if any(f.endswith(".data") for f in files):
            return True
    return False


def init_repo(config: NodeConfig, deadline: float) -> None:
    """Initialise the js-ipfs repo if it has no config yet, then (re)write its settings."""
    repo = config.ipfs_path
    cfg_file = repo / "config"
    if not cfg_file.exists():
        if repo.exists():
            if _repo_has_blocks(repo):
                raise ServiceError(f"IPFS repo {repo} has blocks but no config file; move it away "
                                   f"or restore its config")
            shutil.rmtree(repo)  # an interrupted init: nothing of value
        repo.parent.mkdir(parents=True, exist_ok=True)
        seed = config.run_dir / "ipfs-init-config.json"
        write_json(seed, _ipfs_settings(config))
        log_path = config.log_dir / "ipfs-init.log"
        with open_log(log_path) as log:
            try:
                proc = subprocess.run(
                    [str(find_binary("jsipfs", config)), "init", "--profile", "test",
                     "--emptyRepo", str(seed)],
                    env=base_env(config), stdin=subprocess.DEVNULL, stdout=log,
                    stderr=subprocess.STDOUT, cwd=config.data_dir,
                    timeout=max(5.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired as error:
                shutil.rmtree(repo, ignore_errors=True)
                raise ServiceError(f"`jsipfs init` did not finish in time; log {log_path}:\n"
                                   f"{log_tail(log_path)}") from error
        seed.unlink(missing_ok=True)
        if proc.returncode != 0 or not cfg_file.exists():
            shutil.rmtree(repo, ignore_errors=True)
            raise ServiceError(f"`jsipfs init` failed (exit {proc.returncode}); log {log_path}:\n"
                               f"{log_tail(log_path)}")
    try:
        current = json.loads(cfg_file.read_text())
    except (OSError, ValueError) as error:
        raise ServiceError(f"cannot read the IPFS repo config {cfg_file}: {error}") from error
    _deep_update(current, _ipfs_settings(config))
    current.setdefault("Swarm", {})["DisableNatPortMap"] = True
    write_json(cfg_file, current, mode=0o600)  # holds the node's private key


def clear_lock(config: NodeConfig) -> None:
    """Remove the lock and api files a killed js-ipfs daemon leaves behind (it is not running)."""
    lock = config.ipfs_path / "repo.lock"
    if lock.is_dir():
        shutil.rmtree(lock, ignore_errors=True)
    elif lock.exists():
        lock.unlink(missing_ok=True)
    (config.ipfs_path / "api").unlink(missing_ok=True)


def daemon_command(config: NodeConfig) -> list[str]:
    return [str(find_binary("jsipfs", config)), "daemon", "--offline", "--enable-preload=false"]
