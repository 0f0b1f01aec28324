// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IERC5267} from "@openzeppelin/contracts/interfaces/IERC5267.sol";
import {IParticipantRegistry} from "./IParticipantRegistry.sol";

/// @title IConsentManager
/// @notice The access-control list of a medledger network: which grantee may read or write which
/// categories of a patient's data, for which purposes, from when until when; who acts for the patient
/// (delegates); time-limited emergency access; and the release of category keys to readers.
/// Every other contract asks {checkAccess}.
/// @dev Codes (bit `i` of a mask stands for code `i`):
///  - Categories (uint8 code, uint16 mask): 0 demographics, 1 allergies, 2 medications, 3 conditions,
///    4 observations and labs, 5 imaging, 6 genomics, 7 mental health, 8 sexual health,
///    9 device and wearable data, 10 procedures, 11 immunizations, 12 clinical documents.
///  - Purposes (uint8 code, uint16 mask): 0 direct care, 1 research, 2 commissioning and audit,
///    3 commercial use, 4 family care, 5 emergency.
/// Grants are enumerated off-chain from {ConsentGranted} and {ConsentRevoked} (indexed by grantee):
/// an on-chain list would cost two more storage writes per grant.
///
/// Rules that hold across functions:
///  - **Delegates.** A delegate is a registered patient appointed by the patient, bounded by
///    categories and an expiry, with an id (per patient, from 1). It manages consents within its
///    categories, publishes key envelopes and rotates keys of its categories, reads for family care,
///    confirms and closes emergency accesses, and invalidates signed requests. It can never be the
///    grantee of a grant it makes. A consent it makes carries its delegation id and is bounded by the
///    delegation's *current* terms: it covers only categories the delegation still covers, ends when
///    the delegation expires or is removed, and does not work while the delegate is a suspended
///    participant. Re-appointing a live delegate keeps its id (new bounds apply to its earlier
///    consents); appointing it after removal or expiry gives a new id (its earlier consents stay ended).
///  - **Suspension.** A suspended participant loses every delegate power it holds as a person and
///    reads nothing, until reinstated. The patient's own rights over its own data are never suspended.
///  - **Signed requests** ({grantBySig}, {revokeBySig}) carry `issuedAt`, the chain time at which the
///    wallet signed, and the patient's current {nonces} value. They are refused unless `issuedAt` is
///    later than the consent's `updatedAt` (the time of the last decision that set it), so a replay or
///    an older request never undoes a newer decision, and a request held back blocks nothing else.
///    The nonce is not consumed by use: {invalidateSignedRequests} consumes it, voiding every
///    outstanding request at once.
///  - **Keys that follow consent.** Releasing category keys to a reader ({grant} of read access with a
///    key envelope, {publishKeyEnvelope}) clamps each category key's `validUntil` to the end of that
///    reader's access; every event that ends a reader's access early (a revocation or narrowing of a
///    read consent whose keys were released, a delegate's removal or narrowing, closing an emergency
///    access, opting out of emergency access) sets `validUntil` to now for the categories concerned.
///    Writers refuse stale keys, so the patient's tools rotate them ({setCategoryKeys}).
interface IConsentManager is IParticipantRegistry, IERC5267 {
    /// @notice Whether a consent lets the grantee read or write.
    enum Access {
        Read,
        Write
    }

    /// @notice The terms of a consent, as given to {grant}.
    /// @param categories Mask of the categories covered.
    /// @param purposes Mask of the purposes covered.
    /// @param start First second at which the consent is valid (0: at once).
    /// @param expiry First second at which the consent is no longer valid.
    struct Consent {
        uint16 categories;
        uint16 purposes;
        uint64 start;
        uint64 expiry;
    }

    /// @notice A stored consent, as returned by {consent}. Packed into one storage slot.
    /// @param categories Mask of the categories covered (0: none, or revoked).
    /// @param purposes Mask of the purposes covered.
    /// @param start First second at which the consent is valid.
    /// @param expiry First second at which the consent is no longer valid (0: none, or revoked).
    /// @param updatedAt Time of the last decision that set this slot: `block.timestamp` of a direct
    /// grant or revocation, the `issuedAt` of a signed one (0: never set).
    /// @param delegation Id of the delegation that made the consent (0: the patient, directly or by signature).
    /// @param keysReleased Whether category keys were released to the grantee under this consent.
    struct ConsentState {
        uint16 categories;
        uint16 purposes;
        uint64 start;
        uint64 expiry;
        uint64 updatedAt;
        uint24 delegation;
        bool keysReleased;
    }

    /// @notice A delegation, as returned by {delegation} and {delegationById}.
    /// @param id The delegation's id among the patient's delegations (0: none).
    /// @param delegate The delegate (zero once removed).
    /// @param categories Mask of the categories the delegate may manage and read.
    /// @param expiry First second at which the delegation is no longer valid.
    struct Delegation {
        uint24 id;
        address delegate;
        uint16 categories;
        uint64 expiry;
    }

    /// @notice An emergency access, as returned by {emergencyAccess}.
    /// @param expiresAt When the current (or last) window ends or ended (0: never opened).
    /// @param runStart Start of the current run of openings (0: none); openings may not extend the
    /// access past `runStart + MAX_EMERGENCY_RUN` unless the patient or a delegate confirms.
    /// @param open Whether the access is open now (not expired, closed, or voided by an opt-out).
    struct EmergencyAccess {
        uint64 expiresAt;
        uint64 runStart;
        bool open;
    }

    /// @notice A grant signed off-chain by the patient (EIP-712 type `Grant`), submitted by anyone.
    /// @param issuedAt Chain time at which the wallet signed (not in the future).
    /// @param nonce The patient's current {nonces} value.
    /// @param deadline Last second at which the request may be submitted.
    // The field order is the EIP-712 type's, signed by wallets.
    // solhint-disable-next-line gas-struct-packing
    struct GrantRequest {
        address patient;
        address grantee;
        Access access;
        uint16 categories;
        uint16 purposes;
        uint64 start;
        uint64 expiry;
        bytes32 keyEnvelope;
        uint64 issuedAt;
        uint256 nonce;
        uint256 deadline;
    }

    /// @notice A revocation signed off-chain by the patient (EIP-712 type `Revoke`), submitted by anyone.
    // The field order is the EIP-712 type's, signed by wallets.
    // solhint-disable-next-line gas-struct-packing
    struct RevokeRequest {
        address patient;
        address grantee;
        Access access;
        uint64 issuedAt;
        uint256 nonce;
        uint256 deadline;
    }

    // ---------------------------------------------------------------------------------------------
    // Errors
    // ---------------------------------------------------------------------------------------------

    /// @notice `caller` may not manage the consents of `patient` (neither the patient nor a live delegate).
    error ConsentUnauthorized(address caller, address patient);
    /// @notice Delegate `delegate` may manage only the categories in `allowed`, not all of `requested`.
    error ConsentDelegateOutOfBounds(address delegate, uint16 allowed, uint16 requested);
    /// @notice A delegate cannot grant consent to itself.
    error ConsentDelegateSelfGrant(address delegate);
    /// @notice `categories` is empty or names unknown categories.
    error ConsentInvalidCategories(uint16 categories);
    /// @notice `purposes` is empty or names unknown purposes.
    error ConsentInvalidPurposes(uint16 purposes);
    /// @notice The validity window is empty or already over at `nowTime`.
    error ConsentInvalidWindow(uint64 start, uint64 expiry, uint64 nowTime);
    /// @notice A patient cannot grant consent to itself.
    error ConsentSelfGrant(address patient);
    /// @notice A write consent carries no key envelope (writers seal to public keys; they get no secrets).
    error ConsentEnvelopeForWrite(address grantee);
    /// @notice `grantee` holds no `access` consent from `patient`.
    error ConsentNotFound(address patient, address grantee, Access access);
    /// @notice The consent of `patient` to `grantee` starts only at `start`.
    error ConsentNotYetValid(address patient, address grantee, uint64 start);
    /// @notice The consent of `patient` to `grantee` expired at `expiry`.
    error ConsentExpired(address patient, address grantee, uint64 expiry);
    /// @notice The consent of `patient` to `grantee` does not cover category `category` (or the
    /// delegation that made it no longer does).
    error ConsentCategoryNotCovered(address patient, address grantee, uint8 category);
    /// @notice The consent of `patient` to `grantee` does not cover purpose `purpose`.
    error ConsentPurposeNotCovered(address patient, address grantee, uint8 purpose);
    /// @notice The consent of `patient` to `grantee` was made by delegation `delegationId`, which was
    /// removed or has expired.
    error ConsentDelegationEnded(address patient, address grantee, uint24 delegationId);
    /// @notice The consent of `patient` to `grantee` was made by delegation `delegationId`, whose
    /// delegate is a suspended participant.
    error ConsentDelegationSuspended(address patient, address grantee, uint24 delegationId);
    /// @notice `category` or `purpose` is not a known code.
    error ConsentUnknownCode(uint8 category, uint8 purpose);
    /// @notice The signed request's deadline `deadline` has passed.
    error ConsentSignatureExpired(uint256 deadline);
    /// @notice The signature is not `patient`'s (or its contract wallet's) signature of this request.
    error ConsentInvalidSignature(address patient);
    /// @notice The signed request says it was issued at `issuedAt`, after the current time `nowTime`.
    error ConsentInvalidIssuedAt(uint64 issuedAt, uint64 nowTime);
    /// @notice The signed request (issued at `issuedAt`) is not newer than the last decision on the
    /// consent of `patient` to `grantee` (at `updatedAt`): a replay, or superseded.
    error ConsentRequestSuperseded(address patient, address grantee, uint64 issuedAt, uint64 updatedAt);

    /// @notice `delegate` cannot be a delegate of `patient` (zero, the patient itself, or not registered).
    error DelegationInvalidDelegate(address patient, address delegate);
    /// @notice The delegation's expiry `expiry` is not in the future.
    error DelegationInvalidExpiry(uint64 expiry);

    /// @notice `patient` has opted out of emergency access.
    error EmergencyOptedOut(address patient);
    /// @notice An emergency window of `requested` seconds exceeds the maximum `maximum`, or is zero.
    error EmergencyInvalidWindow(uint32 requested, uint32 maximum);
    /// @notice `account` is not a care provider or clinician, so it cannot open emergency access.
    error EmergencyNotClinician(address account);
    /// @notice The emergency access of `clinician` to `patient` may not extend past `runEnd` (the end of
    /// its current run) without a confirmation by the patient or a delegate.
    error EmergencyRunExceeded(address patient, address clinician, uint64 runEnd);

    /// @notice The number of public keys (`given`) differs from the number of categories in the mask (`expected`).
    error KeyCountMismatch(uint256 expected, uint256 given);
    /// @notice A key envelope digest of zero was given.
    error KeyInvalidEnvelope();
    /// @notice `recipient` holds no live read access to every category in `categories` of `patient`
    /// (consent, delegation or open emergency access), so no keys may be released to it.
    error KeyRecipientWithoutAccess(address patient, address recipient, uint16 categories);

    // ---------------------------------------------------------------------------------------------
    // Events
    // ---------------------------------------------------------------------------------------------

    /// @notice `patient`'s consent to `grantee` for `access` now has these terms. Emitted for new,
    /// widened and narrowed consents. `keyEnvelope` is the digest of an IPFS envelope (sealed to the
    /// grantee) holding the category keys, or zero. `by` is the patient (directly or by signature) or a
    /// delegate; `delegation` is the delegate's delegation id (0 for the patient).
    event ConsentGranted(
        address indexed patient,
        address indexed grantee,
        Access indexed access,
        uint16 categories,
        uint16 purposes,
        uint64 start,
        uint64 expiry,
        bytes32 keyEnvelope,
        address by,
        uint24 delegation
    );
    /// @notice `patient`'s consent to `grantee` for `access` was revoked by `by`.
    event ConsentRevoked(address indexed patient, address indexed grantee, Access indexed access, address by);
    /// @notice A signed request of `patient` issued at `issuedAt` was executed without changing the
    /// terms of its consent to `grantee` for `access`; only the consent's `updatedAt` moved to `issuedAt`.
    event SignedConsentConsumed(
        address indexed patient, address indexed grantee, Access indexed access, uint64 issuedAt
    );
    /// @notice `by` voided every outstanding signed request of `patient`; requests must now carry `newNonce`.
    event SignedRequestsInvalidated(address indexed patient, uint256 newNonce, address by);
    /// @notice `patient` appointed `delegate` (delegation `id`) for `categories` until `expiry`, or
    /// changed its bounds.
    event DelegateAppointed(
        address indexed patient, address indexed delegate, uint24 indexed id, uint16 categories, uint64 expiry
    );
    /// @notice `patient` removed `delegate` (delegation `id`): consents it made end at once.
    event DelegateRemoved(address indexed patient, address indexed delegate, uint24 indexed id);
    /// @notice `clinician` opened emergency read access to `patient` until `expiresAt`, in the run
    /// started at `runStart`.
    event EmergencyAccessOpened(
        address indexed patient, address indexed clinician, uint64 expiresAt, uint64 runStart, bytes32 reasonCode
    );
    /// @notice `by` (the patient or a delegate) confirmed `clinician`'s emergency access to `patient`:
    /// a new run starts now.
    event EmergencyAccessConfirmed(address indexed patient, address indexed clinician, address by);
    /// @notice The emergency access of `clinician` to `patient` was closed early by `by`.
    event EmergencyAccessClosed(address indexed patient, address indexed clinician, address by);
    /// @notice `patient` opted out of (`optedOut`) or back into emergency access. Opting out closes
    /// every open emergency access to `patient`.
    event EmergencyOptOutChanged(address indexed patient, bool optedOut);
    /// @notice `by` published the key envelope `envelope` of `patient`'s keys of `categories` for
    /// `recipient`.
    event KeyEnvelopePublished(
        address indexed patient, address indexed recipient, uint16 categories, bytes32 envelope, address by
    );

    // ---------------------------------------------------------------------------------------------
    // Consent
    // ---------------------------------------------------------------------------------------------

    /// @notice Grants, widens or narrows `patient`'s `access` consent to `grantee`.
    /// @dev Callable by the patient, or by a live, unsuspended delegate whose categories include both
    /// `terms.categories` and the categories of the consent it replaces, and that is not the grantee.
    /// Sets `updatedAt` to now and `delegation` to the caller's delegation id (0 for the patient).
    /// Returns false and emits nothing if the terms are unchanged, even if `keyEnvelope` is new:
    /// deliver a new envelope with {publishKeyEnvelope}. A read grant with a non-zero `keyEnvelope`
    /// releases the keys of `terms.categories` (see the contract notes); narrowing a read consent whose
    /// keys were released makes the dropped categories' keys stale, and an earlier end clamps them.
    /// Reverts with {ConsentUnauthorized}, {RegistryParticipantSuspended} (a suspended delegate),
    /// {ConsentDelegateOutOfBounds}, {ConsentDelegateSelfGrant}, {ConsentInvalidCategories},
    /// {ConsentInvalidPurposes}, {ConsentInvalidWindow}, {ConsentSelfGrant}, {ConsentEnvelopeForWrite},
    /// {RegistryPatientNotRegistered}, {RegistryParticipantNotRegistered} or
    /// {RegistryParticipantSuspended} (the grantee).
    /// @param keyEnvelope Digest of the IPFS envelope carrying category keys to the grantee (0: none).
    function grant(address patient, address grantee, Access access, Consent calldata terms, bytes32 keyEnvelope)
        external
        returns (bool changed);

    /// @notice Revokes `patient`'s `access` consent to `grantee`, with immediate effect.
    /// @dev Callable by the patient, or a live, unsuspended delegate whose categories include the
    /// consent's. Leaves a tombstone (zero terms, `updatedAt` = now) so that no older signed request
    /// can restore the consent. Returns false and emits nothing if there was no consent (nothing is
    /// written either: to void signed requests not yet submitted, use {invalidateSignedRequests}).
    /// Revoking a read consent that is still live and whose keys were released makes them stale.
    /// Reverts with {ConsentUnauthorized}, {RegistryParticipantSuspended}, {ConsentDelegateOutOfBounds}
    /// or {RegistryPatientNotRegistered}.
    function revoke(address patient, address grantee, Access access) external returns (bool changed);

    /// @notice Applies a grant signed by `request.patient` (EIP-712), submitted by any account.
    /// @dev The signature may be a 65-byte EOA signature (v = 27 or 28) or an ERC-1271 contract-wallet
    /// signature. Sets `updatedAt` to `request.issuedAt`; if the terms are unchanged it emits
    /// {SignedConsentConsumed} and returns false. Does not consume the nonce.
    /// Reverts with {ConsentSignatureExpired}, {ConsentInvalidIssuedAt}, `InvalidAccountNonce`
    /// (cancelled by {invalidateSignedRequests}), {ConsentInvalidSignature}, {ConsentRequestSuperseded}
    /// (a replay, or older than the last decision), and every error of {grant} except the caller checks.
    function grantBySig(GrantRequest calldata request, bytes calldata signature) external returns (bool changed);

    /// @notice Applies a revocation signed by `request.patient` (EIP-712), submitted by any account.
    /// @dev Leaves a tombstone with `updatedAt` = `request.issuedAt`; if there was no consent it emits
    /// {SignedConsentConsumed} and returns false. Reverts with {ConsentSignatureExpired},
    /// {ConsentInvalidIssuedAt}, `InvalidAccountNonce`, {ConsentInvalidSignature},
    /// {ConsentRequestSuperseded} or {RegistryPatientNotRegistered}.
    function revokeBySig(RevokeRequest calldata request, bytes calldata signature) external returns (bool changed);

    /// @notice Voids every signed request of `patient` not yet submitted, by moving its nonce on.
    /// @dev Callable by the patient or a live, unsuspended delegate. Always emits
    /// {SignedRequestsInvalidated}. Reverts with {ConsentUnauthorized}, {RegistryParticipantSuspended}
    /// or {RegistryPatientNotRegistered}.
    /// @return newNonce The nonce that new requests must carry.
    function invalidateSignedRequests(address patient) external returns (uint256 newNonce);

    /// @notice The nonce that `patient`'s signed requests must carry now.
    function nonces(address patient) external view returns (uint256);

    /// @notice The stored consent of `patient` to `grantee` for `access` (all zero if none).
    function consent(address patient, address grantee, Access access) external view returns (ConsentState memory);

    /// @notice Whether `accessor` may now perform `access` on `category` data of `patient` for `purpose`.
    /// @dev True for the patient itself; a live covering consent held by an active participant (and,
    /// if a delegate made it, a live delegation covering the category whose delegate is not suspended);
    /// a live delegate that is not a suspended participant (read, family care, within its categories);
    /// or an open emergency access held by an active participant, if the patient has not opted out
    /// (read, emergency).
    function isPermitted(address patient, address accessor, Access access, uint8 category, uint8 purpose)
        external
        view
        returns (bool);

    /// @notice Like {isPermitted} but reverts with the reason access is refused.
    /// @dev Reverts with {ConsentUnknownCode}, {RegistryPatientNotRegistered} (no consent, and `patient`
    /// is not a registered patient), {ConsentNotFound}, {ConsentNotYetValid}, {ConsentExpired},
    /// {ConsentCategoryNotCovered}, {ConsentPurposeNotCovered}, {ConsentDelegationEnded},
    /// {ConsentDelegationSuspended} or {RegistryParticipantSuspended}.
    /// @return emergency True if access rests on an open emergency access.
    function checkAccess(address patient, address accessor, Access access, uint8 category, uint8 purpose)
        external
        view
        returns (bool emergency);

    /// @notice The EIP-712 type hash of `Grant(address patient,address grantee,uint8 access,uint16 categories,
    /// uint16 purposes,uint64 start,uint64 expiry,bytes32 keyEnvelope,uint64 issuedAt,uint256 nonce,uint256 deadline)`.
    // slither-disable-next-line naming-convention the getter of a constant keeps its UPPER_CASE name (OpenZeppelin style)
    function GRANT_TYPEHASH() external view returns (bytes32);

    /// @notice The EIP-712 type hash of
    /// `Revoke(address patient,address grantee,uint8 access,uint64 issuedAt,uint256 nonce,uint256 deadline)`.
    // slither-disable-next-line naming-convention the getter of a constant keeps its UPPER_CASE name (OpenZeppelin style)
    function REVOKE_TYPEHASH() external view returns (bytes32);

    /// @notice The EIP-712 domain separator for this chain and contract (name "medledger", version "1").
    // slither-disable-next-line naming-convention the getter of a constant keeps its UPPER_CASE name (OpenZeppelin style)
    function DOMAIN_SEPARATOR() external view returns (bytes32);

    // ---------------------------------------------------------------------------------------------
    // Delegation
    // ---------------------------------------------------------------------------------------------

    /// @notice The caller (a patient) appoints `delegate`, or changes its bounds.
    /// @dev Delegates cannot appoint delegates: only the patient calls this. The delegate must be a
    /// registered patient (it needs an encryption key). A live delegate keeps its id; otherwise the
    /// delegation gets the next id. Dropping categories, or moving the expiry earlier, of a live
    /// delegation makes the keys of the dropped categories stale and clamps the others to the new
    /// expiry. Returns false and emits nothing if unchanged. Reverts with {RegistryPatientNotRegistered},
    /// {DelegationInvalidDelegate}, {ConsentInvalidCategories} or {DelegationInvalidExpiry}.
    function appointDelegate(address delegate, uint16 categories, uint64 expiry) external returns (bool changed);

    /// @notice The caller (a patient) removes `delegate` at once: consents it made end, and the keys of
    /// its categories become stale. Returns false and emits nothing if it has no delegation (an
    /// expired one is removed like a live one).
    function removeDelegate(address delegate) external returns (bool changed);

    /// @notice The delegation of `delegate` by `patient` (all zero if none or removed; an expired
    /// delegation is returned with its past expiry).
    function delegation(address patient, address delegate) external view returns (Delegation memory);

    /// @notice The delegation `id` of `patient` (all zero once removed, or if there is none).
    function delegationById(address patient, uint24 id) external view returns (Delegation memory);

    /// @notice Whether `delegate` is a live delegate of `patient` covering every category in
    /// `categories`, and not a suspended participant.
    function isDelegate(address patient, address delegate, uint16 categories) external view returns (bool);

    // ---------------------------------------------------------------------------------------------
    // Emergency access
    // ---------------------------------------------------------------------------------------------

    /// @notice The longest emergency window a clinician may open, in seconds.
    // slither-disable-next-line naming-convention the getter of a constant keeps its UPPER_CASE name (OpenZeppelin style)
    function MAX_EMERGENCY_WINDOW() external view returns (uint32);

    /// @notice The longest run of emergency access without a confirmation, in seconds, counted from the
    /// first opening of a run. A run ends once no window has been open for `MAX_EMERGENCY_WINDOW`.
    // slither-disable-next-line naming-convention the getter of a constant keeps its UPPER_CASE name (OpenZeppelin style)
    function MAX_EMERGENCY_RUN() external view returns (uint32);

    /// @notice The caller (an active clinician or care provider) opens emergency read access to
    /// `patient` for `window` seconds, flagged in {EmergencyAccessOpened}.
    /// @dev Re-opening never shortens a window that is still open: it returns the later expiry and emits
    /// only if the window was extended. Reverts with {EmergencyNotClinician}, {RegistryParticipantSuspended},
    /// {EmergencyInvalidWindow}, {RegistryPatientNotRegistered}, {EmergencyOptedOut} or
    /// {EmergencyRunExceeded}.
    /// @param reasonCode An opaque code for the reason (a keyed hash, never free text).
    function openEmergencyAccess(address patient, uint32 window, bytes32 reasonCode) external returns (uint64 expiresAt);

    /// @notice The patient or a delegate confirms `clinician`'s emergency access to `patient`: a new
    /// run starts now. Returns false and emits nothing if there is no run or it started this second.
    /// @dev Reverts with {ConsentUnauthorized}, {RegistryParticipantSuspended} or {RegistryPatientNotRegistered}.
    function confirmEmergencyAccess(address patient, address clinician) external returns (bool changed);

    /// @notice Closes `clinician`'s emergency access to `patient` early. Callable by the patient, a live
    /// delegate, or the clinician. Keys released to the clinician under it become stale. Returns false
    /// and emits nothing if none was open.
    /// @dev Reverts with {ConsentUnauthorized}, {RegistryParticipantSuspended} or {RegistryPatientNotRegistered}.
    function closeEmergencyAccess(address patient, address clinician) external returns (bool changed);

    /// @notice The caller (a patient) opts out of emergency access, or back in.
    /// @dev Opting out closes every open emergency access to the caller at once (reads check the opt-out
    /// at access time, and windows opened before an opt-out never reopen), and makes every key released
    /// under an emergency access stale. Returns false and emits nothing if unchanged. Reverts with
    /// {RegistryPatientNotRegistered}.
    function setEmergencyOptOut(bool optedOut) external returns (bool changed);

    /// @notice Whether `patient` opted out of emergency access.
    function emergencyOptedOut(address patient) external view returns (bool);

    /// @notice The emergency access of `clinician` to `patient`.
    function emergencyAccess(address patient, address clinician) external view returns (EmergencyAccess memory);

    // ---------------------------------------------------------------------------------------------
    // Category keys
    // ---------------------------------------------------------------------------------------------

    /// @notice Rotates `patient`'s keys of `categories` to `publicKeys` (one per category, in ascending
    /// category order): each epoch + 1, not limited in time.
    /// @dev Callable by the patient, or a live, unsuspended delegate covering every category in the mask.
    /// Emits {CategoryKeyRotated} for each. Reverts with {ConsentUnauthorized},
    /// {RegistryParticipantSuspended}, {ConsentDelegateOutOfBounds}, {ConsentInvalidCategories},
    /// {KeyCountMismatch}, {RegistryInvalidCategoryKey} (zero or the current key) or
    /// {RegistryPatientNotRegistered}.
    function setCategoryKeys(address patient, uint16 categories, bytes32[] calldata publicKeys) external;

    /// @notice Publishes a key envelope for `recipient` holding `patient`'s keys of `categories`.
    /// @dev Callable by the patient, or a live, unsuspended delegate covering the categories. The
    /// recipient must be the patient, or hold live read access to every category in the mask (a read
    /// consent started and not ended, a delegation, or an open emergency access); the keys' `validUntil`
    /// is clamped to the latest end of those. Reverts with {ConsentUnauthorized},
    /// {RegistryParticipantSuspended}, {ConsentDelegateOutOfBounds}, {ConsentInvalidCategories},
    /// {KeyInvalidEnvelope}, {KeyRecipientWithoutAccess} or {RegistryPatientNotRegistered}.
    function publishKeyEnvelope(address patient, address recipient, uint16 categories, bytes32 envelope) external;
}
