"""``medledger records batch | read-batch``: many device readings anchored under one Merkle root."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from medledger import codes
from medledger.errors import RecordFormatError
from medledger.fsutil import atomic_write

from ..context import State, with_state
from ..lazy import lazy
from ..options import common_options, progress_option
from ..output import emit, note, progress_enabled
from ..params import CATEGORY, PURPOSE, check_out_path, record_id
from .records import bar, records_group

if TYPE_CHECKING:
    from medledger import records, workflows
else:
    records = lazy("medledger.records")
    workflows = lazy("medledger.workflows")


def _scalar(text: str | None) -> Any:
    if text is None:
        return None
    value = text.strip()
    if value == "":
        return None
    for kind in (int, float):
        try:
            return kind(value)
        except ValueError:
            continue
    if value.lower() in ("true", "false"):
        return value.lower() == "true"
    return value


def read_readings(path: Path) -> list[Any]:
    """Readings from a CSV file (one per row, header = field names) or a JSON file (a list, or an
    object with a ``readings`` list)."""
    try:
        raw = path.read_bytes().removeprefix(b"\xef\xbb\xbf").decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise RecordFormatError(f"Cannot read readings from {path}: {exc}") from None
    if path.suffix.lower() == ".json" or raw.lstrip()[:1] in ("[", "{"):
        try:
            data = json.loads(raw)
        except ValueError as exc:
            raise RecordFormatError(f"{path} is not valid JSON ({exc.__class__.__name__} at {exc})") from None
        if isinstance(data, dict) and isinstance(data.get("readings"), list):
            data = data["readings"]
        if not isinstance(data, list):
            raise RecordFormatError(f'{path} must hold a JSON list of readings (or {{"readings": [...]}})')
        return data
    sample = raw[:4096]
    try:
        dialect = csv.Sniffer().sniff(sample, delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    reader = csv.DictReader(io.StringIO(raw), dialect=dialect)
    if not reader.fieldnames or len(reader.fieldnames) < 1:
        raise RecordFormatError(f"{path} has no CSV header row")
    rows = []
    for number, row in enumerate(reader, start=2):
        if None in row:
            raise RecordFormatError(f"{path} line {number} has more fields than the header")
        rows.append({k.strip(): _scalar(v) for k, v in row.items()})
    return rows


@records_group.command("batch")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--patient", default=None, metavar="ADDRESS", help="Whose readings (default: --as).")
@click.option("--category", type=CATEGORY, default="device", show_default=True)
@click.option("--purpose", type=PURPOSE, default="direct-care", show_default=True)
@click.option(
    "--receipt",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write reading ids, fingerprints and Merkle proofs here (JSON).",
)
@progress_option
@common_options()
@with_state
def batch(
    state: State,
    file: Path,
    patient: str | None,
    category: codes.Category,
    purpose: codes.Purpose,
    receipt: Path | None,
    progress: bool | None,
) -> None:
    """Anchor the rows of FILE (CSV or JSON) as one encrypted batch of readings: one Merkle root on
    chain for all of them."""
    check_out_path(receipt, "--receipt")
    rows = read_readings(file)
    if not rows:
        raise RecordFormatError(f"{file} holds no readings")
    patient_address = state.address_or_self(patient)
    client = state.client()
    me = state.identity()
    readings = []
    with bar(progress_enabled(progress), len(rows), "readings", unit="row") as progress_bar:
        for row in rows:
            readings.append(row)
            progress_bar.update(1)
    result = records.anchor_batch(client, me, patient_address, readings, category=category, purpose=purpose)
    if receipt is not None:
        atomic_write(
            receipt,
            json.dumps(
                {
                    "root": "0x" + result.root.hex(),
                    "cid": result.cid,
                    "patient": patient_address,
                    "readings": [
                        {
                            "id": "0x" + rid.hex(),
                            "fingerprint": "0x" + fp.hex(),
                            "proof": ["0x" + p.hex() for p in proof],
                        }
                        for rid, fp, proof in zip(result.reading_ids, result.fingerprints, result.proofs, strict=True)
                    ],
                },
                indent=2,
            )
            + "\n",
        )
    data = {
        "root": "0x" + result.root.hex(),
        "cid": result.cid,
        "patient": patient_address,
        "category": codes.slug(category),
        "readings": len(result.reading_ids),
        "receipt": str(receipt) if receipt else None,
    }
    emit(
        data,
        f"Anchored {data['readings']} readings as batch {data['root']}\n  patient  {patient_address}\n"
        f"  category {data['category']}\n  cid      {result.cid}" + (f"\n  receipt  {receipt}" if receipt else ""),
    )


@records_group.command("read-batch")
@click.argument("root")
@click.option(
    "--patient", "owner", default=None, metavar="ADDRESS",
    help="Whose batch (roots are per patient; default: the one patient that has a batch of this root).",
)  # fmt: skip
@click.option("--purpose", type=PURPOSE, required=True, help="Why you read it (recorded in the audit trail).")
@common_options()
@with_state
def read_batch(state: State, root: str, owner: str | None, purpose: codes.Purpose) -> None:
    """Read the readings of batch ROOT; each is checked against the Merkle root on chain.

    Prints one reading per line (JSON lines), or one JSON list with --json."""
    rid = record_id(root, "ROOT")
    client = state.client()
    patient = state.address(owner, "--patient") if owner else None
    readings = records.read_batch(client, state.identity(), rid, patient=patient, purpose=purpose)

    def human() -> None:
        for r in readings:
            click.echo(json.dumps(r["data"], sort_keys=True))
        note(f"{len(readings)} readings, all verified against the anchored root 0x{rid.hex()}.")

    emit(readings, human)


@records_group.command("recover")
@click.option(
    "--wait",
    type=click.FloatRange(0, 3600),
    default=30.0,
    show_default=True,
    metavar="SECONDS",
    help="How long to wait for a transaction that is sent but not mined yet.",
)
@common_options(identity=False)
@with_state
def recover(state: State, wait: float) -> None:
    """Settle interrupted writes: registered records are kept, transactions the chain forgot are sent
    again, pending ones are waited for, and uploads whose transaction can never land are unpinned."""
    show_settled(workflows.recover(state.settings(), wait=wait))


def show_settled(settled: list[tuple[str, str]], empty: str = "No interrupted writes.") -> None:
    """Print what a recovery settled (one line per write)."""
    emit(
        [{"record_id" if is_record_id(what) else "transaction": what, "outcome": outcome} for what, outcome in settled],
        lambda: click.echo("\n".join(f"{what}  {outcome}" for what, outcome in settled) if settled else empty),
    )


def is_record_id(text: str) -> bool:
    return len(text) == 66 and text.startswith("0x")
