"""Two homes side by side (issue 9 item 4, node side): every port the local node uses is set by
config or environment, or chosen free at start and recorded in the node directory, where the
home's clients find it; `status` names this home's processes only."""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil
import pytest
from web3 import Web3

from medledger.config import load_settings
from medledger.node import NodeConfig, ports, running_services, start, status, stop
from medledger.storage import IpfsStore

PORT_KEYS = ("anvil_port", "ipfs_api_port", "ipfs_gateway_port", "ipfs_swarm_port")


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "MEDLEDGER_RPC_URL",
        "MEDLEDGER_IPFS_API",
        "MEDLEDGER_CONFIG",
        "MEDLEDGER_HOME",
        *(f"MEDLEDGER_{k.upper()}" for k in PORT_KEYS),
    ):
        monkeypatch.delenv(name, raising=False)


def test_two_homes_side_by_side_both_come_up(tmp_path: Path, clean_env: None) -> None:
    homes = [tmp_path / "first", tmp_path / "second"]
    configs = [NodeConfig(data_dir=home / "node") for home in homes]  # every port automatic
    with running_services(configs[0]) as first, running_services(configs[1]) as second:
        recorded = [json.loads((c.data_dir / "ports.json").read_text()) for c in configs]
        assert set(recorded[0]["automatic"]) == set(PORT_KEYS)
        used = [{recorded[i][k] for k in PORT_KEYS} for i in range(2)]
        assert len(used[0]) == len(used[1]) == 4 and not used[0] & used[1]
        for home, config, started, ports in zip(homes, configs, (first, second), recorded, strict=False):
            # the home's clients find their own node through the recorded ports
            settings = load_settings(home=home)
            assert settings.rpc_url == f"http://127.0.0.1:{ports['anvil_port']}"
            assert settings.ipfs_api == f"/ip4/127.0.0.1/tcp/{ports['ipfs_api_port']}/http"
            assert Web3(Web3.HTTPProvider(settings.rpc_url)).eth.chain_id == 1337
            assert IpfsStore(settings.ipfs_api, timeout=5).ping()
            now = status(config)
            assert not now.down
            assert {n: s.pid for n, s in now.services.items()} == {n: s.pid for n, s in started.services.items()}
        assert first.anvil.pid != second.anvil.pid and first.ipfs.pid != second.ipfs.pid

        # a pid file of the first home copied into a third: not this home's process
        third = NodeConfig(data_dir=tmp_path / "third" / "node")
        third.run_dir.mkdir(parents=True)
        shutil.copy(configs[0].pid_file("anvil"), third.pid_file("anvil"))
        assert not status(third).anvil.running and status(third).anvil.stale_pid_file
        assert [s.name for s in status(third).down] == ["anvil", "ipfs"]


STARTER = """
import json, sys, time
from pathlib import Path
from medledger.node import NodeConfig, start
go = float(sys.argv[2])
time.sleep(max(0.0, go - time.time()))
started = start(NodeConfig(data_dir=Path(sys.argv[1])))
print(json.dumps({"anvil": started.anvil.pid, "ipfs": started.ipfs.pid}))
"""


def test_two_homes_started_at_the_same_moment_each_get_their_own_ports(tmp_path: Path, clean_env: None) -> None:
    """Both `node up`s once found the default ports free, and the second anvil died on 'Address
    already in use'. Starts now choose and bind their ports one at a time on a machine."""
    configs = [NodeConfig(data_dir=tmp_path / name / "node") for name in ("first", "second")]
    go = str(time.time() + 2)  # both processes pass their imports first, then start together
    children = [
        subprocess.Popen([sys.executable, "-c", STARTER, str(c.data_dir), go], stdout=subprocess.PIPE, text=True)
        for c in configs
    ]
    try:
        pids = [json.loads(child.communicate(timeout=120)[0]) for child in children]
        assert [child.returncode for child in children] == [0, 0]
        recorded = [json.loads((c.data_dir / "ports.json").read_text()) for c in configs]
        assert not {recorded[0][k] for k in PORT_KEYS} & {recorded[1][k] for k in PORT_KEYS}
        for config, ports, pid in zip(configs, recorded, pids, strict=True):
            assert {n: s.pid for n, s in status(config).services.items()} == pid
            listening = {c.laddr.port for c in psutil.Process(pid["anvil"]).connections("tcp") if c.status == "LISTEN"}
            assert ports["anvil_port"] in listening  # each home's own anvil answers on its recorded port
    finally:
        for config in configs:
            stop(config)


def returns_while_held(lock_file: Path) -> bool:
    """Whether a start's port choice goes on while ``lock_file`` is locked by someone else."""
    with open(lock_file, "rb") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        done = threading.Event()

        def start_choosing() -> None:
            with ports.choosing():
                done.set()

        threading.Thread(target=start_choosing, daemon=True).start()
        return done.wait(10)


def test_a_port_lock_that_is_not_this_users_own_file_is_not_waited_for(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The machine's port lock sits in the shared temporary directory: another user could put a file
    (or a link) there and hold it forever. A start then goes on without it instead of stalling."""
    real_uid = os.getuid()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.setattr(os, "getuid", lambda: real_uid + 1)
    lock = ports.machine_lock_path()
    lock.touch()  # created by another uid than the one starting
    assert returns_while_held(lock)
    lock.unlink()
    target = tmp_path / "elsewhere"
    target.touch()
    lock.symlink_to(target)  # a link in its place
    assert returns_while_held(target)

    monkeypatch.setattr(os, "getuid", lambda: real_uid)
    with ports.choosing(), open(ports.machine_lock_path(), "rb") as other, pytest.raises(BlockingIOError):
        fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)  # its own lock file: taken, and exclusive


def test_an_automatic_port_taken_since_the_last_start_moves(tmp_path: Path, clean_env: None) -> None:
    config = NodeConfig(data_dir=tmp_path / "node", services=("anvil",))
    config.data_dir.mkdir(parents=True)
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen(1)
        taken = squatter.getsockname()[1]
        (config.data_dir / "ports.json").write_text(json.dumps({"anvil_port": taken}))
        with running_services(config) as started:
            moved = json.loads(config.ports_file.read_text())["anvil_port"]
            assert moved != taken and started.anvil.address == f"http://127.0.0.1:{moved}"
            assert not status(config).down


def test_a_port_answered_by_another_program_does_not_count(tmp_path: Path, clean_env: None, node, node_config) -> None:
    """This home's anvil runs, but its recorded port is answered by another home's anvil."""
    config = NodeConfig(data_dir=tmp_path / "node", services=("anvil",))
    with running_services(config):
        assert not status(config).down
        recorded = json.loads(config.ports_file.read_text())
        config.ports_file.write_text(json.dumps(recorded | {"anvil_port": node_config.anvil_port}))
        st = status(config)
        assert st.anvil.running and not st.anvil.responding
        assert "answered by another program" in st.anvil.problem
        config.ports_file.write_text(json.dumps(recorded))
    assert status(node_config).anvil.up


def test_start_of_a_running_home_keeps_its_ports(node, node_config) -> None:
    before = json.loads(node_config.ports_file.read_text())
    start(node_config)
    assert json.loads(node_config.ports_file.read_text()) == before
