"""``medledger keys sync``: keep a patient's category keys in step with who may read, and what the
commands that end access say about the keys they rotated.

Every patient-side command that ends access (``consent revoke``, a narrowing ``consent grant``,
``delegate remove``, a narrowing ``delegate add``, ``emergency close``, ``patient emergency-opt-out``)
runs the same sync itself; ``keys sync`` is for what ends without one of them: a signed revocation
a relayer submitted (``consent submit`` names the keys it made stale), a consent, delegation or
emergency window that ran out, a reader reinstated after a suspension.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import click

from medledger import codes

from ..context import State, with_state
from ..options import common_options
from ..output import code_labels, emit, note, when

if TYPE_CHECKING:
    from medledger.client import Client
    from medledger.keyring import SyncReport


@click.command("sync")
@click.option("--patient", default=None, metavar="ADDRESS", help="Whose keys (for delegates; default: --as).")
@click.option("--follow", "keep_on", is_flag=True, help="Keep syncing: wake when the next key is due to go stale.")
@click.option(
    "--interval",
    type=click.FloatRange(min=0.1),
    default=60.0,
    show_default=True,
    help="With --follow: the longest sleep between rounds (seconds).",
)
@click.option("--rounds", type=click.IntRange(min=1), default=None, hidden=True, help="With --follow: stop after N.")
@common_options()
@with_state
def sync(state: State, patient: str | None, keep_on: bool, interval: float, rounds: int | None) -> None:
    """Rotate the patient's stale category keys and send every reader the keys it lacks.

    A key is stale once a reader it was released to has lost access (revoked by a signed request,
    expired, an emergency window over); no record can be written to it until it is rotated. As the
    patient, or as a delegate for its categories. --follow keeps doing it, waking when the next key
    is due to go stale (at most every --interval seconds), printing what each round did (--json: one
    JSON document per line)."""
    from medledger import workflows
    from medledger.keyring import Keyring

    client = state.client()
    me = state.identity()
    address = state.address_or_self(patient)
    if not keep_on:
        report = Keyring(client).sync(me, address)
        emit(report_json(report), lambda: click.echo(report_text(report)))
        return
    note(f"Keeping the keys of {address} in step (Ctrl-C to stop)…")

    def show(report: SyncReport) -> None:
        if state.json:
            click.echo(json.dumps(report_json(report)))  # one JSON document per line (JSON Lines)
        elif report.changed or report.beyond:
            click.echo(report_text(report))

    workflows.follow(
        client, me, address, interval=interval, rounds=rounds, on_report=show,
        on_error=lambda error: note(f"Sync failed, trying again later: {error}"),
    )  # fmt: skip


def report_json(report: SyncReport) -> dict[str, Any]:
    return {
        "patient": report.patient,
        "rotated": {codes.slug(codes.Category(c)): epoch for c, epoch in sorted(report.rotated.items())},
        "delivered": {
            reader: sorted(codes.slug(codes.Category(c)) for c in categories)
            for reader, categories in sorted(report.delivered.items())
        },
        "beyond": sorted(codes.slug(codes.Category(c)) for c in report.beyond),
        "next_due": report.next_due,
        "next_due_utc": when(report.next_due) if report.next_due is not None else None,
        "changed": report.changed,
    }


def report_text(report: SyncReport) -> str:
    lines = []
    if report.rotated:
        rotated = ", ".join(f"{codes.label(codes.Category(c))} (epoch {e})" for c, e in sorted(report.rotated.items()))
        lines.append(f"Rotated the keys of {rotated}.")
    for reader, categories in sorted(report.delivered.items()):
        lines.append(f"Sent {reader} the current keys of {code_labels(codes.Category(c) for c in categories)}.")
    if report.beyond:
        lines.append(
            f"Stale, but beyond this delegate's categories (the patient must sync): "
            f"{code_labels(codes.Category(c) for c in report.beyond)}."
        )
    if not lines:
        lines.append(f"The keys of {report.patient} are in step with its consents: nothing to do.")
    if report.next_due is not None:
        lines.append(f"Next key due to go stale: {when(report.next_due)} (sync again then, or keep --follow running).")
    return "\n".join(lines)


def key_epochs(client: Client, patient: str) -> dict[int, int]:
    """Every category's current key epoch (to tell what a command rotated)."""
    return {int(c): key.epoch for c, key in client.contract.category_keys(patient).items()}


def rotated_since(client: Client, patient: str, before: dict[int, int]) -> dict[str, int]:
    """The categories rotated since ``before`` (:func:`key_epochs`), with their new epochs, by slug."""
    now = key_epochs(client, patient)
    return {codes.slug(codes.Category(c)): e for c, e in sorted(now.items()) if e != before.get(c)}


def rotation_note(rotated: dict[str, int]) -> str:
    """``"; keys rotated: observations (epoch 2)"`` (empty if nothing was rotated)."""
    if not rotated:
        return ""
    return "; keys rotated: " + ", ".join(f"{name} (epoch {epoch})" for name, epoch in rotated.items())


def stale_note(client: Client, patient: str) -> str:
    """What a writer would run into after access ended without a patient-side command (a signed
    revocation a relayer submitted): which keys are stale and what rotates them (empty if none)."""
    now = client.now()
    stale = [c for c, key in client.contract.category_keys(patient).items() if key.stale(now)]
    if not stale:
        return ""
    return (
        f"The keys of {code_labels(codes.Category(c) for c in stale)} of {patient} are stale now: no record of "
        "those categories can be written until the patient (or a delegate) runs `medledger keys sync`."
    )
