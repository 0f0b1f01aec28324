"""``medledger delegate`` and ``medledger emergency``: family members who manage consents, and
break-glass access for clinicians."""

from __future__ import annotations

import datetime as _dt
from typing import TYPE_CHECKING

import click

from medledger import codes

from ..context import State, with_state
from ..errors import MedledgerGroup
from ..lazy import lazy
from ..options import common_options
from ..output import code_labels, emit, when
from ..params import CATEGORIES, HOURS, expiry_from
from . import keysync
from .consent_terms import window_options

if TYPE_CHECKING:
    from medledger import consent
else:
    consent = lazy("medledger.consent")


# --- delegates ----------------------------------------------------------------------------------------
@click.group(cls=MedledgerGroup)
def delegate() -> None:
    """Appoint or remove delegates (family, friends) who manage consents for you."""


@delegate.command("add")
@click.argument("address")
@click.option("--categories", type=CATEGORIES, required=True, help="Categories the delegate may manage (and read).")
@window_options
@common_options()
@with_state
def delegate_add(
    state: State, address: str, categories: frozenset[codes.Category], expires: _dt.datetime | None, days: float | None
) -> None:
    """Appoint ADDRESS (another registered patient) as your delegate for CATEGORIES. Narrowing a
    delegation rotates the keys of the categories it drops (run it again if that failed)."""
    if expires is None and days is None:
        raise click.UsageError("Say how long the delegation lasts: --days N or --expires DATE.")
    account = state.address(address)
    client = state.client()
    me = state.identity()
    expiry = expiry_from(client, expires, days, default=consent.FOREVER)
    before = keysync.key_epochs(client, me.address)
    changed = consent.appoint_delegate(client, me, account, categories, expiry)
    rotated = keysync.rotated_since(client, me.address, before)
    emit(
        {
            "patient": me.address,
            "delegate": account,
            "categories": sorted(codes.slug(c) for c in categories),
            "expiry": expiry,
            "expiry_utc": when(expiry),
            "changed": changed,
            "rotated": rotated,
        },
        f"{account} {'is now' if changed else 'already was'} your delegate for {code_labels(categories)} "
        f"until {when(expiry)}{keysync.rotation_note(rotated)}.",
    )


@delegate.command("remove")
@click.argument("address")
@click.option("--no-rotate", is_flag=True, help="Do not rotate the category keys the delegate held.")
@common_options()
@with_state
def delegate_remove(state: State, address: str, no_rotate: bool) -> None:
    """Remove delegate ADDRESS; the category keys it held are rotated (run it again if that failed)."""
    account = state.address(address)
    client = state.client()
    me = state.identity()
    before = keysync.key_epochs(client, me.address)
    changed = consent.remove_delegate(client, me, account, rotate=not no_rotate)
    rotated = keysync.rotated_since(client, me.address, before)
    note_ = keysync.rotation_note(rotated)
    emit(
        {"patient": me.address, "delegate": account, "changed": changed, "rotated": rotated},
        f"Removed delegate {account}{note_}."
        if changed
        else f"{account} was not your delegate{note_ or '; nothing changed'}.",
    )


# --- emergency ----------------------------------------------------------------------------------------
@click.group(cls=MedledgerGroup)
def emergency() -> None:
    """Break-glass access for clinicians (time-limited, always flagged in the audit trail)."""


@emergency.command("open")
@click.argument("patient")
@click.option("--hours", type=HOURS, required=True, help="How long (hours).")
@click.option(
    "--reason",
    metavar="CODE",
    required=True,
    help="The coded reason (e.g. a SNOMED CT concept id); it goes on chain only as a tag keyed with the "
    "consortium's secret (MEDLEDGER_CONSORTIUM_SECRET), never in clear.",
)
@common_options()
@with_state
def emergency_open(state: State, patient: str, hours: float, reason: str) -> None:
    """Open emergency read access to PATIENT's records as the --as clinician. The clinician decrypts
    once the patient or a delegate releases keys to it (`medledger emergency release`)."""
    from medledger.config import consortium_secret

    account = state.address(patient, "PATIENT")
    try:
        tag = consent.reason_code(consortium_secret(state.settings()), reason)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--reason") from None
    client = state.client()
    me = state.identity()
    until = consent.open_emergency(client, me, account, int(hours * 3600), tag)
    emit(
        {"patient": account, "clinician": me.address, "expires_at": until, "expires_utc": when(until)},
        f"Emergency access to {account} is open for {me.address} until {when(until)}; "
        "it is flagged in the audit trail.",
    )


@emergency.command("confirm")
@click.argument("patient")
@click.option("--clinician", required=True, metavar="ADDRESS", help="Whose emergency access to confirm.")
@common_options()
@with_state
def emergency_confirm(state: State, patient: str, clinician: str) -> None:
    """Confirm a clinician's emergency access to PATIENT (as the patient or a delegate): its run starts
    again, so it may be kept open (window by window) for up to the maximum run from now."""
    account = state.address(patient, "PATIENT")
    clinician_address = state.address(clinician, "--clinician")
    client = state.client()
    changed = consent.confirm_emergency(client, state.identity(), account, clinician_address)
    access = consent.emergency_access(client, account, clinician_address)
    emit(
        {
            "patient": account,
            "clinician": clinician_address,
            "changed": changed,
            "open": access.open,
            "expires_at": access.expires_at,
            "run_start": access.run_start,
        },
        f"Confirmed the emergency access of {clinician_address} to {account} (open until {when(access.expires_at)})."
        if changed
        else f"{clinician_address} has no emergency access run to {account} to confirm (or it was just confirmed).",
    )


@emergency.command("close")
@click.argument("patient")
@click.option("--clinician", default=None, metavar="ADDRESS", help="Whose access to close (default: --as).")
@click.option("--no-rotate", is_flag=True, help="Do not rotate the category keys released to the clinician.")
@common_options()
@with_state
def emergency_close(state: State, patient: str, clinician: str | None, no_rotate: bool) -> None:
    """Close an emergency access to PATIENT (as the clinician, the patient or a delegate). Closed by
    the patient or a delegate, the keys released to the clinician are rotated."""
    account = state.address(patient, "PATIENT")
    client = state.client()
    me = state.identity()
    clinician_address = state.address_or_self(clinician, "--clinician")
    before = keysync.key_epochs(client, account)
    changed = consent.close_emergency(client, me, account, clinician_address, rotate=not no_rotate)
    rotated = keysync.rotated_since(client, account, before)
    emit(
        {"patient": account, "clinician": clinician_address, "changed": changed, "rotated": rotated},
        (f"Closed the emergency access of {clinician_address} to {account}" if changed
         else f"{clinician_address} had no open emergency access to {account}") + keysync.rotation_note(rotated) + ".",
    )  # fmt: skip


@emergency.command("release")
@click.argument("patient")
@click.option("--clinician", required=True, metavar="ADDRESS", help="The clinician with an open emergency window.")
@click.option("--categories", type=CATEGORIES, required=True, help="Categories whose keys to release.")
@common_options()
@with_state
def emergency_release(state: State, patient: str, clinician: str, categories: frozenset[codes.Category]) -> None:
    """Release the keys of CATEGORIES of PATIENT to a clinician with an open emergency window (as the
    patient, or a delegate covering them), so it can decrypt what the window lets it read.

    The chain limits those keys to the window's end; after it (or a close, or an opt-out) they are
    stale and the next key sync rotates them away from the clinician."""
    account = state.address(patient, "PATIENT")
    clinician_address = state.address(clinician, "--clinician")
    client = state.client()
    until = consent.release_emergency_keys(client, state.identity(), clinician_address, categories, patient=account)
    emit(
        {
            "patient": account,
            "clinician": clinician_address,
            "categories": sorted(codes.slug(c) for c in categories),
            "valid_until": until,
            "valid_until_utc": when(until),
        },
        f"Released the keys of {code_labels(categories)} of {account} to {clinician_address}; the chain limits them "
        f"to {when(until)}, and the next key sync after that rotates them.",
    )


COMMANDS = [delegate, emergency]
