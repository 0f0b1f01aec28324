"""Options and output shared by the consent commands."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from ..lazy import lazy
from ..output import when
from ..params import CATEGORIES, DATE, DAYS, PURPOSES

if TYPE_CHECKING:
    from medledger import consent
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


def grant_json(g: consent.Grant) -> dict[str, Any]:
    data = g.to_json()
    data["start_utc"] = when(g.start) if g.start else None
    data["expiry_utc"] = None if g.expiry >= consent.FOREVER else when(g.expiry)
    return data
