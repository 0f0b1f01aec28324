"""``medledger export consents|audit``: a patient's consents and audit trail, as FHIR R4 Bundles
(``--fhir``) or plain JSON, from the event index (caught up first)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from medledger.fsutil import atomic_write

from ..context import State, with_state
from ..errors import MedledgerGroup
from ..lazy import lazy
from ..options import common_options
from ..output import dumps, note
from ..params import check_out_path
from .index import db_option, open_local_index

if TYPE_CHECKING:
    from medledger import export as export_lib
    from medledger.index import IndexReader
else:
    export_lib = lazy("medledger.export")

T = TypeVar("T")


def _options(f: Any) -> Any:
    f = click.option("--no-sync", is_flag=True, help="Export from the index as it is, without catching up first.")(f)
    f = click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="Write here instead of stdout.")(f)
    f = click.option("--fhir", is_flag=True, help="A FHIR R4 Bundle (validated) instead of medledger's JSON.")(f)
    f = click.option("--patient", default=None, metavar="ADDRESS", help="Whose data (default: --as).")(f)
    return db_option(f)


def _write(doc: Any, out: Path | None, what: str) -> None:
    text = dumps(doc) + "\n"
    if out is None:
        click.echo(text, nl=False)
        return
    atomic_write(out, text)
    note(f"{what} written to {out}")


def _from_index(state: State, db: str | None, no_sync: bool, query: Callable[[IndexReader], T]) -> T:
    """``query`` on the deployment's index, caught up first unless ``no_sync``."""
    local = open_local_index(state, db)
    try:
        if not no_sync:
            local.sync()
        return query(local.reader())
    finally:
        local.close()


@click.group(cls=MedledgerGroup)
def export() -> None:
    """A patient's consents and audit trail in standard formats (FHIR R4)."""


@export.command("consents")
@_options
@click.option("--current", is_flag=True, help="Only the decisions that still stand (default: the whole history).")
@common_options()
@with_state
def consents(
    state: State, db: str | None, patient: str | None, fhir: bool, out: Path | None, no_sync: bool, current: bool
) -> None:
    """Every consent decision of the patient: FHIR Consent resources with --fhir."""
    check_out_path(out)
    address = state.address_or_self(patient)
    entries = _from_index(state, db, no_sync, lambda r: r.grants_given(address, history=not current))
    client = state.client()
    if fhir:
        doc = export_lib.consents_bundle(entries, client.deployment.chain_id, client.now())
        _write(doc, out, export_lib.summary(doc))
    else:
        _write([e.to_json() for e in entries], out, f"{len(entries)} consent decisions")


@export.command("audit")
@_options
@common_options()
@with_state
def audit(state: State, db: str | None, patient: str | None, fhir: bool, out: Path | None, no_sync: bool) -> None:
    """The patient's audit trail: FHIR AuditEvent resources with --fhir."""
    check_out_path(out)
    address = state.address_or_self(patient)
    events = _from_index(state, db, no_sync, lambda r: r.trail(address))
    client = state.client()
    if fhir:
        doc = export_lib.audit_bundle(events, client.deployment.chain_id, client.deployment.address, client.now())
        _write(doc, out, export_lib.summary(doc))
    else:
        _write([e.to_json() for e in events], out, f"{len(events)} events")


COMMANDS = [export]
