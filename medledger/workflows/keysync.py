"""Keeping a patient's keys in step with consent, round after round (``medledger keys sync --follow``).

:meth:`~medledger.keyring.Keyring.sync` does one round: it rotates the categories whose keys went
stale and sends every live reader the keys it lacks. Keys go stale on their own when an access ends
by time (a consent's or delegation's expiry, the end of an emergency window): the chain set their
``validUntil`` to that end when they were released. :func:`follow` runs a round, then sleeps until
the next key is due to go stale (:attr:`~medledger.keyring.SyncReport.next_due`) or ``interval``
seconds, whichever comes first (a reader reinstated after a suspension, or a signed revocation a
relayer submitted, cannot be foreseen), and carries on after a node that stops answering.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from medledger.client import Client, as_address
from medledger.errors import ServiceUnavailable, StorageError
from medledger.keyring import Keyring, SyncReport
from medledger.keystore import Identity

#: How long ``follow`` sleeps at most between rounds (seconds).
DEFAULT_INTERVAL = 60.0


def follow(
    client: Client,
    manager: Identity,
    patient: str | None = None,
    *,
    interval: float = DEFAULT_INTERVAL,
    rounds: int | None = None,
    on_report: Callable[[SyncReport], None] = lambda report: None,
    on_error: Callable[[Exception], None] = lambda error: None,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Sync ``patient``'s keys (default: the manager's own) as ``manager``, ``rounds`` times (None:
    until interrupted), sleeping between rounds until the next key is due or ``interval`` seconds.
    A round that fails because a node is down is reported to ``on_error`` and tried again later."""
    patient = as_address(patient or manager.address)
    done = 0
    while rounds is None or done < rounds:
        done += 1
        wait = interval
        try:
            report = Keyring(client).sync(manager, patient)
        except (ServiceUnavailable, StorageError) as error:
            on_error(error)
        else:
            on_report(report)
            if report.next_due is not None:
                wait = min(interval, max(1.0, float(report.next_due - client.now())))
        if rounds is None or done < rounds:
            sleep(wait)
