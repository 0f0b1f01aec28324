"""The long-lived anvil and IPFS daemons never inherit a passphrase or a key to import from the shell
that started them (issue 12 item 8): read from /proc/<pid>/environ of the running daemons."""

from __future__ import annotations

from pathlib import Path

import psutil
import pytest

from medledger.node import NodeConfig, running_services

SECRETS = {
    "MEDLEDGER_PASSPHRASE_LISA": "lisa's passphrase 4f1c",
    "MEDLEDGER_PASSPHRASE": "the shared passphrase 9a0e",
    "MEDLEDGER_IMPORT_KEY": "0x" + "5e" * 32,
    "MEDLEDGER_IMPORT_ENCRYPTION_KEY": "0x" + "6f" * 32,
}


def environ_of(pid: int) -> bytes:
    return Path(f"/proc/{pid}/environ").read_bytes()


def test_daemons_do_not_inherit_passphrases_or_keys(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("MEDLEDGER_HARMLESS", "kept")
    with running_services(NodeConfig.ephemeral(tmp_path / "node")) as started:
        for service in ("anvil", "ipfs"):
            pid = started.services[service].pid
            assert pid is not None
            processes = [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]
            for process in processes:
                environ = environ_of(process.pid)
                assert b"MEDLEDGER_HARMLESS=kept" in environ  # the environment is really read
                for name, value in SECRETS.items():
                    assert name.encode() + b"=" not in environ, (service, process.pid, name)
                    assert value.encode() not in environ, (service, process.pid, name)
