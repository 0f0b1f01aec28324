// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title IRecordRegistry
/// @notice Tamper evidence for records kept encrypted off-chain, and the audit trail of every access.
/// @dev A record is registered under a random id *in its patient's namespace* (the pair (patient, id)
/// names it: nobody can take an id or a batch root from another patient) with its category, author,
/// the key epoch its record key was sealed to, the CID of its ciphertext and a keyed fingerprint of
/// its content (HMAC under a key derived from the record key), which cannot be guessed from the
/// plaintext. Records are never overwritten: an amendment is a new record that supersedes the old one.
/// Batches anchor one Merkle root over many fingerprints. Accesses are checked against the
/// {IConsentManager} and written to the event log, which is the immutable audit trail.
///
/// Storage is one slot per record: a commitment to its {RecordHeader}. Functions that act on an
/// existing record take the header in calldata and check it against the commitment
/// ({RecordHeaderMismatch}); callers rebuild it from the record's events ({RecordRegistered} or
/// {BatchAnchored}, then {RecordAmended} and {RecordErased}), which carry every field.
/// CIDs are binary CIDv1 with a sha2-256 multihash, `0x01 <codec> 0x12 0x20 <digest>`, and the registry
/// takes and logs them as their two variable parts: `cidCodec` (`0x55` raw or `0x70` dag-pb) and
/// `cidDigest` (the 32-byte sha2-256 digest, not zero); nothing else can be registered. Tools rebuild
/// the CID's bytes from the two.
/// Nothing personal is stored: random ids, addresses, codes, CIDs of ciphertext and keyed fingerprints.
interface IRecordRegistry {
    /// @notice What the registry commits to for a record or batch.
    /// @param author Who registered it (the patient, or a writer with write consent).
    /// @param category Category code (see {IConsentManager}).
    /// @param keyEpoch Epoch of the category key the record key was sealed to.
    /// @param erased Whether the patient erased it.
    /// @param isBatch Whether it is a Merkle root anchored by {anchorBatch}.
    /// @param leafCount For a batch, how many fingerprints it covers (0 for a record).
    /// @param fingerprint Keyed fingerprint of the content (zero for a batch, and once erased).
    /// @param previous The record this one supersedes (zero if none).
    /// @param next The record that supersedes this one (zero if none).
    struct RecordHeader {
        address author;
        uint8 category;
        uint32 keyEpoch;
        bool erased;
        bool isBatch;
        uint32 leafCount;
        bytes32 fingerprint;
        bytes32 previous;
        bytes32 next;
    }

    /// @notice One record of a bulk registration ({registerRecords}).
    struct RecordEntry {
        bytes32 recordId;
        bytes32 fingerprint;
        uint8 cidCodec;
        bytes32 cidDigest;
    }

    /// @notice A record id or batch root of zero was given.
    error RecordInvalidId();
    /// @notice A fingerprint of zero was given.
    error RecordInvalidFingerprint();
    /// @notice (`codec`, `digest`) is not a CIDv1 of codec raw (`0x55`) or dag-pb (`0x70`) with a
    /// non-zero sha2-256 digest.
    error RecordInvalidCid(uint8 codec, bytes32 digest);
    /// @notice A batch must cover at least one fingerprint, and a bulk registration at least one record.
    error RecordEmptyBatch();
    /// @notice `patient` already has a record or batch `recordId`.
    error RecordAlreadyExists(address patient, bytes32 recordId);
    /// @notice `patient` has no record or batch `recordId`.
    error RecordNotFound(address patient, bytes32 recordId);
    /// @notice The header given for `patient`'s record `recordId` is not its current header.
    error RecordHeaderMismatch(address patient, bytes32 recordId);
    /// @notice `patient`'s record `recordId` was erased; no access to it can be recorded.
    error RecordIsErased(address patient, bytes32 recordId);
    /// @notice `patient`'s record `recordId` is already superseded by `supersededBy`: amend the latest version.
    error RecordAlreadySuperseded(address patient, bytes32 recordId, bytes32 supersededBy);
    /// @notice `patient`'s `recordId` is a batch root, which cannot be amended.
    error RecordIsBatch(address patient, bytes32 recordId);
    /// @notice Only the patient `patient` may do this to its records (caller `caller`).
    error RecordNotPatient(address caller, address patient);
    /// @notice Only the record's author `author` or its patient may amend it (caller `caller`).
    error RecordNotAuthor(address caller, address author);
    /// @notice The record key was sealed to epoch `epoch` of `patient`'s `category` key, but the current
    /// epoch is `currentEpoch` and valid until `validUntil`: seal to the current, fresh key.
    error RecordStaleKey(address patient, uint8 category, uint32 epoch, uint32 currentEpoch, uint64 validUntil);

    /// @notice `author` registered record `recordId` of `patient` (category `category`, written for
    /// `purpose`, its key sealed to epoch `keyEpoch`), whose ciphertext has the CIDv1 of codec
    /// `cidCodec` and sha2-256 digest `cidDigest`, and whose content has keyed fingerprint `fingerprint`. Its header: these fields, not erased, not a batch, no links
    /// (an amendment's {RecordAmended} in the same transaction sets `previous`).
    event RecordRegistered(
        bytes32 indexed recordId,
        address indexed patient,
        address indexed author,
        uint8 category,
        uint8 purpose,
        uint32 keyEpoch,
        bytes32 fingerprint,
        uint8 cidCodec,
        bytes32 cidDigest
    );
    /// @notice `patient`'s record `recordId` supersedes `previousId`: the header of `recordId` has
    /// `previous = previousId`, and the header of `previousId` now has `next = recordId`.
    event RecordAmended(bytes32 indexed previousId, bytes32 indexed recordId, address indexed patient);
    /// @notice `author` anchored Merkle root `root` over `leafCount` fingerprints of `patient`'s
    /// `category` data (written for `purpose`, keys sealed to epoch `keyEpoch`); the encrypted batch is
    /// at the CIDv1 (`cidCodec`, `cidDigest`).
    event BatchAnchored(
        bytes32 indexed root,
        address indexed patient,
        address indexed author,
        uint8 category,
        uint8 purpose,
        uint32 keyEpoch,
        uint32 leafCount,
        uint8 cidCodec,
        bytes32 cidDigest
    );
    /// @notice `patient` erased record (or batch) `recordId`: its header now has `erased = true` and a
    /// zero fingerprint.
    event RecordErased(bytes32 indexed recordId, address indexed patient);
    /// @notice `accessor` accessed record (or batch) `recordId` of `patient` for `purpose`;
    /// `emergency` marks access under an emergency opening.
    event RecordAccessed(
        bytes32 indexed recordId, address indexed patient, address indexed accessor, uint8 purpose, bool emergency
    );

    /// @notice Registers a new record of `patient`. The caller is the author: the patient, or a grantee
    /// holding a live write consent for `category` and `purpose`.
    /// @dev Reverts with {RecordInvalidId}, {RecordInvalidFingerprint}, {RecordInvalidCid},
    /// {RecordAlreadyExists}, any consent error of {IConsentManager-checkAccess}, or {RecordStaleKey}.
    /// @param keyEpoch The epoch of `patient`'s `category` key that the record key was sealed to.
    function registerRecord(
        address patient,
        bytes32 recordId,
        uint8 category,
        uint8 purpose,
        uint32 keyEpoch,
        bytes32 fingerprint,
        uint8 cidCodec,
        bytes32 cidDigest
    ) external;

    /// @notice Registers many records of one patient, category and purpose in one transaction, all or
    /// nothing: one consent check and one key check for all, one {RecordRegistered} event per record.
    /// @dev Reverts as {registerRecord} does (the first failing entry decides), and with
    /// {RecordEmptyBatch} if `entries` is empty.
    function registerRecords(
        address patient,
        uint8 category,
        uint8 purpose,
        uint32 keyEpoch,
        RecordEntry[] calldata entries
    ) external;

    /// @notice Registers `recordId` as a new version of `patient`'s record `previousId` (whose current
    /// header is `previous`), with the same category.
    /// @dev Only the patient, or the previous version's author while it holds a write consent for the
    /// category and `purpose`, may amend. An erased version may be amended (erasure never blocks the
    /// chain of versions); a superseded one or a batch may not. Reverts with {RecordNotFound},
    /// {RecordHeaderMismatch}, {RecordIsBatch}, {RecordAlreadySuperseded}, {RecordNotAuthor}, and as
    /// {registerRecord} does.
    function amendRecord(
        address patient,
        bytes32 previousId,
        RecordHeader calldata previous,
        bytes32 recordId,
        uint8 purpose,
        uint32 keyEpoch,
        bytes32 fingerprint,
        uint8 cidCodec,
        bytes32 cidDigest
    ) external;

    /// @notice Anchors Merkle root `root` over `leafCount` leaf fingerprints of `patient`'s `category`
    /// data in one transaction. Leaves are `keccak256(bytes.concat(keccak256(abi.encode(readingId, fingerprint))))`.
    /// @dev Same author rights and key check as {registerRecord}. Reverts with {RecordInvalidId},
    /// {RecordEmptyBatch}, {RecordInvalidCid}, {RecordAlreadyExists}, any consent error, or {RecordStaleKey}.
    function anchorBatch(
        address patient,
        bytes32 root,
        uint8 category,
        uint8 purpose,
        uint32 keyEpoch,
        uint32 leafCount,
        uint8 cidCodec,
        bytes32 cidDigest
    ) external;

    /// @notice The patient erases its record (or batch) `recordId`: the commitment is rewritten with
    /// `erased = true` and a zero fingerprint, so no fingerprint stays in storage, and no access to it
    /// can be recorded any more. Returns false and emits nothing if it was already erased.
    /// @dev Reverts with {RecordNotPatient}, {RecordNotFound} or {RecordHeaderMismatch}.
    function eraseRecord(address patient, bytes32 recordId, RecordHeader calldata header)
        external
        returns (bool changed);

    /// @notice Records in the audit trail that the caller accesses `patient`'s record `recordId` for `purpose`.
    /// @dev Requires a consent valid now for the record's category and `purpose`, a live delegation,
    /// or an open emergency access. Reverts with {RecordNotFound}, {RecordHeaderMismatch},
    /// {RecordIsErased}, or the consent error that says what was missing.
    /// @return emergency True if the access rests on an emergency opening.
    function recordAccess(address patient, bytes32 recordId, RecordHeader calldata header, uint8 purpose)
        external
        returns (bool emergency);

    /// @notice The commitment of `patient`'s record `recordId` (zero if there is none):
    /// `keccak256(abi.encode(author, category, keyEpoch, erased, isBatch, leafCount, fingerprint, previous, next))`
    /// of its current header.
    function recordCommitment(address patient, bytes32 recordId) external view returns (bytes32);

    /// @notice Whether `header` is the current header of `patient`'s record `recordId`.
    function isRecordHeader(address patient, bytes32 recordId, RecordHeader calldata header)
        external
        view
        returns (bool);

    /// @notice Whether `fingerprint` is the registered fingerprint of `patient`'s live (unerased) record
    /// `recordId`, whose current header is `header`.
    function verifyFingerprint(address patient, bytes32 recordId, RecordHeader calldata header, bytes32 fingerprint)
        external
        view
        returns (bool);

    /// @notice Whether (`readingId`, `fingerprint`) is a leaf of `patient`'s anchored, unerased batch
    /// `root`, whose current header is `header`.
    function verifyBatchInclusion(
        address patient,
        bytes32 root,
        RecordHeader calldata header,
        bytes32 readingId,
        bytes32 fingerprint,
        bytes32[] calldata proof
    ) external view returns (bool);
}
