"""``medledger consent``: grant, revoke, inspect and check consents; repair key rotations.
(Signed requests: :mod:`.signed`; delegates and emergency access: :mod:`.delegates`.)"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import click

from medledger import codes
from medledger.errors import AccessDenied, InvalidRequest, MedledgerError

from ..context import State, with_state
from ..errors import MedledgerGroup, exit_code
from ..lazy import lazy
from ..options import access_option, common_options, format_option
from ..output import dumps, emit, listing, note, output_format, short
from ..params import CATEGORY, DATE, PURPOSE, accesses, expiry_from, to_timestamp
from ..sources import history_client, source_option
from . import keysync, signed
from .consent_terms import grant_columns, grant_json, grant_row, term_changes, terms_options

if TYPE_CHECKING:
    from medledger import consent, keyring, workflows
    from medledger.chain import ConsentTerms
    from medledger.client import Client
    from medledger.consent import history
    from medledger.keystore import Identity
else:
    consent = lazy("medledger.consent")
    history = lazy("medledger.consent.history")
    keyring = lazy("medledger.keyring")
    workflows = lazy("medledger.workflows")


# --- consent -----------------------------------------------------------------------------------------
@click.group("consent", cls=MedledgerGroup)
def consent_group() -> None:
    """Grant, revoke, sign, submit and inspect consents."""


@consent_group.command("grant")
@click.argument("grantee")
@access_option
@terms_options
@click.option("--starts", type=DATE, default=None, help="Valid only from this date/time (UTC).")
@click.option("--patient", default=None, metavar="ADDRESS", help="Whose consent (for delegates; default: --as).")
@click.option(
    "--no-rotate",
    is_flag=True,
    help="When narrowing a read consent, do not rotate the keys of the categories it drops.",
)
@click.option("--yes", "-y", is_flag=True, help="Replace existing terms without asking.")
@common_options()
@with_state
def grant(
    state: State,
    grantee: str,
    read: bool,
    write: bool,
    categories: frozenset[codes.Category],
    purposes: frozenset[codes.Purpose],
    expires: _dt.datetime | None,
    days: float | None,
    starts: _dt.datetime | None,
    patient: str | None,
    no_rotate: bool,
    yes: bool,
) -> None:
    """Let GRANTEE (an address or local keystore name) read and/or write CATEGORIES for PURPOSES.

    As the patient, or as one of its delegates with --patient. A read grant also delivers the
    category keys to the grantee. New terms replace the ones GRANTEE holds: what changes is shown
    and confirmed first (--yes: without asking)."""
    wanted = accesses(read, write, allow_both=True)
    grantee_address = state.address(grantee, "GRANTEE")
    patient_address = state.address(patient, "--patient") if patient else None
    client = state.client()
    me = state.identity()
    expiry = expiry_from(client, expires, days, default=consent.FOREVER)
    start = to_timestamp(starts) if starts else 0
    whose = patient_address or me.address
    previous = {access: consent.consent_of(client, whose, grantee_address, access) for access in wanted}
    if not yes:
        from medledger.chain import ConsentTerms  # (the chain layer loads only when a command runs)

        wanted_terms = ConsentTerms(categories, purposes, start, expiry)
        _confirm_replacing(state, previous, grantee_address, wanted_terms, rotate=not no_rotate)
    before = keysync.key_epochs(client, whose)
    results = []
    for access in wanted:
        changed = consent.grant(
            client, me, grantee_address, access, categories, purposes,
            patient=patient_address, start=start, expiry=expiry, rotate=not no_rotate,
        )  # fmt: skip
        current, earlier = consent.consent_of(client, whose, grantee_address, access), previous[access]
        results.append(
            {**grant_json(current), "changed": changed, "previous": grant_json(earlier) if earlier.exists else None}
        )
    rotated = keysync.rotated_since(client, whose, before)
    for r in results:
        r["rotated"] = rotated
    emit(results if len(results) > 1 else results[0], lambda: _say_granted(results, rotated))


def _say_granted(results: list[dict[str, Any]], rotated: Any) -> None:
    for r in results:
        verb = "Granted" if r["changed"] else "Unchanged:"
        click.echo(
            f"{verb} {r['grantee']} {r['access']} access to {', '.join(r['categories'])} for "
            f"{', '.join(r['purposes'])} {'until ' + r['expiry'] if r['expiry'] else 'with no expiry'} "
            f"(patient {r['patient']}){keysync.rotation_note(rotated)}"
        )


def _confirm_replacing(
    state: State, previous: dict[codes.Access, consent.Grant], grantee: str, wanted: ConsentTerms, *, rotate: bool
) -> None:
    """New terms over a consent GRANTEE holds: the chain's refusal first, then what changes, asked
    (nothing is sent before)."""
    changes = {
        access: term_changes(old, wanted.categories, wanted.purposes, wanted.start, wanted.expiry)
        for access, old in previous.items()
        if old.exists
    }
    changes = {access: lines for access, lines in changes.items() if lines}
    if not changes:
        return
    client, me = state.client(), state.identity()
    for access in changes:  # the chain's refusal is said before anything is asked
        client.contract.grant(previous[access].patient, grantee, access, wanted, sender=me, simulate=True)
    who = short(grantee, state.names())
    for access, lines in changes.items():
        old = previous[access]
        note(f"{who} already holds {codes.slug(access)} consent from {old.patient}; these terms replace it:")
        for line in lines:
            note(line)
        if access == codes.Access.READ and old.categories - wanted.categories and rotate:
            note("  Dropping read categories rotates their keys: records written from now on are closed to it there.")
    question = f"Replace the {' and '.join(codes.slug(a) for a in changes)} consent?"
    try:
        confirmed = click.confirm(question, default=False, err=True)
    except click.Abort:
        raise click.UsageError(
            "These terms replace a consent already given (see above): confirm on a terminal, or pass --yes."
        ) from None
    if not confirmed:
        note("Nothing changed.")
        raise click.exceptions.Exit(1)


@consent_group.command("revoke")
@click.argument("grantee")
@access_option
@click.option("--patient", default=None, metavar="ADDRESS", help="Whose consent (for delegates; default: --as).")
@click.option(
    "--no-rotate",
    is_flag=True,
    help="Do not rotate the category keys after revoking a read consent (if the grantee held them, the chain "
    "then refuses new records of those categories until they are rotated).",
)
@click.option(
    "--reencrypt",
    is_flag=True,
    help="Also re-encrypt your existing records of those categories under the new keys (patient only).",
)
@common_options()
@with_state
def revoke(
    state: State, grantee: str, read: bool, write: bool, patient: str | None, no_rotate: bool, reencrypt: bool
) -> None:
    """Revoke GRANTEE's consent now. Revoking read access rotates the category keys it covered, so
    records written afterwards stay closed to it; --reencrypt also closes the existing ones (it
    writes them again as new versions)."""
    wanted = accesses(read, write, allow_both=True)
    if reencrypt and no_rotate:
        raise click.UsageError("--reencrypt needs the new keys: it cannot be combined with --no-rotate.")
    grantee_address = state.address(grantee, "GRANTEE")
    client = state.client()
    me = state.identity()
    whose = state.address_or_self(patient)
    results = [
        _revoke_one(client, me, whose, grantee_address, access, rotate=not no_rotate, reencrypt=reencrypt)
        for access in wanted
    ]
    emit(results if len(results) > 1 else results[0], lambda: _say_revoked(results))


def _revoke_one(
    client: Client, me: Identity, whose: str, grantee: str, access: codes.Access, *, rotate: bool, reencrypt: bool
) -> dict[str, Any]:
    """Revoke one access (then rotate, re-encrypt) and say what was done, as the JSON result."""
    before = keysync.key_epochs(client, whose)
    try:
        changed, done = workflows.revoke(
            client,
            me,
            grantee,
            access,
            patient=whose,
            rotate=rotate,
            reencrypt=reencrypt and access == codes.Access.READ,
        )
    except (AccessDenied, InvalidRequest):
        raise  # refused before anything was sent
    except MedledgerError:
        if not consent.consent_of(client, whose, grantee, access).exists:
            note(
                f"The {codes.slug(access)} consent of {grantee} is revoked on chain, but what follows it "
                "(rotating the keys it held, re-encrypting) did not finish: run the same command again once the "
                "node answers, and it finishes it. Until then no record can be written to those categories."
            )
        raise
    rotated = keysync.rotated_since(client, whose, before)
    return {
        "patient": whose,
        "grantee": grantee,
        "access": codes.slug(access),
        "revoked": True,
        "changed": changed,
        "keys_rotated": bool(rotated),
        "rotated": rotated,
        "reencrypted": bool(done),
        "reencrypted_records": len(done),
    }


def _say_revoked(results: list[dict[str, Any]]) -> None:
    for r in results:
        rotation = keysync.rotation_note(r["rotated"])
        extra = "; existing records re-encrypted" if r["reencrypted"] else ""
        if r["changed"]:
            click.echo(f"Revoked the {r['access']} consent of {r['grantee']}{rotation}{extra}.")
        elif rotation or extra:
            click.echo(
                f"{r['grantee']} held no {r['access']} consent any more; finished what followed{rotation}{extra}."
            )
        else:
            click.echo(f"{r['grantee']} held no {r['access']} consent; nothing changed.")


@consent_group.command("reissue-keys")
@click.option("--patient", default=None, metavar="ADDRESS", help="Whose keys (for delegates; default: --as).")
@common_options()
@with_state
def reissue_keys(state: State, patient: str | None) -> None:
    """Send every current reader fresh key envelopes for the categories it may read.

    The repair for a key rotation (after a revoke) that stopped before every remaining reader got its
    new keys, e.g. because a node went down. Safe to repeat."""
    client = state.client()
    me = state.identity()
    patient_address = state.address_or_self(patient)
    published = keyring.Keyring(client).reissue(me, patient_address)
    emit(
        {"patient": patient_address, "envelopes_published": published},
        lambda: click.echo(f"Published {published} key envelope(s) to the current readers of {patient_address}."),
    )


@consent_group.command("invalidate-requests")
@click.option("--patient", default=None, metavar="ADDRESS", help="Whose requests (for delegates; default: --as).")
@common_options()
@with_state
def invalidate_requests(state: State, patient: str | None) -> None:
    """Void every signed request of the patient not yet submitted.

    Use it when a relayer (or anyone given a signed request) holds one back instead of submitting it,
    when a request was signed by mistake or a wallet was tricked into signing, or before its deadline
    when it is no longer wanted: the patient's nonce moves on, so every request signed before now is
    refused on chain. A held-back request never undoes a newer decision anyway (it is refused as
    superseded); this also stops one that would still be newer. Requests signed afterwards carry the
    new nonce and are valid again. The patient or a delegate pays the gas."""
    client = state.client()
    me = state.identity()
    patient_address = state.address_or_self(patient)
    nonce = consent.invalidate_signed_requests(client, me, patient=patient_address)
    emit(
        {"patient": patient_address, "nonce": nonce, "invalidated": True},
        f"Every outstanding signed request of {patient_address} is void (the nonce is now {nonce}).",
    )


def _show_grants(state: State, grants: Sequence[history.GrantRecord], counterpart: str, empty: str) -> None:
    """Grants as a listing whose first table column is the other party (``patient`` or ``grantee``)."""
    now = state.client().now()
    names = state.names() if output_format() == "table" else {}
    listing([grant_row(g, now) for g in grants], grant_columns(counterpart, names), empty=empty)


_all_option = click.option(
    "--all", "include_ended", is_flag=True, help="Also the consents that expired or were revoked."
)


@consent_group.command("list")
@click.option("--patient", default=None, metavar="ADDRESS", help="Whose consents (default: --as).")
@_all_option
@format_option
@source_option
@common_options()
@with_state
def list_(state: State, patient: str | None, include_ended: bool, source: str) -> None:
    """The consents a patient has given that still stand (--all: every one, with when it ended)."""
    output_format()
    address = state.address_or_self(patient)
    grants = history.grant_history(history_client(state, source), patient=address, include_ended=include_ended)
    _show_grants(state, grants, "grantee", f"Patient {address} has given no consent that still stands.")


@consent_group.command("held")
@click.option("--grantee", default=None, metavar="ADDRESS", help="Whose grants (default: --as).")
@_all_option
@format_option
@source_option
@common_options()
@with_state
def held(state: State, grantee: str | None, include_ended: bool, source: str) -> None:
    """The consents made to you (or --grantee): patients, categories, purposes, from when until when,
    granted when and in which transaction (--all: also the expired and revoked ones)."""
    output_format()
    address = state.address(grantee, "--grantee") if grantee else state.own_address()
    grants = history.grant_history(history_client(state, source), grantee=address, include_ended=include_ended)
    _show_grants(state, grants, "patient", f"{address} holds no consent.")


@consent_group.command("check")
@click.argument("patient")
@click.argument("grantee")
@click.option("--category", type=CATEGORY, required=True)
@click.option("--purpose", type=PURPOSE, required=True)
@access_option
@common_options(identity=False)
@with_state
def check(
    state: State, patient: str, grantee: str, category: codes.Category, purpose: codes.Purpose, read: bool, write: bool
) -> None:
    """Would the chain let GRANTEE read/write PATIENT's CATEGORY for PURPOSE now?

    Exit 0 if permitted; exit 10 with the reason if not."""
    (access,) = accesses(read, write, allow_both=False)
    patient_address = state.address(patient, "PATIENT")
    grantee_address = state.address(grantee, "GRANTEE")
    client = state.client()
    base = {
        "patient": patient_address,
        "grantee": grantee_address,
        "access": codes.slug(access),
        "category": codes.slug(category),
        "purpose": codes.slug(purpose),
    }
    try:
        emergency = consent.check_access(client, patient_address, grantee_address, access, category, purpose)
    except AccessDenied as exc:
        note(f"Not permitted: {exc}")
        if state.json:
            click.echo(dumps({**base, "permitted": False, "reason": str(exc), "error_name": exc.error_name}))
        raise click.exceptions.Exit(exit_code(exc)) from None
    emit(
        {**base, "permitted": True, "emergency": emergency},
        f"Permitted: {grantee_address} may {codes.label(access)} {codes.label(category)} of {patient_address} "
        f"for {codes.label(purpose)}" + (" (under emergency access)" if emergency else "") + ".",
    )


for _command in signed.SUBCOMMANDS:
    consent_group.add_command(_command)

COMMANDS = [consent_group]
