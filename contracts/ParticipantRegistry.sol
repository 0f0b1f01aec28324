// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {IParticipantRegistry} from "../interfaces/IParticipantRegistry.sol";

/// @title ParticipantRegistry
/// @notice Patients register themselves; organisations and professionals are registered by registrars.
/// @dev Abstract: {ConsentManager} inherits it so that a consent check reads the grantee's status
/// without a cross-contract call.
abstract contract ParticipantRegistry is IParticipantRegistry, AccessControl {
    /// @inheritdoc IParticipantRegistry
    bytes32 public constant REGISTRAR_ROLE = keccak256("medledger.REGISTRAR_ROLE");

    /// @dev What is read on every check of a patient: one slot.
    struct PatientState {
        bool registered;
        bool emergencyOptOut;
        uint40 registeredAt;
    }

    /// @dev What is read on every check of a participant: one slot.
    struct ParticipantState {
        ParticipantKind kind;
        bool suspended;
        uint40 registeredAt;
    }

    mapping(address patient => PatientState) internal _patients;
    mapping(address patient => bytes32 encryptionKey) private _patientKeys;
    mapping(address account => ParticipantState) internal _participants;
    mapping(address account => bytes32 credentialRef) private _credentialRefs;
    mapping(address account => bytes32 encryptionKey) private _participantKeys;

    /// @param admin Receives `DEFAULT_ADMIN_ROLE` (manages registrars) and `REGISTRAR_ROLE`.
    constructor(address admin) {
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(REGISTRAR_ROLE, admin);
    }

    // ------------------------------------------------------------------------------------------------
    // Patients
    // ------------------------------------------------------------------------------------------------

    /// @inheritdoc IParticipantRegistry
    function registerPatient(bytes32 encryptionKey) external {
        if (encryptionKey == bytes32(0)) revert RegistryInvalidEncryptionKey();
        PatientState storage state = _patients[msg.sender];
        if (state.registered) revert RegistryPatientAlreadyRegistered(msg.sender);
        state.registered = true;
        state.registeredAt = uint40(block.timestamp);
        _patientKeys[msg.sender] = encryptionKey;
        emit PatientRegistered(msg.sender, encryptionKey);
    }

    /// @inheritdoc IParticipantRegistry
    function rotatePatientKey(bytes32 encryptionKey) external returns (bool changed) {
        if (encryptionKey == bytes32(0)) revert RegistryInvalidEncryptionKey();
        _checkPatient(msg.sender);
        if (_patientKeys[msg.sender] == encryptionKey) return false;
        _patientKeys[msg.sender] = encryptionKey;
        emit PatientKeyRotated(msg.sender, encryptionKey);
        return true;
    }

    /// @inheritdoc IParticipantRegistry
    function isPatient(address account) external view returns (bool) {
        return _patients[account].registered;
    }

    /// @inheritdoc IParticipantRegistry
    function patientEncryptionKey(address patient) external view returns (bytes32) {
        return _patientKeys[patient];
    }

    // ------------------------------------------------------------------------------------------------
    // Organisations and professionals
    // ------------------------------------------------------------------------------------------------

    /// @inheritdoc IParticipantRegistry
    function registerParticipant(address account, ParticipantKind kind, bytes32 credentialRef, bytes32 encryptionKey)
        external
        onlyRole(REGISTRAR_ROLE)
    {
        if (account == address(0)) revert RegistryInvalidAccount();
        if (kind == ParticipantKind.None) revert RegistryInvalidKind();
        if (encryptionKey == bytes32(0)) revert RegistryInvalidEncryptionKey();
        ParticipantState storage state = _participants[account];
        if (state.kind != ParticipantKind.None) revert RegistryParticipantAlreadyRegistered(account);
        state.kind = kind;
        state.registeredAt = uint40(block.timestamp);
        _credentialRefs[account] = credentialRef;
        _participantKeys[account] = encryptionKey;
        emit ParticipantRegistered(account, kind, msg.sender, credentialRef, encryptionKey);
    }

    /// @inheritdoc IParticipantRegistry
    function rotateParticipantKey(bytes32 encryptionKey) external returns (bool changed) {
        if (encryptionKey == bytes32(0)) revert RegistryInvalidEncryptionKey();
        if (_participants[msg.sender].kind == ParticipantKind.None) {
            revert RegistryParticipantNotRegistered(msg.sender);
        }
        if (_participantKeys[msg.sender] == encryptionKey) return false;
        _participantKeys[msg.sender] = encryptionKey;
        emit ParticipantKeyRotated(msg.sender, encryptionKey);
        return true;
    }

    /// @inheritdoc IParticipantRegistry
    function suspendParticipant(address account, bytes32 reasonCode)
        external
        onlyRole(REGISTRAR_ROLE)
        returns (bool changed)
    {
        ParticipantState storage state = _participants[account];
        if (state.kind == ParticipantKind.None) revert RegistryParticipantNotRegistered(account);
        if (state.suspended) return false;
        state.suspended = true;
        emit ParticipantSuspended(account, msg.sender, reasonCode);
        return true;
    }

    /// @inheritdoc IParticipantRegistry
    function reinstateParticipant(address account) external onlyRole(REGISTRAR_ROLE) returns (bool changed) {
        ParticipantState storage state = _participants[account];
        if (state.kind == ParticipantKind.None) revert RegistryParticipantNotRegistered(account);
        if (!state.suspended) return false;
        state.suspended = false;
        emit ParticipantReinstated(account, msg.sender);
        return true;
    }

    /// @inheritdoc IParticipantRegistry
    function participant(address account) external view returns (Participant memory) {
        ParticipantState memory state = _participants[account];
        return Participant({
            kind: state.kind,
            suspended: state.suspended,
            registeredAt: state.registeredAt,
            credentialRef: _credentialRefs[account],
            encryptionKey: _participantKeys[account]
        });
    }

    /// @inheritdoc IParticipantRegistry
    function isActiveParticipant(address account) external view returns (bool) {
        ParticipantState memory state = _participants[account];
        return state.kind != ParticipantKind.None && !state.suspended;
    }

    // ------------------------------------------------------------------------------------------------
    // Checks
    // ------------------------------------------------------------------------------------------------

    /// @dev Reverts unless `patient` is a registered patient.
    function _checkPatient(address patient) internal view virtual {
        if (!_patients[patient].registered) revert RegistryPatientNotRegistered(patient);
    }

    /// @dev Reverts unless `account` is a registered, unsuspended participant.
    function _checkActiveParticipant(address account) internal view virtual {
        ParticipantState memory state = _participants[account];
        if (state.kind == ParticipantKind.None) revert RegistryParticipantNotRegistered(account);
        if (state.suspended) revert RegistryParticipantSuspended(account);
    }
}
