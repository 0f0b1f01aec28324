"""Parameter types and the parsing of what people type: codes by name, hex, dates, record ids,
accesses, expiries, output paths."""

from __future__ import annotations

import datetime as _dt
import math
import os
import re
from collections.abc import Iterable
from enum import IntEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from medledger import codes
from medledger.errors import UnknownCode

if TYPE_CHECKING:
    from medledger.client import Client


class CodeType(click.ParamType[Any]):
    """One code (category, purpose, participant kind) by name, alias or number."""

    def __init__(self, enum_cls: type[IntEnum], exclude: Iterable[Any] = ()) -> None:
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


class CodeSetType(click.ParamType[Any]):
    """A comma-separated set of codes (``obs,device``; ``all`` for every one)."""

    def __init__(self, enum_cls: type[IntEnum]) -> None:
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


class HexType(click.ParamType[bytes]):
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


class DurationType(click.ParamType[float]):
    """A positive, finite amount of ``unit`` (days, hours), at most ``maximum``: ``nan``, ``inf``,
    ``1e30`` and negative numbers are refused before anything is computed or sent."""

    name = "duration"

    def __init__(self, unit: str, maximum: float, why: str) -> None:
        self.unit, self.maximum, self.why = unit, maximum, why

    def get_metavar(self, param: click.Parameter, ctx: click.Context | None = None) -> str:  # noqa: ARG002
        return self.unit.upper()

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> float:
        try:
            number = float(value)
        except (TypeError, ValueError):
            self.fail(f"{value!r} is not a number of {self.unit}", param, ctx)
        if not math.isfinite(number) or number <= 0:
            self.fail(f"{value!r} is not a positive number of {self.unit}", param, ctx)
        if number > self.maximum:
            self.fail(f"{value!r} {self.unit} is more than {self.maximum:g} {self.unit} ({self.why})", param, ctx)
        return number


class _Date(click.DateTime):
    def get_metavar(self, param: click.Parameter, ctx: click.Context | None = None) -> str:  # noqa: ARG002
        return "DATE"


CATEGORY = CodeType(codes.Category)
PURPOSE = CodeType(codes.Purpose)
CATEGORIES = CodeSetType(codes.Category)
PURPOSES = CodeSetType(codes.Purpose)
HEX32 = HexType(32)
#: Days of a consent, delegation or signed request: up to 100 years (no expiry: leave the option out).
DAYS = DurationType("days", 36525, "100 years; leave the option out for no expiry")
#: Hours a signed request stays valid: up to 30 days (a relayer may hold it back until then).
VALID_HOURS = DurationType("hours", 30 * 24, "30 days; keep it short: until then a relayer may hold it back")
#: Hours of an emergency opening: up to a year (the contract caps the window further).
HOURS = DurationType("hours", 8784, "a year")
#: A date (``2027-01-01``) or date and time (``2027-01-01T09:30``), read as UTC.
DATE = _Date(formats=["%Y-%m-%d", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S"])


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


def expiry_from(client: Client, expires: _dt.datetime | None, days: float | None, *, default: int) -> int:
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
