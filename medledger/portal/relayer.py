"""The portal's relayer: submits a patient's signed consent request and pays its gas, after checking
it costs nothing to refuse.

Checks, cheapest first, before any transaction is sent:

1. shape: a ``Grant`` or ``Revoke`` request in the CLI's signed-request format, every field present;
2. the EIP-712 domain names this chain and this deployment;
3. the signature recovers to the request's patient (checked locally, no chain call);
4. the patient's rate limit (counted only for requests she really signed, so nobody can use up her
   allowance with forged requests);
5. the deadline has not passed and the nonce is her current one;
6. the transaction is simulated (the library does so before sending): a request the contract would
   refuse is refused with the contract's reason, and no gas is spent.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from medledger.errors import AccessDenied, ConfigError, MedledgerError
from medledger.keystore import Identity

from .backend import Backend, address

REQUEST_FORMAT = "medledger-signed-consent/1"
_FIELDS = {
    "Grant": ("patient", "grantee", "access", "categories", "purposes", "start", "expiry", "keyEnvelope",
              "nonce", "deadline"),
    "Revoke": ("patient", "grantee", "access", "nonce", "deadline"),
}


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

    def take(self, key: str) -> None:
        """Count one event for ``key``, or raise :class:`RateLimited` (and count nothing)."""
        with self._lock:
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
            events.append(now)


def _int(value: Any, name: str) -> int:
    """A non-negative integer; browsers send those above 2^53 as decimal strings."""
    if isinstance(value, str) and value.isdigit() and len(value) <= 78:
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigError(f"The signed request's {name} is not a non-negative integer")
    return value


def check_shape(request: Any) -> dict[str, Any]:
    """The request if it has the shape of a signed consent request; ConfigError says what is wrong."""
    if not isinstance(request, dict) or request.get("format") != REQUEST_FORMAT:
        raise ConfigError(f"Not a signed consent request (format must be {REQUEST_FORMAT!r})")
    kind = request.get("kind")
    if kind not in _FIELDS:
        raise ConfigError("A signed consent request is a Grant or a Revoke")
    message, domain, signature = request.get("message"), request.get("domain"), request.get("signature")
    if not isinstance(message, dict) or set(message) != set(_FIELDS[kind]):
        raise ConfigError(f"A signed {kind} has exactly the fields {', '.join(_FIELDS[kind])}")
    if not isinstance(domain, dict) or not isinstance(signature, str):
        raise ConfigError("The signed request lacks its domain or signature")
    if not signature.startswith("0x") or len(signature) != 132:
        raise ConfigError("The signature must be 65 bytes of hex (0x + 130 digits)")
    try:
        bytes.fromhex(signature[2:])
    except ValueError:
        raise ConfigError("The signature is not hex") from None
    for name in ("patient", "grantee"):
        message[name] = address(message[name])
    for name in _FIELDS[kind]:
        if name not in ("patient", "grantee", "keyEnvelope"):
            message[name] = _int(message[name], name)
    if kind == "Grant":
        envelope = message["keyEnvelope"]
        if not isinstance(envelope, str) or not envelope.startswith("0x") or len(envelope) != 66:
            raise ConfigError("The key envelope pointer must be 32 bytes of hex")
    return request


class Relayer:
    """Checks and submits signed requests from one funded account."""

    def __init__(self, backend: Backend, account: Identity, *, limit: int = 5, window: float = 60.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.backend = backend
        self.account = account
        self.limiter = RateLimiter(limit, window, clock)

    @property
    def address(self) -> str:
        return self.account.address

    def relay(self, request: Any) -> dict[str, Any]:
        request = check_shape(request)
        message = request["message"]
        patient = message["patient"]
        info = self.backend.info()
        domain = request["domain"]
        expected = {"name": "medledger", "version": "1", "chainId": info["chain_id"],
                    "verifyingContract": info["contract"]}
        try:
            same = (domain.get("name"), domain.get("version"), int(domain.get("chainId")),
                    address(domain.get("verifyingContract"))) == tuple(expected.values())
        except (TypeError, ValueError, ConfigError):
            same = False
        if not same:
            raise AccessDenied(
                f"The request was signed for another chain or contract; this relayer submits to chain "
                f"{info['chain_id']}, contract {info['contract']}"
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
        self.limiter.take(patient)
        if message["deadline"] <= info["now"]:
            raise AccessDenied("The signed request's deadline has passed; sign a new one")
        current = self.backend.nonce(patient)
        if message["nonce"] != current:
            raise AccessDenied(
                f"The signed request was already used or is out of order: patient {patient}'s next nonce is {current}"
            )
        changed = self.backend.submit(self.account, request)
        return {"changed": changed, "relayer": self.address}
