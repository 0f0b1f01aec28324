// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {
    AccessControlDefaultAdminRules
} from "@openzeppelin/contracts/access/extensions/AccessControlDefaultAdminRules.sol";
import {IParticipantRegistry} from "../interfaces/IParticipantRegistry.sol";

/// @title ParticipantRegistry
/// @notice Patients register themselves, with their category keys; organisations and professionals
/// are registered by registrars.
/// @dev Abstract: {ConsentManager} inherits it so that a consent check reads the grantee's status
/// without a cross-contract call. The default admin (who appoints registrars) changes hands only
/// through OpenZeppelin's two-step transfer with a delay ({ADMIN_TRANSFER_DELAY}).
abstract contract ParticipantRegistry is IParticipantRegistry, AccessControlDefaultAdminRules {
    // Slither: key validity is chain time (see ConsentManager), and `kind == None` is an enum sentinel.
    // slither-disable-start timestamp,incorrect-equality
    /// @inheritdoc IParticipantRegistry
    bytes32 public constant REGISTRAR_ROLE = keccak256("medledger.REGISTRAR_ROLE");

    /// @inheritdoc IParticipantRegistry
    uint48 public constant ADMIN_TRANSFER_DELAY = 3 days;

    /// @dev Number of category codes (0..12).
    uint8 internal constant CATEGORY_COUNT = 13;
    /// @dev A key state's `validUntil` when nothing limits it.
    uint64 internal constant UNLIMITED = type(uint64).max;

    /// @dev What is read on every check of a patient: one slot. The emergency and delegation fields
    /// are kept by {ConsentManager} (through {_patientState}) so that one read serves both modules.
    /// @param delegationCount The last delegation id given out (ids start at 1).
    /// @param emergencyGeneration + 1 at every opt-out: windows opened under an older one are closed.
    /// @param emergencyKeyCategories Categories whose keys were released under an emergency access since
    /// the last opt-out.
    struct PatientState {
        bool registered;
        bool emergencyOptOut;
        uint40 registeredAt;
        uint24 delegationCount;
        uint32 emergencyGeneration;
        uint16 emergencyKeyCategories;
    }

    /// @dev What is read on every check of a participant: one slot.
    struct ParticipantState {
        ParticipantKind kind;
        bool suspended;
        uint40 registeredAt;
    }

    mapping(address patient => PatientState) private _patients;
    mapping(address patient => bytes32 encryptionKey) private _patientKeys;
    /// @dev The public key of each category.
    mapping(address patient => bytes32[13] publicKeys) private _categoryKeys;
    /// @dev Per category `epoch << 64 | validUntil`, packed two to a slot (7 slots for 13 categories),
    /// so that a write checks one slot and releasing two neighbouring categories touches one.
    mapping(address patient => uint96[13] keyStates) private _keyStates;
    mapping(address account => ParticipantState) private _participants;
    mapping(address account => bytes32 credentialRef) private _credentialRefs;
    mapping(address account => bytes32 encryptionKey) private _participantKeys;

    /// @param admin Receives the default admin role (manages registrars) and `REGISTRAR_ROLE`.
    constructor(address admin) AccessControlDefaultAdminRules(ADMIN_TRANSFER_DELAY, admin) {
        _grantRole(REGISTRAR_ROLE, admin);
    }

    // ------------------------------------------------------------------------------------------------
    // Patients
    // ------------------------------------------------------------------------------------------------

    /// @inheritdoc IParticipantRegistry
    function registerPatient(bytes32 encryptionKey, bytes32[13] calldata categoryKeys) external {
        address patient = _msgSender();
        if (encryptionKey == bytes32(0)) revert RegistryInvalidEncryptionKey();
        PatientState storage state = _patients[patient];
        if (state.registered) revert RegistryPatientAlreadyRegistered(patient);
        state.registered = true;
        state.registeredAt = uint40(block.timestamp);
        _patientKeys[patient] = encryptionKey;
        emit PatientRegistered(patient, encryptionKey);
        _rotateAllCategoryKeys(patient, categoryKeys);
    }

    /// @inheritdoc IParticipantRegistry
    function rotatePatientKey(bytes32 encryptionKey, bytes32[13] calldata categoryKeys) external {
        address patient = _msgSender();
        _checkPatient(patient);
        if (encryptionKey == bytes32(0) || encryptionKey == _patientKeys[patient]) {
            revert RegistryInvalidEncryptionKey();
        }
        _patientKeys[patient] = encryptionKey;
        emit PatientKeyRotated(patient, encryptionKey);
        _rotateAllCategoryKeys(patient, categoryKeys);
    }

    /// @inheritdoc IParticipantRegistry
    function isPatient(address account) external view returns (bool) {
        return _patients[account].registered;
    }

    /// @inheritdoc IParticipantRegistry
    function patientEncryptionKey(address patient) external view returns (bytes32) {
        return _patientKeys[patient];
    }

    /// @inheritdoc IParticipantRegistry
    function categoryKey(address patient, uint8 category) external view returns (CategoryKey memory key) {
        if (category >= CATEGORY_COUNT) revert RegistryUnknownCategory(category);
        key.publicKey = _categoryKeys[patient][category];
        (key.epoch, key.validUntil) = _keyState(patient, category);
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
        emit ParticipantRegistered(account, kind, _msgSender(), credentialRef, encryptionKey);
    }

    /// @inheritdoc IParticipantRegistry
    function rotateParticipantKey(bytes32 encryptionKey) external returns (bool changed) {
        address account = _msgSender();
        if (encryptionKey == bytes32(0)) revert RegistryInvalidEncryptionKey();
        if (_participants[account].kind == ParticipantKind.None) revert RegistryParticipantNotRegistered(account);
        if (_participantKeys[account] == encryptionKey) return false;
        _participantKeys[account] = encryptionKey;
        emit ParticipantKeyRotated(account, encryptionKey);
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
        emit ParticipantSuspended(account, _msgSender(), reasonCode);
        return true;
    }

    /// @inheritdoc IParticipantRegistry
    function reinstateParticipant(address account) external onlyRole(REGISTRAR_ROLE) returns (bool changed) {
        ParticipantState storage state = _participants[account];
        if (state.kind == ParticipantKind.None) revert RegistryParticipantNotRegistered(account);
        if (!state.suspended) return false;
        state.suspended = false;
        emit ParticipantReinstated(account, _msgSender());
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

    /// @notice Answers {IParticipantRegistry} as well as what OpenZeppelin's access control answers.
    function supportsInterface(bytes4 interfaceId) public view virtual override returns (bool) {
        return interfaceId == type(IParticipantRegistry).interfaceId || super.supportsInterface(interfaceId);
    }

    // ------------------------------------------------------------------------------------------------
    // Internal getters and key state
    // ------------------------------------------------------------------------------------------------

    /// @dev The state of `patient` (zero if not registered), for the consent module to read and update.
    function _patientState(address patient) internal view returns (PatientState storage) {
        return _patients[patient];
    }

    /// @dev The state of participant `account` (kind `None` if not registered).
    function _participantState(address account) internal view returns (ParticipantState memory) {
        return _participants[account];
    }

    /// @dev Whether `account` is a registered participant under suspension.
    function _isSuspended(address account) internal view returns (bool) {
        return _participants[account].suspended;
    }

    /// @dev The epoch of `patient`'s key of `category` and the first second it is stale.
    function _keyState(address patient, uint8 category) internal view returns (uint32 epoch, uint64 validUntil) {
        uint96 packed = _keyStates[patient][category];
        return (uint32(packed >> 64), uint64(packed));
    }

    /// @dev Makes `publicKey` the key of `patient`'s `category` at the next epoch, not limited in time.
    function _rotateCategoryKey(address patient, uint8 category, bytes32 publicKey, address by) internal {
        bytes32[13] storage keys = _categoryKeys[patient];
        if (publicKey == bytes32(0) || publicKey == keys[category]) revert RegistryInvalidCategoryKey(category);
        keys[category] = publicKey;
        (uint32 epoch,) = _keyState(patient, category);
        ++epoch;
        _keyStates[patient][category] = (uint96(epoch) << 64) | UNLIMITED;
        emit CategoryKeyRotated(patient, category, epoch, publicKey, by);
    }

    /// @dev Lowers the `validUntil` of `patient`'s keys of every category in `categories` to `until`
    /// where it is later: they must not outlive the access of a reader they were released to.
    function _limitKeys(address patient, uint16 categories, uint64 until) internal {
        uint96[13] storage states = _keyStates[patient];
        for (uint8 category; categories != 0; ++category) {
            if (categories & 1 != 0) {
                uint96 packed = states[category];
                if (uint64(packed) > until) states[category] = (packed & ~uint96(UNLIMITED)) | until;
            }
            categories >>= 1;
        }
    }

    /// @dev Makes `patient`'s current keys of `categories` stale now: a reader they were released to
    /// lost its access early.
    function _expireKeys(address patient, uint16 categories) internal {
        _limitKeys(patient, categories, uint64(block.timestamp));
    }

    function _rotateAllCategoryKeys(address patient, bytes32[13] calldata categoryKeys) private {
        for (uint8 category; category < CATEGORY_COUNT; ++category) {
            _rotateCategoryKey(patient, category, categoryKeys[category], patient);
        }
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
    // slither-disable-end timestamp,incorrect-equality
}
