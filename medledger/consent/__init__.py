"""Consent from patient wallets: direct grants and revocations (:mod:`.grants`), signed requests a
relayer checks and submits (:mod:`.signed`, :mod:`.relay`), delegates (:mod:`.delegates`) and emergency access
(:mod:`.emergency`). The decision itself and the consent view are :mod:`medledger.access`'s;
revoking *and re-encrypting* is the workflow :func:`medledger.workflows.revoke`.
"""

from medledger.access import check_access, consent_of, grants_given, grants_held, is_permitted
from medledger.chain import FOREVER, Consent, ConsentState
from medledger.chain.eip712 import GRANT_TYPES, REVOKE_TYPES

from .delegates import appoint_delegate, remove_delegate
from .emergency import (
    close_emergency,
    confirm_emergency,
    emergency_access,
    open_emergency,
    reason_code,
    reason_of,
    release_emergency_keys,
    set_emergency_opt_out,
)
from .grants import grant, revoke, rotation_owed, send_keys
from .relay import (
    VerifiedRequest,
    check_request,
    parse_request,
    precheck,
    recover_signer,
    submit,
    verify_signature,
)
from .signed import (
    DEFAULT_VALIDITY,
    REQUEST_FORMAT,
    invalidate_signed_requests,
    load_request,
    prepare_grant,
    prepare_revoke,
    read_request,
    sign_grant,
    sign_revoke,
    write_request,
)

#: A consent as it stands on chain (kept under its earlier name).
Grant = Consent

__all__ = [
    "DEFAULT_VALIDITY",
    "FOREVER",
    "GRANT_TYPES",
    "REQUEST_FORMAT",
    "REVOKE_TYPES",
    "Consent",
    "ConsentState",
    "Grant",
    "VerifiedRequest",
    "appoint_delegate",
    "check_access",
    "check_request",
    "close_emergency",
    "confirm_emergency",
    "consent_of",
    "emergency_access",
    "grant",
    "grants_given",
    "grants_held",
    "invalidate_signed_requests",
    "is_permitted",
    "load_request",
    "open_emergency",
    "parse_request",
    "precheck",
    "prepare_grant",
    "prepare_revoke",
    "read_request",
    "reason_code",
    "reason_of",
    "recover_signer",
    "release_emergency_keys",
    "remove_delegate",
    "revoke",
    "rotation_owed",
    "send_keys",
    "set_emergency_opt_out",
    "sign_grant",
    "sign_revoke",
    "submit",
    "verify_signature",
    "write_request",
]
