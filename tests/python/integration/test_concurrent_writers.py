"""Issue 8 item 11: writers on one account at once, in separate processes, all land: nonces are
taken one at a time per (chain, account) through a lock file of the home, and a clash with a writer
outside the home (which does not share the lock) is retried with a new nonce."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from medledger.client import Client

from .child import child_args, start_child
from .helpers import journal_entries


def start_writer(settings, home: Path, author, patient, count: int, start_at: float) -> subprocess.Popen[str]:
    args = child_args(settings, author, home=home, patient=patient.address, count=count, start_at=start_at)
    return start_child("parallel_writer.py", args)


@pytest.mark.parametrize("homes", ["one home (the lock)", "two homes (the retry)"])
def test_writers_on_one_account_all_land(client: Client, settings, patient, gp_writes, tmp_path, homes):
    count, processes = 8, 2
    start_at = time.time() + 3.0  # every writer is connected and waiting by then
    homes_of = [settings.home if homes.startswith("one") else tmp_path / f"home-{n}" for n in range(processes)]
    writers = [start_writer(settings, home, gp_writes, patient, count, start_at) for home in homes_of]
    outputs = [w.communicate(timeout=180) for w in writers]
    wrote = [line.split()[1] for out, _ in outputs for line in out.splitlines() if line.startswith("WROTE ")]
    failed = [line for out, _ in outputs for line in out.splitlines() if line.startswith("FAILED ")]
    assert failed == [], failed  # before: 1-3 of 16 failed with "nonce too low" / "underpriced"
    assert len(wrote) == len(set(wrote)) == count * processes, outputs
    assert all(w.returncode == 0 for w in writers), [err for _, err in outputs]
    for record_id in wrote:
        assert client.contract.record(patient.address, bytes.fromhex(record_id[2:])).exists
    assert journal_entries(client) == []
