"""medledger.services with real anvil and js-ipfs processes (no mocks)."""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from eth_account import Account
from web3 import Web3

from medledger.errors import ServiceError
from medledger.node import (
    DEFAULT_MNEMONIC,
    NodeConfig,
    default_data_dir,
    free_port,
    start,
    status,
    stop,
)
from medledger.storage import IpfsStore


def _connections(pid: int):
    proc = psutil.Process(pid)
    getter = getattr(proc, "net_connections", None) or proc.connections
    return getter(kind="inet")


def test_defaults(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("MEDLEDGER_HOME", str(tmp_path / "home"))
    cfg = NodeConfig()
    assert cfg.data_dir == tmp_path / "home" / "node" == default_data_dir()
    assert cfg.chain_id == 1337
    # every port automatic; before any start, the defaults
    assert cfg.automatic() == ("anvil_port", "ipfs_api_port", "ipfs_gateway_port", "ipfs_swarm_port")
    assert [cfg.port(k) for k in cfg.automatic()] == [8645, 5101, 8180, 4101]
    assert cfg.mnemonic == DEFAULT_MNEMONIC
    assert cfg.rpc_url == "http://127.0.0.1:8645"
    assert cfg.ipfs_api == "/ip4/127.0.0.1/tcp/5101/http"
    # once a start recorded other ports, they are the ports of this data directory
    cfg.data_dir.mkdir(parents=True)
    (cfg.data_dir / "ports.json").write_text(json.dumps({"anvil_port": 18645, "ipfs_api_port": 15101}))
    assert cfg.rpc_url == "http://127.0.0.1:18645" and cfg.resolved().ipfs_api_port == 15101
    assert NodeConfig(anvil_port=9000).rpc_url == "http://127.0.0.1:9000"
    monkeypatch.delenv("MEDLEDGER_HOME")
    assert NodeConfig().data_dir == Path("~/.medledger/node").expanduser()
    with pytest.raises(ServiceError):
        NodeConfig(anvil_port=5101, ipfs_api_port=5101)  # the ports set must differ


def test_free_port_returns_a_port_that_can_be_bound_on_loopback() -> None:
    port = free_port()
    assert 1024 <= port <= 65535
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))  # raises OSError if the port were taken
        assert sock.getsockname() == ("127.0.0.1", port)


def test_status_of_running_services(node, node_config) -> None:
    st = status(node_config)
    assert st.running
    for name in ("anvil", "ipfs"):
        svc = st.services[name]
        assert svc.running and svc.responding
        assert svc.pid and psutil.pid_exists(svc.pid)
        assert svc.pid == node.services[name].pid
        assert svc.address.startswith("http://127.0.0.1:")
    assert st.anvil.address == node_config.rpc_url
    assert st.ipfs.address == node_config.ipfs_api_url
    assert st.anvil.data_path == node_config.data_dir / "anvil" / "state.json"
    assert st.ipfs.data_path == node_config.data_dir / "ipfs"
    assert (node_config.data_dir / "ipfs" / "config").exists()
    assert json.loads(st.as_dict() and json.dumps(st.as_dict()))["services"]["ipfs"]["running"]
    assert "running" in str(st)


def test_services_listen_on_loopback_only(node, node_config) -> None:
    for name in ("anvil", "ipfs"):
        pid = status(node_config).services[name].pid
        conns = _connections(pid)
        listening = [c for c in conns if c.status == psutil.CONN_LISTEN]
        assert listening, name
        for c in conns:
            assert c.laddr.ip == "127.0.0.1", (name, c)
            if c.raddr:
                assert c.raddr.ip == "127.0.0.1", (name, c)
    ipfs_ports = {c.laddr.port for c in _connections(status(node_config).ipfs.pid)
                  if c.status == psutil.CONN_LISTEN}
    assert ipfs_ports == {node_config.ipfs_api_port, node_config.ipfs_gateway_port,
                          node_config.ipfs_swarm_port}
    cfg = json.loads((node_config.ipfs_path / "config").read_text())
    assert cfg["Bootstrap"] == []
    assert cfg["Discovery"]["MDNS"]["Enabled"] is False
    assert cfg["Addresses"]["Delegates"] == []


def test_start_is_idempotent(node, node_config) -> None:
    before = status(node_config)
    again = start(node_config)
    assert again.running
    assert {n: s.pid for n, s in again.services.items()} == \
        {n: s.pid for n, s in before.services.items()}


def test_restart_keeps_chain_state_and_ipfs_content(node, node_config) -> None:
    w3 = Web3(Web3.HTTPProvider(node_config.rpc_url, request_kwargs={"timeout": 10}))
    assert w3.eth.chain_id == 1337
    sender = w3.eth.accounts[0]
    fresh = Account.create().address
    tx = w3.eth.send_transaction({"from": sender, "to": fresh, "value": 12345 * 10**12})
    receipt = w3.eth.wait_for_transaction_receipt(tx, timeout=10)
    assert receipt.status == 1
    # a contract whose runtime code returns 42 (init code copies it out and returns it)
    runtime = bytes.fromhex("602a60005260206000f3")
    deploy = w3.eth.send_transaction({"from": sender,
                                      "data": "0x69" + runtime.hex() + "600052600a6016f3"})
    contract = w3.eth.wait_for_transaction_receipt(deploy, timeout=10).contractAddress
    assert bytes(w3.eth.get_code(contract)) == runtime
    block = w3.eth.block_number
    store = IpfsStore(node_config.ipfs_api, timeout=10)
    cid = store.add_bytes(b"survives a restart " + os.urandom(8))
    content = store.cat(cid)

    stopped = stop(node_config)
    assert not stopped.anvil.running and not stopped.ipfs.running
    assert not any(node_config.pid_file(n).exists() for n in ("anvil", "ipfs"))
    assert not store.ping()
    again = stop(node_config)  # idempotent
    assert not again.running
    json.loads(node_config.anvil_state.read_text())  # anvil wrote valid state

    started = start(node_config)
    assert started.running and started.anvil.responding and started.ipfs.responding
    assert w3.eth.get_balance(fresh) == 12345 * 10**12
    assert w3.eth.block_number == block
    assert w3.eth.get_transaction_receipt(tx).status == 1
    assert bytes(w3.eth.get_code(contract)) == runtime
    assert int.from_bytes(w3.eth.call({"to": contract}), "big") == 42
    assert store.cat(cid) == content
    assert store.is_pinned(cid)
    store.unpin(cid)


@pytest.mark.parametrize("key", ["anvil_port", "ipfs_api_port", "ipfs_swarm_port"])
def test_port_taken_by_another_program(tmp_path, key) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen(1)
        port = squatter.getsockname()[1]
        cfg = NodeConfig.ephemeral(tmp_path / "node", **{key: port})
        with pytest.raises(ServiceError) as info:
            start(cfg)
    message = str(info.value)
    assert str(port) in message
    assert key in message
    st = status(cfg)
    assert not st.anvil.running and not st.ipfs.running


def test_missing_binaries(tmp_path) -> None:
    empty = tmp_path / "bin"
    empty.mkdir()
    cfg = NodeConfig.ephemeral(tmp_path / "node").replace(bin_dir=empty)
    with pytest.raises(ServiceError, match="npm install"):
        start(cfg)
    assert not status(cfg).anvil.running


def test_failing_service_reports_its_log(tmp_path) -> None:
    bindir = tmp_path / "bin"
    bindir.mkdir()
    fake = bindir / "anvil"
    fake.write_text("#!/bin/sh\necho 'simulated failure: cannot open database' >&2\nexit 3\n")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    cfg = NodeConfig.ephemeral(tmp_path / "node").replace(bin_dir=bindir, services=("anvil",),
                                                          start_timeout=10)
    with pytest.raises(ServiceError) as info:
        start(cfg)
    assert "simulated failure: cannot open database" in str(info.value)
    assert "exit code 3" in str(info.value)
    assert not cfg.pid_file("anvil").exists()


def test_start_timeout_reports_log(tmp_path) -> None:
    bindir = tmp_path / "bin"
    bindir.mkdir()
    fake = bindir / "anvil"
    fake.write_text("#!/bin/sh\necho 'still warming up'\nexec sleep 30\n")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    cfg = NodeConfig.ephemeral(tmp_path / "node").replace(bin_dir=bindir, services=("anvil",),
                                                          start_timeout=1.5, stop_timeout=2)
    started = time.monotonic()
    with pytest.raises(ServiceError) as info:
        start(cfg)
    assert time.monotonic() - started < 8
    assert "did not answer within 1.5 s" in str(info.value)
    assert "still warming up" in str(info.value)
    assert not status(cfg).anvil.running  # the half-started process was stopped


def test_stale_pid_files(tmp_path) -> None:
    cfg = NodeConfig.ephemeral(tmp_path / "node")
    cfg.run_dir.mkdir(parents=True)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    cfg.pid_file("anvil").write_text(json.dumps({"pid": dead.pid, "create_time": 1.0}))
    # a live process that is not ours (wrong start time): must not be reported or signalled
    cfg.pid_file("ipfs").write_text(json.dumps({"pid": os.getpid(), "create_time": 1.0}))
    st = status(cfg)
    assert not st.anvil.running and st.anvil.stale_pid_file
    assert not st.ipfs.running and st.ipfs.stale_pid_file
    stop(cfg)  # removes stale pid files, signals nothing
    assert not cfg.pid_file("anvil").exists() and not cfg.pid_file("ipfs").exists()
    cfg.pid_file("anvil").write_text("garbage")
    assert status(cfg).anvil.stale_pid_file
