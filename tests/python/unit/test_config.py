"""Settings from the config file and the environment; the local node's ports (issue 9 item 4)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from medledger.config import DEFAULT_IPFS_API, DEFAULT_RPC_URL, load_settings
from medledger.errors import ConfigError

PORT_ENV = ("MEDLEDGER_ANVIL_PORT", "MEDLEDGER_IPFS_API_PORT", "MEDLEDGER_IPFS_GATEWAY_PORT",
            "MEDLEDGER_IPFS_SWARM_PORT")


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("MEDLEDGER_RPC_URL", "MEDLEDGER_IPFS_API", "MEDLEDGER_CONFIG", "MEDLEDGER_HOME", *PORT_ENV):
        monkeypatch.delenv(name, raising=False)


def write_config(home: Path, text: str) -> None:
    home.mkdir(parents=True, exist_ok=True)
    (home / "config.toml").write_text(text)


def test_defaults_point_at_the_default_local_node(tmp_path: Path) -> None:
    settings = load_settings(home=tmp_path)
    assert (settings.rpc_url, settings.ipfs_api, settings.node_ports) == (DEFAULT_RPC_URL, DEFAULT_IPFS_API, {})
    assert settings.node_dir == tmp_path / "node" and settings.keys == tmp_path / "keys"


def test_every_node_port_is_set_by_the_config_file_or_the_environment(tmp_path: Path, monkeypatch) -> None:
    write_config(tmp_path, '[node]\nanvil_port = 9645\nipfs_api_port = 9101\nipfs_gateway_port = "auto"\n'
                           "ipfs_swarm_port = 9401\n")
    monkeypatch.setenv("MEDLEDGER_IPFS_SWARM_PORT", "19401")
    monkeypatch.setenv("MEDLEDGER_IPFS_GATEWAY_PORT", "19180")
    settings = load_settings(home=tmp_path)
    assert settings.node_ports == {"anvil_port": 9645, "ipfs_api_port": 9101, "ipfs_gateway_port": 19180,
                                   "ipfs_swarm_port": 19401}
    # clients of the home talk to the node's ports
    assert settings.rpc_url == "http://127.0.0.1:9645"
    assert settings.ipfs_api == "/ip4/127.0.0.1/tcp/9101/http"
    monkeypatch.setenv("MEDLEDGER_ANVIL_PORT", "auto")  # the environment wins, and asks for a choice
    assert "anvil_port" not in load_settings(home=tmp_path).node_ports


def test_a_local_rpc_url_or_ipfs_api_fixes_the_node_port(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("MEDLEDGER_RPC_URL", "http://localhost:18645")
    monkeypatch.setenv("MEDLEDGER_IPFS_API", "/ip4/127.0.0.1/tcp/15101/http")
    assert load_settings(home=tmp_path).node_ports == {"anvil_port": 18645, "ipfs_api_port": 15101}
    monkeypatch.setenv("MEDLEDGER_RPC_URL", "https://rpc.example.org")
    settings = load_settings(home=tmp_path, ipfs_api="/dns/ipfs.example.org/tcp/5001/https")
    assert settings.node_ports == {} and settings.rpc_url == "https://rpc.example.org"


def test_without_urls_of_their_own_clients_follow_the_ports_the_node_recorded(tmp_path: Path) -> None:
    (tmp_path / "node").mkdir(parents=True)
    (tmp_path / "node" / "ports.json").write_text(json.dumps(
        {"anvil_port": 28645, "ipfs_api_port": 25101, "ipfs_gateway_port": 28180, "ipfs_swarm_port": 24101,
         "automatic": ["anvil_port", "ipfs_api_port"]}))
    settings = load_settings(home=tmp_path)
    assert settings.rpc_url == "http://127.0.0.1:28645"
    assert settings.ipfs_api == "/ip4/127.0.0.1/tcp/25101/http"
    assert settings.node_ports == {}  # recorded, not set: `node up` may move them if taken
    assert load_settings(home=tmp_path, rpc_url="http://127.0.0.1:1234").rpc_url == "http://127.0.0.1:1234"


@pytest.mark.parametrize("text,says", [("[node]\nanvil_port = 0\n", "TCP port"),
                                       ("[node]\nanvil_port = 70000\n", "TCP port"),
                                       ('[node]\nanvil_port = "eight"\n', "must be a int"),
                                       ("[node]\ngateway = 1\n", "Unknown key"),
                                       ("[nodes]\n", "Unknown section")])
def test_bad_node_settings_are_configuration_errors(tmp_path: Path, text: str, says: str) -> None:
    write_config(tmp_path, text)
    with pytest.raises(ConfigError, match=says):
        load_settings(home=tmp_path)
