"""Fixtures of the integration tests (on top of tests/python/conftest.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from medledger import consent, records

from .helpers import A, C, P, obs_bytes
from .local_home import LocalHome, make_local_home, stop_local_home


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


@pytest.fixture
def local(tmp_path, node, node_config, cast) -> Iterator[LocalHome]:
    """A home on its own anvil (which the test may kill -9 and restart); IPFS is the session's."""
    home = make_local_home(tmp_path, node_config.ipfs_api, cast)
    yield home
    stop_local_home(home)
