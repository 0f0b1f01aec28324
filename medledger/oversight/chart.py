"""The oversight report as one figure (PNG or SVG), drawn only from the report's protected tables.

matplotlib's object API with the Agg canvas: no display, no pyplot global state, so it runs on a
headless server and in threads. Suppressed counts are not drawn; they are marked "≤7".
"""

from __future__ import annotations

import io
import textwrap
from enum import IntEnum
from pathlib import Path
from typing import Any

from matplotlib import rc_context
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, MaxNLocator

from medledger import codes
from medledger.fsutil import atomic_write

from .report import Report

FORMATS = ("png", "svg")
_PALETTE = ["#1b6ca8", "#e07b39", "#4c9a2a", "#b5446e", "#7d5ba6", "#8c8c8c"]
_MAX_ORGANISATIONS = 10
_THOUSANDS = FuncFormatter(lambda x, _pos: f"{x:,.0f}")


def _label(slug: str, enum_cls: type[IntEnum]) -> str:
    try:
        return codes.label(codes.parse(enum_cls, slug))
    except Exception:  # noqa: BLE001 - "unknown" and the like are shown as they are
        return slug


def _small_mark(report: Report) -> str:
    return f"≤{report.control.suppress_at_or_below}" if report.control.applied else "0"


def _bars(
    ax: Axes, labels: list[str], values: list[int | None], colour: str, mark: str, annotate: list[str] | None = None
) -> None:
    """Horizontal bars in the given order, top down; suppressed values marked instead of drawn."""
    positions = list(range(len(labels)))[::-1]
    ax.barh(positions, [v or 0 for v in values], color=colour, height=0.7)
    ax.set_yticks(positions, [textwrap.fill(label, 26) for label in labels], fontsize=9)
    top = max([v for v in values if v] or [0])
    for pos, value, note in zip(positions, values, annotate or [""] * len(values), strict=True):
        text = mark if value is None else f"{value:,}{note}"
        ax.text((value or 0) + max(top, 1) * 0.01, pos, text, va="center", fontsize=8, color="#444444")
    ax.set_xlim(0, max(top, 10) * 1.2)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.xaxis.set_major_formatter(_THOUSANDS)
    ax.spines[["top", "right"]].set_visible(False)


def _month_range(months: set[str]) -> list[str]:
    """Every month from the first to the last (empty months are shown as such)."""
    if not months:
        return []
    year, month = map(int, min(months).split("-"))
    out = []
    while f"{year}-{month:02d}" <= max(months):
        out.append(f"{year}-{month:02d}")
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return out


def _monthly(ax: Axes, report: Report) -> None:
    rows = report.tables["accesses_by_month"].rows
    months = _month_range({r["month"] for r in rows})
    value = {(r["month"], r["purpose"]): r["accesses"] for r in rows}
    bottom = [0] * len(months)
    for colour, purpose in zip(_PALETTE, codes.Purpose, strict=False):
        heights = [value.get((m, codes.slug(purpose))) or 0 for m in months]
        if any(heights):
            ax.bar(months, heights, bottom=bottom, color=colour, label=codes.label(purpose))
            bottom = [b + h for b, h in zip(bottom, heights, strict=True)]
    hidden = sum(1 for v in value.values() if v is None)
    title = "Record accesses per month, by purpose"
    plural = "s" if hidden != 1 else ""
    ax.set_title(title + (f"\n({hidden} small count{plural} not drawn)" if hidden else ""), loc="left", fontsize=11)
    if any(bottom):  # headroom above the tallest bar for the legend
        ax.set_ylim(0, max(bottom) * 1.22)
        ax.legend(fontsize=8, frameon=False, loc="upper center", ncol=len(codes.Purpose))
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.yaxis.set_major_formatter(_THOUSANDS)
    ax.tick_params(axis="x", labelrotation=45, labelsize=8)
    ax.spines[["top", "right"]].set_visible(False)


def _categories(ax: Axes, report: Report) -> None:
    rows = sorted(report.tables["accesses_by_category"].rows, key=lambda r: -(r["accesses"] or 0))
    _bars(
        ax,
        [_label(r["category"], codes.Category) for r in rows],
        [r["accesses"] for r in rows],
        _PALETTE[0],
        _small_mark(report),
    )
    ax.set_title("Record accesses by category", loc="left", fontsize=11)


def _uptake(ax: Axes, report: Report) -> None:
    table = report.tables["consent_uptake"]
    registered = table.notes.get("registered_patients")
    values = [r["patients"] for r in table.rows]
    shares = [f"  ({100 * v / registered:.0f}%)" if v is not None and registered else "" for v in values]
    _bars(
        ax, [_label(r["purpose"], codes.Purpose) for r in table.rows], values, _PALETTE[2], _small_mark(report), shares
    )
    who = f"{registered:,}" if registered is not None else _small_mark(report)
    ax.set_title(f"Patients with a live consent, by purpose (of {who} registered)", loc="left", fontsize=11)


def _emergency(ax: Axes, report: Report) -> None:
    rows = report.tables["emergency_openings"].rows[:_MAX_ORGANISATIONS]
    _bars(ax, [r["organisation"] for r in rows], [r["openings"] for r in rows], _PALETTE[3], _small_mark(report))
    shown = (
        "" if len(report.tables["emergency_openings"].rows) <= _MAX_ORGANISATIONS else f" (top {_MAX_ORGANISATIONS})"
    )
    ax.set_title(f"Emergency access openings by organisation{shown}", loc="left", fontsize=11)
    if not rows:
        ax.text(0.5, 0.5, "none in this period", ha="center", va="center", transform=ax.transAxes, color="#666666")


def render(report: Report, path: str | Path, fmt: str | None = None) -> Path:
    """Draw the report to ``path`` (format from ``fmt`` or the file suffix: png or svg)."""
    path = Path(path)
    kind = (fmt or path.suffix.lstrip(".")).lower()
    if kind not in FORMATS:
        raise ValueError(f"the chart format must be one of {', '.join(FORMATS)}, not {kind!r}")
    fig = Figure(figsize=(14, 9.5), dpi=110, layout="constrained")
    FigureCanvasAgg(fig)
    axes: Any = fig.subplots(2, 2)
    _monthly(axes[0][0], report)
    _categories(axes[0][1], report)
    _uptake(axes[1][0], report)
    _emergency(axes[1][1], report)
    period = report.period
    span = f"{period.since or 'start'} to {period.until or 'now'}"
    fig.suptitle(
        f"medledger oversight report — chain {report.chain_id}, indexed to block {report.indexed_to}, {span}",
        fontsize=13,
        x=0.01,
        ha="left",
    )
    fig.supxlabel(
        report.control.describe() + " No patient address appears in this report.",
        fontsize=9,
        color="#555555",
        x=0.01,
        ha="left",
    )
    buf = io.BytesIO()
    with rc_context({"svg.fonttype": "none"}):  # SVG text stays text: searchable, accessible
        fig.savefig(buf, format=kind)
    return atomic_write(path, buf.getvalue())
