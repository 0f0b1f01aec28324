"""Numbers checked before anything leaves: every integer argument of a contract call fits its ABI type.

A number the contract's ABI cannot carry (a float, NaN, infinity, a negative count, an expiry past
``uint64``) is refused with :class:`~medledger.errors.InvalidNumber` naming the parameter, before a
simulation, a transaction or an upload happens. :func:`check_arguments` walks a function's ABI inputs
(tuples included), so every call of the facade is covered; :func:`uint` checks one value where a
caller validates early (consent terms before their key envelope is uploaded).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

from medledger.errors import InvalidNumber

_INT_TYPE = re.compile(r"(u?)int(\d*)")


def uint(name: str, value: Any, bits: int = 256) -> int:
    """``value`` as an int in ``0 .. 2**bits - 1``; :class:`InvalidNumber` otherwise (booleans,
    floats, NaN and infinities included: an amount of time or a code is a whole number)."""
    return _integer(name, value, bits, signed=False)


def _integer(name: str, value: Any, bits: int, *, signed: bool) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, float) and not math.isfinite(value):
            raise InvalidNumber(name, value, "is not a finite number")
        raise InvalidNumber(name, value, "is not a whole number")
    low, high = (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if signed else (0, 2**bits - 1)
    if not low <= value <= high:
        kind = f"int{bits}" if signed else f"uint{bits}"
        raise InvalidNumber(name, value, f"is out of range: the contract takes {low} to {high} ({kind})")
    return int(value)


def check_arguments(function: Mapping[str, Any], args: Sequence[Any]) -> None:
    """Check ``args`` against the ABI inputs of ``function`` (integers only; addresses are checked
    where they come in, by :func:`~medledger.chain.addresses.checked_address`)."""
    name = str(function.get("name", "call"))
    inputs = function.get("inputs", [])
    if len(args) != len(inputs):
        return  # web3 reports a wrong arity itself, with the signature
    for spec, value in zip(inputs, args, strict=True):
        _check(f"{name}.{spec.get('name') or '?'}", spec, value)


def _check(label: str, spec: Mapping[str, Any], value: Any) -> None:
    kind = str(spec.get("type", ""))
    if kind.endswith("]"):
        if isinstance(value, (list, tuple)):
            element = {**spec, "type": kind[: kind.rindex("[")]}
            for item in value:
                _check(label, element, item)
        return
    if kind == "tuple":
        components = spec.get("components", [])
        items = value.values() if isinstance(value, Mapping) else value
        if isinstance(items, (list, tuple)) or isinstance(value, Mapping):
            for part, item in zip(components, list(items), strict=False):
                _check(f"{label}.{part.get('name') or '?'}", part, item)
        return
    match = _INT_TYPE.fullmatch(kind)
    if match:
        _integer(label, value, int(match.group(2) or 256), signed=match.group(1) == "")
