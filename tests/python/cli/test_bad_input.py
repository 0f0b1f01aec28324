"""Issue 8 items 5-7 at the command line: numbers the contract cannot carry, addresses with a wrong
EIP-55 checksum and a deployment whose contract is gone are refused with a clear message, before
anything is sent or pinned; every view shows the largest expiry the contract accepts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import Result

from medledger import codes, consent, records
from medledger.chain import FOREVER
from medledger.chain.deployments import deployment_file
from medledger.errors import InvalidAddress, InvalidNumber

OBS = {
    "resourceType": "Observation",
    "id": "bad-input",
    "status": "final",
    "code": {"coding": [{"system": "http://loinc.org", "code": "4548-4"}]},
    "valueQuantity": {"value": 6.1, "unit": "%"},
}


def outcome(result: Result, code: int, *fragments: str) -> Result:
    assert result.exit_code == code, f"exit {result.exit_code}\nstdout: {result.stdout}\nstderr: {result.stderr}"
    for fragment in fragments:
        assert fragment in result.stderr, f"{fragment!r} not in stderr: {result.stderr}"
    return result


def untouched(client, before: tuple[int, list[str]]) -> None:
    """Nothing was sent (no block mined) and nothing pinned since ``before``."""
    assert (client.chain.block_number(), sorted(client.store.pins())) == before


def snapshot(client) -> tuple[int, list[str]]:
    return client.chain.block_number(), sorted(client.store.pins())


@pytest.mark.parametrize(
    ("days", "says"),
    [
        ("1e12", "is more than 36525 days"),
        ("1e30", "is more than 36525 days"),
        ("nan", "is not a positive number of days"),
        ("inf", "is not a positive number of days"),
        ("-inf", "is not a positive number of days"),
        ("-3", "is not a positive number of days"),
        ("0", "is not a positive number of days"),
        ("soon", "is not a number of days"),
    ],
)
def test_impossible_days_are_refused_before_anything_is_sent(run, client, workdir, days, says):
    before = snapshot(client)
    terms = ["--read", "--categories", "obs", "--purposes", "research"]
    for argv in (
        ["consent", "grant", "researcher", *terms, "--days", days],
        ["delegate", "add", "delegate", "--categories", "obs", "--days", days],
        ["consent", "sign", "researcher", *terms, "--days", days, "--out", workdir / "request.json"],
    ):
        outcome(run(*argv, as_="patient"), 2, says)
    hours = run(
        "consent", "sign", "researcher", *terms, "--valid-hours", days, "--out", workdir / "request.json", as_="patient"
    )
    outcome(hours, 2, says.replace("36525 days", "720 hours").replace("of days", "of hours"))
    outcome(
        run("emergency", "open", "patient", "--hours", days, "--reason", "410429000", as_="emergency_clinician"),
        2,
        says.replace("days", "hours").replace("36525", "8784"),
    )
    untouched(client, before)


def test_impossible_library_numbers_are_refused_before_the_envelope_is_pinned(client, patient, researcher):
    before = snapshot(client)
    for expiry, says in ((2**64, "out of range"), (-1, "out of range"), (float("nan"), "not a finite number")):
        with pytest.raises(InvalidNumber) as err:
            consent.grant(client, patient, researcher.address, codes.Access.READ, [4], [2], expiry=expiry)
        assert says in str(err.value) and "expiry" in str(err.value)
    with pytest.raises(InvalidNumber, match="not a whole number"):
        consent.grant(client, patient, researcher.address, codes.Access.READ, [4], [2], expiry=1e30)  # type: ignore[arg-type]
    with pytest.raises(InvalidNumber, match="out of range"):
        consent.appoint_delegate(client, patient, researcher.address, [4], 2**64)
    with pytest.raises(InvalidNumber, match="window"):
        consent.open_emergency(client, researcher, patient.address, -5, b"\1" * 32)
    untouched(client, before)


def test_every_view_tolerates_the_largest_expiry(run, client, patient, researcher, delegate):
    """2^64-1 is "no expiry"; 2^64-2 and an expiry past year 9999 are legal on chain and must show
    (as "no expiry": past any calendar date, medledger.times)."""
    consent.grant(client, patient, researcher.address, codes.Access.READ, [4], [2], expiry=FOREVER - 1)
    consent.grant(client, patient, researcher.address, codes.Access.WRITE, [4], [0], expiry=86400 * 10**12)
    consent.appoint_delegate(client, patient, delegate.address, [4], FOREVER)
    for argv, as_ in ((["consent", "list"], "patient"), (["consent", "held"], "researcher"), (["audit"], "patient")):
        result = outcome(run(*argv, as_=as_), 0)
        assert "9999" in result.stdout or "no expiry" in result.stdout or "never" in result.stdout, result.stdout
    # for machines, a time past any calendar date is null, like "no expiry" (medledger.times.iso)
    grants = json.loads(outcome(run("consent", "list", "--json", as_="patient"), 0).stdout)
    assert len(grants) == 2 and all(g["expiry"] is None for g in grants)
    trail = json.loads(outcome(run("audit", "--json", as_="patient"), 0).stdout)
    assert sum("granted" in str(row["event"]).lower() for row in trail) >= 2, trail
    table = run("consent", "list", as_="patient").stdout  # past any calendar date reads "no expiry"
    assert table.count("no expiry") == 2 and "Traceback" not in table, table


BAD_CHECKSUM = "0x70997970c51812DC3A010C7d01b50e0d17dc79C8"  # the patient's address, two letters' case flipped


def test_a_wrong_checksum_is_refused_everywhere(run, client, patient, clinician, workdir: Path):
    assert BAD_CHECKSUM.lower() == patient.address.lower() and patient.address != BAD_CHECKSUM
    path = workdir / "obs.json"
    path.write_text(json.dumps(OBS))
    before = snapshot(client)
    outcome(run("records", "add", path, "--patient", BAD_CHECKSUM, as_="clinician"), 2, "wrong EIP-55 checksum")
    outcome(run("records", "list", "--patient", BAD_CHECKSUM, as_="clinician"), 2, "wrong EIP-55 checksum")
    outcome(run("consent", "grant", BAD_CHECKSUM, "--read", "--categories", "obs", "--purposes", "research",
                as_="patient"), 2, "wrong EIP-55 checksum")  # fmt: skip
    with pytest.raises(InvalidAddress, match="wrong EIP-55 checksum"):
        records.write_record(client, clinician, BAD_CHECKSUM, path)
    with pytest.raises(InvalidAddress, match="wrong EIP-55 checksum"):
        consent.grant(client, patient, BAD_CHECKSUM, codes.Access.READ, [4], [2])
    with pytest.raises(InvalidAddress, match="wrong EIP-55 checksum"):
        client.contract.consent(BAD_CHECKSUM, clinician.address, codes.Access.READ)
    untouched(client, before)
    # all lower case carries no checksum: accepted
    assert run("records", "list", "--patient", BAD_CHECKSUM.lower(), as_="clinician").exit_code == 0


def test_a_deployment_without_code_is_an_error_not_an_empty_answer(run, client, settings, tmp_path):
    path = deployment_file(settings.deployments, settings.chain_id)
    data = json.loads(path.read_text())
    empty = "0x" + "12" * 20
    data["contracts"]["Medledger"]["address"] = empty
    moved = tmp_path / "deployments"
    moved.mkdir()
    (moved / path.name).write_text(json.dumps(data))
    env = {"MEDLEDGER_DEPLOYMENTS": str(moved)}
    for argv in (["records", "list"], ["consent", "list"], ["audit"]):
        result = outcome(run(*argv, as_="patient", env=env), 9, "no contract there", empty)
        assert "No records" not in result.stdout and "No consent" not in result.stdout
        assert "medledger node up" in result.stderr  # the hint: what to do about it
