"""Fixtures of the integration tests (on top of tests/python/conftest.py)."""

from __future__ import annotations

import pytest

from medledger import consent, records

from .helpers import A, C, P, obs_bytes


@pytest.fixture
def gp_writes(client, patient, clinician):
    """The clinician may write (and read) observations for direct care."""
    consent.grant(client, patient, clinician.address, A.WRITE, [C.OBSERVATIONS], [P.DIRECT_CARE])
    consent.grant(client, patient, clinician.address, A.READ, [C.OBSERVATIONS], [P.DIRECT_CARE])
    return clinician


@pytest.fixture
def lab(client, patient, gp_writes) -> records.WriteResult:
    """One observation written by the clinician."""
    return records.write_record(client, gp_writes, patient.address, obs_bytes())
