"""The portal's relayer: submits a patient's signed consent request and pays its gas, after checking
it costs nothing to refuse.

Checks, cheapest first, before any transaction is sent (parsing and the chain-side checks are the
library's own: :func:`medledger.chain.eip712.from_document`, :func:`medledger.consent.recover_signer`,
:func:`medledger.consent.submit` with its ``check_request``):

1. shape: a ``Grant`` or ``Revoke`` request in the CLI's signed-request format, exactly its fields;
2. the EIP-712 domain names this chain and this deployment;
3. the signature recovers to the request's patient (checked locally, no chain call);
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

from medledger.errors import AccessDenied, ConfigError, ContractRevert, MedledgerError
from medledger.keystore import Identity

from .backend import Backend, address


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


def _int(value: Any, name: str) -> int:
    """A non-negative integer; browsers send those above 2^53 as decimal strings."""
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 78:
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigError(f"The signed request's {name} is not a non-negative integer")
    return value


def normalise(request: Any) -> dict[str, Any]:
    """The request with its numbers as integers and its addresses checksummed, as the library's parser
    takes them (a browser wallet's JSON carries large numbers as decimal strings). ConfigError says what
    is malformed; everything else about the shape is checked by the library's parser."""
    if not isinstance(request, dict) or not isinstance(request.get("message"), dict):
        raise ConfigError("Not a signed consent request (a JSON object with its message, domain and signature)")
    if not isinstance(request.get("domain"), dict) or not isinstance(request.get("signature"), str):
        raise ConfigError("The signed request lacks its domain or signature")
    message = dict(request["message"])
    for name, value in message.items():
        if name in ("patient", "grantee"):
            message[name] = address(value)
        elif name != "keyEnvelope":
            message[name] = _int(value, name)
    return {**request, "message": message}


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
        request = normalise(body)
        typed = self.backend.parse(request)
        patient = typed.patient
        expected = self.backend.domain()
        signed_for = request["domain"]
        try:
            same = (signed_for.get("name"), signed_for.get("version"), int(signed_for.get("chainId")),
                    address(signed_for.get("verifyingContract"))) == tuple(expected.values())  # fmt: skip
        except (TypeError, ValueError, ConfigError):
            same = False
        if not same:
            raise AccessDenied(
                f"The request was signed for another chain or contract; this relayer submits to chain "
                f"{expected['chainId']}, contract {expected['verifyingContract']}"
            )
        try:
            signer = self.backend.signer_of(request)
        except Exception:  # a malformed signature is just not hers  # noqa: BLE001
            signer = None
        if signer != patient:
            raise AccessDenied(
                f"The signature is not patient {patient}'s signature of this request (wrong key, chain "
                "or contract, or altered); the relayer does not submit it"
            )
        with self._sending:
            self.limiter.check(patient)
            try:
                changed = self.backend.submit(self.account, request)
            except MedledgerError as exc:
                # A refusal (pre-check or simulation) sent nothing and counts nothing; any other failure
                # (the node, a transaction still pending) may have been sent and counts.
                if not isinstance(exc, ContractRevert):
                    self.limiter.take(patient)
                raise
            self.limiter.take(patient)
        return {"changed": changed, "relayer": self.address}
