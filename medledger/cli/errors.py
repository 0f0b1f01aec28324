"""Errors at the terminal: exit codes by error class, hints (what to run next), and the group
class that turns a :class:`~medledger.errors.MedledgerError` into ``Error: <message>`` on stderr
(plus an error document on stdout with ``--json``) and the exit code.

The library's errors carry data (the service and URL that did not answer, the decoded custom
error); the hints here are built from it, so the library never names a command.
"""

from __future__ import annotations

import traceback
import warnings
from typing import Any

import click

from medledger import errors as e

#: Exit code and its meaning for each error class (the most specific class listed wins).
EXIT_CODES: dict[type[e.MedledgerError], tuple[int, str]] = {
    e.MedledgerError: (1, "other error, or aborted"),
    e.ConfigError: (2, "usage error: bad option or argument, unknown code name, bad configuration"),
    e.UnknownCode: (2, "usage error: unknown code name"),
    e.InvalidRequest: (2, "usage error: options that contradict each other"),
    e.ServiceError: (3, "chain or IPFS node down or unreachable, or a local service failed"),
    e.KeystoreError: (4, "keystore missing or malformed, wrong passphrase, missing key"),
    e.CryptoError: (5, "decryption failed"),
    e.TamperingDetected: (6, "tampering detected: content, CID or fingerprint does not match"),
    e.RecordFormatError: (7, "invalid record input: bad FHIR, unreadable file"),
    e.StorageError: (8, "IPFS operation failed or content not found"),
    e.ChainError: (9, "chain call or transaction failed, no deployment, unknown record"),
    e.WrongChain: (2, "configuration error: the node serves another chain than the one configured"),
    e.AccessDenied: (10, "access denied: no consent, expired, wrong category or purpose, suspended, not authorised"),
    e.RecordErased: (11, "the record was erased by its patient"),
    e.StaleCategoryKey: (
        12,
        "stale key: the patient's key for that category awaits rotation (`medledger keys sync`); retry then",
    ),
}


def exit_code(exc: e.MedledgerError) -> int:
    """The exit code of ``exc``: that of the nearest class in :data:`EXIT_CODES` along its MRO."""
    for cls in type(exc).__mro__:
        if cls in EXIT_CODES:
            return EXIT_CODES[cls][0]
    return 1  # pragma: no cover - MedledgerError is in the table


def exit_code_summary() -> str:
    """``0 ok; 1 other error...; 2 usage error...`` for ``medledger --help``."""
    meanings: dict[int, str] = {}
    for code, text in EXIT_CODES.values():
        meanings.setdefault(code, text.split(":")[0])
    return "Exit codes: 0 ok; " + "; ".join(f"{code} {text}" for code, text in sorted(meanings.items()))


_SERVICE_HINTS = {
    "Ethereum node": "Start the local one with `medledger node up`, or point MEDLEDGER_RPC_URL (or [chain] "
    "rpc_url in the config file) at a running node; `medledger node status` shows what runs.",
    "IPFS node": "Start the local one with `medledger node up`, or set MEDLEDGER_IPFS_API (or [ipfs] api in "
    "the config file) to the API address of a running node.",
}
_REVERT_HINTS = {
    "RegistryPatientNotRegistered": "The patient registers with `medledger patient register`.",
    "ConsentSignatureExpired": "Ask the patient to sign a new request (`medledger consent sign`).",
}


def hint(exc: e.MedledgerError) -> str | None:
    """What the user can do next, from the data the error carries (None: nothing to add)."""
    if isinstance(exc, e.WriteInterrupted):
        return (
            "Bring the node back (`medledger node up` for the local one: it re-applies the journal), or run "
            "`medledger records recover` once it answers."
        )
    if isinstance(exc, e.ServiceUnavailable):
        return _SERVICE_HINTS.get(exc.service)
    if isinstance(exc, e.DeploymentGone):
        return (
            "If this is this home's local node, `medledger node up` restores its saved state and re-applies "
            "what this home journaled; otherwise redeploy with `medledger deploy --force` (what was on the "
            "lost chain is not on the new one)."
        )
    if isinstance(exc, e.DeploymentNotFound):
        if exc.reason:
            return "Redeploy with `medledger deploy --force`, or fix the file."
        return "Deploy with `medledger deploy` (or `brownie run scripts/deploy.py`)."
    if isinstance(exc, e.KeysNotPublished):
        return "Run `medledger patient register` as that patient (it publishes the keys)."
    if isinstance(exc, e.StaleCategoryKey):
        return (
            "The patient (or a delegate) rotates it with `medledger keys sync` (the commands that end access run "
            "it themselves; `keys sync --follow` keeps doing it)."
        )
    if isinstance(exc, e.NoKeyOpens):
        return (
            "Nothing was recorded in the audit trail. The patient's (or a delegate's) `medledger keys sync` sends "
            "every reader the keys it lacks; a clinician with emergency access gets them with `medledger emergency "
            "release`."
        )
    if isinstance(exc, e.AmbiguousRecord):
        return "Name the patient with --patient ADDRESS."
    if isinstance(exc, e.InsufficientFunds):
        return (
            "The sending account needs ETH for gas (or have a relayer submit a signed request); on a local "
            "development chain `medledger keys fund NAME` sends it some."
        )
    if isinstance(exc, e.TransactionPending):
        return "Check before retrying; `medledger records recover` settles a record write later."
    if isinstance(exc, e.ContractRevert) and exc.error_name:
        return _REVERT_HINTS.get(exc.error_name)
    return None


def message(exc: e.MedledgerError) -> str:
    """The error's message, with the hint after it."""
    text, extra = str(exc), hint(exc)
    if not extra:
        return text
    return text + (" " if text.endswith((".", "!", "?")) else ". ") + extra


def error_document(exc: e.MedledgerError) -> dict[str, Any]:
    doc: dict[str, Any] = {"type": type(exc).__name__, "message": message(exc), "exit_code": exit_code(exc)}
    if isinstance(exc, e.ContractRevert) and exc.error_name:
        doc["error_name"] = exc.error_name
    return {"error": doc}


def _state() -> Any:
    from .context import State

    ctx = click.get_current_context(silent=True)
    return ctx.find_object(State) if ctx is not None else None


def report(exc: e.MedledgerError) -> None:
    from .output import dumps, note

    note(f"Error: {message(exc)}")
    state = _state()
    verbose = state.verbose if state is not None else 0
    if verbose >= 2:
        note("".join(traceback.format_exception(exc)).rstrip())
    elif verbose:
        cause = exc.__cause__ or exc.__context__
        while cause is not None:
            note(f"  caused by {type(cause).__name__}: {cause}")
            cause = cause.__cause__ or cause.__context__
    if state is not None and state.json:
        click.echo(dumps(error_document(exc)))


class MedledgerGroup(click.Group):
    """A group whose errors become ``Error: <message>`` on stderr and the error's exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        caught: list[warnings.WarningMessage] = []
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", e.RejectedKeyWarning)
                return self._invoke(ctx)
        finally:
            for warning in caught:  # a key delivered to us that did not check out: say so, plainly
                if issubclass(warning.category, e.RejectedKeyWarning):
                    click.echo(f"Warning: {warning.message}", err=True)
                else:
                    warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)

    def _invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except e.MedledgerError as exc:
            report(exc)
            ctx.exit(exit_code(exc))
        except KeyboardInterrupt:
            raise click.Abort() from None
        except Exception as exc:
            state = _state()
            if state is not None and state.verbose:
                raise
            from medledger.chain import foreign_error

            mapped = foreign_error(exc)
            if mapped is not None:
                report(mapped)
                ctx.exit(exit_code(mapped))
            from .output import note

            if isinstance(exc, OSError):
                note(f"Error: {exc}")
            else:
                note(f"Error: unexpected {type(exc).__name__}: {exc} (run again with -v for a traceback)")
            ctx.exit(1)
