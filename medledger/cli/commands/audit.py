"""``medledger audit``: a patient's history from chain events alone (anyone can rebuild it)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from ..context import State, with_state
from ..lazy import lazy
from ..options import common_options, format_option
from ..output import Column, listing, output_format, short
from ..sources import history_client, source_option

if TYPE_CHECKING:
    from medledger import audit as audit_lib
else:
    audit_lib = lazy("medledger.audit")


def _named(text: str, names: dict[str, str]) -> str:
    for address, name in names.items():
        text = text.replace(address, name)
    return text


def columns(names: dict[str, str]) -> list[Column]:
    """The audit listing: the table shows who did what to which record; CSV and JSON add the Unix time,
    block, transaction and purpose of each entry."""
    return [
        Column("emergency", "", lambda v: "!" if v else ""),
        Column("time", "TIME (UNIX)", in_table=False),
        Column("time_utc", "TIME"),
        Column("block", "BLOCK", in_table=False),
        Column("tx_hash", "TRANSACTION", in_table=False),
        Column("event", "EVENT"),
        Column("actor", "ACTOR", lambda v: short(v, names) if v else "-"),
        Column("record", "RECORD"),
        Column("purpose", "PURPOSE", in_table=False),
        Column("detail", "DETAIL", lambda v: _named(v, names)),
    ]


@click.command("audit")
@click.option("--patient", default=None, metavar="ADDRESS", help="Whose history (default: --as).")
@click.option("--accesses", "only_accesses", is_flag=True, help="Only reads and emergency openings.")
@format_option
@source_option
@common_options()
@with_state
def audit(state: State, patient: str | None, only_accesses: bool, source: str) -> None:
    """Who read which record, when and why; consent, delegate and emergency history.

    Emergency rows are marked with "!" (table) or emergency=true (csv, json). Read from the event
    index when it is usable, else from the chain's logs (--source; stderr says which)."""
    output_format()  # a contradiction of --json and --format is refused before anything is asked
    address = state.address_or_self(patient)
    client = history_client(state, source)
    entries = audit_lib.accesses(client, address) if only_accesses else audit_lib.trail(client, address)
    names = state.names() if output_format() == "table" else {}
    listing([e.to_json() for e in entries], columns(names), empty=f"No history for patient {address}.")


COMMANDS = [audit]
