"""``medledger patient`` and ``medledger registrar``: who takes part, and in which role."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import click

from medledger import codes

from ..context import State, with_state
from ..errors import MedledgerGroup
from ..lazy import lazy
from ..options import common_options
from ..output import emit, note, when
from ..params import HEX32, CodeType
from . import keysync

if TYPE_CHECKING:
    from medledger import consent, participants
    from medledger.client import Client
else:
    consent = lazy("medledger.consent")
    participants = lazy("medledger.participants")

ZERO32 = b"\0" * 32
KIND = CodeType(codes.ParticipantKind, exclude=[codes.ParticipantKind.NONE])


# --- patient ---------------------------------------------------------------------------------------
@click.group(cls=MedledgerGroup)
def patient() -> None:
    """Register as a patient, choose about emergency access, look a patient up."""


@patient.command("register")
@common_options()
@with_state
def register_patient(state: State) -> None:
    """Register the --as identity as a patient with 13 category keys (idempotent; also repairs a
    registration whose key envelope never landed)."""
    client = state.client()
    me = state.identity()
    if not participants.is_patient(client, me.address):
        note(f"Registering {me.address} and its 13 category keys…")
    changed = participants.register_patient(client, me)
    emit(
        {"patient": me.address, "registered": True, "changed": changed},
        f"{me.address} is {'now' if changed else 'already'} a registered patient holding its category keys.",
    )


@patient.command("rotate-key")
@common_options()
@with_state
def rotate_key(state: State) -> None:
    """Give the --as patient a new encryption key (in its keystore file) and new keys for all 13
    categories, and send every reader its new keys: whoever holds a copy of the old key (a lost
    laptop, an old backup) opens nothing written afterwards. Run it again if it stops halfway."""
    from medledger.keyring import Keyring, rotate_patient_key

    from ..context import unlock_with_passphrase

    name = state.require_name()
    me, passphrase = unlock_with_passphrase(state.keystore(), name)
    client = state.client()
    done = rotate_patient_key(
        Keyring(client), me, lambda keypair: state.keystore().replace_encryption_key(name, passphrase, keypair)
    )
    epoch = max(done.epochs.values())
    emit(
        {
            "patient": me.address,
            "encryption_key": done.identity.encryption.public,
            "epochs": {codes.slug(codes.Category(c)): e for c, e in sorted(done.epochs.items())},
            "readers": {r: sorted(codes.slug(codes.Category(c)) for c in cats) for r, cats in done.readers.items()},
            "participant_key_rotated": done.participant_key_rotated,
            "keystore": str(state.keystore().path_for(name)),
        },
        f"{me.address} has a new encryption key (in keystore '{name}') and new keys for all 13 categories "
        f"(epoch {epoch}); {len(done.readers)} reader(s) were sent their new keys.",
    )


def _opt(state: State, opted_out: bool) -> None:
    client = state.client()
    me = state.identity()
    before = keysync.key_epochs(client, me.address)
    changed = consent.set_emergency_opt_out(client, me, opted_out)
    rotated = keysync.rotated_since(client, me.address, before)
    now = "opted out of" if opted_out else "opted into"
    emit(
        {"patient": me.address, "emergency_opted_out": opted_out, "changed": changed, "rotated": rotated},
        f"{me.address} {'has' if changed else 'had already'} {now} emergency access{keysync.rotation_note(rotated)}.",
    )


@patient.command("emergency-opt-out")
@common_options()
@with_state
def opt_out(state: State) -> None:
    """Refuse emergency ("break-glass") access to your records: open windows close, and the keys
    released under emergency access are rotated."""
    _opt(state, True)


@patient.command("emergency-opt-in")
@common_options()
@with_state
def opt_in(state: State) -> None:
    """Allow emergency access again (the default)."""
    _opt(state, False)


def account_info(client: Client, address: str) -> dict[str, Any]:
    held = participants.patient_state(client, address)
    p = participants.participant(client, address)
    data: dict[str, Any] = {
        "address": address,
        "patient": held.registered,
        "patient_encryption_key": None,
        "category_keys_published": False,
        "emergency_opted_out": None,
        "participant": None,
    }
    if held.registered:
        data["patient_encryption_key"] = "0x" + held.encryption_key.hex()
        data["category_keys_published"] = True  # registered with them
        data["emergency_opted_out"] = held.emergency_opted_out
    if p.registered:
        data["participant"] = {
            "kind": codes.slug(p.kind),
            "suspended": p.suspended,
            "registered_at": p.registered_at,
            "credential_ref": "0x" + p.credential_ref.hex(),
            "encryption_key": "0x" + p.encryption_key.hex(),
        }
    return data


@patient.command("show")
@click.argument("address")
@common_options(identity=False)
@with_state
def show(state: State, address: str) -> None:
    """Show what the chain knows about ADDRESS (an address or a local keystore name)."""
    client = state.client()
    data = account_info(client, state.address(address))

    def human() -> None:
        click.echo(f"address            {data['address']}")
        if data["patient"]:
            click.echo("patient            yes")
            click.echo(f"encryption key     {data['patient_encryption_key']}")
            click.echo(f"category keys      {'published' if data['category_keys_published'] else 'not published'}")
            click.echo(f"emergency access   {'opted out' if data['emergency_opted_out'] else 'allowed'}")
        else:
            click.echo("patient            no")
        p = data["participant"]
        if p:
            state_ = "SUSPENDED" if p["suspended"] else "active"
            click.echo(f"participant        {p['kind'].replace('-', ' ')}, {state_}, since {when(p['registered_at'])}")
            click.echo(f"credential ref     {p['credential_ref']}")
            click.echo(f"encryption key     {p['encryption_key']}")
        elif not data["patient"]:
            click.echo("participant        no (not registered)")

    emit(data, human)


# --- registrar ---------------------------------------------------------------------------------------
@click.group(cls=MedledgerGroup)
def registrar() -> None:
    """Register, suspend and reinstate organisations and professionals (registrars only)."""


@registrar.command("register")
@click.argument("address")
@click.option(
    "--kind", type=KIND, required=True, help="clinician, care-provider, researcher, app, commissioner, auditor."
)
@click.option(
    "--credential",
    metavar="CODE",
    default=None,
    help="The credential checked off chain (e.g. GMC:1234567); it goes on chain only as a tag keyed with the "
    "consortium's secret (MEDLEDGER_CONSORTIUM_SECRET). Default: none recorded.",
)
@click.option("--encryption-key", type=HEX32, default=None, help="The participant's X25519 public key (32 bytes).")
@click.option("--from-keystore", metavar="NAME", default=None, help="Take the encryption key from local keystore NAME.")
@common_options()
@with_state
def register(
    state: State,
    address: str,
    kind: codes.ParticipantKind,
    credential: str | None,
    encryption_key: bytes | None,
    from_keystore: str | None,
) -> None:
    """Register ADDRESS (an address or a local keystore name) as a participant of KIND."""
    if (encryption_key is None) == (from_keystore is None):
        raise click.UsageError("Give the participant's encryption key: --encryption-key HEX32 or --from-keystore NAME.")
    account = state.address(address)
    if from_keystore is not None:
        info = state.keystore().public(from_keystore)
        if info.address != account:
            note(
                f"Note: keystore '{from_keystore}' belongs to {info.address}, not {account}; using its encryption key."
            )
        encryption_key = info.encryption_public
    if credential is None:
        note("Note: no --credential given; an all-zero credential reference is recorded.")
        credential_ref = ZERO32
    else:
        credential_ref = _tag(state, participants.credential_ref, credential, "--credential")
    client = state.client()
    me = state.identity()
    participants.register_participant(client, me, account, kind, credential_ref, encryption_key)  # type: ignore[arg-type]
    emit(
        {
            "address": account,
            "kind": codes.slug(kind),
            "credential_ref": credential_ref,
            "encryption_key": encryption_key,
            "registered_by": me.address,
        },
        f"Registered {account} as {codes.label(kind)}.",
    )


@registrar.command("suspend")
@click.argument("address")
@click.option(
    "--reason",
    metavar="CODE",
    default=None,
    help="A coded reason; it goes on chain only as a tag keyed with the consortium's secret. Default: none.",
)
@common_options()
@with_state
def suspend(state: State, address: str, reason: str | None) -> None:
    """Suspend participant ADDRESS: nothing it was granted works until it is reinstated. (Keys it was
    sent stay in its hands: if the suspension means a compromised key, the patients concerned revoke.)"""
    account = state.address(address)
    tag = _tag(state, participants.suspension_reason, reason, "--reason") if reason is not None else ZERO32
    client = state.client()
    changed = participants.suspend(client, state.identity(), account, tag)
    emit(
        {"address": account, "suspended": True, "changed": changed},
        f"{account} {'is now' if changed else 'was already'} suspended.",
    )


def _tag(state: State, make: Callable[[bytes, str], bytes], code: str, option: str) -> bytes:
    """The consortium-keyed tag of ``code`` (a usage error if it is not a code)."""
    from medledger.config import consortium_secret

    try:
        return make(consortium_secret(state.settings()), code)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint=option) from None


@registrar.command("reinstate")
@click.argument("address")
@common_options()
@with_state
def reinstate(state: State, address: str) -> None:
    """Lift the suspension of participant ADDRESS."""
    account = state.address(address)
    client = state.client()
    changed = participants.reinstate(client, state.identity(), account)
    emit(
        {"address": account, "suspended": False, "changed": changed},
        f"{account} {'is reinstated' if changed else 'was not suspended'}.",
    )


COMMANDS = [patient, registrar]
