"""``medledger index``, ``index status``, ``index --follow`` and ``oversight report`` as a user runs
them, against the session's anvil, SQLite and PostgreSQL."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from medledger.index.pgtemp import create_database

from .helpers import Chain


def test_index_once_then_status_with_the_default_sqlite_file(chain: Chain, run, tmp_path: Path) -> None:
    chain.grant("patient", "clinician")
    result = run("index", "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["events"] >= 1 and doc["indexed_to"] == chain.head()
    expected = tmp_path / "home" / "index" / f"{chain.deployment.chain_id}-{chain.deployment.address.lower()}.sqlite"
    assert doc["database"].endswith(str(expected)) and expected.exists()
    chain.mine(3)
    status = json.loads(run("index", "status", "--json").stdout)
    assert status["lag"] == 3 and status["events"] == doc["events"]
    assert "indexed" in run("index").stderr
    assert json.loads(run("index", "status", "--json").stdout)["lag"] == 0


def test_index_into_postgresql_by_url(chain: Chain, run, postgres: str) -> None:
    url = create_database(postgres, f"cli_{os.getpid()}")
    chain.grant("patient", "clinician")
    assert run("index", "--db", url, "--confirmations", "1").exit_code == 0
    status = json.loads(run("index", "--db", url, "status", "--json").stdout)
    assert status["indexed_to"] == chain.head() - 1 and status["lag"] == 1
    assert status["database"].startswith("postgresql+psycopg://postgres@127.0.0.1:")


def test_index_follow_stops_cleanly_on_sigterm(chain: Chain, run, tmp_path: Path) -> None:
    env = {
        **os.environ,
        "MEDLEDGER_HOME": str(tmp_path / "home"),
        "MEDLEDGER_RPC_URL": chain.rpc_url,
        "MEDLEDGER_DEPLOYMENTS": str(chain.deployments_dir),
        "MEDLEDGER_INDEX_URL": str(tmp_path / "follow.sqlite"),
    }
    env.pop("MEDLEDGER_CONFIG", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "medledger.cli", "index", "--follow", "--interval", "0.1"],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        chain.grant("patient", "clinician")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            status = run("index", "--db", str(tmp_path / "follow.sqlite"), "status", "--json")
            if status.exit_code == 0 and json.loads(status.stdout)["indexed_to"] == chain.head():
                break
            time.sleep(0.2)
        else:
            raise AssertionError("--follow did not catch up within 60 s")
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, stderr
    assert "Following the chain" in stderr and "Stopped." in stderr


def test_oversight_report_for_a_commissioner_only(chain: Chain, run, tmp_path: Path) -> None:
    chain.grant("patient", "clinician")
    out, png = tmp_path / "report.csv", tmp_path / "report.png"
    result = run("oversight", "report", "--format", "csv", "--out", out, "--chart", png, as_="commissioner")
    assert result.exit_code == 0, result.output
    assert out.read_text().startswith("table,month,purpose,category,organisation,event,count\n")
    assert png.read_bytes()[:4] == b"\x89PNG"
    text = run("oversight", "report", as_="commissioner")
    assert text.exit_code == 0 and "consent uptake" in text.stdout and "[REDACTED]" in text.stdout

    refused = run("oversight", "report", as_="clinician")
    assert refused.exit_code == 10 and "only commissioners and auditors" in refused.stderr
    exact = run("oversight", "report", "--exact", as_="commissioner")
    assert exact.exit_code == 10 and "Only auditors" in exact.stderr
    audited = run("oversight", "report", "--exact", "--json", as_="auditor")
    assert audited.exit_code == 0
    doc = json.loads(audited.stdout)
    assert doc["disclosure_control"]["applied"] is False and doc["requested_by"]["kind"] == "auditor"
    uptake = {r["purpose"]: r["patients"] for r in doc["tables"]["consent_uptake"]["rows"]}
    assert uptake["direct-care"] == 1  # exact: the one consent made above

    bad = run("oversight", "report", "--since", "2026-13", as_="commissioner")
    assert bad.exit_code == 2 and "not a month" in bad.output
    chart = run("oversight", "report", "--chart", tmp_path / "x.gif", as_="commissioner")
    assert chart.exit_code == 2 and ".png or .svg" in chart.output


def test_oversight_report_names_organisations_from_a_file(chain: Chain, run, tmp_path: Path) -> None:
    for name in ("patient", "patient2"):
        chain.send("emergency_clinician", "openEmergencyAccess", chain[name], 3600, b"\x05" * 32)
    names = tmp_path / "orgs.csv"
    names.write_text(f"address,organisation\n{chain['emergency_clinician'].lower()},St Elsewhere A&E\n")
    out = tmp_path / "report.json"
    result = run(
        "oversight", "report", "--exact", "--format", "json", "--out", out, "--organisations", names, as_="auditor"
    )
    assert result.exit_code == 0, result.output
    rows = json.loads(out.read_text())["tables"]["emergency_openings"]["rows"]
    assert rows == [{"organisation": "St Elsewhere A&E", "openings": 2}]
    names.write_text("not-an-address,Somewhere\n")
    bad = run("oversight", "report", "--organisations", names, as_="auditor")
    assert bad.exit_code == 2 and "line 1: expected ADDRESS,ORGANISATION" in bad.output
