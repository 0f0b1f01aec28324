"""``medledger consent sign | sign-revoke | prepare | prepare-revoke | submit | send-keys``: consent
signed off chain (EIP-712) by the patient's keystore or any wallet, submitted by anyone who pays the
gas; the keys of a grant signed without them follow with ``send-keys``."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from medledger import codes
from medledger.errors import AccessDenied

from ..context import State, with_state
from ..lazy import lazy
from ..options import access_option, common_options
from ..output import code_list, emit, note, short, when
from ..params import CATEGORIES, VALID_HOURS, accesses, check_out_path, expiry_from
from . import keysync
from .consent_terms import terms_options, until

if TYPE_CHECKING:
    import datetime as _dt

    from medledger import consent
    from medledger.chain.eip712 import ParsedRequest
    from medledger.client import Client
else:
    consent = lazy("medledger.consent")

HOUR = 3600
_valid_option = click.option(
    "--valid-hours",
    "valid_for",
    type=VALID_HOURS,
    callback=lambda _ctx, _param, hours: int(hours * HOUR),  # the library takes seconds
    default=24.0,
    show_default=True,
    help="The request can be submitted for this many hours (at most 30 days; keep it short: until then a relayer "
    "may hold it back, and `consent invalidate-requests` is the way to void it earlier).",
)


_signed_out = click.option(
    "--out",
    "out",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    required=True,
    help="Where to write the signed request (JSON).",
)
_unsigned_out = click.option(
    "--out",
    "out",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    required=True,
    help="Where to write the request for the wallet to sign (JSON: an eth_signTypedData_v4 payload).",
)


def _describe(parsed: ParsedRequest, names: dict[str, str]) -> list[str]:
    from medledger.chain.eip712 import GrantRequest  # the library loads on use, not with the help

    m = parsed.request
    lines = [
        f"kind        {parsed.kind}",
        f"patient     {short(m.patient, names)}",
        f"grantee     {short(m.grantee, names)}",
        f"access      {codes.slug(codes.Access(m.access))}",
    ]
    if isinstance(m, GrantRequest):
        keys = "none: they follow with `consent send-keys`" if parsed.keys_follow else "in the request"
        lines += [
            f"categories  {code_list(codes.mask_to_categories(m.categories))}",
            f"purposes    {code_list(codes.mask_to_purposes(m.purposes))}",
            f"until       {until(m.expiry)}",
        ]
        if m.access == codes.Access.READ:
            lines.append(f"keys        {keys}")
    lines += [
        f"chain       {parsed.domain['chainId']}  contract {parsed.domain['verifyingContract']}",
        f"issued      {when(m.issuedAt)}  nonce {m.nonce}  submit before {when(m.deadline)}",
    ]
    return lines


def _write(state: State, request: dict[str, Any], out: Path, what: str) -> None:
    consent.write_request(request, out)
    names = state.names()
    lines = _describe(consent.parse_request(request), names)
    emit({"file": str(out), "request": request}, lambda: click.echo("\n".join([f"Wrote {what} to {out}", *lines])))


def _grant_setup(
    state: State, grantee: str, read: bool, write: bool, expires: _dt.datetime | None, days: float | None, out: Path
) -> tuple[codes.Access, str, Client, int]:
    """What `sign` and `prepare` read alike: the access, the grantee's address, the client, the expiry."""
    (access,) = accesses(read, write, allow_both=False)
    check_out_path(out)
    grantee_address = state.address(grantee, "GRANTEE")
    client = state.client()
    return access, grantee_address, client, expiry_from(client, expires, days, default=consent.FOREVER)


@click.command("sign")
@click.argument("grantee")
@access_option
@terms_options
@_valid_option
@_signed_out
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
    valid_for: int,
    out: Path,
) -> None:
    """Sign a grant off chain (EIP-712) with the --as keystore and write it to --out; anyone can
    submit it with `medledger consent submit`, paying the gas instead of the patient. A read grant
    carries the keys (an envelope sealed now)."""
    access, grantee_address, client, expiry = _grant_setup(state, grantee, read, write, expires, days, out)
    request = consent.sign_grant(
        client, state.identity(), grantee_address, access, categories, purposes, expiry=expiry,
        valid_for=valid_for,
    )  # fmt: skip
    _write(state, request, out, "the signed request")


@click.command("sign-revoke")
@click.argument("grantee")
@access_option
@_valid_option
@_signed_out
@common_options()
@with_state
def sign_revoke(state: State, grantee: str, read: bool, write: bool, valid_for: int, out: Path) -> None:
    """Sign a revocation off chain and write it to --out (submit with `medledger consent submit`).

    Once it is submitted, the keys the grantee held are stale (writers of those categories are
    refused) until the patient or a delegate runs `medledger keys sync`, which rotates them."""
    (access,) = accesses(read, write, allow_both=False)
    check_out_path(out)
    grantee_address = state.address(grantee, "GRANTEE")
    client = state.client()
    request = consent.sign_revoke(client, state.identity(), grantee_address, access, valid_for=valid_for)
    _write(state, request, out, "the signed request")


_patient_option = click.option(
    "--patient", required=True, metavar="ADDRESS", help="The patient whose wallet signs (an address or a local name)."
)


@click.command("prepare")
@click.argument("grantee")
@_patient_option
@access_option
@terms_options
@_valid_option
@_unsigned_out
@common_options(identity=False)
@with_state
def prepare(
    state: State,
    grantee: str,
    patient: str,
    read: bool,
    write: bool,
    categories: frozenset[codes.Category],
    purposes: frozenset[codes.Purpose],
    expires: _dt.datetime | None,
    days: float | None,
    valid_for: int,
    out: Path,
) -> None:
    """Write an unsigned grant to --out for the patient's wallet to sign (MetaMask, ethers, a hardware
    wallet: `eth_signTypedData_v4` of the file's content). It carries no keys, so the wallet needs
    none; submit it with `consent submit FILE --signature SIG`, then the patient (or a delegate) sends
    the grantee the keys with `consent send-keys`."""
    access, grantee_address, client, expiry = _grant_setup(state, grantee, read, write, expires, days, out)
    request = consent.prepare_grant(
        client, state.address(patient, "--patient"), grantee_address, access, categories, purposes, expiry=expiry,
        valid_for=valid_for,
    )  # fmt: skip
    _write(state, request, out, "the request for the wallet to sign")


@click.command("prepare-revoke")
@click.argument("grantee")
@_patient_option
@access_option
@_valid_option
@_unsigned_out
@common_options(identity=False)
@with_state
def prepare_revoke(
    state: State, grantee: str, patient: str, read: bool, write: bool, valid_for: int, out: Path
) -> None:
    """Write an unsigned revocation to --out for the patient's wallet to sign."""
    (access,) = accesses(read, write, allow_both=False)
    check_out_path(out)
    patient_address = state.address(patient, "--patient")
    grantee_address = state.address(grantee, "GRANTEE")
    client = state.client()
    request = consent.prepare_revoke(client, patient_address, grantee_address, access, valid_for=valid_for)
    _write(state, request, out, "the request for the wallet to sign")


def _signature_value(text: str | None) -> Any:
    """``--signature``: hex, or an object with r, s and v (as ethers serialises a Signature)."""
    if text is None or not text.lstrip().startswith("{"):
        return text
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise click.BadParameter(f"not JSON: {exc.msg}", param_hint="--signature") from None


def _read(file: Path, signature: str | None) -> ParsedRequest:
    if str(file) == "-":
        return consent.load_request(sys.stdin.read(), "the standard input", _signature_value(signature))
    return consent.read_request(file, _signature_value(signature))


@click.command("submit")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, allow_dash=True, path_type=Path))
@click.option(
    "--signature",
    metavar="SIG",
    default=None,
    help="The wallet's signature, if FILE is a bare eth_signTypedData_v4 payload or a prepared request: hex "
    '(65 bytes with v 27/28 or 0/1, or 64-byte EIP-2098) or {"r","s","v"} JSON.',
)
@click.option("--expect-signer", metavar="ADDRESS", default=None, help="Refuse unless this address signed it.")
@click.option("--check-only", is_flag=True, help="Run every check, send nothing (no identity needed).")
@common_options()
@with_state
def submit(state: State, file: Path, signature: str | None, expect_signer: str | None, check_only: bool) -> None:
    """Submit a signed consent request from FILE ('-': standard input) as the --as identity, which
    pays the gas.

    FILE is a request written by `consent sign` or `consent prepare`, or what a wallet or dapp made: an
    eth_signTypedData_v4 payload whose numbers are JSON numbers, decimal or hex strings, with the
    signature inside ("signature") or in --signature. Before anything is sent it shows who signed,
    and refuses, with the reason, a request signed for another chain or contract, not signed by its
    patient (or changed since), past its deadline, invalidated, or superseded by a newer decision."""
    parsed = _read(file, signature)
    names = state.names()
    for line in _describe(parsed, names):
        note("  " + line)
    client = state.client()
    try:
        verified = consent.verify_signature(client, parsed)
    except AccessDenied as exc:
        recovered = exc.error_args.get("recovered")
        if recovered in names:
            note(f"The signature was made by {short(recovered, names)}.")
        raise
    signer = verified.patient
    how = " (a contract wallet, ERC-1271)" if verified.wallet else ""
    note(
        f"Signed by {short(signer, names)}{how}"
        + ("; signature normalised for the contract" if verified.normalised else "")
    )
    if expect_signer is not None and state.address(expect_signer, "--expect-signer") != signer:
        raise AccessDenied(f"{file} was signed by {signer}, not by {expect_signer}; not submitting it.")
    consent.check_request(client, verified)
    facts = {"file": str(file), "kind": parsed.kind, "signer": signer, "contract_wallet": verified.wallet}
    keys_follow = parsed.keys_follow
    if check_only:
        emit({**facts, "valid": True}, f"{file} is valid: it can be submitted now.")
        return
    relayer = state.identity()
    changed = consent.submit(client, relayer, verified)
    if parsed.kind == "Revoke" and (stale := keysync.stale_note(client, str(signer))):
        note(stale)
    emit(
        {**facts, "relayer": relayer.address, "changed": changed, "keys_follow": keys_follow},
        f"Submitted the signed {parsed.kind.lower()} of {signer} as {relayer.address}"
        + ("" if changed else " (it changed nothing)")
        + ".",
    )
    if changed and keys_follow:
        grantee = short(verified.request.grantee, names)
        note(
            f"The grant carries no keys: the patient (or a delegate) sends them with "
            f"`medledger consent send-keys {verified.request.grantee}` ({grantee})."
        )


@click.command("send-keys")
@click.argument("grantee")
@click.option("--patient", default=None, metavar="ADDRESS", help="Whose keys (for delegates; default: --as).")
@click.option("--categories", type=CATEGORIES, default=None, help="Only these (default: all its read consent covers).")
@common_options()
@with_state
def send_keys(state: State, grantee: str, patient: str | None, categories: frozenset[codes.Category] | None) -> None:
    """Send GRANTEE the keys of the categories its read consent covers, in one key envelope.

    The step after a read grant that carried no keys: one signed by a wallet that holds no medledger
    keys (`consent prepare`). Run by the patient (her keystore holds the keys) or a delegate."""
    client = state.client()
    me = state.identity()
    patient_address = state.address_or_self(patient)
    grantee_address = state.address(grantee, "GRANTEE")
    sent = consent.send_keys(client, me, grantee_address, patient=patient_address, categories=categories)
    emit(
        {"patient": patient_address, "grantee": grantee_address, "categories": [codes.slug(c) for c in sorted(sent)]},
        f"Sent {grantee_address} the keys of {code_list(sent)} of patient {patient_address}.",
    )


#: Subcommands of `consent` (added by .consent).
SUBCOMMANDS = [sign, sign_revoke, prepare, prepare_revoke, submit, send_keys]
