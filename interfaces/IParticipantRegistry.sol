// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title IParticipantRegistry
/// @notice Who takes part in a medledger network.
/// @dev Two kinds of participant:
///  - **Patients** (and any person who acts for one, such as a family delegate) register themselves
///    with an X25519 encryption public key. Keys are used off-chain to deliver record keys.
///  - **Organisations and professionals** (care providers, clinicians, researchers, apps,
///    commissioners, auditors) are registered by holders of `REGISTRAR_ROLE`: a consortium decides who
///    counts as a clinician. Each has a kind, an opaque credential reference (for example a keyed hash
///    of a professional registration number; never the number itself) and an encryption public key.
///    A registrar can suspend and reinstate them; while suspended, nothing they were granted works.
/// Nothing personal is stored: only addresses, kinds, opaque references and public keys.
interface IParticipantRegistry {
    /// @notice The kind of a registered organisation or professional.
    enum ParticipantKind {
        None,
        CareProvider,
        Clinician,
        Researcher,
        App,
        Commissioner,
        Auditor
    }

    /// @notice A registered organisation or professional, as returned by {participant}.
    /// @param kind What the participant is; `None` if not registered.
    /// @param suspended Whether a registrar has suspended the participant.
    /// @param registeredAt When the participant was registered (unix seconds).
    /// @param credentialRef Opaque reference to the participant's credential (for example a keyed hash).
    /// @param encryptionKey X25519 public key used off-chain to deliver keys to the participant.
    struct Participant {
        ParticipantKind kind;
        bool suspended;
        uint40 registeredAt;
        bytes32 credentialRef;
        bytes32 encryptionKey;
    }

    /// @notice `patient` tried to register twice.
    error RegistryPatientAlreadyRegistered(address patient);
    /// @notice `patient` is not a registered patient.
    error RegistryPatientNotRegistered(address patient);
    /// @notice `account` is already a registered participant.
    error RegistryParticipantAlreadyRegistered(address account);
    /// @notice `account` is not a registered participant.
    error RegistryParticipantNotRegistered(address account);
    /// @notice `account` is suspended, so nothing it was granted works.
    error RegistryParticipantSuspended(address account);
    /// @notice `ParticipantKind.None` was given where a real kind is needed.
    error RegistryInvalidKind();
    /// @notice The zero address was given as an account.
    error RegistryInvalidAccount();
    /// @notice An encryption public key of zero was given.
    error RegistryInvalidEncryptionKey();

    /// @notice `patient` registered with encryption public key `encryptionKey`.
    event PatientRegistered(address indexed patient, bytes32 encryptionKey);
    /// @notice `patient` replaced its encryption public key with `encryptionKey`.
    event PatientKeyRotated(address indexed patient, bytes32 encryptionKey);
    /// @notice `registrar` registered `account` as a participant of `kind`.
    event ParticipantRegistered(
        address indexed account,
        ParticipantKind indexed kind,
        address indexed registrar,
        bytes32 credentialRef,
        bytes32 encryptionKey
    );
    /// @notice Participant `account` replaced its encryption public key with `encryptionKey`.
    event ParticipantKeyRotated(address indexed account, bytes32 encryptionKey);
    /// @notice `registrar` suspended `account` for the reason code `reasonCode`.
    event ParticipantSuspended(address indexed account, address indexed registrar, bytes32 reasonCode);
    /// @notice `registrar` reinstated `account`.
    event ParticipantReinstated(address indexed account, address indexed registrar);

    /// @notice The role allowed to register, suspend and reinstate participants.
    function REGISTRAR_ROLE() external view returns (bytes32);

    /// @notice Registers the caller as a patient.
    /// @dev Reverts with {RegistryPatientAlreadyRegistered} or {RegistryInvalidEncryptionKey}.
    /// @param encryptionKey The caller's X25519 public key.
    function registerPatient(bytes32 encryptionKey) external;

    /// @notice Replaces the caller's patient encryption key. Returns whether anything changed.
    /// @dev Reverts with {RegistryPatientNotRegistered} or {RegistryInvalidEncryptionKey}.
    function rotatePatientKey(bytes32 encryptionKey) external returns (bool changed);

    /// @notice Registers `account` as an organisation or professional. Registrars only.
    /// @dev `credentialRef` may be zero where the network keeps no credential reference.
    /// Reverts with {RegistryInvalidAccount}, {RegistryInvalidKind}, {RegistryInvalidEncryptionKey},
    /// {RegistryParticipantAlreadyRegistered}, or OpenZeppelin's `AccessControlUnauthorizedAccount`.
    function registerParticipant(address account, ParticipantKind kind, bytes32 credentialRef, bytes32 encryptionKey)
        external;

    /// @notice Replaces the calling participant's encryption key. Returns whether anything changed.
    /// @dev Allowed while suspended (a compromised key must be replaceable). Reverts with
    /// {RegistryParticipantNotRegistered} or {RegistryInvalidEncryptionKey}.
    function rotateParticipantKey(bytes32 encryptionKey) external returns (bool changed);

    /// @notice Suspends `account`: every consent and emergency access it holds stops working. Registrars only.
    /// @dev Returns false and emits nothing if `account` was already suspended.
    /// Reverts with {RegistryParticipantNotRegistered} or `AccessControlUnauthorizedAccount`.
    function suspendParticipant(address account, bytes32 reasonCode) external returns (bool changed);

    /// @notice Lifts the suspension of `account`. Registrars only.
    /// @dev Returns false and emits nothing if `account` was not suspended.
    /// Reverts with {RegistryParticipantNotRegistered} or `AccessControlUnauthorizedAccount`.
    function reinstateParticipant(address account) external returns (bool changed);

    /// @notice Whether `account` is a registered patient.
    function isPatient(address account) external view returns (bool);

    /// @notice The encryption public key of patient `patient` (zero if not registered).
    function patientEncryptionKey(address patient) external view returns (bytes32);

    /// @notice The participant record of `account` (kind `None` if not registered).
    function participant(address account) external view returns (Participant memory);

    /// @notice Whether `account` is a registered participant that is not suspended.
    function isActiveParticipant(address account) external view returns (bool);
}
