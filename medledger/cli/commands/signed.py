"""``medledger consent sign | sign-revoke | submit``: consent signed off chain (EIP-712) by the
patient, submitted by anyone who pays the gas."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from medledger import codes
from medledger.errors import AccessDenied

from ..context import State, with_state
from ..lazy import lazy
from ..options import access_option, common_options
from ..output import code_list, emit, note, short, when
from ..params import accesses, check_out_path, expiry_from
from . import keysync
from .consent_terms import terms_options, until

if TYPE_CHECKING:
    import datetime as _dt

    from medledger import consent
    from medledger.client import Client
else:
    consent = lazy("medledger.consent")

DAY = 86400


def _deadline(client: Client, deadline_days: float) -> int:
    return client.now() + int(deadline_days * DAY)


_deadline_option = click.option(
    "--deadline-days",
    type=click.FloatRange(min=0, min_open=True),
    default=1.0,
    show_default=True,
    help="The signed request can be submitted for this many days (keep it short: until then a relayer may "
    "hold it back; `consent invalidate-requests` voids it earlier).",
)
_out_option = click.option(
    "--out",
    "out",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    required=True,
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
            f"until       {until(int(m['expiry']))}",
        ]
    lines += [
        f"chain       {request['domain']['chainId']}  contract {request['domain']['verifyingContract']}",
        f"issued      {when(int(m['issuedAt']))}  nonce {m['nonce']}  submit before {when(int(m['deadline']))}",
    ]
    return lines


@click.command("sign")
@click.argument("grantee")
@access_option
@terms_options
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
    expiry = expiry_from(client, expires, days, default=consent.FOREVER)
    request = consent.sign_grant(
        client,
        me,
        grantee_address,
        access,
        categories,
        purposes,
        expiry=expiry,
        deadline=_deadline(client, deadline_days),
    )
    consent.write_request(request, out)
    _signed_output(state, request, out)


@click.command("sign-revoke")
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


@click.command("submit")
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
    if request["kind"] == "Revoke" and (stale := keysync.stale_note(client, str(patient))):
        note(stale)
    emit(
        {"file": str(file), "kind": request["kind"], "signer": signer, "relayer": relayer.address, "changed": changed},
        f"Submitted the signed {request['kind'].lower()} of {signer} as {relayer.address}"
        + ("" if changed else " (it changed nothing)")
        + ".",
    )
