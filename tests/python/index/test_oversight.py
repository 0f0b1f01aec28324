"""The oversight report: disclosure control, counts from a real index, no patient address in any
output (JSON, CSV, PNG/SVG chart)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from medledger import codes
from medledger.errors import AccessDenied
from medledger.oversight import DisclosureControl, Period, build_report, disclosure_control, require_overseer
from medledger.oversight.chart import render
from medledger.oversight.report import PATIENT_ACCOUNTS

from .helpers import Chain, sync

DC = DisclosureControl()
DIRECT, RESEARCH, EMERGENCY = (
    int(codes.Purpose.DIRECT_CARE),
    int(codes.Purpose.RESEARCH),
    int(codes.Purpose.EMERGENCY),
)
DAY = 86_400


@given(st.integers(min_value=0, max_value=10**9))
def test_disclosure_control_suppresses_small_counts_and_rounds_the_rest(n: int) -> None:
    protected = DC.protect(n)
    if n <= 7:
        assert protected is None
    else:
        assert protected is not None and protected % 5 == 0 and abs(protected - n) <= 2 and protected >= 10


def test_disclosure_control_examples_and_exact_mode() -> None:
    assert [DC.protect(n) for n in (0, 7, 8, 12, 13, 17, 18, 100)] == [None, None, 10, 10, 15, 15, 20, 100]
    assert DisclosureControl(applied=False).protect(3) == 3
    with pytest.raises(ValueError):
        DC.protect(-1)


def test_only_commissioners_and_auditors_and_only_auditors_exact() -> None:
    address = "0x" + "ab" * 20
    require_overseer(address, codes.ParticipantKind.COMMISSIONER, False)
    require_overseer(address, codes.ParticipantKind.AUDITOR, False)
    for kind in (codes.ParticipantKind.NONE, codes.ParticipantKind.CLINICIAN, codes.ParticipantKind.RESEARCHER):
        with pytest.raises(AccessDenied, match="only commissioners and auditors"):
            require_overseer(address, kind, False)
    with pytest.raises(AccessDenied, match="suspended"):
        require_overseer(address, codes.ParticipantKind.AUDITOR, True)
    with pytest.raises(AccessDenied, match="Only auditors"):
        disclosure_control(codes.ParticipantKind.COMMISSIONER, exact=True)
    assert not disclosure_control(codes.ParticipantKind.AUDITOR, exact=True).applied


def population(chain: Chain) -> dict[str, object]:
    """Ten more patients who consent to direct care (eight also to research); 10 + 13 direct-care
    reads in two months, 8 research reads, 3 emergency openings and reads; the delegate (a
    registered patient) is also registered as a clinician and opens one emergency window."""
    records = []
    for i in range(10):
        name = f"p{i}"
        chain.new_patient(name)
        chain.grant(name, "clinician", purposes=1 << DIRECT)
        if i < 8:
            chain.grant(name, "researcher", purposes=1 << RESEARCH)
        records.append(chain.register(name, name))
    for rid in records:
        chain.access("clinician", rid, DIRECT)
    for rid in records[:8]:
        chain.access("researcher", rid, RESEARCH)
    for i in range(3):
        chain.send("emergency_clinician", "openEmergencyAccess", chain[f"p{i}"], 3600, b"\x05" * 32)
        chain.access("emergency_clinician", records[i], EMERGENCY)
    chain.send(
        "registrar",
        "registerParticipant",
        chain["delegate"],
        int(codes.ParticipantKind.CLINICIAN),
        b"\x02" * 32,
        b"\x03" * 32,
    )
    chain.send("delegate", "openEmergencyAccess", chain["p9"], 3600, b"\x05" * 32)
    first_month = chain.w3.eth.get_block("latest")["timestamp"]
    chain.advance(40 * DAY)
    for rid in records + records[:3]:
        chain.access("clinician", rid, DIRECT)
    return {"first": first_month}


def month(ts: int) -> str:
    import datetime as dt

    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m")


def patient_addresses(chain: Chain) -> list[str]:
    names = ["patient", "patient2", "delegate"] + [f"p{i}" for i in range(10)]
    return [chain[n] for n in names] + [chain[n].lower() for n in names] + [chain[n][2:].lower() for n in names]


def test_report_counts_with_disclosure_control_and_no_patient_address(
    chain: Chain, db_url: str, tmp_path: Path
) -> None:
    info = population(chain)
    store, _, _ = sync(db_url, chain)
    m1, m2 = month(int(info["first"])), month(chain.now())  # type: ignore[arg-type]
    report = build_report(
        store.engine,
        requested_by=chain["commissioner"],
        requester_kind=codes.ParticipantKind.COMMISSIONER,
        now=chain.now(),
        organisations={chain["emergency_clinician"]: "St Elsewhere A&E"},
    )
    t = report.tables
    assert t["accesses"].rows == [
        {"month": m1, "purpose": "direct-care", "category": "observations", "accesses": 10},
        {"month": m1, "purpose": "research", "category": "observations", "accesses": 10},  # 8, rounded
        {"month": m1, "purpose": "emergency", "category": "observations", "accesses": None},  # 3, suppressed
        {"month": m2, "purpose": "direct-care", "category": "observations", "accesses": 15},  # 13
    ]
    assert t["accesses"].notes["total"] == 35  # 34 exact
    assert t["accesses_by_category"].rows == [{"category": "observations", "accesses": 35}]
    assert t["emergency_openings"].rows == [
        {"organisation": "St Elsewhere A&E", "openings": None},
        {"organisation": PATIENT_ACCOUNTS, "openings": None},
    ]
    uptake = {r["purpose"]: r["patients"] for r in t["consent_uptake"].rows}
    assert uptake == {
        "direct-care": 10,
        "research": 10,
        "commissioning-and-audit": None,
        "commercial": None,
        "family-care": None,
        "emergency": None,
    }
    assert t["consent_uptake"].notes["registered_patients"] == 15  # 13
    assert t["refused_attempts"].rows == [] and t["refused_attempts"].notes["recorded"] is False

    exact = build_report(
        store.engine,
        requested_by=chain["auditor"],
        requester_kind=codes.ParticipantKind.AUDITOR,
        now=chain.now(),
        control=DisclosureControl(applied=False),
        period=Period(since=m2),
    )
    assert exact.tables["accesses"].rows == [
        {"month": m2, "purpose": "direct-care", "category": "observations", "accesses": 13}
    ]
    assert exact.tables["emergency_openings"].rows == []

    outputs = [report.to_csv(), str(report.to_json())]
    for name in ("chart.svg", "chart.png"):
        path = render(report, tmp_path / name)
        assert path.stat().st_size > 10_000
    svg = (tmp_path / "chart.svg").read_text()
    assert "<svg" in svg and (tmp_path / "chart.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "Record accesses per month" in svg  # text, not paths: the address check below means something
    outputs.append(svg)
    for text in outputs:
        for address in patient_addresses(chain):
            assert address not in text
    assert "[REDACTED]" in outputs[0] and "St Elsewhere A&E" in outputs[0]
