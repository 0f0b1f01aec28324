"""Shared by every test run: make the repo's npm tools (anvil, forge, the solc wrapper) findable."""

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
_bin = str(ROOT / "node_modules" / ".bin")
if _bin not in os.environ.get("PATH", "").split(os.pathsep):
    os.environ["PATH"] = _bin + os.pathsep + os.environ.get("PATH", "")
# brownie/py-solc-x find "solc 0.8.37" as this clone's link to its solc-js wrapper (tools/postinstall.js).
os.environ.setdefault("SOLCX_BINARY_PATH", str(ROOT / "node_modules" / ".solcx"))

import sys  # noqa: E402

if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # `import scripts.deploy`, `import medledger` from any test
