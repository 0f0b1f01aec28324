"""``medledger demo``: Lisa's story (from the first seed essay) end to end on a local anvil chain and
IPFS node that it starts itself. The story is the list of steps in :mod:`.steps`; every step prints
what happened, and the demo exits 0 only if every expectation held."""

from __future__ import annotations

import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO

from medledger import node as services
from medledger.chain import deploy_medledger
from medledger.client import Client, connect_chain
from medledger.config import Settings
from medledger.errors import MedledgerError
from medledger.keystore import Identity

from .steps import STEPS, Scene
from .story import Story, identities

CAST = ["registrar", "lisa", "gp", "study", "app", "ae", "daughter", "relayer"]

__all__ = ["CAST", "STEPS", "Scene", "Story", "identities", "run"]


@contextmanager
def _services(data_dir: Path | None) -> Iterator[services.NodeConfig]:
    with tempfile.TemporaryDirectory(prefix="medledger-demo-") as tmp:
        config = services.NodeConfig.ephemeral(Path(data_dir or tmp) / "node")
        with services.running_services(config):
            yield config


def run(out: TextIO = sys.stdout, data_dir: Path | None = None) -> int:
    story = Story(out)
    out.write("medledger demo: Lisa takes charge of her medical record\n")
    story.step("Starting a local anvil chain and IPFS node (127.0.0.1 only, offline)")
    with _services(data_dir) as node:
        story.say(f"chain {node.rpc_url}  ipfs {node.ipfs_api}")
        home = Path(node.data_dir).parent
        settings = Settings(home=home, rpc_url=node.rpc_url, ipfs_api=node.ipfs_api, chain_id=node.chain_id)
        try:
            _play(story, settings, identities(node.mnemonic, CAST))
        except MedledgerError as exc:
            story.expect(False, f"unexpected error: {type(exc).__name__}: {exc}")
    took = time.monotonic() - story.started
    if story.failures:
        out.write(f"\nDemo FAILED after {took:.1f} s: {len(story.failures)} expectation(s) did not hold:\n")
        for failure in story.failures:
            out.write(f"  - {failure}\n")
        return 1
    out.write(f"\nDemo complete in {took:.1f} s: every expectation held.\n")
    return 0


def _play(story: Story, settings: Settings, cast: dict[str, Identity]) -> None:
    chain = connect_chain(settings)
    deployment, _ = deploy_medledger(chain, cast["registrar"].account, settings.deployments)
    story.say(f"medledger deployed at {deployment.address} (chain {deployment.chain_id})")
    scene = Scene(story, Client.connect(settings), cast)
    for title, step in STEPS:
        story.step(title)
        step(scene)
