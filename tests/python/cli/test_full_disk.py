"""Issue 8 item 3: the journal comes first. With the disk of the journal full, ``records add`` fails
with a clear message and leaves nothing behind: no pinned ciphertext, no transaction.

The full disk is real: the writer runs in its own mount namespace (``unshare --user --map-root-user
--mount``, no privilege needed) where a 256 KiB tmpfs, filled to the last byte, is mounted over the
home's cache directory (where the journal lives). The chain and IPFS node are the session's."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from medledger import codes, consent

OBS = {"resourceType": "Observation", "id": "full-disk", "status": "final", "code": {"text": "pulse"}}
#: the CLI, accepting the test suite's cheap keystores (as tests/python/conftest.py does in-process)
CLI_WITH_TEST_KEYSTORES = (
    "from medledger.keystore import allow_weak_kdf_for_tests; allow_weak_kdf_for_tests(); "
    "from medledger.cli import main; main()"
)
FILL_AND_RUN = 'mount -t tmpfs -o size=256k tmpfs "$0" && (cat /dev/zero > "$0/fill") 2>/dev/null; exec "$@"'


def test_a_full_journal_disk_fails_cleanly_with_nothing_pinned(
    run, client, settings, cli_env, workdir: Path, patient, clinician
):
    assert shutil.which("unshare"), "util-linux unshare is needed to give the writer a full disk"
    consent.grant(client, patient, clinician.address, codes.Access.WRITE, [codes.Category.OBSERVATIONS], [0])
    path = workdir / "obs.json"
    path.write_text(json.dumps(OBS))
    cache = settings.home / "cache"
    cache.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in {**os.environ, **cli_env}.items() if v is not None}
    before = client.chain.block_number(), sorted(client.store.pins())

    writer = subprocess.run(
        ["unshare", "--user", "--map-root-user", "--mount", "sh", "-c", FILL_AND_RUN, str(cache),
         sys.executable, "-c", CLI_WITH_TEST_KEYSTORES, "--as", "clinician", "records", "add", str(path),
         "--patient", "patient"],
        capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip

    assert writer.returncode == 1, writer.stdout + writer.stderr
    assert "Cannot write the journal entry" in writer.stderr and "No space left on device" in writer.stderr
    assert "nothing was written: no ciphertext was pinned and no transaction was sent" in writer.stderr
    assert "Errno" not in writer.stderr and "Traceback" not in writer.stderr
    assert (client.chain.block_number(), sorted(client.store.pins())) == before
    assert list((cache / "pending").glob("*/*.json")) == []  # (the tmpfs was the writer's alone)
    # with room again, the same command writes the record
    added = run("records", "add", path, "--patient", "patient", "--json", as_="clinician")
    assert added.exit_code == 0, added.stderr
    assert client.contract.record(patient.address, bytes.fromhex(json.loads(added.stdout)["record_id"][2:])).exists
