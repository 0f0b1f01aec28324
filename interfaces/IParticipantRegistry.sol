// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title IParticipantRegistry
/// @notice Who takes part in a medledger network, and the public keys records are sealed to.
/// @dev Two kinds of participant:
///  - **Patients** (and any person who acts for one, such as a family delegate) register themselves
///    with an X25519 encryption public key and one X25519 public key per data category (13): every
///    record key is sealed to the current key of its category, held here so that no writer trusts an
///    off-chain directory for it.
///  - **Organisations and professionals** (care providers, clinicians, researchers, apps,
///    commissioners, auditors) are registered by holders of `REGISTRAR_ROLE`: a consortium decides who
///    counts as a clinician. Each has a kind, an opaque credential reference (for example a keyed hash
///    of a professional registration number; never the number itself) and an encryption public key.
///    A registrar can suspend and reinstate them; while suspended, nothing they were granted works and
///    no delegation they hold as a person works either.
/// Nothing personal is stored: only addresses, kinds, opaque references and public keys.
///
/// Category keys have an *epoch* (1 at registration, + 1 at every rotation, never lower) and a
/// `validUntil`: the first second at which the current keys are *stale*, because a reader they were
/// released to no longer has access (see {IConsentManager-publishKeyEnvelope}). Writers seal only to
/// the current epoch of a key that is not stale; the registry refuses records sealed otherwise.
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

    /// @notice The current key of one of a patient's data categories, as returned by {categoryKey}.
    /// @param publicKey X25519 public key that record keys of this category are sealed to.
    /// @param epoch 1 at registration, + 1 at every rotation (0: not a registered patient).
    /// @param validUntil First second at which this key is stale (`type(uint64).max`: not limited).
    struct CategoryKey {
        bytes32 publicKey;
        uint32 epoch;
        uint64 validUntil;
    }

    /// @notice `patient` tried to register twice.
    error RegistryPatientAlreadyRegistered(address patient);
    /// @notice `patient` is not a registered patient.
    error RegistryPatientNotRegistered(address patient);
    /// @notice `account` is already a registered participant.
    error RegistryParticipantAlreadyRegistered(address account);
    /// @notice `account` is not a registered participant.
    error RegistryParticipantNotRegistered(address account);
    /// @notice `account` is suspended, so nothing it was granted works and it has no delegate powers.
    error RegistryParticipantSuspended(address account);
    /// @notice `ParticipantKind.None` was given where a real kind is needed.
    error RegistryInvalidKind();
    /// @notice The zero address was given as an account.
    error RegistryInvalidAccount();
    /// @notice An encryption public key of zero was given, or a rotation to the current key.
    error RegistryInvalidEncryptionKey();
    /// @notice The key given for `category` is zero or equal to its current key.
    error RegistryInvalidCategoryKey(uint8 category);
    /// @notice `category` is not a known category code (0..12).
    error RegistryUnknownCategory(uint8 category);

    /// @notice `patient` registered with encryption public key `encryptionKey` (its category keys
    /// follow as {CategoryKeyRotated} events of epoch 1).
    event PatientRegistered(address indexed patient, bytes32 encryptionKey);
    /// @notice `patient` replaced its encryption public key with `encryptionKey` (its category keys
    /// were rotated in the same transaction).
    event PatientKeyRotated(address indexed patient, bytes32 encryptionKey);
    /// @notice `by` (the patient or a delegate) made `publicKey` the key of `patient`'s `category`,
    /// at `epoch`. Emitted for every category at registration (epoch 1) and at every rotation.
    event CategoryKeyRotated(
        address indexed patient, uint8 indexed category, uint32 epoch, bytes32 publicKey, address by
    );
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
    // slither-disable-next-line naming-convention the getter of a constant keeps its UPPER_CASE name (OpenZeppelin style)
    function REGISTRAR_ROLE() external view returns (bytes32);

    /// @notice The time the default admin role takes to change hands (OpenZeppelin
    /// `AccessControlDefaultAdminRules`), in seconds, at deployment.
    // slither-disable-next-line naming-convention the getter of a constant keeps its UPPER_CASE name (OpenZeppelin style)
    function ADMIN_TRANSFER_DELAY() external view returns (uint48);

    /// @notice Registers the caller as a patient, with its encryption key and one key per category.
    /// @dev Sets every category key to epoch 1, not limited in time. Costs about 530,000 gas (20 new
    /// storage slots: 13 public keys and 7 packed epoch/validity words). Reverts with
    /// {RegistryPatientAlreadyRegistered}, {RegistryInvalidEncryptionKey} or {RegistryInvalidCategoryKey}.
    /// @param encryptionKey The caller's X25519 public key.
    /// @param categoryKeys The X25519 public key of each category, indexed by category code.
    function registerPatient(bytes32 encryptionKey, bytes32[13] calldata categoryKeys) external;

    /// @notice Replaces the caller's patient encryption key and, in the same transaction, every
    /// category key (each epoch + 1, not limited in time): whoever held the old encryption key could
    /// open the category secrets sealed to it, so none of them stays current.
    /// @dev Reverts with {RegistryPatientNotRegistered}, {RegistryInvalidEncryptionKey} (zero or the
    /// current key) or {RegistryInvalidCategoryKey}.
    function rotatePatientKey(bytes32 encryptionKey, bytes32[13] calldata categoryKeys) external;

    /// @notice Registers `account` as an organisation or professional. Registrars only.
    /// @dev `credentialRef` may be zero where the network keeps no credential reference.
    /// Reverts with {RegistryInvalidAccount}, {RegistryInvalidKind}, {RegistryInvalidEncryptionKey},
    /// {RegistryParticipantAlreadyRegistered}, or OpenZeppelin's `AccessControlUnauthorizedAccount`.
    function registerParticipant(address account, ParticipantKind kind, bytes32 credentialRef, bytes32 encryptionKey)
        external;

    /// @notice Replaces the calling participant's encryption key. Returns whether anything changed.
    /// @dev Allowed while suspended (a compromised key must be replaceable). Reverts with
    /// {RegistryParticipantNotRegistered} or {RegistryInvalidEncryptionKey} (zero).
    function rotateParticipantKey(bytes32 encryptionKey) external returns (bool changed);

    /// @notice Suspends `account`: every consent and emergency access it holds, every delegate power
    /// it holds as a person, and every consent it made as a delegate stop working until reinstated.
    /// Registrars only.
    /// @dev Returns false and emits nothing if `account` was already suspended. Suspension is a refusal
    /// on chain, not a key rotation: the account still holds whatever keys it was sent.
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

    /// @notice The current key of `patient`'s `category` (all zero if `patient` is not registered).
    /// @dev The key is stale, and writers must not seal to it, once `block.timestamp >= validUntil`.
    /// Reverts with {RegistryUnknownCategory}.
    function categoryKey(address patient, uint8 category) external view returns (CategoryKey memory);

    /// @notice The participant record of `account` (kind `None` if not registered).
    function participant(address account) external view returns (Participant memory);

    /// @notice Whether `account` is a registered participant that is not suspended.
    function isActiveParticipant(address account) external view returns (bool);
}
