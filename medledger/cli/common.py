"""What every ``medledger`` command shares: options, the session state behind them, identities,
address and code parsing, output (tables or JSON) and the mapping of errors to exit codes.

Options common to all commands (``--config``, ``--home``, ``--rpc-url``, ``--chain-id``,
``--ipfs-api``, ``--json``, ``--as``) are accepted both before the command
(``medledger --as lisa consent list``) and after it (``medledger consent list --as lisa``); the
later one wins. ``--as`` also reads ``MEDLEDGER_IDENTITY``.

Passphrases never come from the command line: from ``MEDLEDGER_PASSPHRASE_<NAME>`` (or
``MEDLEDGER_PASSPHRASE``), otherwise from a hidden prompt on the terminal.

Output: with ``--json`` a command prints exactly one JSON document on stdout and every human
message goes to stderr; without it results are printed as text on stdout. Errors print
``Error: <message>`` on stderr and exit with the error's code (see :data:`EXIT_CODES`).
"""

from __future__ import annotations

import datetime as _dt
import functools
import json
import os
import re
import sys
import warnings
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import click
from eth_utils import is_address, is_hex_address, to_checksum_address

from medledger import codes
from medledger.config import Settings, load_settings
from medledger.errors import (
    AccessDenied,
    ChainError,
    ConfigError,
    ContractRevert,
    CryptoError,
    KeystoreError,
    MedledgerError,
    RecordErased,
    RecordFormatError,
    ServiceError,
    StorageError,
    TamperingDetected,
    UnknownCode,
    WrongPassphrase,
)
from medledger.keystore import (
    Identity,
    KeyInfo,
    Keystore,
    WeakKeystoreWarning,
    medledger_home,
    passphrase_env_var,
    passphrase_from_env,
)

F = TypeVar("F", bound=Callable[..., Any])

#: Exit codes of the ``medledger`` command (besides 0 for success).
EXIT_CODES: dict[int, str] = {
    MedledgerError.exit_code: "other error, or aborted",
    ConfigError.exit_code: "usage error: bad option or argument, unknown code name, bad configuration (ConfigError, UnknownCode)",
    ServiceError.exit_code: "chain or IPFS node down or unreachable, or a local service failed (ServiceError, ServiceUnavailable)",
    KeystoreError.exit_code: "keystore missing or malformed, wrong passphrase, missing key (KeystoreError, WrongPassphrase, KeyNotFound, NoKeyOpens)",
    CryptoError.exit_code: "decryption failed (CryptoError, DecryptionError)",
    TamperingDetected.exit_code: "tampering detected: content, CID or fingerprint does not match (TamperingDetected)",
    RecordFormatError.exit_code: "invalid record input: bad FHIR, unreadable file (RecordFormatError)",
    StorageError.exit_code: "IPFS operation failed or content not found (StorageError, ContentNotFound)",
    ChainError.exit_code: "chain call or transaction failed, no deployment, unknown record (ChainError, ContractRevert, DeploymentNotFound, UnknownRecord)",
    AccessDenied.exit_code: "access denied: no consent, expired, wrong category or purpose, suspended, not authorised (AccessDenied)",
    RecordErased.exit_code: "the record was erased by its patient (RecordErased)",
}

#: Hidden, for tests only: scrypt cost (power of two) of keystores written by ``keys create``.
#: Lowering it makes keystores fast to crack; never set it for real keys.
SCRYPT_N_ENV = "MEDLEDGER_KEYSTORE_SCRYPT_N"
#: Where ``keys create --import-key`` reads the private key from when set (else a hidden prompt).
IMPORT_KEY_ENV = "MEDLEDGER_IMPORT_KEY"
#: Where ``keys create --import-encryption-key`` reads the X25519 secret from (else a hidden prompt).
IMPORT_ENCRYPTION_KEY_ENV = "MEDLEDGER_IMPORT_ENCRYPTION_KEY"
IDENTITY_ENV = "MEDLEDGER_IDENTITY"
DEBUG_ENV = "MEDLEDGER_DEBUG"

PASSPHRASE_ATTEMPTS = 3


# --- session state ---------------------------------------------------------------------------------
class State:
    """Option values collected while parsing, and what is built from them on first use."""

    def __init__(self) -> None:
        self.config_file: Path | None = None
        self.home: Path | None = None
        self.rpc_url: str | None = None
        self.chain_id: int | None = None
        self.ipfs_api: str | None = None
        self.json: bool = False
        self.identity_name: str | None = None
        self._settings: Settings | None = None
        self._client: Any = None
        self._identity: Identity | None = None
        self._keystore: Keystore | None = None

    # --- settings and connections ----------------------------------------------------------------
    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = load_settings(
                self.config_file,
                # keystore.medledger_home treats an empty MEDLEDGER_HOME as unset; config.default_home
                # would take it as the current directory
                home=self.home or medledger_home(),
                rpc_url=self.rpc_url,
                chain_id=self.chain_id,
                ipfs_api=self.ipfs_api,
            )
        return self._settings

    def client(self) -> Any:
        """A :class:`medledger.client.Client` (connects to the chain on first use)."""
        if self._client is None:
            from medledger.client import Client

            self._client = Client.connect(self.settings())
        return self._client

    def keystore(self, scrypt_n: int | None = None) -> Keystore:
        if scrypt_n is not None:
            return Keystore(self.settings().keys, scrypt_n=scrypt_n)
        if self._keystore is None:
            self._keystore = Keystore(self.settings().keys)
        return self._keystore

    # --- identities -----------------------------------------------------------------------------
    def require_name(self) -> str:
        if not self.identity_name:
            raise click.UsageError(
                "This command acts as one of your identities: pass --as NAME (or set "
                f"{IDENTITY_ENV}). `medledger keys list` shows the identities in your keystore."
            )
        return self.identity_name

    def identity(self) -> Identity:
        """The unlocked ``--as`` identity (passphrase from the environment or a hidden prompt)."""
        if self._identity is None:
            self._identity = unlock(self.keystore(), self.require_name())
        return self._identity

    def own_address(self) -> str:
        """The address of ``--as`` without unlocking it (public keystore fields only)."""
        if self._identity is not None:
            return self._identity.address
        return self.keystore().public(self.require_name()).address

    def address(self, text: str, what: str = "ADDRESS") -> str:
        """An address given as ``0x…`` or as the name of a keystore in the local keystore."""
        return resolve_address(self.keystore(), text, what)

    def address_or_self(self, text: str | None, what: str = "--patient") -> str:
        return self.address(text, what) if text else self.own_address()

    def names(self) -> dict[str, str]:
        """Local keystore names by address (for friendlier tables); unreadable files are skipped."""
        out: dict[str, str] = {}
        ks = self.keystore()
        for name in ks.names():
            try:
                out[ks.public(name).address] = name
            except MedledgerError:
                continue
        return out


def _unlock_once(keystore: Keystore, name: str, passphrase: str) -> Identity:
    """Unlock; a warning about a weak keystore file is shown as a note, not a Python warning."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", WeakKeystoreWarning)
        identity = keystore.unlock(name, passphrase)
    for warning in caught:
        note(f"Warning: {warning.message}")
    return identity


def unlock(keystore: Keystore, name: str) -> Identity:
    info = keystore.public(name)  # fails early (KeyNotFound) before asking for a passphrase
    passphrase = passphrase_from_env(name)
    if passphrase is not None:
        return _unlock_once(keystore, name, passphrase)
    for attempt in range(1, PASSPHRASE_ATTEMPTS + 1):
        try:
            passphrase = click.prompt(
                f"Passphrase for keystore '{name}' ({info.address})", hide_input=True, err=True
            )
        except click.Abort:
            raise KeystoreError(
                f"no passphrase for keystore '{name}': set {passphrase_env_var(name)} or run the "
                "command in a terminal to be asked for it"
            ) from None
        try:
            return _unlock_once(keystore, name, passphrase)
        except WrongPassphrase:
            if attempt == PASSPHRASE_ATTEMPTS:
                raise
            click.echo("Wrong passphrase, try again.", err=True)
    raise AssertionError("unreachable")  # pragma: no cover


def resolve_address(keystore: Keystore, text: str, what: str = "ADDRESS") -> str:
    text = text.strip()
    if is_hex_address(text):
        if not is_address(text):
            raise click.BadParameter(
                f"{text} has an invalid EIP-55 checksum (mixed case); check it, or write it all in lower case",
                param_hint=what,
            )
        return to_checksum_address(text)
    if re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", text) and set(text) != {"."} and keystore.exists(text):
        return keystore.public(text).address
    raise click.BadParameter(
        f"{text!r} is neither an address (0x + 40 hex digits) nor the name of a keystore in {keystore.path}",
        param_hint=what,
    )


def get_state() -> State:
    ctx = click.get_current_context()
    return ctx.ensure_object(State)


# --- options ---------------------------------------------------------------------------------------
def _remember(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
    state = ctx.ensure_object(State)
    if value is not None and value is not False and value != ():
        setattr(state, param.name, value)
        state._settings = None
        state._client = None
        state._keystore = None
        if param.name == "identity_name":
            state._identity = None
    return value


def connection_options(f: F, hidden: bool = False) -> F:
    """``--config``, ``--home``, ``--rpc-url``, ``--chain-id``, ``--ipfs-api`` (``hidden`` on leaf
    commands: they are documented once, in ``medledger --help``)."""
    options = [
        click.option(
            "--config", "config_file", type=click.Path(dir_okay=False, path_type=Path), default=None,
            expose_value=False, callback=_remember, is_eager=True,
            help="Config file (default $MEDLEDGER_CONFIG, else <home>/config.toml).",
        ),
        click.option(
            "--home", type=click.Path(file_okay=False, path_type=Path), default=None, expose_value=False,
            callback=_remember, is_eager=True,
            help="medledger home: keys, deployments, node data, caches (default $MEDLEDGER_HOME or ~/.medledger).",
        ),
        click.option(
            "--rpc-url", default=None, expose_value=False, callback=_remember, is_eager=True,
            help="Ethereum JSON-RPC endpoint (default $MEDLEDGER_RPC_URL, config, http://127.0.0.1:8645).",
        ),
        click.option(
            "--chain-id", type=click.IntRange(min=1), default=None, expose_value=False, callback=_remember,
            is_eager=True, help="Refuse to talk to any other chain (default $MEDLEDGER_CHAIN_ID or config).",
        ),
        click.option(
            "--ipfs-api", default=None, expose_value=False, callback=_remember, is_eager=True,
            help="IPFS RPC API, multiaddr or URL (default $MEDLEDGER_IPFS_API, config, /ip4/127.0.0.1/tcp/5101/http).",
        ),
    ]
    for option in reversed(options):
        f = option(f)
    if hidden:
        for param in getattr(f, "__click_params__", [])[-len(options):]:
            param.hidden = True
    return f


def json_option(f: F) -> F:
    return click.option(
        "--json", "json", is_flag=True, default=False, expose_value=False, callback=_remember, is_eager=True,
        help="Print one JSON document on stdout (messages go to stderr).",
    )(f)


def identity_option(envvar: str | None = None) -> Callable[[F], F]:
    def decorate(f: F) -> F:
        return click.option(
            "--as", "identity_name", metavar="NAME", default=None, envvar=envvar, expose_value=False,
            callback=_remember, is_eager=True,
            help="Act as this keystore identity" + (f" (default ${envvar})." if envvar else "."),
        )(f)

    return decorate


def common_options(*, identity: bool = True, json_output: bool = True) -> Callable[[F], F]:
    """The shared options for a leaf command."""

    def decorate(f: F) -> F:
        f = connection_options(f, hidden=True)
        if identity:
            f = identity_option()(f)
        if json_output:
            f = json_option(f)
        return f

    return decorate


# --- parameter types ---------------------------------------------------------------------------------
#: Short spellings the CLI accepts on top of :mod:`medledger.codes`' own aliases.
class CodeType(click.ParamType):
    """One code (category, purpose, participant kind) by name, alias or number."""

    def __init__(self, enum_cls: type[codes.IntEnum], exclude: Iterable[Any] = ()) -> None:
        self.enum_cls = enum_cls
        self.exclude = {int(e) for e in exclude}
        self.name = enum_cls.__name__.lower()

    def get_metavar(self, param: click.Parameter, ctx: click.Context | None = None) -> str:  # noqa: ARG002
        return self.enum_cls.__name__.upper()

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, self.enum_cls):
            return value
        try:
            member = codes.parse(self.enum_cls, value)
        except UnknownCode as exc:
            self.fail(str(exc), param, ctx)
        if int(member) in self.exclude:
            valid = ", ".join(codes.slug(m) for m in self.enum_cls if int(m) not in self.exclude)
            self.fail(f"{codes.slug(member)} is not allowed here; use one of: {valid}", param, ctx)
        return member


class CodeSetType(click.ParamType):
    """A comma-separated set of codes (``obs,device``; ``all`` for every one)."""

    def __init__(self, enum_cls: type[codes.IntEnum]) -> None:
        self.enum_cls = enum_cls
        self.name = enum_cls.__name__.lower() + "s"

    def get_metavar(self, param: click.Parameter, ctx: click.Context | None = None) -> str:  # noqa: ARG002
        return "NAME[,NAME…]"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, frozenset):
            return value
        try:
            parts = [p for p in str(value).split(",") if p.strip()]
            members = codes.parse_many(self.enum_cls, parts)
        except UnknownCode as exc:
            self.fail(str(exc), param, ctx)
        if not members:
            self.fail(f"give at least one {self.enum_cls.__name__.lower()}", param, ctx)
        return members


class HexType(click.ParamType):
    """``0x``-prefixed (or bare) hex of exactly ``length`` bytes, or of up to ``length`` bytes padded
    with zeros on the right when ``pad`` is set."""

    name = "hex"

    def __init__(self, length: int = 32, pad: bool = False) -> None:
        self.length = length
        self.pad = pad

    def get_metavar(self, param: click.Parameter, ctx: click.Context | None = None) -> str:  # noqa: ARG002
        return f"HEX{self.length}"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> bytes:
        if isinstance(value, bytes):
            return value
        text = str(value).strip()
        text = text[2:] if text[:2].lower() == "0x" else text
        if not re.fullmatch(r"(?:[0-9a-fA-F]{2})+", text):
            self.fail(f"{value!r} is not hex (expected 0x and an even number of hex digits)", param, ctx)
        raw = bytes.fromhex(text)
        if self.pad and 0 < len(raw) <= self.length:
            return raw.ljust(self.length, b"\0")
        if len(raw) != self.length:
            need = f"up to {self.length}" if self.pad else f"exactly {self.length}"
            self.fail(f"expected {need} bytes ({2 * self.length} hex digits), got {len(raw)}", param, ctx)
        return raw


CATEGORY = CodeType(codes.Category)
PURPOSE = CodeType(codes.Purpose)
CATEGORIES = CodeSetType(codes.Category)
PURPOSES = CodeSetType(codes.Purpose)
HEX32 = HexType(32)
class _Date(click.DateTime):
    def get_metavar(self, param: click.Parameter, ctx: click.Context | None = None) -> str:  # noqa: ARG002
        return "DATE"


#: A date (``2027-01-01``) or date and time (``2027-01-01T09:30``), read as UTC.
DATE = _Date(formats=["%Y-%m-%d", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S"])


def access_option(f: F) -> F:
    """``--read`` / ``--write`` (kept as two flags so both can be given where that makes sense)."""
    f = click.option("--write", "write", is_flag=True, help="Write access (adding records).")(f)
    return click.option("--read", "read", is_flag=True, help="Read access.")(f)


def accesses(read: bool, write: bool, *, allow_both: bool) -> list[codes.Access]:
    chosen = [a for a, on in ((codes.Access.READ, read), (codes.Access.WRITE, write)) if on]
    if not chosen:
        raise click.UsageError("Say which access: --read or --write" + (" (or both)" if allow_both else ""))
    if len(chosen) > 1 and not allow_both:
        raise click.UsageError("Give only one of --read and --write here.")
    return chosen


def to_timestamp(value: _dt.datetime) -> int:
    """A date/time given on the command line, read as UTC."""
    return int(value.replace(tzinfo=_dt.UTC).timestamp())


def expiry_from(client: Any, expires: _dt.datetime | None, days: float | None, *, default: int) -> int:
    if expires is not None and days is not None:
        raise click.UsageError("Give either --expires or --days, not both.")
    if expires is not None:
        return to_timestamp(expires)
    if days is not None:
        return client.now() + int(days * 86400)
    return default


def record_id(text: str, what: str = "RECORD") -> bytes:
    """A record id or batch root: 32 bytes as hex."""
    try:
        return HEX32.convert(text, None, None)
    except click.BadParameter as exc:
        raise click.BadParameter(exc.message, param_hint=what) from None


def check_out_path(path: Path | None, hint: str = "--out") -> None:
    """Fail before doing anything (a logged read, a transaction) if ``path`` cannot be written."""
    if path is None or str(path) == "-":
        return
    parent = Path(path).expanduser().absolute().parent
    if not parent.is_dir():
        raise click.BadParameter(f"directory {parent} does not exist", param_hint=hint)
    if Path(path).is_dir():
        raise click.BadParameter(f"{path} is a directory", param_hint=hint)
    if not os.access(parent, os.W_OK):
        raise click.BadParameter(f"directory {parent} is not writable", param_hint=hint)


# --- output ------------------------------------------------------------------------------------------
def note(message: str) -> None:
    """A human message: always on stderr."""
    click.echo(message, err=True)


def _json_default(value: Any) -> Any:
    if isinstance(value, (bytes, bytearray)):
        return "0x" + bytes(value).hex()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    if isinstance(value, codes.IntEnum):
        return codes.slug(value)
    raise TypeError(f"cannot encode {type(value).__name__} as JSON")


def dumps(data: Any) -> str:
    return json.dumps(data, indent=2, default=_json_default)


def emit(data: Any, human: str | Callable[[], None] | None = None) -> None:
    """Print a command's result: ``data`` as JSON with ``--json``, otherwise ``human`` (text, or a
    function that prints)."""
    if get_state().json:
        click.echo(dumps(data))
    elif callable(human):
        human()
    elif human is not None:
        click.echo(human)


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]], *, empty: str | None = None) -> None:
    if not rows:
        if empty:
            click.echo(empty, err=True)
        return
    cells = [[str(c) for c in row] for row in rows]
    widths = [max(len(headers[i]), *(len(r[i]) for r in cells)) for i in range(len(headers))]

    def line(values: Sequence[str]) -> str:
        parts = [v.ljust(widths[i]) for i, v in enumerate(values[:-1])] + [values[-1]]
        return "  ".join(parts).rstrip()

    click.echo(line(list(headers)))
    for row in cells:
        click.echo(line(row))


def when(timestamp: int) -> str:
    from medledger.chain import utc

    return utc(int(timestamp))


def short(address: str, names: dict[str, str]) -> str:
    name = names.get(address)
    return f"{address} ({name})" if name else address


def code_list(members: Iterable[codes.IntEnum]) -> str:
    return ",".join(codes.slug(m) for m in sorted(members)) or "-"


def code_labels(members: Iterable[codes.IntEnum]) -> str:
    return ", ".join(codes.label(m) for m in sorted(members)) or "nothing"


# --- errors ------------------------------------------------------------------------------------------
def error_document(exc: MedledgerError) -> dict[str, Any]:
    doc: dict[str, Any] = {"type": type(exc).__name__, "message": str(exc), "exit_code": exc.exit_code}
    if isinstance(exc, ContractRevert) and exc.error_name:
        doc["error_name"] = exc.error_name
    return {"error": doc}


def report(exc: MedledgerError) -> None:
    note(f"Error: {exc}")
    ctx = click.get_current_context(silent=True)
    state = ctx.find_object(State) if ctx is not None else None
    if state is not None and state.json:
        click.echo(dumps(error_document(exc)))


class MedledgerGroup(click.Group):
    """A group whose errors become ``Error: <message>`` on stderr and the error's exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except MedledgerError as exc:
            report(exc)
            ctx.exit(exc.exit_code)
        except KeyboardInterrupt:
            raise click.Abort() from None
        except Exception as exc:  # noqa: BLE001 - the last line of defence of a CLI
            if os.environ.get(DEBUG_ENV):
                raise
            mapped = map_foreign_error(exc)
            if mapped is not None:
                report(mapped)
                ctx.exit(mapped.exit_code)
            if isinstance(exc, OSError):
                note(f"Error: {exc}")
            else:
                note(f"Error: unexpected {type(exc).__name__}: {exc} (set {DEBUG_ENV}=1 for a traceback)")
            ctx.exit(1)


def map_foreign_error(exc: Exception) -> MedledgerError | None:
    """Errors of web3 and requests that the library lets through, as medledger errors."""
    import requests
    from web3.exceptions import Web3Exception

    # The library maps RPC refusals itself (Chain._rpc); this is the net for calls made outside it.
    if isinstance(exc, Web3Exception):
        return ChainError(f"The Ethereum call failed: {type(exc).__name__}: {exc}")
    if isinstance(exc, (requests.exceptions.ConnectionError, requests.exceptions.Timeout)):
        return ServiceError(f"A service stopped answering ({type(exc).__name__}: {exc}); check `medledger node status`.")
    return None


def progress_enabled(flag: bool | None) -> bool:
    """``--progress/--no-progress``; by default only when stderr is a terminal."""
    if flag is not None:
        return flag
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


def progress_option(f: F) -> F:
    return click.option(
        "--progress/--no-progress", "progress", default=None,
        help="Show a progress bar on stderr (default: only when stderr is a terminal).",
    )(f)


def with_state(f: F) -> F:
    """Pass the :class:`State` as the first argument."""

    @functools.wraps(f)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        return f(get_state(), *args, **kwargs)

    return wrapper  # type: ignore[return-value]


def key_info_json(info: KeyInfo) -> dict[str, Any]:
    return {
        "name": info.name,
        "address": info.address,
        "encryption_public_key": info.encryption_public_hex,
        "path": str(info.path),
        "passphrase_env": passphrase_env_var(info.name),
    }
