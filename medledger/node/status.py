"""What runs: per service, whether its process is alive, its pid, address and data path."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import psutil

from .config import NodeConfig
from .probes import probe
from .process import service_proc


@dataclass
class ServiceStatus:
    name: str
    running: bool
    pid: int | None
    address: str
    data_path: Path
    log_path: Path
    #: the service answered a request just now (eth_chainId / /api/v0/id)
    responding: bool = False
    #: a pid file was found whose process is gone (or is another program, or another home's)
    stale_pid_file: bool = False
    #: what is wrong, for a person ("" when it runs and answers)
    problem: str = ""

    @property
    def up(self) -> bool:
        """Running and answering, on its own port."""
        return self.running and self.responding

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["data_path"] = str(self.data_path)
        d["log_path"] = str(self.log_path)
        return d


@dataclass
class NodeStatus:
    data_dir: Path
    services: dict[str, ServiceStatus]

    @property
    def anvil(self) -> ServiceStatus:
        return self.services["anvil"]

    @property
    def ipfs(self) -> ServiceStatus:
        return self.services["ipfs"]

    @property
    def running(self) -> bool:
        """All managed services are running."""
        return all(s.running for s in self.services.values())

    @property
    def down(self) -> list[ServiceStatus]:
        """The services that do not run or do not answer."""
        return [s for s in self.services.values() if not s.up]

    def as_dict(self) -> dict[str, Any]:
        return {"data_dir": str(self.data_dir),
                "services": {k: v.as_dict() for k, v in self.services.items()}}

    def __str__(self) -> str:
        lines = [f"data directory: {self.data_dir}"]
        for s in self.services.values():
            state = "running" if s.running else "stopped"
            if s.running and not s.responding:
                state += " (not answering)" if "another program" not in s.problem else " (port taken)"
            pid = f"pid {s.pid}" if s.pid else "-"
            lines.append(f"{s.name:6} {state:26} {pid:11} {s.address:24} {s.data_path}")
        return "\n".join(lines)


def _listens(proc: psutil.Process, port: int) -> bool:
    """Whether ``proc`` (or a process it started) listens on ``port``."""
    try:
        family = [proc, *proc.children(recursive=True)]
        for member in family:
            getter = getattr(member, "net_connections", None) or member.connections
            if any(c.status == psutil.CONN_LISTEN and c.laddr.port == port for c in getter(kind="inet")):
                return True
    except psutil.Error:
        return False
    return False


def _problem(config: NodeConfig, name: str, proc: psutil.Process | None, answers: bool, listens: bool) -> str:
    port = config.port("anvil_port" if name == "anvil" else "ipfs_api_port")
    if proc is None:
        return f"not running (start it with `medledger node up`; log {config.log_file(name)})"
    if not answers:
        return f"running but not answering on port {port} (see {config.log_file(name)})"
    if not listens:
        return f"port {port} is answered by another program, not by this home's {name}"
    return ""


def _one_status(config: NodeConfig, name: str, check: bool = True) -> ServiceStatus:
    proc, stale = service_proc(config, name)
    answers = bool(proc is not None and check and probe(config, name, timeout=1.0))
    port = config.port("anvil_port" if name == "anvil" else "ipfs_api_port")
    listens = bool(answers and proc is not None and _listens(proc, port))
    return ServiceStatus(
        name=name, running=proc is not None, pid=proc.pid if proc else None,
        address=config.address_of(name), data_path=config.data_of(name),
        log_path=config.log_file(name), responding=answers and listens,
        stale_pid_file=stale, problem=_problem(config, name, proc, answers, listens) if check else "")


def status(config: NodeConfig | None = None) -> NodeStatus:
    """Per service: running (this home's process is alive), pid, address, data path, answering
    (on its own port: a port answered by another program does not count)."""
    config = (config or NodeConfig()).resolved()
    return NodeStatus(config.data_dir, {n: _one_status(config, n) for n in config.services})

