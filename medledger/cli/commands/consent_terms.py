"""Options and output shared by the consent commands."""

from __future__ import annotations

from collections.abc import Iterable
from enum import IntEnum
from typing import TYPE_CHECKING, Any

import click

from medledger import codes
from medledger.times import iso

from ..lazy import lazy
from ..output import Column, code_list, short, when
from ..params import CATEGORIES, DATE, DAYS, PURPOSES

if TYPE_CHECKING:
    from medledger import consent
    from medledger.consent.history import GrantRecord
else:
    consent = lazy("medledger.consent")


def window_options(f: Any) -> Any:
    f = click.option(
        "--days",
        type=DAYS,
        default=None,
        help="Valid for this many days from now (chain time).",
    )(f)
    f = click.option("--expires", type=DATE, default=None, help="Valid until this date/time (UTC), e.g. 2027-01-01.")(f)
    return f


def terms_options(f: Any) -> Any:
    f = window_options(f)
    f = click.option(
        "--purposes",
        type=PURPOSES,
        required=True,
        help="Comma-separated purposes, e.g. research or direct-care,family-care.",
    )(f)
    f = click.option(
        "--categories", type=CATEGORIES, required=True, help="Comma-separated categories, e.g. obs,device (or all)."
    )(f)
    return f


def until(expiry: int) -> str:
    return "no expiry" if expiry >= consent.FOREVER else when(expiry)


def _span(start: int, expiry: int) -> tuple[str, str]:
    return (when(start) if start else "at once"), until(expiry)


def term_changes(
    previous: consent.Grant,
    categories: frozenset[codes.Category],
    purposes: frozenset[codes.Purpose],
    start: int,
    expiry: int,
) -> list[str]:
    """What replacing ``previous`` with these terms changes, one line per term that differs."""
    lines = []
    for label, old, new in (("categories", previous.categories, categories), ("purposes", previous.purposes, purposes)):
        if old != new:
            dropped = ", ".join(codes.slug(m) for m in sorted(old - new))
            added = ", ".join(codes.slug(m) for m in sorted(new - old))
            change = "; ".join(
                part for part in (f"drops {dropped}" if dropped else "", f"adds {added}" if added else "") if part
            )
            lines.append(f"  {label:<11} {code_list(old)} -> {code_list(new)}  ({change})")
    (old_from, old_until), (new_from, new_until) = _span(previous.start, previous.expiry), _span(start, expiry)
    if old_from != new_from:
        lines.append(f"  {'from':<11} {old_from} -> {new_from}")
    if old_until != new_until:
        lines.append(f"  {'until':<11} {old_until} -> {new_until}")
    return lines


def grant_json(g: consent.Grant) -> dict[str, Any]:
    """A consent's terms: codes in code order, ISO-8601 times, None for "from the grant on" (start)
    and "no expiry"."""
    return {
        **g.to_json(),
        "categories": slugs(g.categories),
        "purposes": slugs(g.purposes),
        "start": iso(g.start) if g.start else None,
        "expiry": iso(g.expiry),
    }


def slugs(members: Iterable[IntEnum]) -> list[str]:
    """Code names in code order (the order of the README's code table)."""
    return [codes.slug(m) for m in sorted(members)]


def grant_row(g: GrantRecord, now: int) -> dict[str, Any]:
    """One row of a grants listing (see :func:`grant_columns`)."""
    terms = grant_json(g.consent)
    return {
        **{k: terms[k] for k in ("patient", "grantee", "access")},
        "status": g.status(now),
        **{k: terms[k] for k in ("categories", "purposes", "start", "expiry")},
        "granted_at": iso(g.granted_at),
        "revoked_at": iso(g.revoked_at),
        "block": g.granted_block,
        "tx_hash": g.tx_hash,
        "revoked_tx": g.revoked_tx,
    }


def grant_columns(counterpart: str, names: dict[str, str]) -> list[Column]:
    """The grants listing; the table's first column is the other party (``patient`` or ``grantee``)."""
    party = lambda v: short(v, names)  # noqa: E731
    return [
        Column("patient", "PATIENT", party, in_table=counterpart == "patient"),
        Column("grantee", "GRANTEE", party, in_table=counterpart == "grantee"),
        Column("access", "ACCESS"),
        Column("status", "STATUS"),
        Column("categories", "CATEGORIES"),
        Column("purposes", "PURPOSES"),
        Column("start", "FROM"),
        Column("expiry", "UNTIL", lambda v: v or "no expiry"),
        Column("granted_at", "GRANTED"),
        Column("revoked_at", "REVOKED"),
        Column("block", "BLOCK", in_table=False),
        Column("tx_hash", "TRANSACTION", in_table=False),
        Column("revoked_tx", "REVOKED IN", in_table=False),
    ]
