"""Key envelopes: category secret keys sealed from a patient to a grantee, a delegate or herself."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from typing import Any, TypedDict

from eth_utils import is_address, to_checksum_address

from medledger.errors import DecryptionError, TamperingDetected

from ._shapes import KEY_BYTES, MAX_CATEGORY, MAX_EPOCH, check_code, check_key, checksum
from .primitives import KeyPair, seal, secret_of, unseal

ENVELOPE_FORMAT = "medledger/envelope/v1"


class EnvelopeContents(TypedDict):
    """An opened key envelope: the patient and her category secret keys by category and epoch."""

    patient: str
    keys: dict[int, dict[int, bytes]]


def _canonical(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode("utf-8")


def make_envelope(recipient_public: bytes, patient: bytes | str, keys: Mapping[int, Mapping[int, bytes]]) -> bytes:
    """Seal category secret keys (``category -> epoch -> secret``) to a recipient's public key.

    The sealed content is canonical JSON:
    ``{"format": "medledger/envelope/v1", "keys": {"<category>": {"<epoch>": base64}}, "patient": address}``.
    """
    encoded: dict[str, dict[str, str]] = {}
    for category, by_epoch in keys.items():
        cat = check_code(category, "category", MAX_CATEGORY)
        encoded[str(cat)] = {}
        for epoch, secret in by_epoch.items():
            ep = check_code(epoch, "key epoch", MAX_EPOCH)
            raw = secret_of(secret) if isinstance(secret, KeyPair) else check_key(secret, "category secret key")
            encoded[str(cat)][str(ep)] = base64.b64encode(raw).decode("ascii")
    payload = {"format": ENVELOPE_FORMAT, "patient": checksum(patient), "keys": encoded}
    return seal(recipient_public, _canonical(payload))


def _int_key(text: object, what: str, maximum: int) -> int:
    if not isinstance(text, str) or not text.isdigit() or str(int(text)) != text or int(text) > maximum:
        raise TamperingDetected(f"key envelope is malformed: {what} {text!r} is not a valid number")
    return int(text)


def open_envelope(
    secret: KeyPair | bytes,
    blob: bytes,
    *,
    expected_patient: bytes | str | None = None,
) -> EnvelopeContents:
    """Open a key envelope with the recipient's secret key.

    Raises DecryptionError if the envelope was sealed to another key, TamperingDetected if its
    content is malformed or (when ``expected_patient`` is given) names another patient.
    """
    try:
        raw = unseal(secret, blob)
    except DecryptionError:
        raise DecryptionError(
            "this key envelope was not sealed to your encryption key (or was altered); ask the "
            "patient to issue an envelope to your current public key"
        ) from None

    def bad(what: str) -> TamperingDetected:
        return TamperingDetected(f"key envelope is malformed ({what})")

    try:
        obj = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise bad("not UTF-8 JSON") from None
    if not isinstance(obj, dict) or set(obj) != {"format", "patient", "keys"}:
        raise bad("unexpected structure")
    if obj["format"] != ENVELOPE_FORMAT:
        raise bad("unknown format")
    if not isinstance(obj["patient"], str) or not is_address(obj["patient"]):
        raise bad("'patient' is not an address")
    patient = to_checksum_address(obj["patient"])
    if not isinstance(obj["keys"], dict):
        raise bad("'keys' is not an object")
    keys: dict[int, dict[int, bytes]] = {}
    for cat_text, by_epoch in obj["keys"].items():
        category = _int_key(cat_text, "category", MAX_CATEGORY)
        if not isinstance(by_epoch, dict):
            raise bad(f"keys of category {category} are not an object")
        keys[category] = {}
        for epoch_text, b64 in by_epoch.items():
            epoch = _int_key(epoch_text, "epoch", MAX_EPOCH)
            try:
                secret_key = base64.b64decode(b64, validate=True) if isinstance(b64, str) else b""
            except (binascii.Error, ValueError):
                secret_key = b""
            if len(secret_key) != KEY_BYTES:
                raise bad(f"key of category {category} epoch {epoch} is not 32 bytes of base64")
            keys[category][epoch] = secret_key
    if expected_patient is not None and patient != checksum(expected_patient):
        raise TamperingDetected(
            f"key envelope carries keys of patient {patient}, not of the expected {checksum(expected_patient)}"
        )
    return {"patient": patient, "keys": keys}
