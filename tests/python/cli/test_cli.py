"""The ``medledger`` command line, run in-process against the session's anvil + IPFS."""

from __future__ import annotations

import contextlib
import csv
import http.server
import json
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

from click.testing import Result

from medledger.node import free_port

OBS = {
    "resourceType": "Observation",
    "status": "final",
    "code": {"coding": [{"system": "http://loinc.org", "code": "4548-4", "display": "Hemoglobin A1c"}]},
    "valueQuantity": {"value": 6.1, "unit": "%"},
}


def ok(result: Result) -> Result:
    assert result.exit_code == 0, f"exit {result.exit_code}\nstdout: {result.stdout}\nstderr: {result.stderr}"
    return result


def as_json(result: Result) -> Any:
    ok(result)
    return json.loads(result.stdout)


def fails(result: Result, code: int, *fragments: str) -> Result:
    assert result.exit_code == code, f"exit {result.exit_code}\nstdout: {result.stdout}\nstderr: {result.stderr}"
    for fragment in fragments:
        assert fragment in result.stderr, f"{fragment!r} not in stderr: {result.stderr}"
    return result


def write_json(path: Path, data: Any) -> Path:
    path.write_text(json.dumps(data))
    return path


def grant(run, grantee: str, access: str, categories: str, purposes: str, *extra: str) -> Any:
    return as_json(
        run(
            "consent",
            "grant",
            grantee,
            f"--{access}",
            "--categories",
            categories,
            "--purposes",
            purposes,
            "--json",
            "--yes",
            *extra,
            as_="patient",
        )
    )


def add_observation(run, workdir: Path, data: dict = OBS) -> dict:
    grant(run, "clinician", "write", "obs", "direct-care")
    path = write_json(workdir / "obs.json", data)
    return as_json(run("records", "add", path, "--patient", "patient", "--json", as_="clinician"))


# --- keys ------------------------------------------------------------------------------------------
def test_keys_create_list_show(run, tmp_path, cast):
    env = {
        "MEDLEDGER_KEYSTORE": str(tmp_path / "keys"),
        "MEDLEDGER_KEYSTORE_SCRYPT_N": "16",
        "MEDLEDGER_PASSPHRASE_ALICE": "alice secret",
    }
    created = as_json(run("keys", "create", "alice", "--json", env=env))
    assert created["name"] == "alice" and created["address"].startswith("0x")
    assert created["passphrase_env"] == "MEDLEDGER_PASSPHRASE_ALICE"

    # passphrase asked twice (hidden prompt) when not in the environment; key imported from env
    key = cast["stranger"].account.key.hex()
    imported = ok(
        run(
            "keys",
            "create",
            "bob",
            "--import-key",
            input="bob secret\nbob secret\n",
            env={**env, "MEDLEDGER_IMPORT_KEY": key},
        )
    )
    assert cast["stranger"].address in imported.stdout
    assert "bob secret" not in imported.stdout + imported.stderr

    listed = as_json(run("keys", "list", "--json", env=env))
    assert [k["name"] for k in listed] == ["alice", "bob"]
    assert listed[1]["address"] == cast["stranger"].address
    shown = as_json(run("keys", "show", "bob", "--json", env=env))
    assert shown == listed[1]
    table = ok(run("keys", "list", env=env)).stdout
    assert "alice" in table and cast["stranger"].address in table

    fails(run("keys", "create", "alice", env=env), 4, "already exists")
    fails(run("keys", "show", "carol", env=env), 4, "no keystore named 'carol'")
    # mismatched confirmation, then EOF: nothing is written
    fails(run("keys", "create", "carol", input="one\ntwo\n", env=env), 4)
    assert not (tmp_path / "keys" / "carol.json").exists()


def test_keys_list_shows_the_readable_identities_and_names_the_corrupt_file(run, tmp_path):
    env = {
        "MEDLEDGER_KEYSTORE": str(tmp_path / "keys"),
        "MEDLEDGER_KEYSTORE_SCRYPT_N": "16",
        "MEDLEDGER_PASSPHRASE": "a secret",
    }
    for name in ("alice", "bob"):
        ok(run("keys", "create", name, env=env))
    broken = tmp_path / "keys" / "broken.json"
    broken.write_text("{ not json")
    listed = run("keys", "list", "--json", env=env)
    assert [k["name"] for k in as_json(listed)] == ["alice", "bob"]
    assert str(broken) in listed.stderr and "malformed" in listed.stderr
    table = ok(run("keys", "list", env=env))
    assert "alice" in table.stdout and "bob" in table.stdout
    assert str(broken) in table.stderr


def test_production_keys_create_does_not_honour_the_test_scrypt_knob(run, tmp_path):
    """Issue 12 item 8: MEDLEDGER_KEYSTORE_SCRYPT_N=2 gave keystores 10,000 guesses in 0.19 s."""
    from medledger.keystore import allow_weak_kdf_for_tests

    env = {
        "MEDLEDGER_KEYSTORE": str(tmp_path / "keys"),
        "MEDLEDGER_KEYSTORE_SCRYPT_N": "2",
        "MEDLEDGER_PASSPHRASE_ALICE": "alice secret",
    }
    previous = allow_weak_kdf_for_tests(False)  # as outside the test suite
    try:
        fails(run("keys", "create", "alice", env=env), 4, "MEDLEDGER_KEYSTORE_SCRYPT_N", "does not honour")
    finally:
        allow_weak_kdf_for_tests(previous)
    assert not (tmp_path / "keys" / "alice.json").exists()


def test_unlocking_a_weak_keystore_prints_a_warning(run, tmp_path):
    from medledger.keystore import MIN_SCRYPT_N, Keystore, allow_weak_kdf_for_tests

    keys = Keystore(tmp_path / "keys", scrypt_n=MIN_SCRYPT_N)
    keys.import_key("weak", "0x" + "42" * 32, "a passphrase")
    previous = allow_weak_kdf_for_tests(False)
    try:
        result = run(
            "patient",
            "emergency-opt-out",
            as_="weak",
            env={"MEDLEDGER_KEYSTORE": str(keys.path), "MEDLEDGER_PASSPHRASE_WEAK": "a passphrase"},
        )
    finally:
        allow_weak_kdf_for_tests(previous)
    assert "Warning: keystore file" in result.stderr and "weak key derivation" in result.stderr
    assert "WeakKeystoreWarning" not in result.stderr


def test_wrong_passphrase_exits_4_naming_the_keystore(run):
    result = run("consent", "list", as_="patient", env={"MEDLEDGER_PASSPHRASE_PATIENT": "not it"})
    # listing needs no unlock; an action does
    ok(result)
    result = run("patient", "emergency-opt-out", as_="patient", env={"MEDLEDGER_PASSPHRASE_PATIENT": "not it"})
    fails(result, 4, "wrong passphrase for keystore 'patient'")
    # prompted: three wrong answers
    result = run(
        "patient", "emergency-opt-out", as_="patient", input="a\nb\nc\n", env={"MEDLEDGER_PASSPHRASE_PATIENT": None}
    )
    fails(result, 4, "wrong passphrase for keystore 'patient'", "try again")
    # prompted: right on the second try
    result = run(
        "patient",
        "emergency-opt-out",
        as_="patient",
        input="a\npass-patient-phrase\n",
        env={"MEDLEDGER_PASSPHRASE_PATIENT": None},
    )
    ok(result)


def test_passphrase_is_never_an_option(run, tmp_path):
    env = {"MEDLEDGER_KEYSTORE": str(tmp_path / "keys"), "MEDLEDGER_KEYSTORE_SCRYPT_N": "16"}
    fails(run("keys", "create", "dave", "--passphrase", "secret", env=env), 2, "No such option")
    fails(run("--passphrase", "secret", "keys", "list"), 2, "No such option")
    fails(run("patient", "register", "--passphrase", "x", as_="patient"), 2, "No such option")
    fails(run("keys", "create", "dave", "--import-key", "0x" + "11" * 32, env=env), 2)
    assert not (tmp_path / "keys" / "dave.json").exists()


def test_usage_errors_exit_2(run):
    fails(
        run(
            "consent", "grant", "researcher", "--read", "--categories", "bones", "--purposes", "research", as_="patient"
        ),
        2,
        "unknown category 'bones'",
        "genomics",
    )
    fails(
        run("consent", "grant", "researcher", "--categories", "obs", "--purposes", "research", as_="patient"),
        2,
        "--read or --write",
    )
    fails(run("patient", "register"), 2, "--as NAME")
    fails(
        run("consent", "check", "patient", "nobody-known", "--category", "obs", "--purpose", "research", "--read"),
        2,
        "neither an address",
    )


# --- consent ---------------------------------------------------------------------------------------
def test_consent_grant_list_held_check_revoke(run, patient, researcher):
    granted = grant(run, "researcher", "read", "obs,device", "research", "--days", "30")
    assert granted["grantee"] == researcher.address and granted["changed"] is True
    assert granted["categories"] == ["observations", "device-data"] and granted["purposes"] == ["research"]

    given = as_json(run("consent", "list", "--json", as_="patient"))
    assert [(g["grantee"], g["access"]) for g in given] == [(researcher.address, "read")]
    table = ok(run("consent", "list", "--patient", patient.address)).stdout
    assert researcher.address in table and "(researcher)" in table and "observations,device-data" in table

    held = as_json(run("consent", "held", "--json", as_="researcher"))
    assert len(held) == 1 and held[0]["patient"] == patient.address and held[0]["expiry"]
    assert as_json(run("grants", "--json", as_="researcher")) == held

    permitted = as_json(
        run(
            "consent",
            "check",
            "patient",
            "researcher",
            "--category",
            "obs",
            "--purpose",
            "research",
            "--read",
            "--json",
        )
    )
    assert permitted["permitted"] is True and permitted["emergency"] is False
    denied = run("consent", "check", "patient", "researcher", "--category", "obs", "--purpose", "commercial", "--read")
    fails(denied, 10, "does not cover the purpose commercial")

    revoked = as_json(run("consent", "revoke", "researcher", "--read", "--json", as_="patient"))
    assert revoked["changed"] is True and revoked["keys_rotated"] is True
    denied = run(
        "consent", "check", "patient", "researcher", "--category", "obs", "--purpose", "research", "--read", "--json"
    )
    assert denied.exit_code == 10
    assert json.loads(denied.stdout)["permitted"] is False
    assert as_json(run("consent", "held", "--json", as_="researcher")) == []


def test_sign_then_relayer_submits(run, workdir, patient, researcher, relayer, client):
    request = workdir / "grant.json"
    ok(
        run(
            "consent",
            "sign",
            "researcher",
            "--read",
            "--categories",
            "obs",
            "--purposes",
            "research",
            "--days",
            "10",
            "--out",
            request,
            as_="patient",
        )
    )
    body = json.loads(request.read_text())
    assert body["primaryType"] == "Grant" and body["message"]["patient"] == patient.address
    assert body["medledger"] == {"format": "medledger-signed-consent/3"} and "EIP712Domain" in body["types"]

    # an altered request is refused before any gas is spent
    tampered = json.loads(request.read_text())
    tampered["message"]["purposes"] = 0b1111
    write_json(workdir / "tampered.json", tampered)
    nonce_before = client.chain.nonce(relayer.address)
    fails(run("consent", "submit", workdir / "tampered.json", as_="relayer"), 10, "signature is not patient")
    assert client.chain.nonce(relayer.address) == nonce_before

    balance = client.chain.balance(patient.address)
    submitted = run("consent", "submit", request, "--json", as_="relayer")
    data = as_json(submitted)
    assert data["signer"] == patient.address and data["relayer"] == relayer.address and data["changed"]
    assert f"Signed by {patient.address} (patient)" in submitted.stderr
    assert client.chain.balance(patient.address) == balance
    held = as_json(run("consent", "held", "--json", as_="researcher"))
    assert [h["purposes"] for h in held] == [["research"]]

    # a signed revocation, submitted the same way (signed after the grant's second: it must be newer)
    client.chain.rpc("evm_increaseTime", [1])
    client.chain.rpc("evm_mine", [])
    revoke_file = workdir / "revoke.json"
    ok(run("consent", "sign-revoke", "researcher", "--read", "--out", revoke_file, as_="patient"))
    ok(run("consent", "submit", revoke_file, "--expect-signer", "patient", as_="relayer"))
    assert as_json(run("consent", "held", "--json", as_="researcher")) == []
    # the grant again: refused before sending, as overridden by the later revocation
    fails(
        run("consent", "submit", request, as_="relayer"), 10, "is not newer than the last decision", "that was revoked"
    )


# --- records -----------------------------------------------------------------------------------------
def test_record_added_by_clinician_read_by_granted_researcher(run, workdir, patient, clinician):
    written = add_observation(run, workdir)
    assert written["category"] == "observations" and written["content_type"] == "application/fhir+json"
    grant(run, "researcher", "read", "obs", "research")

    read = as_json(run("records", "read", written["record_id"], "--purpose", "research", "--json", as_="researcher"))
    assert read["content"] == OBS
    assert read["author"] == clinician.address and read["patient"] == patient.address
    assert read["emergency"] is False

    # human form prints the JSON text itself; --out writes a file
    text = ok(run("records", "read", written["record_id"], "--purpose", "research", as_="researcher")).stdout
    assert json.loads(text) == OBS
    out = workdir / "copy.json"
    ok(run("records", "read", written["record_id"], "--purpose", "research", "--out", out, as_="researcher"))
    assert json.loads(out.read_text()) == OBS

    ok(run("records", "verify", written["record_id"], written["fingerprint"]))
    fails(run("records", "verify", written["record_id"], "0x" + "00" * 32), 6, "does not match")

    listed = as_json(run("records", "list", "--json", as_="patient"))
    assert [r["record_id"] for r in listed] == [written["record_id"]]


def test_invalid_fhir_is_refused_and_nothing_registered(run, workdir):
    grant(run, "clinician", "write", "obs", "direct-care")
    bad = write_json(workdir / "bad.json", {"resourceType": "Observation", "valueQuantity": {"value": "high"}})
    result = run("records", "add", bad, "--patient", "patient", as_="clinician")
    fails(result, 7, "Error:")
    assert "invalid FHIR" in result.stderr and "code: Field required" in result.stderr
    assert as_json(run("records", "list", "--patient", "patient", "--json")) == []


BAD_INTAKE = {
    "bundle.json": (
        json.dumps(
            {
                "resourceType": "Bundle",
                "type": "collection",
                "entry": [{"resource": {**OBS, "resourceType": "Observaton"}}],
            }
        ),
        "'Observaton' at entry[0].resource is not a FHIR R4B resource type",
    ),
    "cut.json": (json.dumps(OBS)[:-20], "not valid JSON: "),
    "words.json": ("high sugar", "not valid JSON: Expecting value at line 1 column 1"),
    "notes.txt": ('{"resourceType": "Observation",\n "status": ', "at line 2 column 12"),
    "empty.json": ("", "empty"),
    "blank.txt": (" \n\t\n", "empty"),
}


def test_every_intake_refusal_is_exit_7_and_stores_nothing(run, workdir, client):
    """Issue 9 item 12: a Bundle entry of an unknown type exited 1 (KeyError); broken JSON was
    "a text/plain attachment"; with --category, empty, blank and truncated files were stored."""
    grant(run, "clinician", "write", "obs", "direct-care")
    pins = client.store.pins()
    for name, (content, reason) in BAD_INTAKE.items():
        path = workdir / name
        path.write_text(content)
        for extra in ([], ["--category", "obs"]):
            result = run("records", "add", path, "--patient", "patient", *extra, as_="clinician")
            fails(result, 7, reason)
    empty = workdir / "empty.json"
    fails(run("records", "add", empty, "--patient", "patient", "--content-type", "text", as_="clinician"), 7, "empty")
    assert as_json(run("records", "list", "--patient", "patient", "--json")) == []
    assert client.store.pins() == pins
    assert as_json(run("records", "recover", "--json")) == []  # no write was left half done


def test_read_refused_for_stranger_and_unconsented(run, workdir):
    written = add_observation(run, workdir)
    result = run("records", "read", written["record_id"], "--purpose", "research", as_="stranger")
    fails(result, 10, "Error:", "consent")
    assert result.stdout == ""
    result = run("records", "read", written["record_id"], "--purpose", "commercial", "--json", as_="app")
    fails(result, 10, "holds no read consent")
    assert json.loads(result.stdout)["error"]["exit_code"] == 10


def test_erased_record_cannot_be_read(run, workdir):
    written = add_observation(run, workdir)
    grant(run, "researcher", "read", "obs", "research")
    erased = as_json(run("records", "erase", written["record_id"], "--yes", "--json", as_="patient"))
    assert erased["changed"] is True
    fails(run("records", "read", written["record_id"], "--purpose", "research", as_="researcher"), 11, "erased")
    listed = as_json(run("records", "list", "--json", as_="patient"))
    assert listed[0]["erased"] is True


def test_audit_table_csv_json_include_the_access(run, workdir, researcher, emergency_clinician):
    written = add_observation(run, workdir)
    grant(run, "researcher", "read", "obs", "research")
    ok(run("records", "read", written["record_id"], "--purpose", "research", as_="researcher"))
    ok(run("emergency", "open", "patient", "--hours", "2", "--reason", "410429000", as_="emergency_clinician"))

    entries = as_json(run("audit", "--json", as_="patient"))
    reads = [e for e in entries if e["event"] == "RecordAccessed"]
    assert [(e["actor"], e["record"], e["purpose"]) for e in reads] == [
        (researcher.address, written["record_id"], "research")
    ]
    opened = [e for e in entries if e["event"] == "EmergencyAccessOpened"]
    assert opened and opened[0]["emergency"] is True and opened[0]["actor"] == emergency_clinician.address
    assert as_json(run("audit", "--format", "json", "--accesses", "--patient", "patient")) == [
        e for e in entries if e["event"] in ("RecordAccessed", "EmergencyAccessOpened")
    ]

    rows = list(csv.DictReader(ok(run("audit", "--format", "csv", as_="patient")).stdout.splitlines()))
    assert any(r["event"] == "RecordAccessed" and r["actor"] == researcher.address for r in rows)
    assert any(r["event"] == "EmergencyAccessOpened" and r["emergency"] == "true" for r in rows)

    table = ok(run("audit", "--accesses", as_="patient")).stdout.splitlines()
    access_line = next(line for line in table if "RecordAccessed" in line)
    assert "(researcher)" in access_line and "research" in access_line and not access_line.startswith("!")
    emergency_line = next(line for line in table if "EmergencyAccessOpened" in line)
    assert emergency_line.startswith("!") and "(emergency_clinician)" in emergency_line


def test_batch_from_csv(run, workdir):
    path = workdir / "readings.csv"
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["t", "heart_rate", "note"])
        for i in range(20):
            writer.writerow([1_700_000_000 + 300 * i, 60 + i, "rest" if i % 2 else ""])
    receipt = workdir / "receipt.json"
    result = run(
        "records", "batch", path, "--category", "device", "--receipt", receipt, "--progress", "--json", as_="patient"
    )
    data = as_json(result)
    assert data["readings"] == 20 and data["category"] == "device-data"
    assert "readings" in result.stderr  # the progress bar, forced on
    assert len(json.loads(receipt.read_text())["readings"]) == 20

    readings = as_json(run("records", "read-batch", data["root"], "--purpose", "direct-care", "--json", as_="patient"))
    assert [r["data"]["heart_rate"] for r in readings] == list(range(60, 80))
    assert readings[1]["data"] == {"t": 1_700_000_300, "heart_rate": 61, "note": "rest"}
    assert readings[0]["data"]["note"] is None
    lines = ok(run("records", "read-batch", data["root"], "--purpose", "direct-care", as_="patient")).stdout
    assert len(lines.splitlines()) == 20
    listed = as_json(run("records", "list", "--json", as_="patient"))
    assert listed[0]["batch"] is True and listed[0]["leaf_count"] == 20


def test_records_recover_with_nothing_pending(run):
    assert as_json(run("records", "recover", "--json")) == []


# --- participants, delegates, emergency ----------------------------------------------------------------
def test_registrar_registers_suspends_reinstates(run, stranger, cli_keys):
    before = as_json(run("patient", "show", "stranger", "--json"))
    assert before["patient"] is False and before["participant"] is None
    ok(
        run(
            "registrar",
            "register",
            "stranger",
            "--kind",
            "researcher",
            "--credential",
            "GMC:7654321",
            "--from-keystore",
            "stranger",
            as_="registrar",
        )
    )
    shown = as_json(run("patient", "show", stranger.address, "--json"))
    assert shown["participant"]["kind"] == "researcher"
    assert shown["participant"]["encryption_key"] == cli_keys.public("stranger").encryption_public_hex

    fails(run("registrar", "suspend", "stranger", as_="patient"), 10, "registrars only")
    assert as_json(
        run("registrar", "suspend", "stranger", "--reason", "fitness-to-practise", "--json", as_="registrar")
    )["changed"]
    assert as_json(run("patient", "show", "stranger", "--json"))["participant"]["suspended"] is True
    assert as_json(run("registrar", "reinstate", "stranger", "--json", as_="registrar"))["changed"]
    text = ok(run("patient", "show", "patient")).stdout
    assert "patient            yes" in text and "emergency access   allowed" in text


def test_delegate_and_emergency_commands(run, client, delegate, emergency_clinician):
    added = as_json(run("delegate", "add", "delegate", "--categories", "obs", "--days", "30", "--json", as_="patient"))
    assert added["delegate"] == delegate.address and added["changed"]
    # the delegate manages the patient's consents within its categories
    ok(
        run(
            "consent",
            "grant",
            "researcher",
            "--read",
            "--categories",
            "obs",
            "--purposes",
            "research",
            "--patient",
            "patient",
            as_="delegate",
        )
    )
    fails(
        run(
            "consent",
            "grant",
            "researcher",
            "--read",
            "--categories",
            "genomics",
            "--purposes",
            "research",
            "--patient",
            "patient",
            as_="delegate",
        ),
        10,
        "may manage only",
    )
    assert as_json(run("delegate", "remove", "delegate", "--json", as_="patient"))["changed"]

    opened = as_json(
        run(
            "emergency", "open", "patient", "--hours", "1", "--reason", "410429000", "--json", as_="emergency_clinician"
        )
    )
    assert opened["clinician"] == emergency_clinician.address
    fails(run("emergency", "confirm", "patient", "--clinician", "emergency_clinician", as_="emergency_clinician"), 10)
    client.chain.rpc("evm_increaseTime", [60])
    client.chain.rpc("evm_mine", [])
    confirmed = as_json(
        run("emergency", "confirm", "patient", "--clinician", "emergency_clinician", "--json", as_="patient")
    )
    assert confirmed["changed"] is True and confirmed["open"] is True and confirmed["run_start"] == client.now()
    closed = as_json(
        run("emergency", "close", "patient", "--clinician", "emergency_clinician", "--json", as_="patient")
    )
    assert closed["changed"] is True
    ok(run("patient", "emergency-opt-out", as_="patient"))
    fails(
        run("emergency", "open", "patient", "--hours", "1", "--reason", "410429000", as_="emergency_clinician"),
        10,
        "opted out",
    )
    assert as_json(run("patient", "show", "patient", "--json"))["emergency_opted_out"] is True


def test_deploy_then_already_deployed(run, tmp_path):
    env = {"MEDLEDGER_DEPLOYMENTS": str(tmp_path / "deployments")}
    first = as_json(run("deploy", "--json", as_="registrar", env=env))
    assert first["deployed"] is True and Path(first["deployments_file"]).exists()
    again = ok(run("deploy", as_="registrar", env=env))
    assert "already deployed" in again.stdout and first["address"] in again.stdout
    # --force asks first (issue 9 item 5): declined, nothing is deployed
    declined = run("deploy", "--force", as_="registrar", env=env, input="n\n")
    assert declined.exit_code == 1 and "already deployed at " + first["address"] in declined.stderr
    assert json.loads(Path(first["deployments_file"]).read_text())["contracts"]["Medledger"]["history"] == []
    forced = as_json(run("deploy", "--force", "--yes", "--json", as_="registrar", env=env))
    assert forced["deployed"] is True and forced["address"] != first["address"]
    assert forced["replaced"] == first["address"]
    entry = json.loads(Path(first["deployments_file"]).read_text())["contracts"]["Medledger"]
    assert entry["address"] == forced["address"]
    assert [past["address"] for past in entry["history"]] == [first["address"]]
    asked = ok(run("deploy", "--force", as_="registrar", env=env, input="y\n"))
    assert "Deployed Medledger" in asked.stdout and forced["address"] in asked.stdout  # kept in the history


# --- services -------------------------------------------------------------------------------------------
def test_node_status_where_nothing_runs(run, tmp_path):
    result = run("--home", tmp_path / "empty-home", "node", "status", "--json")
    assert result.exit_code == 3  # a service is down: not a success
    status = json.loads(result.stdout)
    assert status["running"] is False
    assert status["data_dir"] == str(tmp_path / "empty-home" / "node")
    assert {name: s["running"] for name, s in status["services"].items()} == {"anvil": False, "ipfs": False}
    text = fails(run("node", "status", "--home", tmp_path / "empty-home"), 3, "anvil: not running").stdout
    assert "stopped" in text


def test_node_status_of_the_session_services(run, node_config):
    status = as_json(run("node", "status", "--data-dir", node_config.data_dir, "--json"))
    assert status["running"] is True
    for service in status["services"].values():
        assert service["running"] and service["responding"] and service["pid"]
    assert status["services"]["anvil"]["address"] == node_config.rpc_url


def test_chain_down_exits_3_with_where_and_how(run):
    url = f"http://127.0.0.1:{free_port()}"
    result = run("consent", "list", "--patient", "patient", env={"MEDLEDGER_RPC_URL": url})
    fails(result, 3, url, "medledger node up")
    result = run("records", "list", "--json", as_="patient", env={"MEDLEDGER_RPC_URL": url})
    assert result.exit_code == 3
    assert json.loads(result.stdout)["error"]["type"] == "ServiceUnavailable"


# --- more records ------------------------------------------------------------------------------------
def test_amend_progress_and_binary_content(run, workdir, patient):
    written = add_observation(run, workdir)
    newer = write_json(workdir / "obs2.json", {**OBS, "valueQuantity": {"value": 5.9, "unit": "%"}})
    result = run("records", "amend", written["record_id"], newer, "--progress", "--json", as_="clinician")
    amended = as_json(result)
    assert amended["supersedes"] == written["record_id"] and amended["patient"] == patient.address
    assert "100%" in result.stderr  # the progress bar, forced on although stderr is not a terminal
    listed = {r["record_id"]: r for r in as_json(run("records", "list", "--json", as_="patient"))}
    assert listed[written["record_id"]]["superseded_by"] == amended["record_id"]
    read = as_json(run("records", "read", amended["record_id"], "--purpose", "direct-care", "--json", as_="patient"))
    assert read["content"]["valueQuantity"]["value"] == 5.9

    # an attachment that is not text is only written with --out
    scan = workdir / "scan.pdf"
    scan.write_bytes(b"%PDF-1.4\n" + bytes(range(256)) * 4)
    grant(run, "clinician", "write", "clinical-documents", "direct-care")
    added = as_json(
        run("records", "add", scan, "--patient", "patient", "--category", "documents", "--json", as_="clinician")
    )
    assert added["content_type"] == "application/pdf"
    fails(run("records", "read", added["record_id"], "--purpose", "direct-care", as_="patient"), 2, "--out FILE")
    out = workdir / "copy.pdf"
    ok(run("records", "read", added["record_id"], "--purpose", "direct-care", "--out", out, as_="patient"))
    assert out.read_bytes() == scan.read_bytes()
    raw = run("records", "read", added["record_id"], "--purpose", "direct-care", "--out", "-", as_="patient")
    assert ok(raw).stdout_bytes == scan.read_bytes()


def test_identity_from_env_or_after_the_command(run, patient, researcher):
    grant(run, "researcher", "read", "obs", "research")
    via_env = as_json(run("consent", "held", "--json", env={"MEDLEDGER_IDENTITY": "researcher"}))
    via_leaf = as_json(run("consent", "held", "--as", "researcher", "--json", env={"MEDLEDGER_IDENTITY": "patient"}))
    assert via_env == via_leaf and via_env[0]["grantee"] == researcher.address
    # --as before the command, overridden after it
    assert as_json(run("--as", "patient", "consent", "held", "--as", "researcher", "--json")) == via_env


def test_wrong_chain_id_is_a_configuration_error(run):
    fails(run("consent", "list", "--patient", "patient", "--chain-id", "999"), 2, "chain 999 was configured")


# --- node and demo wiring (without starting anything) ----------------------------------------------------
def test_node_up_and_down_use_the_configured_ports(run, tmp_path, monkeypatch):
    from medledger import node as services

    seen = []

    def fake(config):
        seen.append(config)
        return services.status(config)

    monkeypatch.setattr(services, "start", fake)
    monkeypatch.setattr(services, "stop", fake)
    env = {
        "MEDLEDGER_RPC_URL": "http://127.0.0.1:18645",
        "MEDLEDGER_IPFS_API": "/ip4/127.0.0.1/tcp/15101/http",
        "MEDLEDGER_CHAIN_ID": "4242",
        "MEDLEDGER_IPFS_GATEWAY_PORT": "18180",
        "MEDLEDGER_IPFS_SWARM_PORT": "auto",
    }
    up = as_json(run("--home", tmp_path / "h", "node", "up", "--json", env=env))
    ok(run("node", "down", "--data-dir", tmp_path / "elsewhere", env=env))
    assert [(c.anvil_port, c.ipfs_api_port, c.ipfs_gateway_port, c.ipfs_swarm_port, c.chain_id) for c in seen] == [
        (18645, 15101, 18180, None, 4242)
    ] * 2
    assert seen[0].data_dir == tmp_path / "h" / "node" and seen[1].data_dir == tmp_path / "elsewhere"
    assert up["services"]["anvil"]["address"] == "http://127.0.0.1:18645"


def test_node_status_exits_3_and_names_what_is_down(run, tmp_path):
    """Issue 9 item 4: `node status` said nothing about a service that was down (exit 0)."""
    result = run("node", "status", "--data-dir", tmp_path / "never-started", "--json")
    assert result.exit_code == 3, result.stdout + result.stderr
    shown = json.loads(result.stdout)
    assert not shown["running"] and not shown["services"]["anvil"]["running"]
    assert "anvil: not running" in result.stderr and "ipfs: not running" in result.stderr


def test_demo_exits_with_the_demo_result(run, monkeypatch):
    from medledger import demo

    monkeypatch.setattr(demo, "run", lambda out, data_dir=None: out.write("story\n") and 1)
    result = run("demo")
    assert result.exit_code == 1 and "story" in result.stdout


def test_exit_codes_are_the_documented_ones_and_live_in_the_cli():
    from medledger import errors
    from medledger.cli.errors import EXIT_CODES, exit_code

    documented = {
        errors.ConfigError: 2,
        errors.UnknownCode: 2,
        errors.InvalidRequest: 2,
        errors.ServiceUnavailable: 3,
        errors.WrongPassphrase: 4,
        errors.KeyNotFound: 4,
        errors.KeysNotPublished: 4,
        errors.DecryptionError: 5,
        errors.TamperingDetected: 6,
        errors.RecordFormatError: 7,
        errors.ContentNotFound: 8,
        errors.DeploymentNotFound: 9,
        errors.WrongChain: 2,
        errors.AccessDenied: 10,
        errors.RecordErased: 11,
        errors.StaleCategoryKey: 12,
    }
    for cls, code in documented.items():
        assert exit_code(cls.__new__(cls)) == code, cls
    classes = [c for c in vars(errors).values() if isinstance(c, type) and issubclass(c, errors.MedledgerError)]
    assert all(any(issubclass(c, k) for k in EXIT_CODES) for c in classes)
    assert not any(hasattr(c, "exit_code") for c in classes), "exit codes belong to the CLI, not the library"


def test_ipfs_down_exits_3_and_registers_nothing(run, workdir):
    grant(run, "clinician", "write", "obs", "direct-care")
    path = write_json(workdir / "obs.json", OBS)
    api = f"/ip4/127.0.0.1/tcp/{free_port()}/http"
    result = run("records", "add", path, "--patient", "patient", as_="clinician", env={"MEDLEDGER_IPFS_API": api})
    fails(result, 3, "No IPFS node answers at", "medledger node up")
    assert as_json(run("records", "list", "--patient", "patient", "--json")) == []


def test_read_to_a_missing_directory_is_refused_before_reading(run, workdir):
    written = add_observation(run, workdir)
    fails(
        run(
            "records",
            "read",
            written["record_id"],
            "--purpose",
            "direct-care",
            "--out",
            workdir / "no" / "x.json",
            as_="patient",
        ),
        2,
        "does not exist",
    )


def test_unfunded_identity_is_told_how_to_get_gas_and_gets_it_on_the_local_chain(run, tmp_path, client):
    env = {
        "MEDLEDGER_KEYSTORE": str(tmp_path / "keys"),
        "MEDLEDGER_KEYSTORE_SCRYPT_N": "16",
        "MEDLEDGER_PASSPHRASE_NEWBIE": "newbie secret",
        "MEDLEDGER_PASSPHRASE_FUNDED": "funded secret",
    }
    ok(run("keys", "create", "newbie", env=env))
    fails(run("patient", "register", as_="newbie", env=env), 9, "Insufficient funds", "medledger keys fund NAME")

    newbie = as_json(run("keys", "show", "newbie", "--json", env=env))["address"]
    funded = as_json(run("keys", "fund", "newbie", "--eth", "2.5", "--json", env=env))
    assert funded["address"] == newbie and funded["amount_wei"] == 25 * 10**17 and funded["tx_hash"].startswith("0x")
    assert client.chain.balance(newbie) == funded["balance_wei"] == 25 * 10**17
    ok(run("patient", "register", as_="newbie", env=env))

    created = as_json(run("keys", "create", "funded", "--fund", "--json", env=env))
    assert created["funded"]["amount_wei"] == 10 * 10**18
    assert client.chain.balance(created["address"]) == 10 * 10**18


def test_funding_is_refused_on_any_chain_but_a_local_development_node(run, tmp_path):
    env = {
        "MEDLEDGER_KEYSTORE": str(tmp_path / "keys"),
        "MEDLEDGER_KEYSTORE_SCRYPT_N": "16",
        "MEDLEDGER_PASSPHRASE": "x",
    }
    remote = {**env, "MEDLEDGER_RPC_URL": "https://rpc.consortium.example", "MEDLEDGER_CHAIN_ID": "4242"}
    fails(
        run("keys", "fund", "patient", env={"MEDLEDGER_RPC_URL": "https://rpc.consortium.example"}),
        2,
        "not on this machine",
    )
    # refused before the keystore is written
    fails(run("keys", "create", "someone", "--fund", env=remote), 2, "only on a local development chain")
    assert not (tmp_path / "keys" / "someone.json").exists()
    with _json_rpc({"web3_clientVersion": "Geth/v1.14.8-stable/linux-amd64/go1.22.5", "eth_chainId": "0x539"}) as url:
        fails(run("keys", "fund", "patient", env={"MEDLEDGER_RPC_URL": url}), 2, "is Geth, not a development node")


@contextlib.contextmanager
def _json_rpc(answers: dict[str, Any]):
    """A JSON-RPC endpoint on 127.0.0.1 that answers ``answers[method]`` (and nothing else)."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            body = {"jsonrpc": "2.0", "id": request["id"]}
            if request["method"] in answers:
                body["result"] = answers[request["method"]]
            else:
                body["error"] = {"code": -32601, "message": "method not found"}
            raw = json.dumps(body).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_bad_config_file_exits_2(run, tmp_path):
    config = tmp_path / "config.toml"
    config.write_text('[chain]\nrpc_url = "http://127.0.0.1:1"\n[wallet]\nname = "x"\n')
    fails(run("--config", config, "consent", "list", "--patient", "patient"), 2, "Unknown section", "wallet")
    fails(run("consent", "list", "--config", tmp_path / "missing.toml", "--patient", "patient"), 2, "does not exist")


def test_registration_as_in_the_readme(run, relayer):
    result = run("registrar", "register", "relayer", "--kind", "app", "--from-keystore", "relayer", as_="registrar")
    ok(result)
    assert "all-zero credential reference" in result.stderr
    shown = as_json(run("patient", "show", relayer.address, "--json"))
    assert shown["participant"]["kind"] == "app" and shown["participant"]["credential_ref"] == "0x" + "00" * 32


def test_revoke_with_reencrypt_supersedes_old_records(run, workdir):
    written = add_observation(run, workdir)
    grant(run, "researcher", "read", "obs", "research")
    fails(run("consent", "revoke", "researcher", "--read", "--reencrypt", "--no-rotate", as_="patient"), 2)
    revoked = as_json(run("consent", "revoke", "researcher", "--read", "--reencrypt", "--json", as_="patient"))
    assert revoked["reencrypted"] is True
    listed = as_json(run("records", "list", "--json", as_="patient"))
    old = next(r for r in listed if r["record_id"] == written["record_id"])
    assert old["superseded_by"]
    read = as_json(run("records", "read", old["superseded_by"], "--purpose", "direct-care", "--json", as_="patient"))
    assert read["content"] == OBS
    fails(run("records", "read", old["superseded_by"], "--purpose", "research", as_="researcher"), 10)


def test_empty_home_variable_means_the_default_home(run, monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path))
    result = run("node", "status", "--json", env={"MEDLEDGER_HOME": ""})
    assert result.exit_code == 3  # nothing runs there
    assert json.loads(result.stdout)["data_dir"] == str(tmp_path / ".medledger" / "node")


def test_invalidate_requests_voids_a_signed_request_not_yet_submitted(run, workdir, patient, client):
    request = workdir / "grant.json"
    ok(run("consent", "sign", "researcher", "--read", "--categories", "obs", "--purposes", "research",
           "--out", request, as_="patient"))  # fmt: skip
    nonce = client.contract.nonces(patient.address)
    done = as_json(run("consent", "invalidate-requests", "--json", as_="patient"))
    assert done == {"patient": patient.address, "nonce": nonce + 1, "invalidated": True}
    fails(run("consent", "submit", request, as_="relayer"), 10, "invalidated its outstanding signed requests")
    fails(run("consent", "invalidate-requests", "--patient", "patient", as_="stranger"), 10, "may not manage")


def test_reissue_keys_sends_each_current_reader_an_envelope(run):
    grant(run, "researcher", "read", "obs", "research")
    grant(run, "clinician", "read", "obs,conditions", "direct-care")
    answer = as_json(run("consent", "reissue-keys", "--json", as_="patient"))
    assert answer["envelopes_published"] == 2
    fails(run("consent", "reissue-keys", "--patient", "patient", as_="stranger"), 10, "may not manage the consents")


def test_help_does_not_load_the_library():
    """The command modules import the library on first use: listing the commands loads no web3."""
    probe = (
        "import sys\n"
        "from click.testing import CliRunner\n"
        "from medledger.cli import cli\n"
        "result = CliRunner().invoke(cli, ['--help'])\n"
        "assert result.exit_code == 0 and 'records' in result.output, result.output\n"
        "heavy = ('web3', 'eth_account', 'medledger.chain', 'medledger.client', 'rich', 'tqdm', 'pydantic', 'fhir',"
        " 'solcx', 'nacl', 'requests')\n"
        "heavy = sorted(m for m in heavy if m in sys.modules)\n"
        "print(heavy)\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
