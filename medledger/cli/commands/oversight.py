"""``medledger oversight report``: counts for commissioners and auditors, with disclosure control."""

from __future__ import annotations

import csv
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from medledger.fsutil import atomic_write

from ..context import State, get_state, with_state
from ..errors import MedledgerGroup
from ..lazy import lazy
from ..options import common_options
from ..output import note, table
from ..params import check_out_path
from .index import db_option, open_local_index

if TYPE_CHECKING:
    from medledger import oversight as oversight_lib
    from medledger import participants
    from medledger.oversight.report import Report
else:
    oversight_lib = lazy("medledger.oversight")
    participants = lazy("medledger.participants")

_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")


def _organisations(path: Path | None) -> dict[str, str]:
    """``address,organisation`` lines (a first line ``address,organisation`` is a header)."""
    if path is None:
        return {}
    names: dict[str, str] = {}
    with open(path, newline="") as fh:
        for number, row in enumerate(csv.reader(fh), start=1):
            if not row or (number == 1 and row[0].strip().lower() in ("address", "account")):
                continue
            if len(row) < 2 or not _ADDRESS.fullmatch(row[0].strip()) or not row[1].strip():
                raise click.BadParameter(f"line {number}: expected ADDRESS,ORGANISATION", param_hint="--organisations")
            names[row[0].strip().lower()] = row[1].strip()
    return names


def _month(_ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    if value is None:
        return None
    try:
        oversight_lib.Period(since=value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a month (YYYY-MM)") from None
    return value


def _show(report: Report) -> None:
    doc = report.to_json()
    click.echo(
        f"Oversight report, chain {doc['chain_id']}, indexed to block {doc['indexed_to_block']}, as of {doc['as_of']}"
    )
    click.echo(report.control.describe())
    for name, t in report.tables.items():
        click.echo(f"\n{name.replace('_', ' ')}")
        value = t.columns[-1]
        table(
            list(t.columns),
            [
                [("[REDACTED]" if r[value] is None else r[value]) if c == value else r[c] for c in t.columns]
                for r in t.rows
            ],
            empty="  (none)",
        )
        for key, note_value in t.notes.items():
            click.echo(f"  {key.replace('_', ' ')}: {'[REDACTED]' if note_value is None else note_value}")


@click.group(cls=MedledgerGroup)
def oversight() -> None:
    """Statistics for commissioners and auditors (no patient ever identifiable)."""


@oversight.command("report")
@db_option
@click.option("--since", callback=_month, metavar="YYYY-MM", help="First month counted.")
@click.option("--until", callback=_month, metavar="YYYY-MM", help="Last month counted.")
@click.option("--format", "fmt", type=click.Choice(["table", "json", "csv"]), default="table", show_default=True)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="Write the report here instead of stdout.")
@click.option(
    "--chart", type=click.Path(dir_okay=False, path_type=Path), help="Also draw the report as a chart (.png or .svg)."
)
@click.option(
    "--organisations",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="CSV of ADDRESS,ORGANISATION naming the organisation behind each account.",
)
@click.option(
    "--exact", is_flag=True, help="Exact counts without disclosure control (auditors only; not for publication)."
)
@click.option("--confirmations", type=click.IntRange(min=0), default=0, help="Index only blocks this deep first.")
@click.option("--no-sync", is_flag=True, help="Report from the index as it is, without catching up first.")
@common_options()
@with_state
def report(
    state: State,
    db: str | None,
    since: str | None,
    until: str | None,
    fmt: str,
    out: Path | None,
    chart: Path | None,
    organisations: Path | None,
    exact: bool,
    confirmations: int,
    no_sync: bool,
) -> None:
    """Accesses by purpose x category x month, emergency openings by organisation, consent uptake by
    purpose, refused attempts where recorded: for a registered commissioner or auditor (--as).

    Counts of 7 or fewer are suppressed and the rest rounded to the nearest 5 (OpenSAFELY rules)."""
    try:
        period = oversight_lib.Period(since, until)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--since/--until") from None
    if chart is not None and chart.suffix.lower() not in (".png", ".svg"):
        raise click.BadParameter("the chart must be a .png or .svg file", param_hint="--chart")
    check_out_path(out)
    check_out_path(chart, "--chart")
    names = _organisations(organisations)
    me = state.identity()
    client = state.client()
    info = participants.participant(client, me.address)
    oversight_lib.require_overseer(me.address, info.kind, info.suspended)
    control = oversight_lib.disclosure_control(info.kind, exact)
    if exact:
        note("Exact counts: disclosure control is OFF. Not for publication.")
    local = open_local_index(state, db)
    try:
        if not no_sync:
            local.sync(confirmations)
        built = oversight_lib.build_report(
            local.store.engine,
            requested_by=me.address,
            requester_kind=info.kind,
            now=client.now(),
            period=period,
            control=control,
            organisations=names,
        )
    finally:
        local.close()
    _deliver(built, chart, fmt, out)


def _deliver(built: Any, chart: Path | None, fmt: str, out: Path | None) -> None:
    """The report as a chart file, and as a table on the terminal or CSV/JSON (to --out or stdout)."""
    if chart is not None:
        from medledger.oversight.chart import render

        render(built, chart)
        note(f"Chart written to {chart}")
    if get_state().json:
        fmt = "json"
    text = oversight_lib.report_json(built) + "\n" if fmt == "json" else built.to_csv() if fmt == "csv" else None
    if out is not None:
        atomic_write(out, (text if text is not None else oversight_lib.report_json(built) + "\n").encode())
        note(f"Report written to {out}")
    elif text is not None:
        click.echo(text, nl=False)
    else:
        _show(built)


COMMANDS = [oversight]
