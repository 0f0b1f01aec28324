// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IConsentManager} from "./IConsentManager.sol";

/// @title IRecordRegistry
/// @notice Tamper evidence for records kept encrypted off-chain, and the audit trail of every access.
/// @dev A record is registered under a random id with its patient, category, author, the CID of its
/// ciphertext and a keyed fingerprint of its content (HMAC under a key derived from the record key),
/// which cannot be guessed from the plaintext. Records are never overwritten: an amendment is a new
/// record that supersedes the old one. Batches anchor one Merkle root over many fingerprints.
/// Accesses are checked against the {IConsentManager} and written to the event log, which is the
/// immutable audit trail. Nothing personal is stored: random ids, addresses, codes, CIDs of
/// ciphertext and keyed fingerprints.
interface IRecordRegistry {
    /// @notice What the registry knows of a record or batch, as returned by {record}.
    /// @param patient Whose record it is (zero if unknown).
    /// @param category Category code (see {IConsentManager}).
    /// @param createdAt When it was registered (unix seconds).
    /// @param erased Whether the patient erased it.
    /// @param isBatch Whether the id is a Merkle root anchored by {anchorBatch}.
    /// @param leafCount For a batch, how many fingerprints it covers.
    /// @param fingerprint Keyed fingerprint of the content (zero for a batch or once erased).
    /// @param previousVersion The record this one supersedes (zero if none).
    /// @param nextVersion The record that supersedes this one (zero if none).
    struct RecordInfo {
        address patient;
        uint8 category;
        uint40 createdAt;
        bool erased;
        bool isBatch;
        uint32 leafCount;
        bytes32 fingerprint;
        bytes32 previousVersion;
        bytes32 nextVersion;
    }

    /// @notice A record id or batch root of zero was given.
    error RecordInvalidId();
    /// @notice A fingerprint of zero was given.
    error RecordInvalidFingerprint();
    /// @notice An empty CID was given.
    error RecordInvalidCid();
    /// @notice A batch must cover at least one fingerprint.
    error RecordEmptyBatch();
    /// @notice `recordId` is already taken by a record or batch.
    error RecordAlreadyExists(bytes32 recordId);
    /// @notice No record or batch has id `recordId`.
    error RecordNotFound(bytes32 recordId);
    /// @notice `recordId` was erased by its patient; no access to it can be recorded.
    error RecordIsErased(bytes32 recordId);
    /// @notice `recordId` is already superseded by `supersededBy`: amend the latest version.
    error RecordAlreadySuperseded(bytes32 recordId, bytes32 supersededBy);
    /// @notice A batch root cannot be amended.
    error RecordIsBatch(bytes32 recordId);
    /// @notice Only the patient `patient` may do this to its records (caller `caller`).
    error RecordNotPatient(address caller, address patient);

    /// @notice `author` registered record `recordId` of `patient` (category `category`, written for
    /// `purpose`), whose ciphertext has CID `cid` and whose content has keyed fingerprint `fingerprint`.
    event RecordRegistered(
        bytes32 indexed recordId,
        address indexed patient,
        address indexed author,
        uint8 category,
        uint8 purpose,
        bytes32 fingerprint,
        bytes cid
    );
    /// @notice Record `recordId` supersedes `previousId` (both of `patient`).
    event RecordAmended(bytes32 indexed previousId, bytes32 indexed recordId, address indexed patient);
    /// @notice `author` anchored Merkle root `root` over `leafCount` fingerprints of `patient`'s
    /// `category` data; the encrypted batch is at CID `cid`.
    event BatchAnchored(
        bytes32 indexed root,
        address indexed patient,
        address indexed author,
        uint8 category,
        uint8 purpose,
        uint32 leafCount,
        bytes cid
    );
    /// @notice `patient` erased record (or batch) `recordId`.
    event RecordErased(bytes32 indexed recordId, address indexed patient);
    /// @notice `accessor` accessed record (or batch) `recordId` of `patient` for `purpose`;
    /// `emergency` marks access under an emergency opening.
    event RecordAccessed(
        bytes32 indexed recordId, address indexed patient, address indexed accessor, uint8 purpose, bool emergency
    );

    /// @notice The consent manager this registry asks (in {Medledger}, the same contract).
    function consentManager() external view returns (IConsentManager);

    /// @notice Registers a new record. The caller is the author: the patient, or a grantee holding a
    /// live write consent for `category` and `purpose`.
    /// @dev Reverts with {RecordInvalidId}, {RecordInvalidFingerprint}, {RecordInvalidCid},
    /// {RecordAlreadyExists}, or any consent error of {IConsentManager-checkAccess}.
    function registerRecord(
        bytes32 recordId,
        address patient,
        uint8 category,
        uint8 purpose,
        bytes32 fingerprint,
        bytes calldata cid
    ) external;

    /// @notice Registers `recordId` as a new version of `previousId`, with its patient and category.
    /// @dev The author needs the same rights as for {registerRecord}. Reverts as {registerRecord} does,
    /// and with {RecordNotFound}, {RecordIsErased}, {RecordIsBatch} or {RecordAlreadySuperseded}.
    function amendRecord(
        bytes32 previousId,
        bytes32 recordId,
        uint8 purpose,
        bytes32 fingerprint,
        bytes calldata cid
    ) external;

    /// @notice Anchors Merkle root `root` over `leafCount` leaf fingerprints of `patient`'s `category`
    /// data in one transaction. Leaves are `keccak256(bytes.concat(keccak256(abi.encode(readingId, fingerprint))))`.
    /// @dev Same author rights as {registerRecord}. Reverts with {RecordInvalidId}, {RecordEmptyBatch},
    /// {RecordInvalidCid}, {RecordAlreadyExists} or any consent error.
    function anchorBatch(
        bytes32 root,
        address patient,
        uint8 category,
        uint8 purpose,
        uint32 leafCount,
        bytes calldata cid
    ) external;

    /// @notice The patient erases record (or batch) `recordId`: its fingerprint is deleted and no access
    /// to it can be recorded any more. Returns false and emits nothing if it was already erased.
    /// @dev Reverts with {RecordNotFound} or {RecordNotPatient}.
    function eraseRecord(bytes32 recordId) external returns (bool changed);

    /// @notice Records in the audit trail that the caller accesses `recordId` for `purpose`.
    /// @dev Requires a consent valid now for the record's category and `purpose`, a live delegation,
    /// or an open emergency access. Reverts with {RecordNotFound}, {RecordIsErased}, or the consent
    /// error that says what was missing.
    /// @return emergency True if the access rests on an emergency opening.
    function recordAccess(bytes32 recordId, uint8 purpose) external returns (bool emergency);

    /// @notice What the registry knows of `recordId` (all zero if unknown).
    function record(bytes32 recordId) external view returns (RecordInfo memory);

    /// @notice Whether `fingerprint` is the registered fingerprint of live record `recordId`.
    function verifyFingerprint(bytes32 recordId, bytes32 fingerprint) external view returns (bool);

    /// @notice Whether (`readingId`, `fingerprint`) is a leaf of the anchored, unerased batch `root`.
    function verifyBatchInclusion(bytes32 root, bytes32 readingId, bytes32 fingerprint, bytes32[] calldata proof)
        external
        view
        returns (bool);
}
