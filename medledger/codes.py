"""The numeric codes medledger shares with its contracts.

Each table is an :class:`~enum.IntEnum` whose values match the Solidity enums and bit positions:
a set of categories or purposes travels on chain as a ``uint16`` bitmask where bit ``n`` stands for
the member with value ``n``.

Names can be parsed from what people type: matching is case-insensitive and treats dashes,
underscores and spaces alike, so ``"mental-health"``, ``"Mental_Health"`` and ``"mental health"``
all give :attr:`Category.MENTAL_HEALTH`. A few aliases are accepted (``"labs"``, ``"wearables"``,
``"audit"``...), as is the decimal number of the code.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from enum import IntEnum
from typing import TypeVar

from medledger.errors import UnknownCode

__all__ = [
    "MASK_BITS",
    "Access",
    "Category",
    "ParticipantKind",
    "Purpose",
    "all_mask",
    "categories_to_mask",
    "from_mask",
    "label",
    "mask_to_categories",
    "mask_to_purposes",
    "parse",
    "parse_many",
    "purposes_to_mask",
    "slug",
    "to_mask",
]

#: Width of the on-chain bitmasks (``uint16``).
MASK_BITS = 16


class Category(IntEnum):
    """Kinds of health record; a consent covers a set of them."""

    DEMOGRAPHICS = 0
    ALLERGIES = 1
    MEDICATIONS = 2
    CONDITIONS = 3
    OBSERVATIONS = 4
    IMAGING = 5
    GENOMICS = 6
    MENTAL_HEALTH = 7
    SEXUAL_HEALTH = 8
    DEVICE_DATA = 9
    PROCEDURES = 10
    IMMUNIZATIONS = 11
    CLINICAL_DOCUMENTS = 12


class Purpose(IntEnum):
    """Why a grantee may access records; a consent covers a set of them."""

    DIRECT_CARE = 0
    RESEARCH = 1
    COMMISSIONING_AND_AUDIT = 2
    COMMERCIAL = 3
    FAMILY_CARE = 4
    EMERGENCY = 5


class Access(IntEnum):
    """What a consent allows: reading records, or writing (adding) them."""

    READ = 0
    WRITE = 1


class ParticipantKind(IntEnum):
    """The registered role of an address in the participant registry."""

    NONE = 0
    CARE_PROVIDER = 1
    CLINICIAN = 2
    RESEARCHER = 3
    APP = 4
    COMMISSIONER = 5
    AUDITOR = 6


_LABELS: dict[type[IntEnum], dict[int, str]] = {
    Category: {
        0: "demographics",
        1: "allergies",
        2: "medications",
        3: "conditions",
        4: "observations & labs",
        5: "imaging",
        6: "genomics",
        7: "mental health",
        8: "sexual health",
        9: "device & wearable data",
        10: "procedures",
        11: "immunizations",
        12: "clinical documents",
    },
    Purpose: {
        0: "direct care",
        1: "research",
        2: "commissioning and audit",
        3: "commercial",
        4: "family care",
        5: "emergency",
    },
    Access: {0: "read", 1: "write"},
    ParticipantKind: {
        0: "none",
        1: "care provider",
        2: "clinician",
        3: "researcher",
        4: "app",
        5: "commissioner",
        6: "auditor",
    },
}

# Extra spellings accepted by parse(), already normalised (lower case, "-" as separator).
_ALIASES: dict[type[IntEnum], dict[str, int]] = {
    Category: {
        "demographic": 0,
        "allergy": 1,
        "medication": 2,
        "meds": 2,
        "condition": 3,
        "observation": 4,
        "labs": 4,
        "obs": 4,
        "lab": 4,
        "observations-and-labs": 4,
        "observations-labs": 4,
        "genomic": 6,
        "genetics": 6,
        "mental": 7,
        "sexual": 8,
        "device": 9,
        "devices": 9,
        "wearable": 9,
        "wearables": 9,
        "device-and-wearable-data": 9,
        "procedure": 10,
        "immunization": 11,
        "vaccinations": 11,
        "imm": 11,
        "documents": 12,
        "docs": 12,
        "document": 12,
    },
    Purpose: {
        "care": 0,
        "treatment": 0,
        "commissioning": 2,
        "audit": 2,
        "commissioning-audit": 2,
        "family": 4,
    },
    Access: {},
    ParticipantKind: {
        "provider": 1,
        "organisation": 1,
        "organization": 1,
        "commissioning": 5,
    },
}

E = TypeVar("E", bound=IntEnum)

_SEPARATORS = re.compile(r"[\s_\-]+")


def _normalise(text: str) -> str:
    return _SEPARATORS.sub("-", text.strip().lower()).strip("-").replace("-&-", "-and-")


def slug(member: IntEnum) -> str:
    """The canonical CLI spelling of a code, e.g. ``"mental-health"`` for MENTAL_HEALTH."""
    return member.name.lower().replace("_", "-")


def label(member: IntEnum) -> str:
    """The human label of a code, e.g. ``"observations & labs"``."""
    labels = _LABELS.get(type(member))
    if labels is None:
        return slug(member).replace("-", " ")
    return labels[int(member)]


def _valid_names(enum_cls: type[IntEnum]) -> str:
    return ", ".join(slug(m) for m in enum_cls)


def _kind_name(enum_cls: type[IntEnum]) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", " ", enum_cls.__name__).lower()


def parse(enum_cls: type[E], text: str | int) -> E:
    """Turn a name (``"genomics"``, ``"Mental_Health"``), an alias or a number into a member.

    Raises :class:`~medledger.errors.UnknownCode` naming the valid choices otherwise.
    """
    if isinstance(text, enum_cls):
        return text
    kind = _kind_name(enum_cls)
    if isinstance(text, IntEnum):
        raise UnknownCode(f"{type(text).__name__}.{text.name} is not a {kind}")
    if isinstance(text, int) and not isinstance(text, bool):
        try:
            return enum_cls(text)
        except ValueError:
            raise UnknownCode(
                f"{text} is not a {kind} code; valid codes are {', '.join(f'{int(m)} ({slug(m)})' for m in enum_cls)}"
            ) from None
    if not isinstance(text, str):
        raise UnknownCode(f"a {kind} must be given as a name or a number, not {type(text).__name__}")
    key = _normalise(text)
    if key.isdigit():
        return parse(enum_cls, int(key))
    for member in enum_cls:
        if key in (slug(member), _normalise(label(member))):
            return member
    alias = _ALIASES.get(enum_cls, {}).get(key)
    if alias is not None:
        return enum_cls(alias)
    raise UnknownCode(f"unknown {kind} {text!r}; use one of: {_valid_names(enum_cls)}")


def parse_many(enum_cls: type[E], items: str | Iterable[str | int]) -> frozenset[E]:
    """Parse a comma-separated string (or an iterable of names/numbers) into a set of members.

    The word ``"all"`` stands for every member. An empty input gives an empty set.
    """
    if isinstance(items, str):
        parts: list[str | int] = [p for p in items.split(",") if p.strip()]
    else:
        parts = list(items)
    result: set[E] = set()
    for part in parts:
        if isinstance(part, str) and _normalise(part) == "all":
            result.update(enum_cls)
        else:
            result.add(parse(enum_cls, part))
    return frozenset(result)


def to_mask(members: Iterable[IntEnum | int]) -> int:
    """Pack codes into a ``uint16`` bitmask (bit ``n`` set for code ``n``)."""
    mask = 0
    for member in members:
        value = int(member)
        if not 0 <= value < MASK_BITS:
            raise UnknownCode(f"code {value} does not fit a {MASK_BITS}-bit mask (0..{MASK_BITS - 1})")
        mask |= 1 << value
    return mask


def from_mask(enum_cls: type[E], mask: int) -> frozenset[E]:
    """Unpack a bitmask into members of ``enum_cls``.

    Raises :class:`~medledger.errors.UnknownCode` if the mask is negative, wider than 16 bits, or
    has a bit set that is not a code of ``enum_cls``.
    """
    if isinstance(mask, bool) or not isinstance(mask, int) or not 0 <= mask < (1 << MASK_BITS):
        raise UnknownCode(f"{mask!r} is not a {MASK_BITS}-bit mask")
    unknown = mask & ~all_mask(enum_cls)
    if unknown:
        bits = [n for n in range(MASK_BITS) if unknown >> n & 1]
        raise UnknownCode(f"mask 0x{mask:04x} has bits {bits} set that are not {_kind_name(enum_cls)} codes")
    return frozenset(m for m in enum_cls if mask >> int(m) & 1)


def all_mask(enum_cls: type[IntEnum]) -> int:
    """The mask with every code of ``enum_cls`` set."""
    return to_mask(enum_cls)


def categories_to_mask(categories: Iterable[Category | int]) -> int:
    """Pack categories into the ``uint16`` mask used on chain."""
    return to_mask(parse(Category, int(c)) for c in categories)


def mask_to_categories(mask: int) -> frozenset[Category]:
    """Unpack an on-chain category mask."""
    return from_mask(Category, mask)


def purposes_to_mask(purposes: Iterable[Purpose | int]) -> int:
    """Pack purposes into the ``uint16`` mask used on chain."""
    return to_mask(parse(Purpose, int(p)) for p in purposes)


def mask_to_purposes(mask: int) -> frozenset[Purpose]:
    """Unpack an on-chain purpose mask."""
    return from_mask(Purpose, mask)
