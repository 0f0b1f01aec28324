"""The portal's relayer: submits a patient's signed consent request and pays its gas, after checking
it costs nothing to refuse.

Checks, cheapest first, before any transaction is sent (parsing and the checks are the library's
own, :mod:`medledger.consent.relay`, the same as ``medledger consent submit``):

1. shape (:func:`~medledger.consent.parse_request`): a ``Grant`` or ``Revoke`` request, as the CLI
   writes it or as a wallet produced it, each field within its EIP-712 type (a malformed one is named);
2. (:func:`~medledger.consent.verify_signature`) the EIP-712 domain names this chain and this
   deployment, and the signature is the request's patient's (recovered locally; a contract wallet is
   asked, ERC-1271);
4. the patient's rate limit: refused when her window is full. A request counts only once its
   transaction was sent, so nobody can use up her allowance with forged requests, nor by replaying
   her real ones (they are public in the transactions' call data) once they are used or superseded;
5. the library's pre-check: not superseded by a newer decision on the same consent, the patient's
   current nonce (not invalidated), the deadline not passed;
6. the transaction is simulated (the library does so before sending): a request the contract would
   refuse is refused with the contract's reason, and no gas is spent.

Steps 4 to 6 run for one request at a time: the relayer is one account, and the same request sent
from several sides at once must be submitted once, not raced into transactions that revert.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from medledger.errors import AccessDenied, ContractRevert, MedledgerError
from medledger.keystore import Identity

from .backend import Backend


class RateLimited(MedledgerError):
    """A patient sent more signed requests than the relayer accepts in its window (HTTP 429)."""

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class RateLimiter:
    """At most ``limit`` events per key in any ``window`` seconds (sliding window)."""

    def __init__(self, limit: int, window: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self.window = window
        self._clock = clock
        self._events: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def check(self, key: str) -> None:
        """Raise :class:`RateLimited` if ``key`` has no event left in the window (counts nothing)."""
        with self._lock:
            self._room(key)

    def take(self, key: str) -> None:
        """Count one event for ``key``, or raise :class:`RateLimited` (and count nothing)."""
        with self._lock:
            self._room(key).append(self._clock())

    def _room(self, key: str) -> deque[float]:
        now = self._clock()
        events = self._events.setdefault(key, deque())
        while events and events[0] <= now - self.window:
            events.popleft()
        if len(events) >= self.limit:
            retry = events[0] + self.window - now
            raise RateLimited(
                f"The relayer accepts at most {self.limit} signed requests per patient every "
                f"{self.window:.0f} s; patient {key} may send the next one in {retry:.0f} s "
                "(or send it from her own wallet as a transaction)",
                retry,
            )
        return events


class Relayer:
    """Checks and submits signed requests from one funded account."""

    def __init__(
        self,
        backend: Backend,
        account: Identity,
        *,
        limit: int = 5,
        window: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.backend = backend
        self.account = account
        self.limiter = RateLimiter(limit, window, clock)
        self._sending = threading.Lock()

    @property
    def address(self) -> str:
        return self.account.address

    def relay(self, body: Any) -> dict[str, Any]:
        parsed = self.backend.parse(body)  # MalformedRequest names the field that is wrong
        verified = self.backend.verify(parsed)  # this chain and contract, signed by its patient
        patient = verified.patient
        with self._sending:
            self.limiter.check(patient)
            try:
                changed = self.backend.submit(self.account, verified)
            except MedledgerError as exc:
                # A refusal (pre-check or simulation) sent nothing and counts nothing; any other failure
                # (the node, a transaction still pending) may have been sent and counts.
                if not isinstance(exc, (AccessDenied, ContractRevert)):
                    self.limiter.take(patient)
                raise
            self.limiter.take(patient)
        return {"changed": changed, "relayer": self.address}
