// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";
import {IConsentManager} from "../interfaces/IConsentManager.sol";
import {IRecordRegistry} from "../interfaces/IRecordRegistry.sol";

/// @title RecordRegistry
/// @notice Record fingerprints, versions, batch anchors and the audit trail of accesses.
/// @dev Abstract: it asks {_checkRecordAccess} for every write and access, which {Medledger} answers
/// from its consent module without a cross-contract call (that call would cost every record write and
/// every audited access ~3,000 gas). Storage per record: one packed header slot plus the fingerprint
/// slot; a batch needs the header slot only (its id is the Merkle root).
abstract contract RecordRegistry is IRecordRegistry {
    /// @dev The header of a record or batch: everything an access check reads, in one slot.
    struct RecordHeader {
        address patient;
        uint8 category;
        uint8 flags;
        uint40 createdAt;
        uint32 leafCount;
    }

    uint8 private constant FLAG_ERASED = 1;
    uint8 private constant FLAG_BATCH = 2;

    mapping(bytes32 recordId => RecordHeader) private _records;
    mapping(bytes32 recordId => bytes32 fingerprint) private _fingerprints;
    mapping(bytes32 recordId => bytes32 previousId) private _previousVersions;
    mapping(bytes32 recordId => bytes32 nextId) private _nextVersions;

    /// @inheritdoc IRecordRegistry
    function registerRecord(
        bytes32 recordId,
        address patient,
        uint8 category,
        uint8 purpose,
        bytes32 fingerprint,
        bytes calldata cid
    ) external {
        _register(recordId, patient, category, purpose, fingerprint, cid);
    }

    /// @inheritdoc IRecordRegistry
    function amendRecord(bytes32 previousId, bytes32 recordId, uint8 purpose, bytes32 fingerprint, bytes calldata cid)
        external
    {
        RecordHeader memory previous = _records[previousId];
        _checkExists(previousId, previous);
        if (previous.flags & FLAG_ERASED != 0) revert RecordIsErased(previousId);
        if (previous.flags & FLAG_BATCH != 0) revert RecordIsBatch(previousId);
        bytes32 next = _nextVersions[previousId];
        if (next != bytes32(0)) revert RecordAlreadySuperseded(previousId, next);
        _register(recordId, previous.patient, previous.category, purpose, fingerprint, cid);
        _previousVersions[recordId] = previousId;
        _nextVersions[previousId] = recordId;
        emit RecordAmended(previousId, recordId, previous.patient);
    }

    /// @inheritdoc IRecordRegistry
    function anchorBatch(
        bytes32 root,
        address patient,
        uint8 category,
        uint8 purpose,
        uint32 leafCount,
        bytes calldata cid
    ) external {
        if (root == bytes32(0)) revert RecordInvalidId();
        if (leafCount == 0) revert RecordEmptyBatch();
        if (cid.length == 0) revert RecordInvalidCid();
        if (_records[root].patient != address(0)) revert RecordAlreadyExists(root);
        _checkAuthor(patient, category, purpose);
        _records[root] = RecordHeader({
            patient: patient,
            category: category,
            flags: FLAG_BATCH,
            createdAt: uint40(block.timestamp),
            leafCount: leafCount
        });
        emit BatchAnchored(root, patient, msg.sender, category, purpose, leafCount, cid);
    }

    /// @inheritdoc IRecordRegistry
    function eraseRecord(bytes32 recordId) external returns (bool changed) {
        RecordHeader storage header = _records[recordId];
        address patient = header.patient;
        if (patient == address(0)) revert RecordNotFound(recordId);
        _checkPatientCaller(patient);
        if (header.flags & FLAG_ERASED != 0) return false;
        header.flags |= FLAG_ERASED;
        delete _fingerprints[recordId];
        emit RecordErased(recordId, patient);
        return true;
    }

    /// @inheritdoc IRecordRegistry
    function recordAccess(bytes32 recordId, uint8 purpose) external returns (bool emergency) {
        RecordHeader memory header = _records[recordId];
        _checkExists(recordId, header);
        if (header.flags & FLAG_ERASED != 0) revert RecordIsErased(recordId);
        emergency = _checkRecordAccess(header.patient, msg.sender, IConsentManager.Access.Read, header.category, purpose);
        emit RecordAccessed(recordId, header.patient, msg.sender, purpose, emergency);
    }

    /// @inheritdoc IRecordRegistry
    function record(bytes32 recordId) external view returns (RecordInfo memory info) {
        RecordHeader memory header = _records[recordId];
        info.patient = header.patient;
        info.category = header.category;
        info.createdAt = header.createdAt;
        info.erased = header.flags & FLAG_ERASED != 0;
        info.isBatch = header.flags & FLAG_BATCH != 0;
        info.leafCount = header.leafCount;
        info.fingerprint = _fingerprints[recordId];
        info.previousVersion = _previousVersions[recordId];
        info.nextVersion = _nextVersions[recordId];
    }

    /// @inheritdoc IRecordRegistry
    function verifyFingerprint(bytes32 recordId, bytes32 fingerprint) external view returns (bool) {
        return fingerprint != bytes32(0) && _fingerprints[recordId] == fingerprint;
    }

    /// @inheritdoc IRecordRegistry
    function verifyBatchInclusion(bytes32 root, bytes32 readingId, bytes32 fingerprint, bytes32[] calldata proof)
        external
        view
        returns (bool)
    {
        if (_records[root].flags & (FLAG_BATCH | FLAG_ERASED) != FLAG_BATCH) return false;
        bytes32 leaf = keccak256(bytes.concat(keccak256(abi.encode(readingId, fingerprint))));
        return MerkleProof.verifyCalldata(proof, root, leaf);
    }

    // ------------------------------------------------------------------------------------------------
    // Internal
    // ------------------------------------------------------------------------------------------------

    function _register(
        bytes32 recordId,
        address patient,
        uint8 category,
        uint8 purpose,
        bytes32 fingerprint,
        bytes calldata cid
    ) internal virtual {
        if (recordId == bytes32(0)) revert RecordInvalidId();
        if (fingerprint == bytes32(0)) revert RecordInvalidFingerprint();
        if (cid.length == 0) revert RecordInvalidCid();
        if (_records[recordId].patient != address(0)) revert RecordAlreadyExists(recordId);
        _checkAuthor(patient, category, purpose);
        _records[recordId] = RecordHeader({
            patient: patient,
            category: category,
            flags: 0,
            createdAt: uint40(block.timestamp),
            leafCount: 0
        });
        _fingerprints[recordId] = fingerprint;
        emit RecordRegistered(recordId, patient, msg.sender, category, purpose, fingerprint, cid);
    }

    /// @dev Reverts unless the caller may write `category` data of `patient` for `purpose`.
    function _checkAuthor(address patient, uint8 category, uint8 purpose) internal view virtual {
        _checkRecordAccess(patient, msg.sender, IConsentManager.Access.Write, category, purpose);
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

    /// @dev Reverts unless the caller is `patient`.
    function _checkPatientCaller(address patient) internal view virtual {
        if (msg.sender != patient) revert RecordNotPatient(msg.sender, patient);
    }

    /// @dev Reverts unless `header` (read for `recordId`) exists.
    function _checkExists(bytes32 recordId, RecordHeader memory header) internal pure {
        if (header.patient == address(0)) revert RecordNotFound(recordId);
    }
}
