"""Manual use: ``python -m medledger.node up|down|status`` (the CLI is ``medledger node``)."""

from __future__ import annotations

import sys

from . import NodeConfig, start, status, stop

if __name__ == "__main__":  # pragma: no cover - manual use
    action = sys.argv[1] if len(sys.argv) > 1 else "status"
    fn = {"up": start, "down": stop, "status": status}[action]
    print(fn(NodeConfig()))
