"""What the tests of documented paths share: the checkout, views of it in a temporary directory, and
an environment with nothing of the developer's medledger, solc or Python settings in it."""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def project_view(target: Path, *names: str) -> Path:
    """``target`` holding links to the named entries of the checkout: commands that expect to run from
    the repository do, while whatever they write (build output, grant.json) stays in ``target``."""
    target.mkdir(parents=True, exist_ok=True)
    for name in names:
        (target / name).symlink_to(ROOT / name)
    return target


def clean_env(**extra: str) -> dict[str, str]:
    """The test process's environment without MEDLEDGER_*, SOLCX_*, PYTHON* and virtualenv settings,
    plus ``extra``."""
    prefixes = ("MEDLEDGER_", "SOLCX_", "PYTHON", "VIRTUAL_ENV", "_MEDLEDGER_COMPLETE")
    return {**{k: v for k, v in os.environ.items() if not k.startswith(prefixes)}, **extra}


def tool_path(*extra: Path) -> str:
    """A PATH with the checkout's npm tools and venv (as the README's first line exports) and the system."""
    return os.pathsep.join(
        [*(str(p) for p in extra), str(ROOT / "node_modules" / ".bin"), str(ROOT / ".venv" / "bin"), "/usr/bin", "/bin"]
    )
