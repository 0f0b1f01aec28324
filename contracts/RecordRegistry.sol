// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Context} from "@openzeppelin/contracts/utils/Context.sol";
import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";
import {IConsentManager} from "../interfaces/IConsentManager.sol";
import {IRecordRegistry} from "../interfaces/IRecordRegistry.sol";

/// @title RecordRegistry
/// @notice Record fingerprints, versions, batch anchors and the audit trail of accesses, each record
/// in its patient's namespace.
/// @dev Abstract: it asks {_checkRecordAccess} and {_checkRecordKey} for every write and access, which
/// {Medledger} answers from its consent module without a cross-contract call (that call would cost
/// every record write and every audited access ~3,000 gas). Storage per record or batch: one slot,
/// the commitment to its {RecordHeader}; the header travels in calldata and events.
abstract contract RecordRegistry is IRecordRegistry, Context {
    /// @dev The two multicodecs of a record's CIDv1: raw (a single block) and dag-pb (UnixFS).
    uint8 private constant CODEC_RAW = 0x55;
    uint8 private constant CODEC_DAG_PB = 0x70;

    mapping(address patient => mapping(bytes32 recordId => bytes32 commitment)) private _records;

    /// @inheritdoc IRecordRegistry
    function registerRecord(
        address patient,
        bytes32 recordId,
        uint8 category,
        uint8 purpose,
        uint32 keyEpoch,
        bytes32 fingerprint,
        uint8 cidCodec,
        bytes32 cidDigest
    ) external {
        address author = _msgSender();
        _checkWrite(patient, author, category, purpose, keyEpoch);
        _store(
            patient,
            recordId,
            _newHeader(author, category, keyEpoch, fingerprint, bytes32(0)),
            purpose,
            cidCodec,
            cidDigest
        );
    }

    /// @inheritdoc IRecordRegistry
    function registerRecords(
        address patient,
        uint8 category,
        uint8 purpose,
        uint32 keyEpoch,
        RecordEntry[] calldata entries
    ) external {
        if (entries.length == 0) revert RecordEmptyBatch();
        address author = _msgSender();
        _checkWrite(patient, author, category, purpose, keyEpoch);
        RecordHeader memory header = _newHeader(author, category, keyEpoch, bytes32(0), bytes32(0));
        for (uint256 i; i < entries.length; ++i) {
            RecordEntry calldata entry = entries[i];
            header.fingerprint = entry.fingerprint;
            _store(patient, entry.recordId, header, purpose, entry.cidCodec, entry.cidDigest);
        }
    }

    /// @inheritdoc IRecordRegistry
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
    ) external {
        RecordHeader memory header = _checkAmendment(patient, previousId, previous, purpose, keyEpoch);
        header.fingerprint = fingerprint;
        _store(patient, recordId, header, purpose, cidCodec, cidDigest);
        RecordHeader memory superseded = previous;
        superseded.next = recordId;
        _records[patient][previousId] = _hashHeader(superseded);
        emit RecordAmended(previousId, recordId, patient);
    }

    /// @inheritdoc IRecordRegistry
    function anchorBatch(
        address patient,
        bytes32 root,
        uint8 category,
        uint8 purpose,
        uint32 keyEpoch,
        uint32 leafCount,
        uint8 cidCodec,
        bytes32 cidDigest
    ) external {
        address author = _msgSender();
        _checkWrite(patient, author, category, purpose, keyEpoch);
        if (root == bytes32(0)) revert RecordInvalidId();
        if (leafCount == 0) revert RecordEmptyBatch();
        _checkCid(cidCodec, cidDigest);
        mapping(bytes32 => bytes32) storage records = _records[patient];
        if (records[root] != bytes32(0)) revert RecordAlreadyExists(patient, root);
        records[root] = _hashHeader(
            RecordHeader({
                author: author,
                category: category,
                keyEpoch: keyEpoch,
                erased: false,
                isBatch: true,
                leafCount: leafCount,
                fingerprint: bytes32(0),
                previous: bytes32(0),
                next: bytes32(0)
            })
        );
        emit BatchAnchored(root, patient, author, category, purpose, keyEpoch, leafCount, cidCodec, cidDigest);
    }

    /// @inheritdoc IRecordRegistry
    function eraseRecord(address patient, bytes32 recordId, RecordHeader calldata header)
        external
        returns (bool changed)
    {
        address caller = _msgSender();
        if (caller != patient) revert RecordNotPatient(caller, patient);
        _checkHeader(patient, recordId, header);
        if (header.erased) return false;
        RecordHeader memory erased = header;
        erased.erased = true;
        erased.fingerprint = bytes32(0);
        _records[patient][recordId] = _hashHeader(erased);
        emit RecordErased(recordId, patient);
        return true;
    }

    /// @inheritdoc IRecordRegistry
    function recordAccess(address patient, bytes32 recordId, RecordHeader calldata header, uint8 purpose)
        external
        returns (bool emergency)
    {
        _checkHeader(patient, recordId, header);
        if (header.erased) revert RecordIsErased(patient, recordId);
        address accessor = _msgSender();
        emergency = _checkRecordAccess(patient, accessor, IConsentManager.Access.Read, header.category, purpose);
        emit RecordAccessed(recordId, patient, accessor, purpose, emergency);
    }

    /// @inheritdoc IRecordRegistry
    function recordCommitment(address patient, bytes32 recordId) external view returns (bytes32) {
        return _records[patient][recordId];
    }

    /// @inheritdoc IRecordRegistry
    function isRecordHeader(address patient, bytes32 recordId, RecordHeader calldata header)
        public
        view
        returns (bool)
    {
        bytes32 commitment = _records[patient][recordId];
        return commitment != bytes32(0) && commitment == _hashHeader(header);
    }

    /// @inheritdoc IRecordRegistry
    function verifyFingerprint(address patient, bytes32 recordId, RecordHeader calldata header, bytes32 fingerprint)
        external
        view
        returns (bool)
    {
        return fingerprint != bytes32(0) && header.fingerprint == fingerprint && !header.erased && !header.isBatch
            && isRecordHeader(patient, recordId, header);
    }

    /// @inheritdoc IRecordRegistry
    function verifyBatchInclusion(
        address patient,
        bytes32 root,
        RecordHeader calldata header,
        bytes32 readingId,
        bytes32 fingerprint,
        bytes32[] calldata proof
    ) external view returns (bool) {
        if (!header.isBatch || header.erased || !isRecordHeader(patient, root, header)) return false;
        bytes32 leaf = keccak256(bytes.concat(keccak256(abi.encode(readingId, fingerprint))));
        return MerkleProof.verifyCalldata(proof, root, leaf);
    }

    // ------------------------------------------------------------------------------------------------
    // Internal
    // ------------------------------------------------------------------------------------------------

    /// @dev Stores a new record `recordId` of `patient` with `header` and logs it.
    function _store(
        address patient,
        bytes32 recordId,
        RecordHeader memory header,
        uint8 purpose,
        uint8 cidCodec,
        bytes32 cidDigest
    ) internal virtual {
        if (recordId == bytes32(0)) revert RecordInvalidId();
        if (header.fingerprint == bytes32(0)) revert RecordInvalidFingerprint();
        _checkCid(cidCodec, cidDigest);
        mapping(bytes32 => bytes32) storage records = _records[patient];
        if (records[recordId] != bytes32(0)) revert RecordAlreadyExists(patient, recordId);
        records[recordId] = _hashHeader(header);
        emit RecordRegistered(
            recordId,
            patient,
            header.author,
            header.category,
            purpose,
            header.keyEpoch,
            header.fingerprint,
            cidCodec,
            cidDigest
        );
    }

    /// @dev Reverts unless `author` may write `category` data of `patient` for `purpose`, sealed to
    /// the current, fresh epoch `keyEpoch` of that category's key.
    function _checkWrite(address patient, address author, uint8 category, uint8 purpose, uint32 keyEpoch)
        internal
        view
        virtual
    {
        _checkRecordAccess(patient, author, IConsentManager.Access.Write, category, purpose);
        _checkRecordKey(patient, category, keyEpoch);
    }

    /// @dev Reverts unless the caller may amend `patient`'s record `previousId` (current header
    /// `previous`) for `purpose` with a record key sealed to `keyEpoch`; returns the new version's
    /// header without its fingerprint.
    function _checkAmendment(
        address patient,
        bytes32 previousId,
        RecordHeader calldata previous,
        uint8 purpose,
        uint32 keyEpoch
    ) internal view virtual returns (RecordHeader memory) {
        _checkHeader(patient, previousId, previous);
        if (previous.isBatch) revert RecordIsBatch(patient, previousId);
        if (previous.next != bytes32(0)) revert RecordAlreadySuperseded(patient, previousId, previous.next);
        address author = _msgSender();
        if (author != patient && author != previous.author) revert RecordNotAuthor(author, previous.author);
        _checkWrite(patient, author, previous.category, purpose, keyEpoch);
        return _newHeader(author, previous.category, keyEpoch, bytes32(0), previousId);
    }

    /// @dev Reverts unless `header` is the current header of `patient`'s record `recordId`.
    function _checkHeader(address patient, bytes32 recordId, RecordHeader calldata header) internal view {
        bytes32 commitment = _records[patient][recordId];
        if (commitment == bytes32(0)) revert RecordNotFound(patient, recordId);
        if (commitment != _hashHeader(header)) revert RecordHeaderMismatch(patient, recordId);
    }

    /// @dev Reverts unless (`codec`, `digest`) is a CIDv1, raw or dag-pb, with a non-zero sha2-256 digest.
    function _checkCid(uint8 codec, bytes32 digest) internal pure {
        if ((codec != CODEC_RAW && codec != CODEC_DAG_PB) || digest == bytes32(0)) {
            revert RecordInvalidCid(codec, digest);
        }
    }

    /// @dev Reverts with the reason `accessor` may not perform `access` on `category` data of `patient`
    /// for `purpose`; returns whether the access rests on an emergency opening.
    function _checkRecordAccess(
        address patient,
        address accessor,
        IConsentManager.Access access,
        uint8 category,
        uint8 purpose
    ) internal view virtual returns (bool emergency);

    /// @dev Reverts with {RecordStaleKey} unless `keyEpoch` is the current, fresh epoch of `patient`'s
    /// `category` key.
    function _checkRecordKey(address patient, uint8 category, uint32 keyEpoch) internal view virtual;

    function _newHeader(address author, uint8 category, uint32 keyEpoch, bytes32 fingerprint, bytes32 previous)
        private
        pure
        returns (RecordHeader memory)
    {
        return RecordHeader({
            author: author,
            category: category,
            keyEpoch: keyEpoch,
            erased: false,
            isBatch: false,
            leafCount: 0,
            fingerprint: fingerprint,
            previous: previous,
            next: bytes32(0)
        });
    }

    // slither-disable-next-line assembly hashes the struct in place (see above)
    function _hashHeader(RecordHeader memory h) private pure returns (bytes32 digest) {
        // Hashes the struct in place (see above).
        // solhint-disable-next-line no-inline-assembly
        assembly ("memory-safe") {
            digest := keccak256(h, 288)
        }
    }
}
