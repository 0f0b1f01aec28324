"""Procedures of several steps across consent, keys and records (above all of them):
:func:`revoke` (revoke, rotate the keys, re-encrypt the old records), :func:`reencrypt_records`
and :func:`recover` (settle the home's interrupted writes after a crash) and :func:`follow` (keep a
patient's keys in step with consent, round after round)."""

from .keysync import follow
from .recovery import recover
from .reencrypt import Reencrypted, reencrypt_records
from .revocation import check_revoke, revoke

__all__ = ["Reencrypted", "check_revoke", "follow", "recover", "reencrypt_records", "revoke"]
