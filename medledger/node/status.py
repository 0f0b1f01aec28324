"""What runs: per service, whether its process is alive, its pid, address and data path."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

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
    #: a pid file was found whose process is gone (or is another program)
    stale_pid_file: bool = False

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

    def as_dict(self) -> dict[str, Any]:
        return {"data_dir": str(self.data_dir),
                "services": {k: v.as_dict() for k, v in self.services.items()}}

    def __str__(self) -> str:
        lines = [f"data directory: {self.data_dir}"]
        for s in self.services.values():
            state = "running" if s.running else "stopped"
            if s.running and not s.responding:
                state += " (not answering)"
            pid = f"pid {s.pid}" if s.pid else "-"
            lines.append(f"{s.name:6} {state:26} {pid:11} {s.address:24} {s.data_path}")
        return "\n".join(lines)


def _one_status(config: NodeConfig, name: str, check: bool = True) -> ServiceStatus:
    proc, stale = service_proc(config, name)
    running = proc is not None
    return ServiceStatus(
        name=name, running=running, pid=proc.pid if proc else None,
        address=config.address_of(name), data_path=config.data_of(name),
        log_path=config.log_file(name),
        responding=bool(running and check and probe(config, name, timeout=1.0)),
        stale_pid_file=stale)


def status(config: NodeConfig | None = None) -> NodeStatus:
    """Per service: running (our process is alive), pid, address, data path, answering."""
    config = config or NodeConfig()
    return NodeStatus(config.data_dir, {n: _one_status(config, n) for n in config.services})

