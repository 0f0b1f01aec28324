// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IParticipantRegistry} from "./IParticipantRegistry.sol";

/// @title IConsentManager
/// @notice The access-control list of a medledger network: which grantee may read or write which
/// categories of a patient's data, for which purposes, from when until when; who acts for the patient
/// (delegates); and time-limited emergency access. Every other contract asks {checkAccess}.
/// @dev Codes (bit `i` of a mask stands for code `i`):
///  - Categories (uint8 code, uint16 mask): 0 demographics, 1 allergies, 2 medications, 3 conditions,
///    4 observations and labs, 5 imaging, 6 genomics, 7 mental health, 8 sexual health,
///    9 device and wearable data, 10 procedures, 11 immunizations, 12 clinical documents.
///  - Purposes (uint8 code, uint16 mask): 0 direct care, 1 research, 2 commissioning and audit,
///    3 commercial use, 4 family care, 5 emergency.
/// Grants are enumerated off-chain from {ConsentGranted} and {ConsentRevoked} (indexed by grantee):
/// an on-chain list would cost two more storage writes per grant.
interface IConsentManager is IParticipantRegistry {
    /// @notice Whether a consent lets the grantee read or write.
    enum Access {
        Read,
        Write
    }

    /// @notice The terms of one consent. Packed into one storage slot.
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

    /// @notice A delegate's bounds. Packed into one storage slot.
    /// @param categories Mask of the categories the delegate may manage and read.
    /// @param expiry First second at which the delegation is no longer valid.
    struct Delegation {
        uint16 categories;
        uint64 expiry;
    }

    /// @notice A grant signed off-chain by the patient (EIP-712 type `Grant`), submitted by anyone.
    struct GrantRequest {
        address patient;
        address grantee;
        Access access;
        uint16 categories;
        uint16 purposes;
        uint64 start;
        uint64 expiry;
        bytes32 keyEnvelope;
        uint256 nonce;
        uint256 deadline;
    }

    /// @notice A revocation signed off-chain by the patient (EIP-712 type `Revoke`), submitted by anyone.
    struct RevokeRequest {
        address patient;
        address grantee;
        Access access;
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
    /// @notice `categories` is empty or names unknown categories.
    error ConsentInvalidCategories(uint16 categories);
    /// @notice `purposes` is empty or names unknown purposes.
    error ConsentInvalidPurposes(uint16 purposes);
    /// @notice The validity window is empty or already over at `nowTime`.
    error ConsentInvalidWindow(uint64 start, uint64 expiry, uint64 nowTime);
    /// @notice A patient cannot grant consent to itself.
    error ConsentSelfGrant(address patient);
    /// @notice `grantee` holds no `access` consent from `patient`.
    error ConsentNotFound(address patient, address grantee, Access access);
    /// @notice The consent of `patient` to `grantee` starts only at `start`.
    error ConsentNotYetValid(address patient, address grantee, uint64 start);
    /// @notice The consent of `patient` to `grantee` expired at `expiry`.
    error ConsentExpired(address patient, address grantee, uint64 expiry);
    /// @notice The consent of `patient` to `grantee` does not cover category `category`.
    error ConsentCategoryNotCovered(address patient, address grantee, uint8 category);
    /// @notice The consent of `patient` to `grantee` does not cover purpose `purpose`.
    error ConsentPurposeNotCovered(address patient, address grantee, uint8 purpose);
    /// @notice `category` or `purpose` is not a known code.
    error ConsentUnknownCode(uint8 category, uint8 purpose);
    /// @notice The signed request's deadline `deadline` has passed.
    error ConsentSignatureExpired(uint256 deadline);
    /// @notice The signature is not `patient`'s (or its contract wallet's) signature of this request.
    error ConsentInvalidSignature(address patient);

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

    // ---------------------------------------------------------------------------------------------
    // Events
    // ---------------------------------------------------------------------------------------------

    /// @notice `patient`'s consent to `grantee` for `access` now has these terms. Emitted for new,
    /// widened and narrowed consents. `keyEnvelope` is the digest of an IPFS envelope (sealed to the
    /// grantee) holding the category keys, or zero. `by` is the patient, a delegate, or the patient by signature.
    event ConsentGranted(
        address indexed patient,
        address indexed grantee,
        Access indexed access,
        uint16 categories,
        uint16 purposes,
        uint64 start,
        uint64 expiry,
        bytes32 keyEnvelope,
        address by
    );
    /// @notice `patient`'s consent to `grantee` for `access` was revoked by `by`.
    event ConsentRevoked(address indexed patient, address indexed grantee, Access indexed access, address by);
    /// @notice `patient` appointed `delegate` for `categories` until `expiry` (also when changing bounds).
    event DelegateAppointed(address indexed patient, address indexed delegate, uint16 categories, uint64 expiry);
    /// @notice `patient` removed `delegate`.
    event DelegateRemoved(address indexed patient, address indexed delegate);
    /// @notice `clinician` opened emergency read access to `patient` until `expiresAt`.
    event EmergencyAccessOpened(
        address indexed patient, address indexed clinician, uint64 expiresAt, bytes32 reasonCode
    );
    /// @notice The emergency access of `clinician` to `patient` was closed early by `by`.
    event EmergencyAccessClosed(address indexed patient, address indexed clinician, address by);
    /// @notice `patient` opted out of (`optedOut`) or back into emergency access.
    event EmergencyOptOutChanged(address indexed patient, bool optedOut);
    /// @notice `by` published the key envelope `envelope` of `patient`'s category keys for `recipient`.
    event KeyEnvelopePublished(address indexed patient, address indexed recipient, bytes32 envelope, address by);
    /// @notice `by` pointed `patient`'s key directory (category public keys) at `directory`.
    event KeyDirectoryChanged(address indexed patient, bytes32 directory, address by);

    // ---------------------------------------------------------------------------------------------
    // Consent
    // ---------------------------------------------------------------------------------------------

    /// @notice Grants, widens or narrows `patient`'s `access` consent to `grantee`.
    /// @dev Callable by the patient, or by a live delegate whose categories include both
    /// `terms.categories` and the categories of the consent it replaces (a delegate cannot drop
    /// categories outside its bounds). Returns false and emits nothing if the terms are unchanged,
    /// even if `keyEnvelope` is new: deliver a new envelope with {publishKeyEnvelope}.
    /// Reverts with {ConsentUnauthorized}, {ConsentDelegateOutOfBounds}, {ConsentInvalidCategories},
    /// {ConsentInvalidPurposes}, {ConsentInvalidWindow}, {ConsentSelfGrant},
    /// {RegistryPatientNotRegistered}, {RegistryParticipantNotRegistered} or {RegistryParticipantSuspended}.
    /// @param keyEnvelope Digest of the IPFS envelope carrying category keys to the grantee (0: none).
    function grant(address patient, address grantee, Access access, Consent calldata terms, bytes32 keyEnvelope)
        external
        returns (bool changed);

    /// @notice Revokes `patient`'s `access` consent to `grantee`, with immediate effect.
    /// @dev Callable by the patient, or a live delegate whose categories include the consent's.
    /// Returns false and emits nothing if there was no consent. Reverts with {ConsentUnauthorized},
    /// {ConsentDelegateOutOfBounds} or {RegistryPatientNotRegistered}.
    function revoke(address patient, address grantee, Access access) external returns (bool changed);

    /// @notice Applies a grant signed by `request.patient` (EIP-712), submitted by any account.
    /// @dev The signature may be an EOA signature or an ERC-1271 contract-wallet signature.
    /// Consumes the patient's nonce even when the terms are unchanged.
    /// Reverts with {ConsentSignatureExpired}, `InvalidAccountNonce` (a replay), {ConsentInvalidSignature},
    /// and every error of {grant} except the caller checks.
    function grantBySig(GrantRequest calldata request, bytes calldata signature) external returns (bool changed);

    /// @notice Applies a revocation signed by `request.patient` (EIP-712), submitted by any account.
    /// @dev Reverts with {ConsentSignatureExpired}, `InvalidAccountNonce` or {ConsentInvalidSignature}.
    function revokeBySig(RevokeRequest calldata request, bytes calldata signature) external returns (bool changed);

    /// @notice The current terms of `patient`'s `access` consent to `grantee` (all zero if none).
    function consent(address patient, address grantee, Access access) external view returns (Consent memory);

    /// @notice Whether `accessor` may now perform `access` on `category` data of `patient` for `purpose`.
    /// @dev True for the patient itself, a live covering consent held by an active participant, a live
    /// delegate (read, family care, within its categories; a delegation is not voided by a suspension of
    /// the same account as a participant), or an open emergency access held by an active participant
    /// (read, emergency).
    function isPermitted(address patient, address accessor, Access access, uint8 category, uint8 purpose)
        external
        view
        returns (bool);

    /// @notice Like {isPermitted} but reverts with the reason access is refused.
    /// @dev Reverts with {ConsentUnknownCode}, {RegistryPatientNotRegistered} (no consent, and `patient` is not
    /// a registered patient), {ConsentNotFound}, {ConsentNotYetValid}, {ConsentExpired},
    /// {ConsentCategoryNotCovered}, {ConsentPurposeNotCovered}, {RegistryParticipantSuspended} or
    /// {RegistryPatientNotRegistered}.
    /// @return emergency True if access rests on an open emergency access.
    function checkAccess(address patient, address accessor, Access access, uint8 category, uint8 purpose)
        external
        view
        returns (bool emergency);

    /// @notice The EIP-712 type hash of `Grant(...)`.
    function GRANT_TYPEHASH() external view returns (bytes32);

    /// @notice The EIP-712 type hash of `Revoke(...)`.
    function REVOKE_TYPEHASH() external view returns (bytes32);

    /// @notice The EIP-712 domain separator for this chain and contract.
    function DOMAIN_SEPARATOR() external view returns (bytes32);

    // ---------------------------------------------------------------------------------------------
    // Delegation
    // ---------------------------------------------------------------------------------------------

    /// @notice The caller (a patient) appoints `delegate`, or changes its bounds.
    /// @dev Delegates cannot appoint delegates: only the patient calls this. The delegate must be a
    /// registered patient (it needs an encryption key). Returns false and emits nothing if unchanged.
    /// Reverts with {RegistryPatientNotRegistered}, {DelegationInvalidDelegate},
    /// {ConsentInvalidCategories} or {DelegationInvalidExpiry}.
    function appointDelegate(address delegate, uint16 categories, uint64 expiry) external returns (bool changed);

    /// @notice The caller (a patient) removes `delegate` at once. Returns false and emits nothing if absent
    /// (so for a caller that has no delegates it does nothing).
    function removeDelegate(address delegate) external returns (bool changed);

    /// @notice The bounds of `delegate` for `patient` (all zero if none).
    function delegation(address patient, address delegate) external view returns (Delegation memory);

    /// @notice Whether `delegate` is a live delegate of `patient` covering every category in `categories`.
    function isDelegate(address patient, address delegate, uint16 categories) external view returns (bool);

    // ---------------------------------------------------------------------------------------------
    // Emergency access
    // ---------------------------------------------------------------------------------------------

    /// @notice The longest emergency window a clinician may open, in seconds.
    function MAX_EMERGENCY_WINDOW() external view returns (uint32);

    /// @notice The caller (an active clinician or care provider) opens emergency read access to
    /// `patient` for `window` seconds, flagged in {EmergencyAccessOpened}.
    /// @dev Re-opening never shortens a window that is still open: it returns the later expiry and emits
    /// only if the window was extended. Reverts with {EmergencyNotClinician}, {RegistryParticipantSuspended},
    /// {EmergencyInvalidWindow}, {RegistryPatientNotRegistered} or {EmergencyOptedOut}.
    /// @param reasonCode An opaque code for the reason (for example a SNOMED CT concept id); never free text.
    function openEmergencyAccess(address patient, uint32 window, bytes32 reasonCode)
        external
        returns (uint64 expiresAt);

    /// @notice Closes `clinician`'s emergency access to `patient` early. Callable by the patient, a live
    /// delegate, or the clinician. Returns false and emits nothing if none was open.
    /// @dev Reverts with {ConsentUnauthorized} or {RegistryPatientNotRegistered}.
    function closeEmergencyAccess(address patient, address clinician) external returns (bool changed);

    /// @notice The caller (a patient) opts out of emergency access, or back in.
    /// @dev Returns false and emits nothing if unchanged. Opting out does not close open windows.
    function setEmergencyOptOut(bool optedOut) external returns (bool changed);

    /// @notice Whether `patient` opted out of emergency access.
    function emergencyOptedOut(address patient) external view returns (bool);

    /// @notice When `clinician`'s emergency access to `patient` ends or ended (0 if never opened or closed
    /// early); a time in the past means the window ran out.
    function emergencyAccessExpiry(address patient, address clinician) external view returns (uint64);

    // ---------------------------------------------------------------------------------------------
    // Key distribution (pointers only: the keys themselves are sealed off-chain)
    // ---------------------------------------------------------------------------------------------

    /// @notice Publishes a key envelope for `recipient` (after a key rotation, for instance).
    /// @dev Callable by the patient or a live delegate. Event only: nothing is stored.
    /// Reverts with {ConsentUnauthorized} or {RegistryPatientNotRegistered}.
    function publishKeyEnvelope(address patient, address recipient, bytes32 envelope) external;

    /// @notice Points `patient`'s key directory (its category public keys, on IPFS) at `directory`.
    /// @dev Callable by the patient or a live delegate. Returns false and emits nothing if unchanged.
    /// Reverts with {ConsentUnauthorized} or {RegistryPatientNotRegistered}.
    function setKeyDirectory(address patient, bytes32 directory) external returns (bool changed);

    /// @notice The digest of `patient`'s current key directory (0 if none).
    function keyDirectory(address patient) external view returns (bytes32);
}
