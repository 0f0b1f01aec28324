"""``medledger records``: add, read, amend, erase, list and verify encrypted records; anchor and read
batches of device readings; settle interrupted writes."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from medledger import codes
from medledger.errors import TamperingDetected
from medledger.times import iso

from ..context import State, with_state
from ..errors import MedledgerGroup
from ..lazy import lazy
from ..options import common_options, format_option, progress_option
from ..output import Column, emit, listing, note, output_format, progress_enabled, short
from ..params import CATEGORY, PURPOSE, check_out_path, record_id
from ..sources import history_client, source_option

if TYPE_CHECKING:
    from tqdm import tqdm

    from medledger import fhir, records
else:
    fhir = lazy("medledger.fhir")
    records = lazy("medledger.records")

JSON_TYPES = {"application/fhir+json", "application/json", "application/vnd.medledger.batch+json"}


@click.group("records", cls=MedledgerGroup)
def records_group() -> None:
    """Encrypted records on IPFS, fingerprinted on chain."""


def bar(enabled: bool, total: int | None, desc: str, unit: str = "B") -> tqdm[Any]:
    """A progress bar on stderr (disabled: draws nothing)."""
    from tqdm import tqdm

    return tqdm(
        total=total,
        desc=desc,
        unit=unit,
        unit_scale=unit == "B",
        file=sys.stderr,
        disable=not enabled,
        leave=True,
        dynamic_ncols=True,
    )


def _write_json(result: records.WriteResult, patient: str, path: Path, **extra: Any) -> dict[str, Any]:
    return {
        "record_id": result.record_hex,
        "patient": patient,
        "cid": result.cid,
        "fingerprint": "0x" + result.fingerprint.hex(),
        "category": codes.slug(result.category),
        "content_type": result.content_type,
        "size": result.size,
        "file": str(path),
        **extra,
    }


def _write_text(data: dict[str, Any], verb: str) -> str:
    return (
        f"{verb} record {data['record_id']}\n"
        f"  patient      {data['patient']}\n"
        f"  category     {data['category']}\n"
        f"  content      {data['content_type']}, {data['size']} bytes\n"
        f"  cid          {data['cid']}\n"
        f"  fingerprint  {data['fingerprint']}"
    )


def _content_type(path: Path, override: str | None) -> str | None:
    return fhir.detect_content_type(path, override) if override else None


_record_patient_option = click.option(
    "--patient",
    "owner",
    default=None,
    metavar="ADDRESS",
    help="Whose record (ids are per patient; default: the one patient that has a record of this id).",
)


def _owner(state: State, owner: str | None) -> str | None:
    return state.address(owner, "--patient") if owner else None


_file_argument = click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
_content_type_option = click.option(
    "--content-type", default=None, help="MIME type or short name (fhir, pdf, dicom, csv, text…); default: detected."
)


@records_group.command("add")
@_file_argument
@click.option("--patient", default=None, metavar="ADDRESS", help="Whose record (default: --as).")
@click.option("--category", type=CATEGORY, default=None, help="Default: inferred from the FHIR resource type.")
@click.option("--purpose", type=PURPOSE, default="direct-care", show_default=True)
@_content_type_option
@progress_option
@common_options()
@with_state
def add(
    state: State,
    file: Path,
    patient: str | None,
    category: codes.Category | None,
    purpose: codes.Purpose,
    content_type: str | None,
    progress: bool | None,
) -> None:
    """Encrypt FILE (FHIR JSON, validated, or any attachment), store it on IPFS and register it.

    Needs a write consent from the patient for its category and purpose (or being the patient)."""
    ctype = _content_type(file, content_type)
    patient_address = state.address_or_self(patient)
    client = state.client()
    me = state.identity()
    with bar(progress_enabled(progress), file.stat().st_size, "encrypt+upload") as progress_bar:
        result = records.write_record(
            client,
            me,
            patient_address,
            file,
            category=category,
            purpose=purpose,
            content_type=ctype,
            progress=progress_bar.update,
        )
    data = _write_json(result, patient_address, file, author=me.address, purpose=codes.slug(purpose))
    emit(data, _write_text(data, "Added"))


@records_group.command("amend")
@click.argument("record")
@_file_argument
@_record_patient_option
@click.option("--purpose", type=PURPOSE, default="direct-care", show_default=True)
@_content_type_option
@progress_option
@common_options()
@with_state
def amend(
    state: State,
    record: str,
    file: Path,
    owner: str | None,
    purpose: codes.Purpose,
    content_type: str | None,
    progress: bool | None,
) -> None:
    """Add FILE as a new version of RECORD (same patient and category; the patient or its author)."""
    previous = record_id(record)
    ctype = _content_type(file, content_type)
    client = state.client()
    me = state.identity()
    patient = records.find_record(client, previous, _owner(state, owner)).patient
    with bar(progress_enabled(progress), file.stat().st_size, "encrypt+upload") as progress_bar:
        result = records.amend_record(
            client, me, previous, file, patient=patient, purpose=purpose, content_type=ctype,
            progress=progress_bar.update,
        )  # fmt: skip
    data = _write_json(result, patient, file, author=me.address, supersedes="0x" + previous.hex())
    emit(data, _write_text(data, "Amended") + f"\n  supersedes   {data['supersedes']}")


def _is_text(content_type: str) -> bool:
    return content_type in JSON_TYPES or content_type.startswith("text/")


@records_group.command("read")
@click.argument("record")
@_record_patient_option
@click.option("--purpose", type=PURPOSE, required=True, help="Why you read it (recorded in the audit trail).")
@click.option(
    "--out",
    "out",
    type=click.Path(dir_okay=False, allow_dash=True, path_type=Path),
    default=None,
    help="Write the content here (- for stdout, any type). Without it text content is printed.",
)
@progress_option
@common_options()
@with_state
def read(
    state: State, record: str, owner: str | None, purpose: codes.Purpose, out: Path | None, progress: bool | None
) -> None:
    """Read RECORD: consent check, audit entry on chain, fetch, verify and decrypt.

    Text and JSON content is printed unless --out is given; other content needs --out."""
    rid = record_id(record)
    check_out_path(out)
    client = state.client()
    me = state.identity()
    to_stdout = out is not None and str(out) == "-"
    with bar(progress_enabled(progress), None, "fetch+verify") as progress_bar:
        result = records.read_record(
            client,
            me,
            rid,
            patient=_owner(state, owner),
            purpose=purpose,
            out=None if to_stdout else out,
            progress=progress_bar.update,
        )
    data: dict[str, Any] = {
        "record_id": "0x" + rid.hex(),
        "patient": result.patient,
        "author": result.author,
        "category": codes.slug(result.category),
        "content_type": result.content_type,
        "size": result.size,
        "emergency": result.emergency,
        "purpose": codes.slug(purpose),
    }
    if result.emergency:
        note("Read under emergency access: this read is flagged in the patient's audit trail.")
    if result.path is not None:
        note(f"Wrote {result.size} bytes ({result.content_type}) to {result.path}")
        emit({**data, "path": str(result.path)}, None)
        return
    raw = result.data or b""
    if to_stdout:
        if state.json:
            raise click.UsageError("--out - writes the raw content to stdout; it cannot be combined with --json.")
        click.echo(raw, nl=False)  # bytes go to the binary stdout unchanged
        return
    _print_content(state, rid, result, raw, data)


def _print_content(state: State, rid: bytes, result: Any, raw: bytes, data: dict[str, Any]) -> None:
    """A read record's content on the terminal (text), or in the JSON answer (parsed if it is JSON)."""
    text = None
    if _is_text(result.content_type):
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            text = None
    if text is None:
        raise click.UsageError(
            f"Record 0x{rid.hex()} holds {result.content_type} ({result.size} bytes), which is not printable text; "
            "read it again with --out FILE (or --out - to write it to stdout). This read was already logged."
        )
    if not state.json:
        click.echo(text if text.endswith("\n") else text + "\n", nl=False)
        return
    if result.content_type in JSON_TYPES:
        try:
            data["content"] = json.loads(text)
        except ValueError:
            data["text"] = text
    else:
        data["text"] = text
    emit(data)


@records_group.command("erase")
@click.argument("record")
@_record_patient_option
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@common_options()
@with_state
def erase(state: State, record: str, owner: str | None, yes: bool) -> None:
    """Erase RECORD (a record or a batch) for good: it can never be read again (patient only)."""
    rid = record_id(record)
    client = state.client()
    me = state.identity()
    if not yes:
        click.confirm(f"Erase record 0x{rid.hex()} for good? It cannot be read again", abort=True, err=True)
    changed = records.erase_record(client, me, rid, patient=_owner(state, owner))
    emit(
        {"record_id": "0x" + rid.hex(), "erased": True, "changed": changed},
        f"Erased record 0x{rid.hex()}." if changed else f"Record 0x{rid.hex()} was already erased.",
    )


def _status(r: records.RecordSummary) -> str:
    parts = []
    if r.erased:
        parts.append("erased")
    if r.is_batch:
        parts.append(f"batch of {r.leaf_count}")
    if r.previous:
        parts.append(f"amends 0x{r.previous.hex()[:10]}…")
    if r.superseded_by:
        parts.append(f"superseded by 0x{r.superseded_by.hex()[:10]}…")
    return ", ".join(parts) or "-"


def record_row(r: records.RecordSummary) -> dict[str, Any]:
    return {**r.to_json(), "created_at": iso(r.created_at), "status": _status(r)}


def record_columns(names: dict[str, str]) -> list[Column]:
    return [
        Column("record_id", "RECORD"),
        Column("patient", "PATIENT", in_table=False),
        Column("category", "CATEGORY"),
        Column("purpose", "PURPOSE"),
        Column("author", "AUTHOR", lambda v: short(v, names)),
        Column("created_at", "CREATED"),
        Column("status", "STATUS"),
        Column("cid", "CID", in_table=False),
        Column("erased", "ERASED", in_table=False),
        Column("batch", "BATCH", in_table=False),
        Column("leaf_count", "READINGS", in_table=False),
        Column("previous", "AMENDS", in_table=False),
        Column("superseded_by", "SUPERSEDED BY", in_table=False),
    ]


@records_group.command("list")
@click.option("--patient", default=None, metavar="ADDRESS", help="Whose records (default: --as).")
@click.option("--live", is_flag=True, help="Hide erased records.")
@format_option
@source_option
@common_options()
@with_state
def list_(state: State, patient: str | None, live: bool, source: str) -> None:
    """List a patient's records and batches (from chain events, through the event index when it is
    usable; content stays encrypted)."""
    output_format()
    address = state.address_or_self(patient)
    found = records.list_records(history_client(state, source), address, include_erased=not live)
    names = state.names() if output_format() == "table" else {}
    listing([record_row(r) for r in found], record_columns(names), empty=f"No records for patient {address}.")


@records_group.command("verify")
@click.argument("record")
@click.argument("fingerprint")
@_record_patient_option
@common_options(identity=False)
@with_state
def verify(state: State, record: str, fingerprint: str, owner: str | None) -> None:
    """Check FINGERPRINT (hex) against the one registered for RECORD. Exit 0 if it matches, 6 if not."""
    rid = record_id(record)
    fp = record_id(fingerprint, "FINGERPRINT")
    client = state.client()
    info = records.find_record(client, rid, _owner(state, owner))
    if not records.verify_fingerprint(client, rid, fp, patient=info.patient):
        erased = " (the record was erased, so no fingerprint is registered any more)" if info.erased else ""
        raise TamperingDetected(
            f"Fingerprint 0x{fp.hex()} does not match the one registered for record 0x{rid.hex()}{erased}"
        )
    emit(
        {"record_id": "0x" + rid.hex(), "fingerprint": "0x" + fp.hex(), "matches": True},
        f"The fingerprint matches record 0x{rid.hex()}.",
    )


COMMANDS = [records_group]
