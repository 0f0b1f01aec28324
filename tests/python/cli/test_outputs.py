"""Listings as a researcher and a patient use them (issue 9 items 7, 8, 10, 11): one mechanism for
table, CSV and JSON; ISO-8601 times, null for "no expiry"; revoked grants kept with --all; every CSV
loads into pandas without options; a grant over existing terms says what changes and asks."""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
from click.testing import CliRunner
from test_cli import add_observation, as_json, fails, grant, ok

from medledger.cli import cli

ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


def _history(run, workdir) -> dict:
    """A record read by a study whose consent was then revoked; a clinician's write consent stands."""
    written = add_observation(run, workdir)
    grant(run, "researcher", "read", "obs", "research")
    ok(run("records", "read", written["record_id"], "--purpose", "research", as_="researcher"))
    ok(run("consent", "revoke", "researcher", "--read", as_="patient"))
    return written


def _csv(run, *args: str, as_: str | None = None) -> pd.DataFrame:
    return pd.read_csv(io.StringIO(ok(run(*args, "--format", "csv", as_=as_)).stdout))


def test_every_csv_listing_loads_into_pandas_without_options(run, workdir, patient, researcher, clinician):
    written = _history(run, workdir)

    given = _csv(run, "consent", "list", "--all", as_="patient")
    assert list(given.columns[:10]) == [
        "patient", "grantee", "access", "status", "categories", "purposes", "start", "expiry", "granted_at", "revoked_at"
    ]  # fmt: skip
    assert {"block", "tx_hash", "revoked_tx"} <= set(given.columns)
    study = given[given.grantee == researcher.address].iloc[0]
    assert study.status == "revoked" and study.categories == "observations" and study.purposes == "research"
    assert pd.isna(study.expiry) and pd.isna(study.start)  # no expiry, no start: empty cells, NaN
    assert pd.to_datetime(study.revoked_at) >= pd.to_datetime(study.granted_at)
    assert study.tx_hash.startswith("0x") and study.revoked_tx.startswith("0x") and study.tx_hash != study.revoked_tx
    assert pd.api.types.is_integer_dtype(given.block)

    held = _csv(run, "grants", "--all", as_="researcher")
    assert held.status.tolist() == ["revoked"] and held.patient.tolist() == [patient.address]

    listed = _csv(run, "records", "list", as_="patient")
    assert listed.record_id.tolist() == [written["record_id"]] and listed.author.tolist() == [clinician.address]
    assert listed.erased.dtype == bool and not listed.erased.any()
    assert pd.to_datetime(listed.created_at).notna().all()

    trail = _csv(run, "audit", as_="patient")
    assert pd.api.types.is_integer_dtype(trail.time) and trail.emergency.dtype == bool
    assert (pd.to_datetime(trail.time, unit="s", utc=True) == pd.to_datetime(trail.time_utc)).all()
    read = trail[trail.event == "RecordAccessed"].iloc[0]
    assert read.record == written["record_id"] and read.actor == researcher.address and read.purpose == "research"
    assert re.fullmatch(r"0x[0-9a-f]{64}", read.tx_hash)

    keys = _csv(run, "keys", "list")
    assert "patient" in keys.name.tolist() and {"address", "encryption_public_key"} <= set(keys.columns)


def test_revoked_grants_stay_visible_with_all_in_json(run, workdir, researcher):
    _history(run, workdir)
    assert as_json(run("grants", "--json", as_="researcher")) == []
    (ended,) = as_json(run("grants", "--all", "--json", as_="researcher"))
    assert ended["status"] == "revoked" and ended["expiry"] is None and ended["start"] is None
    assert ISO.match(ended["granted_at"]) and ISO.match(ended["revoked_at"])
    assert ended["categories"] == ["observations"] and ended["grantee"] == researcher.address
    table = ok(run("grants", "--all", as_="researcher")).stdout
    assert "revoked" in table and "no expiry" in table and ended["revoked_at"] in table


def test_json_is_format_json_and_contradictions_are_refused(run, workdir):
    add_observation(run, workdir)
    as_format = as_json(run("consent", "list", "--format", "json", as_="patient"))
    assert as_format == as_json(run("consent", "list", "--json", as_="patient"))
    assert as_format[0]["expiry"] is None and ISO.match(as_format[0]["granted_at"])
    fails(run("consent", "list", "--json", "--format", "csv", as_="patient"), 2, "--json is --format json")
    fails(run("--json", "audit", "--format", "table", as_="patient"), 2, "--json is --format json")
    assert as_json(run("--json", "audit", "--format", "json", as_="patient"))


def test_audit_table_names_the_record_and_says_no_expiry(run, workdir):
    written = add_observation(run, workdir)
    ok(run("records", "erase", written["record_id"], "--yes", as_="patient"))
    lines = ok(run("audit", as_="patient")).stdout.splitlines()
    assert lines[0].split() == ["TIME", "EVENT", "ACTOR", "RECORD", "DETAIL"]
    erased = next(line for line in lines if "RecordErased" in line)
    assert written["record_id"] in erased
    granted = next(line for line in lines if "ConsentGranted" in line)
    assert "with no expiry" in granted and "never" not in "\n".join(lines)


def test_granting_over_existing_terms_shows_the_change_and_asks(run, client, patient, researcher):
    from medledger import codes, consent

    grant(run, "researcher", "read", "obs,device", "research")
    args = ("consent", "grant", "researcher", "--read", "--categories", "genomics", "--purposes", "research")
    declined = run(*args, as_="patient", input="n\n")
    assert declined.exit_code == 1
    assert "already holds read consent" in declined.stderr
    assert "observations,device-data -> genomics  (drops observations, device-data; adds genomics)" in declined.stderr
    assert "purposes" not in declined.stderr  # only what changes
    held = consent.consent_of(client, patient.address, researcher.address, codes.Access.READ)
    assert held.categories == {codes.Category.OBSERVATIONS, codes.Category.DEVICE_DATA}  # nothing changed

    fails(run(*args, as_="patient"), 2, "pass --yes")  # nobody to ask: refused, not assumed
    accepted = as_json(run(*args, "--json", as_="patient", input="y\n"))
    assert accepted["changed"] is True and accepted["categories"] == ["genomics"]
    assert accepted["previous"]["categories"] == ["observations", "device-data"]
    same = run(*args, as_="patient")  # the same terms again: nothing to ask, nothing changes
    assert same.exit_code == 0 and "Unchanged" in same.stdout and "replace" not in same.stderr
    later = ok(run(*args[:-1], "research,commercial", "--days", "5", "--yes", as_="patient"))
    assert "Granted" in later.stdout and "?" not in later.stderr


def test_records_read_draws_a_progress_bar(run, workdir):
    written = add_observation(run, workdir)
    shown = run("records", "read", written["record_id"], "--purpose", "direct-care", "--progress", as_="patient")
    assert "fetch+verify" in ok(shown).stderr and json.loads(shown.stdout)["resourceType"] == "Observation"


def test_verbose_shows_what_lies_behind_an_error(run, cli_env, monkeypatch):
    from medledger import records

    quiet = run("consent", "list", "--patient", "patient", "--rpc-url", "http://127.0.0.1:9")
    assert quiet.exit_code == 3 and "caused by" not in quiet.stderr
    verbose = run("-v", "consent", "list", "--patient", "patient", "--rpc-url", "http://127.0.0.1:9")
    assert verbose.exit_code == 3 and "caused by ConnectionRefusedError: [Errno 111]" in verbose.stderr

    monkeypatch.setattr(records, "list_records", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("boom")))
    plain = run("records", "list", as_="patient")
    fails(plain, 1, "unexpected RuntimeError: boom (run again with -v for a traceback)")
    traced = CliRunner().invoke(cli, ["--as", "patient", "records", "list", "-v"], env=cli_env)
    assert isinstance(traced.exception, RuntimeError)  # -v lets the traceback through


def test_shell_completion_is_produced_and_completes():
    medledger = Path(sys.executable).parent / "medledger"  # the installed command, as a shell runs it
    script = subprocess.run([medledger, "completion", "bash"], capture_output=True, text=True, timeout=60)
    assert script.returncode == 0 and "_medledger_completion()" in script.stdout
    assert "complete -o nosort -F _medledger_completion medledger" in script.stdout
    for shell, marker in (("zsh", "#compdef medledger"), ("fish", "complete --no-files --command medledger")):
        assert marker in ok(CliRunner().invoke(cli, ["completion", shell])).stdout
    env = {"_MEDLEDGER_COMPLETE": "bash_complete", "COMP_WORDS": "medledger records re", "COMP_CWORD": "2"}
    answer = CliRunner().invoke(cli, [], env=env, prog_name="medledger", standalone_mode=True)
    assert {"plain,read", "plain,read-batch", "plain,recover"} <= set(answer.stdout.split())
