"""Category keys: how a patient's records are opened to exactly the people she consented to.

* Each patient has an X25519 key pair per category (13 of them). The chain holds each category's
  current **public** key, its epoch and until when it may be sealed to (``categoryKey``), and logs
  every key it ever held (``CategoryKeyRotated``). Every record key is sealed to the current public
  key of its category, so anyone allowed to write can add a record without being able to read others.
* Registering generates the 13 pairs, registers their public keys (``registerPatient``) and sends the
  patient her own secrets in a **key envelope** to herself (``publishKeyEnvelope(patient, patient,
  ...)``): the secrets live only in envelopes, each on IPFS behind an on-chain digest.
* A read grant carries an envelope for the grantee (``ConsentGranted.keyEnvelope``); later ones (after
  a rotation, for a delegate or an emergency clinician) are ``KeyEnvelopePublished`` events. A holder's
  secrets are what its envelopes carry, **each checked against the public key the chain recorded for
  its category and epoch**: a secret that does not match (or lies outside the categories its
  publication names) is ignored and reported (:class:`~medledger.errors.RejectedKeyWarning`,
  :attr:`Keyring.rejected`), never used.
* Writers read the category's key per record and refuse a **stale** one (chain time at or past
  ``validUntil``: a reader it was released to has lost access) with
  :class:`~medledger.errors.StaleCategoryKey`; the chain refuses such a record too.
* **Syncing** (:meth:`Keyring.sync`, run by every patient-side command that ends access, and by
  ``medledger keys sync``) rotates every stale category: new pairs, the patient's envelope first,
  then ``setCategoryKeys``, then fresh envelopes (every epoch) for every reader that still has live
  access; and it sends any reader (or the patient) the current keys it holds no envelope for. What a
  former reader already decrypted, or the old keys it holds, cannot be taken back; records written
  afterwards are closed to it, however its access ended.

* **Rotating the patient's own encryption key** (:func:`rotate_patient_key`) rotates all 13 category
  keys with it and re-seals everything she holds to the new key first, so she is never locked out.

Modules: :mod:`.ring` (the :class:`Keyring`: registration, holders, passing keys on, rotation,
sync), :mod:`.readers` (who may read now, and who lacks which current key), :mod:`.patient_key`.
"""

from .patient_key import PatientKeyRotation, rotate_patient_key
from .readers import ReaderAccess, live_access, undelivered
from .ring import ALL_CATEGORIES, Keyring, RejectedKey, SecretKeys, SyncReport, check_writable

__all__ = [
    "ALL_CATEGORIES",
    "Keyring",
    "PatientKeyRotation",
    "ReaderAccess",
    "RejectedKey",
    "SecretKeys",
    "SyncReport",
    "check_writable",
    "live_access",
    "rotate_patient_key",
    "undelivered",
]
