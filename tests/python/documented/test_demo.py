"""The README's first command, `make demo`, run as written: Lisa's story on a local chain and IPFS
node that the demo starts itself, from a fresh home, exiting 0 only if every expectation held."""

from __future__ import annotations

import re
import subprocess

from medledger.demo import STEPS

from .checkout import ROOT, clean_env

#: Moments of the story the output must tell (one per act of the first seed essay).
BEATS = (
    "Starting a local anvil chain and IPFS node",
    "medledger deployed at",
    "Demo complete in",
    "every expectation held",
)


def test_make_demo_tells_lisas_story_and_every_expectation_holds(tmp_path):
    env = clean_env(HOME=str(tmp_path / "user"), MEDLEDGER_HOME=str(tmp_path / "home"), TMPDIR=str(tmp_path))
    (tmp_path / "user").mkdir()
    done = subprocess.run(
        ["make", "--no-print-directory", "demo"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    for beat in BEATS:
        assert beat in done.stdout, f"{beat!r} missing from the demo's output:\n{done.stdout[-4000:]}"
    assert "[FAILED]" not in done.stdout
    steps = re.findall(r"^\[ ?\d+\] (.+)$", done.stdout, re.MULTILINE)
    assert steps == ["Starting a local anvil chain and IPFS node (127.0.0.1 only, offline)"] + [t for t, _ in STEPS]
    assert done.stdout.count("[ok ]") >= 25  # the story's expectations, each checked on the real chain
    assert not list((tmp_path / "home").rglob("*.json")), "the demo wrote into the user's medledger home"
