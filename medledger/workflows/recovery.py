"""Settling a home's interrupted writes, even after the chain lost the deployment itself.

Every write journals its signed transaction before sending it (:mod:`medledger.chain.outbox`), so
after a crash, or a local node restarted from an older saved state, :func:`recover`:

1. connects; if there is no live deployment (a chain restarted from before it was saved, or a
   ``deploy`` interrupted before it recorded its deployment), first settles the journal on the bare
   chain (:func:`medledger.chain.recovery.recover_journal`: in the order they were signed, so a
   deployment this home made comes back first, and is recorded in the deployments file, then what
   depends on it), then connects again: still gone raises
   :class:`~medledger.errors.DeploymentGone` (this home did not deploy it: nothing to re-apply),
   still none :class:`~medledger.errors.DeploymentNotFound` (unless something was settled);
2. settles every journaled write (:func:`medledger.records.recover_pending`): records registered,
   re-applied, left pending or rolled back; grants, revocations, key rotations and other
   transactions applied, re-applied, or reported lost.
"""

from __future__ import annotations

from medledger import records
from medledger.chain.recovery import recover_journal
from medledger.client import Client, connect_chain
from medledger.config import Settings
from medledger.errors import DeploymentGone, DeploymentNotFound


def recover(settings: Settings, *, wait: float = 0.0) -> list[tuple[str, str]]:
    """Settle the home's journal on the chain of ``settings``; ``(what, outcome)`` per write (see the
    module's docstring). ``wait``: seconds to wait for a transaction still pending."""
    settled: list[tuple[str, str]] = []
    try:
        client = Client.connect(settings)
    except DeploymentNotFound:  # (DeploymentGone is one)
        settled += recover_journal(connect_chain(settings), wait=wait)
        try:
            client = Client.connect(settings)
        except DeploymentGone:
            raise
        except DeploymentNotFound:
            if settled:
                return settled
            raise
    return settled + records.recover_pending(client, wait=wait)
