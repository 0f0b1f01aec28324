"""Behaviour of medledger.codes: code values, name parsing, labels and bitmasks."""

from __future__ import annotations

from enum import IntEnum

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from medledger.codes import (
    Access,
    Category,
    ParticipantKind,
    Purpose,
    all_mask,
    categories_to_mask,
    from_mask,
    label,
    mask_to_categories,
    mask_to_purposes,
    parse,
    parse_many,
    purposes_to_mask,
    slug,
    to_mask,
)
from medledger.errors import MedledgerError, UnknownCode

ALL_ENUMS: list[type[IntEnum]] = [Category, Purpose, Access, ParticipantKind]


def test_category_values_match_the_contracts() -> None:
    assert {c.name: int(c) for c in Category} == {
        "DEMOGRAPHICS": 0,
        "ALLERGIES": 1,
        "MEDICATIONS": 2,
        "CONDITIONS": 3,
        "OBSERVATIONS": 4,
        "IMAGING": 5,
        "GENOMICS": 6,
        "MENTAL_HEALTH": 7,
        "SEXUAL_HEALTH": 8,
        "DEVICE_DATA": 9,
        "PROCEDURES": 10,
        "IMMUNIZATIONS": 11,
        "CLINICAL_DOCUMENTS": 12,
    }


def test_purpose_access_and_participant_kind_values_match_the_contracts() -> None:
    assert [(p.name, int(p)) for p in Purpose] == [
        ("DIRECT_CARE", 0),
        ("RESEARCH", 1),
        ("COMMISSIONING_AND_AUDIT", 2),
        ("COMMERCIAL", 3),
        ("FAMILY_CARE", 4),
        ("EMERGENCY", 5),
    ]
    assert [(a.name, int(a)) for a in Access] == [("READ", 0), ("WRITE", 1)]
    assert [(k.name, int(k)) for k in ParticipantKind] == [
        ("NONE", 0),
        ("CARE_PROVIDER", 1),
        ("CLINICIAN", 2),
        ("RESEARCHER", 3),
        ("APP", 4),
        ("COMMISSIONER", 5),
        ("AUDITOR", 6),
    ]


@pytest.mark.parametrize(
    "text,expected",
    [
        ("genomics", Category.GENOMICS),
        ("GENOMICS", Category.GENOMICS),
        ("observations", Category.OBSERVATIONS),
        ("labs", Category.OBSERVATIONS),
        ("Observations & Labs", Category.OBSERVATIONS),
        ("mental-health", Category.MENTAL_HEALTH),
        ("Mental_Health", Category.MENTAL_HEALTH),
        ("  mental   health ", Category.MENTAL_HEALTH),
        ("wearables", Category.DEVICE_DATA),
        ("device & wearable data", Category.DEVICE_DATA),
        ("clinical-documents", Category.CLINICAL_DOCUMENTS),
        ("12", Category.CLINICAL_DOCUMENTS),
        (6, Category.GENOMICS),
    ],
)
def test_parse_category_names_aliases_and_numbers(text: str | int, expected: Category) -> None:
    assert parse(Category, text) is expected


@pytest.mark.parametrize(
    "enum_cls,text,expected",
    [
        (Purpose, "direct-care", Purpose.DIRECT_CARE),
        (Purpose, "audit", Purpose.COMMISSIONING_AND_AUDIT),
        (Purpose, "Family_Care", Purpose.FAMILY_CARE),
        (Access, "WRITE", Access.WRITE),
        (ParticipantKind, "care-provider", ParticipantKind.CARE_PROVIDER),
        (ParticipantKind, "provider", ParticipantKind.CARE_PROVIDER),
        (ParticipantKind, "auditor", ParticipantKind.AUDITOR),
    ],
)
def test_parse_other_code_tables(enum_cls: type[IntEnum], text: str, expected: IntEnum) -> None:
    assert parse(enum_cls, text) is expected


@pytest.mark.parametrize("text", ["genome", "mental-wealth", "", "13", -1, "all"])
def test_parse_unknown_category_lists_valid_names(text: str | int) -> None:
    with pytest.raises(UnknownCode) as caught:
        parse(Category, text)
    assert "genomics" in str(caught.value) and "mental-health" in str(caught.value)


def test_unknown_code_is_a_medledger_error_and_a_value_error() -> None:
    with pytest.raises(ValueError):
        parse(Purpose, "marketing")
    assert issubclass(UnknownCode, MedledgerError)


def test_parse_rejects_booleans() -> None:
    with pytest.raises(UnknownCode):
        parse(Access, True)  # type: ignore[arg-type]


@pytest.mark.parametrize("enum_cls", ALL_ENUMS)
def test_every_slug_and_label_parses_back_to_its_member(enum_cls: type[IntEnum]) -> None:
    for member in enum_cls:
        assert parse(enum_cls, slug(member)) is member
        assert parse(enum_cls, label(member)) is member
        assert parse(enum_cls, member.name) is member


def test_labels_are_human_readable() -> None:
    assert label(Category.OBSERVATIONS) == "observations & labs"
    assert label(Category.DEVICE_DATA) == "device & wearable data"
    assert label(Purpose.COMMISSIONING_AND_AUDIT) == "commissioning and audit"
    assert label(ParticipantKind.CARE_PROVIDER) == "care provider"
    assert slug(Category.MENTAL_HEALTH) == "mental-health"


def test_parse_many_reads_comma_separated_names_and_all() -> None:
    assert parse_many(Category, "genomics, labs,mental-health") == {
        Category.GENOMICS,
        Category.OBSERVATIONS,
        Category.MENTAL_HEALTH,
    }
    assert parse_many(Purpose, "all") == set(Purpose)
    assert parse_many(Purpose, "") == frozenset()
    assert parse_many(Access, ["read", 1]) == {Access.READ, Access.WRITE}


def test_parse_many_rejects_an_unknown_item() -> None:
    with pytest.raises(UnknownCode, match="'lab-rats'"):
        parse_many(Category, "genomics,lab-rats")


def test_category_bit_positions_match_codes() -> None:
    assert categories_to_mask([Category.GENOMICS]) == 1 << 6
    assert categories_to_mask([Category.DEMOGRAPHICS, Category.CLINICAL_DOCUMENTS]) == 0b1_0000_0000_0001
    assert purposes_to_mask([Purpose.RESEARCH, Purpose.EMERGENCY]) == 0b100010
    assert categories_to_mask([]) == 0
    assert all_mask(Category) == 0x1FFF and all_mask(Purpose) == 0x3F


@settings(max_examples=100, deadline=None, database=None)
@given(data=st.data())
def test_mask_round_trip_for_every_code_table(data: st.DataObject) -> None:
    enum_cls = data.draw(st.sampled_from(ALL_ENUMS))
    members = data.draw(st.frozensets(st.sampled_from(list(enum_cls))))
    mask = to_mask(members)
    assert 0 <= mask < 1 << 16
    assert from_mask(enum_cls, mask) == members


@settings(max_examples=100, deadline=None, database=None)
@given(mask=st.integers(min_value=0, max_value=0x1FFF))
def test_every_valid_category_mask_round_trips(mask: int) -> None:
    assert categories_to_mask(mask_to_categories(mask)) == mask


@pytest.mark.parametrize("mask", [1 << 13, 0x8000, 0xFFFF])
def test_category_mask_with_unknown_bits_is_rejected(mask: int) -> None:
    with pytest.raises(UnknownCode, match="not category codes"):
        mask_to_categories(mask)


@pytest.mark.parametrize("mask", [-1, 1 << 16, True])
def test_mask_outside_16_bits_is_rejected(mask: int) -> None:
    with pytest.raises(UnknownCode, match="16-bit"):
        mask_to_purposes(mask)


def test_to_mask_rejects_codes_that_do_not_fit_16_bits() -> None:
    with pytest.raises(UnknownCode, match="does not fit"):
        to_mask([16])
    with pytest.raises(UnknownCode):
        categories_to_mask([13])


def test_parse_rejects_a_member_of_another_code_table() -> None:
    with pytest.raises(UnknownCode, match=r"Purpose\.RESEARCH is not a category"):
        parse(Category, Purpose.RESEARCH)
