"""``medledger consent``, ``delegate`` and ``emergency``: who may read or write which records, for
which purposes, until when."""

from __future__ import annotations

import datetime as _dt
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from medledger import codes, consent
from medledger.errors import AccessDenied
from medledger.consent import FOREVER

from .common import (
    CATEGORIES,
    CATEGORY,
    DATE,
    PURPOSE,
    PURPOSES,
    HexType,
    MedledgerGroup,
    State,
    access_option,
    accesses,
    check_out_path,
    code_labels,
    code_list,
    common_options,
    dumps,
    emit,
    expiry_from,
    note,
    short,
    table,
    to_timestamp,
    when,
    with_state,
)

DAY = 86400


def _window_options(f: Any) -> Any:
    f = click.option("--days", type=click.FloatRange(min=0, min_open=True), default=None,
                     help="Valid for this many days from now (chain time).")(f)
    f = click.option("--expires", type=DATE, default=None, help="Valid until this date/time (UTC), e.g. 2027-01-01.")(f)
    return f


def _terms_options(f: Any) -> Any:
    f = _window_options(f)
    f = click.option("--purposes", type=PURPOSES, required=True,
                     help="Comma-separated purposes, e.g. research or direct-care,family-care.")(f)
    f = click.option("--categories", type=CATEGORIES, required=True,
                     help="Comma-separated categories, e.g. obs,device (or all).")(f)
    return f


def _until(expiry: int) -> str:
    return "no expiry" if expiry >= FOREVER else when(expiry)


def grant_json(g: consent.Grant) -> dict[str, Any]:
    data = g.to_json()
    data["start_utc"] = when(g.start) if g.start else None
    data["expiry_utc"] = None if g.expiry >= FOREVER else when(g.expiry)
    return data


# --- consent -----------------------------------------------------------------------------------------
@click.group("consent", cls=MedledgerGroup)
def consent_group() -> None:
    """Grant, revoke, sign, submit and inspect consents."""


@consent_group.command("grant")
@click.argument("grantee")
@access_option
@_terms_options
@click.option("--starts", type=DATE, default=None, help="Valid only from this date/time (UTC).")
@click.option("--patient", default=None, metavar="ADDRESS", help="Whose consent (for delegates; default: --as).")
@click.option("--no-rotate", is_flag=True,
              help="When narrowing a read consent, do not rotate the keys of the categories it drops.")
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
) -> None:
    """Let GRANTEE (an address or local keystore name) read and/or write CATEGORIES for PURPOSES.

    As the patient, or as one of its delegates with --patient. A read grant also delivers the
    category keys to the grantee. Granting again replaces the earlier terms."""
    wanted = accesses(read, write, allow_both=True)
    grantee_address = state.address(grantee, "GRANTEE")
    patient_address = state.address(patient, "--patient") if patient else None
    client = state.client()
    me = state.identity()
    expiry = expiry_from(client, expires, days, default=FOREVER)
    start = to_timestamp(starts) if starts else 0
    results = []
    for access in wanted:
        changed = consent.grant(
            client, me, grantee_address, access, categories, purposes,
            patient=patient_address, start=start, expiry=expiry, rotate=not no_rotate,
        )
        current = consent.consent_of(client, patient_address or me.address, grantee_address, access)
        results.append({**grant_json(current), "changed": changed})

    def human() -> None:
        for r in results:
            verb = "Granted" if r["changed"] else "Unchanged:"
            click.echo(
                f"{verb} {r['grantee']} {r['access']} access to {', '.join(r['categories'])} for "
                f"{', '.join(r['purposes'])} until {r['expiry_utc'] or 'no expiry'} (patient {r['patient']})"
            )

    emit(results if len(results) > 1 else results[0], human)


@consent_group.command("revoke")
@click.argument("grantee")
@access_option
@click.option("--patient", default=None, metavar="ADDRESS", help="Whose consent (for delegates; default: --as).")
@click.option("--no-rotate", is_flag=True, help="Do not rotate the category keys after revoking a read consent.")
@click.option("--reencrypt", is_flag=True,
              help="Also re-encrypt your existing records of those categories under the new keys (patient only).")
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
    patient_address = state.address(patient, "--patient") if patient else None
    client = state.client()
    me = state.identity()
    results = []
    for access in wanted:
        changed = consent.revoke(
            client, me, grantee_address, access, patient=patient_address, rotate=not no_rotate,
            **({"reencrypt": True} if reencrypt and access == codes.Access.READ else {}),
        )
        results.append({
            "patient": patient_address or me.address, "grantee": grantee_address,
            "access": codes.slug(access), "revoked": True, "changed": changed,
            "keys_rotated": changed and access == codes.Access.READ and not no_rotate,
            "reencrypted": changed and access == codes.Access.READ and reencrypt,
        })

    def human() -> None:
        for r in results:
            if r["changed"]:
                extra = "; category keys rotated" if r["keys_rotated"] else ""
                extra += "; existing records re-encrypted" if r["reencrypted"] else ""
                click.echo(f"Revoked the {r['access']} consent of {r['grantee']}{extra}.")
            else:
                click.echo(f"{r['grantee']} held no {r['access']} consent; nothing changed.")

    emit(results if len(results) > 1 else results[0], human)


@consent_group.command("reissue-keys")
@click.option("--patient", default=None, metavar="ADDRESS", help="Whose keys (for delegates; default: --as).")
@common_options()
@with_state
def reissue_keys(state: State, patient: str | None) -> None:
    """Send every current reader fresh key envelopes for the categories it may read.

    The repair for a key rotation (after a revoke) that stopped before every remaining reader got its
    new keys, e.g. because a node went down. Safe to repeat."""
    from medledger.keyring import Keyring

    client = state.client()
    me = state.identity()
    patient_address = state.address(patient, "--patient") if patient else me.address
    published = Keyring(client).reissue(me, patient_address)
    emit(
        {"patient": patient_address, "envelopes_published": published},
        lambda: click.echo(f"Published {published} key envelope(s) to the current readers of {patient_address}."),
    )


def _deadline(client: Any, deadline_days: float) -> int:
    return client.now() + int(deadline_days * DAY)


_deadline_option = click.option(
    "--deadline-days", type=click.FloatRange(min=0, min_open=True), default=7.0, show_default=True,
    help="The signed request can be submitted for this many days.",
)
_out_option = click.option(
    "--out", "out", type=click.Path(dir_okay=False, writable=True, path_type=Path), required=True,
    help="Where to write the signed request (JSON).",
)


def _describe_request(request: dict[str, Any], names: dict[str, str]) -> list[str]:
    m = request["message"]
    lines = [
        f"kind        {request['kind']}",
        f"patient     {short(m['patient'], names)}",
        f"grantee     {short(m['grantee'], names)}",
        f"access      {codes.slug(codes.Access(int(m['access'])))}",
    ]
    if request["kind"] == "Grant":
        lines += [
            f"categories  {code_list(codes.mask_to_categories(int(m['categories'])))}",
            f"purposes    {code_list(codes.mask_to_purposes(int(m['purposes'])))}",
            f"until       {_until(int(m['expiry']))}",
        ]
    lines += [
        f"chain       {request['domain']['chainId']}  contract {request['domain']['verifyingContract']}",
        f"nonce       {m['nonce']}  submit before {when(int(m['deadline']))}",
    ]
    return lines


@consent_group.command("sign")
@click.argument("grantee")
@access_option
@_terms_options
@_deadline_option
@_out_option
@common_options()
@with_state
def sign(
    state: State,
    grantee: str,
    read: bool,
    write: bool,
    categories: frozenset[codes.Category],
    purposes: frozenset[codes.Purpose],
    expires: _dt.datetime | None,
    days: float | None,
    deadline_days: float,
    out: Path,
) -> None:
    """Sign a grant off chain (EIP-712) and write it to --out; anyone can submit it with
    `medledger consent submit`, paying the gas instead of the patient."""
    (access,) = accesses(read, write, allow_both=False)
    check_out_path(out)
    grantee_address = state.address(grantee, "GRANTEE")
    client = state.client()
    me = state.identity()
    expiry = expiry_from(client, expires, days, default=FOREVER)
    request = consent.sign_grant(
        client, me, grantee_address, access, categories, purposes,
        expiry=expiry, deadline=_deadline(client, deadline_days),
    )
    consent.write_request(request, out)
    _signed_output(state, request, out)


@consent_group.command("sign-revoke")
@click.argument("grantee")
@access_option
@_deadline_option
@_out_option
@common_options()
@with_state
def sign_revoke(state: State, grantee: str, read: bool, write: bool, deadline_days: float, out: Path) -> None:
    """Sign a revocation off chain and write it to --out (submit with `medledger consent submit`).

    Keys are not rotated by a signed revocation; run `consent revoke` yourself to rotate them."""
    (access,) = accesses(read, write, allow_both=False)
    check_out_path(out)
    grantee_address = state.address(grantee, "GRANTEE")
    client = state.client()
    request = consent.sign_revoke(
        client, state.identity(), grantee_address, access, deadline=_deadline(client, deadline_days)
    )
    consent.write_request(request, out)
    _signed_output(state, request, out)


def _signed_output(state: State, request: dict[str, Any], out: Path) -> None:
    names = state.names()
    emit(
        {"file": str(out), "request": request},
        lambda: click.echo("\n".join([f"Wrote the signed request to {out}", *_describe_request(request, names)])),
    )


@consent_group.command("submit")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--expect-signer", metavar="ADDRESS", default=None, help="Refuse unless this address signed it.")
@common_options()
@with_state
def submit(state: State, file: Path, expect_signer: str | None) -> None:
    """Submit a signed consent request from FILE as the --as identity (which pays the gas).

    Shows who signed it before sending; a request not signed by its patient is refused here."""
    request = consent.read_request(file)
    try:
        signer = consent.recover_signer(request)
    except Exception as exc:  # noqa: BLE001 - malformed signature or fields
        raise AccessDenied(f"{file} carries no valid signature ({type(exc).__name__}: {exc})") from None
    names = state.names()
    patient = request["message"]["patient"]
    note(f"Signed by {short(signer, names)}")
    for line in _describe_request(request, names):
        note("  " + line)
    if signer.lower() != str(patient).lower():
        raise AccessDenied(f"{file} was signed by {signer}, not by the patient {patient}; not submitting it.")
    if expect_signer is not None and state.address(expect_signer, "--expect-signer") != signer:
        raise AccessDenied(f"{file} was signed by {signer}, not by {expect_signer}; not submitting it.")
    client = state.client()
    relayer = state.identity()
    changed = consent.submit(client, relayer, request)
    emit(
        {"file": str(file), "kind": request["kind"], "signer": signer, "relayer": relayer.address, "changed": changed},
        f"Submitted the signed {request['kind'].lower()} of {signer} as {relayer.address}"
        + ("" if changed else " (it changed nothing)") + ".",
    )


def _grant_rows(grants: Sequence[consent.Grant], who: str, names: dict[str, str]) -> Sequence[tuple[str, ...]]:
    rows = []
    for g in grants:
        party = g.grantee if who == "grantee" else g.patient
        rows.append((
            short(party, names), codes.slug(g.access), code_list(g.categories), code_list(g.purposes),
            when(g.start) if g.start else "-", _until(g.expiry),
        ))
    return rows


def _show_grants(state: State, grants: Sequence[consent.Grant], counterpart: str, empty: str) -> None:
    """Grants as JSON, or as a table whose first column is the other party (`patient` or `grantee`)."""
    names = state.names()
    emit(
        [grant_json(g) for g in grants],
        lambda: table(
            [counterpart.upper(), "ACCESS", "CATEGORIES", "PURPOSES", "FROM", "UNTIL"],
            _grant_rows(grants, counterpart, names),
            empty=empty,
        ),
    )


@consent_group.command("list")
@click.option("--patient", default=None, metavar="ADDRESS", help="Whose consents (default: --as).")
@click.option("--all", "include_expired", is_flag=True, help="Include expired consents.")
@common_options()
@with_state
def list_(state: State, patient: str | None, include_expired: bool) -> None:
    """The consents a patient has given that still stand."""
    address = state.address_or_self(patient)
    grants = consent.grants_given(state.client(), address, live_only=not include_expired)
    _show_grants(state, grants, "grantee", f"Patient {address} has given no consent that still stands.")


@consent_group.command("held")
@click.option("--grantee", default=None, metavar="ADDRESS", help="Whose grants (default: --as).")
@click.option("--all", "include_expired", is_flag=True, help="Include expired consents.")
@common_options()
@with_state
def held(state: State, grantee: str | None, include_expired: bool) -> None:
    """The consents made to you (or --grantee): patients, categories, purposes, until when."""
    address = state.address(grantee, "--grantee") if grantee else state.own_address()
    grants = consent.grants_held(state.client(), address, live_only=not include_expired)
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
        "patient": patient_address, "grantee": grantee_address, "access": codes.slug(access),
        "category": codes.slug(category), "purpose": codes.slug(purpose),
    }
    try:
        emergency = consent.check_access(client, patient_address, grantee_address, access, category, purpose)
    except AccessDenied as exc:
        note(f"Not permitted: {exc}")
        if state.json:
            click.echo(dumps({**base, "permitted": False, "reason": str(exc), "error_name": exc.error_name}))
        raise click.exceptions.Exit(AccessDenied.exit_code) from None
    emit(
        {**base, "permitted": True, "emergency": emergency},
        f"Permitted: {grantee_address} may {codes.label(access)} {codes.label(category)} of {patient_address} "
        f"for {codes.label(purpose)}" + (" (under emergency access)" if emergency else "") + ".",
    )


# --- delegates ----------------------------------------------------------------------------------------
@click.group(cls=MedledgerGroup)
def delegate() -> None:
    """Appoint or remove delegates (family, friends) who manage consents for you."""


@delegate.command("add")
@click.argument("address")
@click.option("--categories", type=CATEGORIES, required=True, help="Categories the delegate may manage (and read).")
@_window_options
@common_options()
@with_state
def delegate_add(
    state: State, address: str, categories: frozenset[codes.Category], expires: _dt.datetime | None, days: float | None
) -> None:
    """Appoint ADDRESS (another registered patient) as your delegate for CATEGORIES."""
    if expires is None and days is None:
        raise click.UsageError("Say how long the delegation lasts: --days N or --expires DATE.")
    account = state.address(address)
    client = state.client()
    me = state.identity()
    expiry = expiry_from(client, expires, days, default=FOREVER)
    changed = consent.appoint_delegate(client, me, account, categories, expiry)
    emit(
        {"patient": me.address, "delegate": account, "categories": sorted(codes.slug(c) for c in categories),
         "expiry": expiry, "expiry_utc": when(expiry), "changed": changed},
        f"{account} {'is now' if changed else 'already was'} your delegate for {code_labels(categories)} "
        f"until {when(expiry)}.",
    )


@delegate.command("remove")
@click.argument("address")
@click.option("--no-rotate", is_flag=True, help="Do not rotate the category keys the delegate held.")
@common_options()
@with_state
def delegate_remove(state: State, address: str, no_rotate: bool) -> None:
    """Remove delegate ADDRESS; the category keys it held are rotated."""
    account = state.address(address)
    client = state.client()
    me = state.identity()
    changed = consent.remove_delegate(client, me, account, rotate=not no_rotate)
    emit(
        {"patient": me.address, "delegate": account, "changed": changed},
        f"Removed delegate {account}." if changed else f"{account} was not your delegate; nothing changed.",
    )


# --- emergency ----------------------------------------------------------------------------------------
@click.group(cls=MedledgerGroup)
def emergency() -> None:
    """Break-glass access for clinicians (time-limited, always flagged in the audit trail)."""


@emergency.command("open")
@click.argument("patient")
@click.option("--hours", type=click.FloatRange(min=0, min_open=True), required=True, help="How long (hours).")
@click.option("--reason-code", type=HexType(32, pad=True), required=True,
              help="Up to 32 bytes of hex (a coded reason, padded with zeros); no free text on chain.")
@common_options()
@with_state
def emergency_open(state: State, patient: str, hours: float, reason_code: bytes) -> None:
    """Open emergency read access to PATIENT's records as the --as clinician."""
    account = state.address(patient, "PATIENT")
    client = state.client()
    me = state.identity()
    until = consent.open_emergency(client, me, account, int(hours * 3600), reason_code)
    emit(
        {"patient": account, "clinician": me.address, "expires_at": until, "expires_utc": when(until)},
        f"Emergency access to {account} is open for {me.address} until {when(until)}; it is flagged in the audit trail.",
    )


@emergency.command("close")
@click.argument("patient")
@click.option("--clinician", default=None, metavar="ADDRESS", help="Whose access to close (default: --as).")
@common_options()
@with_state
def emergency_close(state: State, patient: str, clinician: str | None) -> None:
    """Close an emergency access to PATIENT (as the clinician, the patient or a delegate)."""
    account = state.address(patient, "PATIENT")
    client = state.client()
    me = state.identity()
    clinician_address = state.address(clinician, "--clinician") if clinician else me.address
    changed = consent.close_emergency(client, me, account, clinician_address)
    emit(
        {"patient": account, "clinician": clinician_address, "changed": changed},
        f"Closed the emergency access of {clinician_address} to {account}."
        if changed else f"{clinician_address} had no open emergency access to {account}.",
    )


COMMANDS = [consent_group, delegate, emergency]
