"""Procedures of several steps across consent, keys and records (above all of them):
:func:`revoke` (revoke, rotate the keys, re-encrypt the old records) and
:func:`reencrypt_records`."""

from .reencrypt import Reencrypted, reencrypt_records
from .revocation import check_revoke, revoke

__all__ = ["Reencrypted", "check_revoke", "reencrypt_records", "revoke"]
