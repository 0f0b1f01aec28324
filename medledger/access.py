"""The access decision and the consent view: who may do what now, as the chain answers it.

Below records, consent and the key ring, so that each of them can ask without importing the others:
:func:`check_access` is the decision (the chain's ``checkAccess``: the refusal says why, in words),
:func:`consent_of` one consent as it stands, and :func:`grants_held` / :func:`grants_given` the
off-chain index of grants (rebuilt from ``ConsentGranted`` events, confirmed against current state).
"""

from __future__ import annotations

from collections.abc import Iterable

from . import codes
from .chain import Consent
from .chain.events import ConsentGranted
from .client import Client, as_address


def check_access(
    client: Client, patient: str, accessor: str, access: codes.Access, category: int, purpose: int
) -> bool:
    """Raise :class:`~medledger.errors.AccessDenied` (with the chain's reason, in words) unless the
    access is allowed now; return whether it rests on an emergency opening."""
    return client.contract.check_access(patient, accessor, access, category, purpose)


def is_permitted(
    client: Client, patient: str, accessor: str, access: codes.Access, category: int, purpose: int
) -> bool:
    """The same decision as :func:`check_access`, as a yes or no."""
    return client.contract.is_permitted(patient, accessor, access, category, purpose)


def consent_of(client: Client, patient: str, grantee: str, access: codes.Access) -> Consent:
    """The consent ``patient`` gave ``grantee`` for ``access``, as it stands on chain now."""
    return client.contract.consent(patient, grantee, access)


def grants_held(client: Client, grantee: str, *, live_only: bool = True) -> list[Consent]:
    """Every consent currently made to ``grantee`` (a study, an app): from ConsentGranted events
    indexed by grantee, each confirmed against the chain's current state."""
    grantee = as_address(grantee)
    pairs = {(e.patient, e.access) for e in client.history.events((ConsentGranted,), grantee=grantee)}
    return _current(client, ((p, grantee, a) for p, a in pairs), live_only)


def grants_given(client: Client, patient: str, *, live_only: bool = True) -> list[Consent]:
    """Every consent ``patient`` has made that still stands."""
    patient = as_address(patient)
    pairs = {(e.grantee, e.access) for e in client.history.events((ConsentGranted,), patient=patient)}
    return _current(client, ((patient, g, a) for g, a in pairs), live_only)


def _current(client: Client, keys: Iterable[tuple[str, str, codes.Access]], live_only: bool) -> list[Consent]:
    now = client.now()
    out = []
    for patient, grantee, access in sorted(keys):
        consent = consent_of(client, patient, grantee, access)
        if not consent.exists or (live_only and not now < consent.expiry):
            continue
        out.append(consent)
    return out
