"""``medledger audit``: a patient's history from chain events alone (anyone can rebuild it)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from ..context import State, get_state, with_state
from ..lazy import lazy
from ..options import common_options
from ..output import emit, short, table, when

if TYPE_CHECKING:
    from medledger import audit as audit_lib
else:
    audit_lib = lazy("medledger.audit")


def _named(text: str, names: dict[str, str]) -> str:
    for address, name in names.items():
        text = text.replace(address, name)
    return text


@click.command("audit")
@click.option("--patient", default=None, metavar="ADDRESS", help="Whose history (default: --as).")
@click.option("--accesses", "only_accesses", is_flag=True, help="Only reads and emergency openings.")
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table", show_default=True)
@common_options()
@with_state
def audit(state: State, patient: str | None, only_accesses: bool, fmt: str) -> None:
    """Who read which record, when and why; consent, delegate and emergency history.

    Emergency rows are marked with "!" (table) or emergency=true (csv, json)."""
    address = state.address_or_self(patient)
    client = state.client()
    entries = audit_lib.accesses(client, address) if only_accesses else audit_lib.trail(client, address)
    if get_state().json or fmt == "json":
        state.json = True
        emit([e.to_json() for e in entries])
        return
    if fmt == "csv":
        click.echo(audit_lib.to_csv(entries), nl=False)
        return
    names = state.names()
    table(
        ["", "TIME", "EVENT", "ACTOR", "DETAIL"],
        [
            (
                "!" if e.emergency else "",
                when(e.time),
                e.event,
                short(e.actor, names) if e.actor else "-",
                _named(e.detail, names),
            )
            for e in entries
        ],
        empty=f"No history for patient {address}.",
    )


COMMANDS = [audit]
