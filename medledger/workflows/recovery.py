"""Settling a home's interrupted writes, even after the chain lost the deployment itself.

Every write journals its signed transaction before sending it (:mod:`medledger.chain.outbox`), so
after a crash, or a local node restarted from an older saved state, :func:`recover`:

1. connects; if the deployment is gone from the chain (a chain restarted from before it was saved),
   first settles the journal on the bare chain (:func:`medledger.chain.recovery.recover_transactions`:
   in the order they were signed, so a deployment this home made comes back first, then what
   depends on it), then connects again: still gone raises
   :class:`~medledger.errors.DeploymentGone` (this home did not deploy it: nothing to re-apply);
2. settles every journaled write (:func:`medledger.records.recover_pending`): records registered,
   re-applied, left pending or rolled back; grants, revocations and other transactions applied,
   re-applied, or reported lost.
"""

from __future__ import annotations

from medledger import records
from medledger.chain.outbox import Journal, journal_directory
from medledger.chain.recovery import recover_transactions
from medledger.client import Client, connect_chain
from medledger.config import Settings
from medledger.errors import DeploymentGone


def recover(settings: Settings, *, wait: float = 0.0) -> list[tuple[str, str]]:
    """Settle the home's journal on the chain of ``settings``; ``(what, outcome)`` per write (see the
    module's docstring). ``wait``: seconds to wait for a transaction still pending."""
    settled: list[tuple[str, str]] = []
    try:
        client = Client.connect(settings)
    except DeploymentGone:
        chain = connect_chain(settings)
        journal = Journal(journal_directory(settings.cache_dir, chain.chain_id))
        with journal.recovering():
            settled += recover_transactions(chain, journal, wait=wait).reports
        client = Client.connect(settings)
    return settled + records.recover_pending(client, wait=wait)
