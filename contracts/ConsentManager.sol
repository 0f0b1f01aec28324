// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {SignatureChecker} from "@openzeppelin/contracts/utils/cryptography/SignatureChecker.sol";
import {Nonces} from "@openzeppelin/contracts/utils/Nonces.sol";
import {IConsentManager} from "../interfaces/IConsentManager.sol";
import {ParticipantRegistry} from "./ParticipantRegistry.sol";

/// @title ConsentManager
/// @notice The access-control list of medledger: participants, consents, delegates, emergency access.
/// @dev Abstract: deployed as part of {Medledger}, so that record writes and accesses check consent
/// without a cross-contract call. Other contracts can still ask {checkAccess}.
abstract contract ConsentManager is IConsentManager, ParticipantRegistry, EIP712, Nonces {
    /// @dev Number of category codes (0..12) and purpose codes (0..5); masks must stay inside them.
    uint8 internal constant CATEGORY_COUNT = 13;
    uint8 internal constant PURPOSE_COUNT = 6;
    uint16 internal constant ALL_CATEGORIES = uint16((1 << CATEGORY_COUNT) - 1);
    uint16 internal constant ALL_PURPOSES = uint16((1 << PURPOSE_COUNT) - 1);
    uint8 internal constant PURPOSE_FAMILY_CARE = 4;
    uint8 internal constant PURPOSE_EMERGENCY = 5;

    /// @inheritdoc IConsentManager
    uint32 public constant MAX_EMERGENCY_WINDOW = 24 hours;

    /// @inheritdoc IConsentManager
    bytes32 public constant GRANT_TYPEHASH = keccak256(
        "Grant(address patient,address grantee,uint8 access,uint16 categories,uint16 purposes,uint64 start,uint64 expiry,bytes32 keyEnvelope,uint256 nonce,uint256 deadline)"
    );

    /// @inheritdoc IConsentManager
    bytes32 public constant REVOKE_TYPEHASH =
        keccak256("Revoke(address patient,address grantee,uint8 access,uint256 nonce,uint256 deadline)");

    /// @dev Why an access is refused. `None` means it is permitted.
    enum Denial {
        None,
        UnknownCode,
        PatientNotRegistered,
        NotFound,
        NotYetValid,
        Expired,
        CategoryNotCovered,
        PurposeNotCovered,
        Suspended
    }

    mapping(address patient => mapping(address grantee => mapping(Access access => Consent))) private _consents;
    mapping(address patient => mapping(address delegate => Delegation)) private _delegations;
    mapping(address patient => mapping(address clinician => uint64 expiresAt)) private _emergencyAccess;
    mapping(address patient => bytes32 directory) private _keyDirectories;

    /// @param admin Receives the admin and registrar roles.
    constructor(address admin) ParticipantRegistry(admin) EIP712("medledger", "1") {}

    // ------------------------------------------------------------------------------------------------
    // Consent
    // ------------------------------------------------------------------------------------------------

    /// @inheritdoc IConsentManager
    function grant(address patient, address grantee, Access access, Consent calldata terms, bytes32 keyEnvelope)
        external
        returns (bool changed)
    {
        uint16 touched = terms.categories;
        if (msg.sender != patient) {
            // A delegate changes the whole consent: it must cover what it removes as well as what it adds.
            touched |= _consents[patient][grantee][access].categories;
        }
        _checkManager(patient, msg.sender, touched);
        return _grant(patient, grantee, access, terms, keyEnvelope, msg.sender);
    }

    /// @inheritdoc IConsentManager
    function revoke(address patient, address grantee, Access access) external returns (bool changed) {
        _checkManager(patient, msg.sender, _consents[patient][grantee][access].categories);
        return _revoke(patient, grantee, access, msg.sender);
    }

    /// @inheritdoc IConsentManager
    function grantBySig(GrantRequest calldata request, bytes calldata signature) external returns (bool changed) {
        _checkSignedRequest(
            request.patient,
            request.nonce,
            request.deadline,
            keccak256(abi.encode(GRANT_TYPEHASH, request)),
            signature
        );
        Consent memory terms = Consent({
            categories: request.categories,
            purposes: request.purposes,
            start: request.start,
            expiry: request.expiry
        });
        return _grant(request.patient, request.grantee, request.access, terms, request.keyEnvelope, request.patient);
    }

    /// @inheritdoc IConsentManager
    function revokeBySig(RevokeRequest calldata request, bytes calldata signature) external returns (bool changed) {
        _checkSignedRequest(
            request.patient,
            request.nonce,
            request.deadline,
            keccak256(abi.encode(REVOKE_TYPEHASH, request)),
            signature
        );
        return _revoke(request.patient, request.grantee, request.access, request.patient);
    }

    /// @inheritdoc IConsentManager
    function consent(address patient, address grantee, Access access) external view returns (Consent memory) {
        return _consents[patient][grantee][access];
    }

    /// @inheritdoc IConsentManager
    function isPermitted(address patient, address accessor, Access access, uint8 category, uint8 purpose)
        external
        view
        returns (bool)
    {
        (Denial denial,,) = _evaluate(patient, accessor, access, category, purpose);
        return denial == Denial.None;
    }

    /// @inheritdoc IConsentManager
    function checkAccess(address patient, address accessor, Access access, uint8 category, uint8 purpose)
        external
        view
        returns (bool emergency)
    {
        return _checkAccess(patient, accessor, access, category, purpose);
    }

    /// @inheritdoc IConsentManager
    // solhint-disable-next-line func-name-mixedcase
    function DOMAIN_SEPARATOR() external view returns (bytes32) {
        return _domainSeparatorV4();
    }

    // ------------------------------------------------------------------------------------------------
    // Delegation
    // ------------------------------------------------------------------------------------------------

    /// @inheritdoc IConsentManager
    function appointDelegate(address delegate, uint16 categories, uint64 expiry) external returns (bool changed) {
        address patient = msg.sender;
        _checkPatient(patient);
        if (delegate == address(0) || delegate == patient || !_patients[delegate].registered) {
            revert DelegationInvalidDelegate(patient, delegate);
        }
        _checkCategories(categories);
        if (expiry <= block.timestamp) revert DelegationInvalidExpiry(expiry);
        Delegation storage current = _delegations[patient][delegate];
        if (current.categories == categories && current.expiry == expiry) return false;
        _delegations[patient][delegate] = Delegation({categories: categories, expiry: expiry});
        emit DelegateAppointed(patient, delegate, categories, expiry);
        return true;
    }

    /// @inheritdoc IConsentManager
    function removeDelegate(address delegate) external returns (bool changed) {
        if (_delegations[msg.sender][delegate].expiry == 0) return false;
        delete _delegations[msg.sender][delegate];
        emit DelegateRemoved(msg.sender, delegate);
        return true;
    }

    /// @inheritdoc IConsentManager
    function delegation(address patient, address delegate) external view returns (Delegation memory) {
        return _delegations[patient][delegate];
    }

    /// @inheritdoc IConsentManager
    function isDelegate(address patient, address delegate, uint16 categories) external view returns (bool) {
        return _isLiveDelegate(patient, delegate, categories);
    }

    // ------------------------------------------------------------------------------------------------
    // Emergency access
    // ------------------------------------------------------------------------------------------------

    /// @inheritdoc IConsentManager
    function openEmergencyAccess(address patient, uint32 window, bytes32 reasonCode)
        external
        returns (uint64 expiresAt)
    {
        _checkClinician(msg.sender);
        if (window == 0 || window > MAX_EMERGENCY_WINDOW) revert EmergencyInvalidWindow(window, MAX_EMERGENCY_WINDOW);
        PatientState memory state = _patients[patient];
        if (!state.registered) revert RegistryPatientNotRegistered(patient);
        if (state.emergencyOptOut) revert EmergencyOptedOut(patient);
        expiresAt = uint64(block.timestamp) + window;
        uint64 current = _emergencyAccess[patient][msg.sender];
        if (current >= expiresAt) return current; // re-opening never shortens an open window
        _emergencyAccess[patient][msg.sender] = expiresAt;
        emit EmergencyAccessOpened(patient, msg.sender, expiresAt, reasonCode);
    }

    /// @inheritdoc IConsentManager
    function closeEmergencyAccess(address patient, address clinician) external returns (bool changed) {
        if (msg.sender != clinician) _checkManager(patient, msg.sender, 0);
        if (_emergencyAccess[patient][clinician] <= block.timestamp) return false;
        delete _emergencyAccess[patient][clinician];
        emit EmergencyAccessClosed(patient, clinician, msg.sender);
        return true;
    }

    /// @inheritdoc IConsentManager
    function setEmergencyOptOut(bool optedOut) external returns (bool changed) {
        _checkPatient(msg.sender);
        PatientState storage state = _patients[msg.sender];
        if (state.emergencyOptOut == optedOut) return false;
        state.emergencyOptOut = optedOut;
        emit EmergencyOptOutChanged(msg.sender, optedOut);
        return true;
    }

    /// @inheritdoc IConsentManager
    function emergencyOptedOut(address patient) external view returns (bool) {
        return _patients[patient].emergencyOptOut;
    }

    /// @inheritdoc IConsentManager
    function emergencyAccessExpiry(address patient, address clinician) external view returns (uint64) {
        return _emergencyAccess[patient][clinician];
    }

    // ------------------------------------------------------------------------------------------------
    // Key distribution
    // ------------------------------------------------------------------------------------------------

    /// @inheritdoc IConsentManager
    function publishKeyEnvelope(address patient, address recipient, bytes32 envelope) external {
        _checkManager(patient, msg.sender, 0);
        emit KeyEnvelopePublished(patient, recipient, envelope, msg.sender);
    }

    /// @inheritdoc IConsentManager
    function setKeyDirectory(address patient, bytes32 directory) external returns (bool changed) {
        _checkManager(patient, msg.sender, 0);
        if (_keyDirectories[patient] == directory) return false;
        _keyDirectories[patient] = directory;
        emit KeyDirectoryChanged(patient, directory, msg.sender);
        return true;
    }

    /// @inheritdoc IConsentManager
    function keyDirectory(address patient) external view returns (bytes32) {
        return _keyDirectories[patient];
    }

    // ------------------------------------------------------------------------------------------------
    // Internal mutators: idempotent, emit only on change
    // ------------------------------------------------------------------------------------------------

    /// @dev Stores `terms` as `patient`'s `access` consent to `grantee`; `by` is who authorised it.
    function _grant(
        address patient,
        address grantee,
        Access access,
        Consent memory terms,
        bytes32 keyEnvelope,
        address by
    ) internal virtual returns (bool changed) {
        _checkTerms(terms);
        if (grantee == patient) revert ConsentSelfGrant(patient);
        _checkPatient(patient);
        _checkActiveParticipant(grantee);
        Consent storage current = _consents[patient][grantee][access];
        if (
            current.categories == terms.categories && current.purposes == terms.purposes
                && current.start == terms.start && current.expiry == terms.expiry
        ) return false;
        _consents[patient][grantee][access] = terms;
        emit ConsentGranted(
            patient, grantee, access, terms.categories, terms.purposes, terms.start, terms.expiry, keyEnvelope, by
        );
        return true;
    }

    /// @dev Deletes `patient`'s `access` consent to `grantee`.
    function _revoke(address patient, address grantee, Access access, address by)
        internal
        virtual
        returns (bool changed)
    {
        if (_consents[patient][grantee][access].expiry == 0) return false;
        delete _consents[patient][grantee][access];
        emit ConsentRevoked(patient, grantee, access, by);
        return true;
    }

    // ------------------------------------------------------------------------------------------------
    // Checks (small and overridable)
    // ------------------------------------------------------------------------------------------------

    /// @dev Reverts unless `caller` is `patient` or a live delegate covering `categories`.
    function _checkManager(address patient, address caller, uint16 categories) internal view virtual {
        if (caller == patient) {
            _checkPatient(patient);
            return;
        }
        Delegation memory d = _delegations[patient][caller];
        if (d.expiry <= block.timestamp) revert ConsentUnauthorized(caller, patient);
        if (categories & d.categories != categories) {
            revert ConsentDelegateOutOfBounds(caller, d.categories, categories);
        }
    }

    /// @dev Reverts unless `account` is an active clinician or care provider.
    function _checkClinician(address account) internal view virtual {
        ParticipantState memory state = _participants[account];
        if (state.kind != ParticipantKind.Clinician && state.kind != ParticipantKind.CareProvider) {
            revert EmergencyNotClinician(account);
        }
        if (state.suspended) revert RegistryParticipantSuspended(account);
    }

    /// @dev Reverts unless `categories` is a non-empty mask of known categories.
    function _checkCategories(uint16 categories) internal pure virtual {
        if (categories == 0 || categories & ~ALL_CATEGORIES != 0) revert ConsentInvalidCategories(categories);
    }

    /// @dev Reverts unless `terms` are well-formed and not already over.
    function _checkTerms(Consent memory terms) internal view virtual {
        _checkCategories(terms.categories);
        if (terms.purposes == 0 || terms.purposes & ~ALL_PURPOSES != 0) revert ConsentInvalidPurposes(terms.purposes);
        if (terms.expiry <= terms.start || terms.expiry <= block.timestamp) {
            revert ConsentInvalidWindow(terms.start, terms.expiry, uint64(block.timestamp));
        }
    }

    /// @dev Consumes `patient`'s `nonce` and reverts unless `signature` is the patient's signature of
    /// `structHash` before `deadline`.
    function _checkSignedRequest(
        address patient,
        uint256 nonce,
        uint256 deadline,
        bytes32 structHash,
        bytes calldata signature
    ) internal virtual {
        if (block.timestamp > deadline) revert ConsentSignatureExpired(deadline);
        _useCheckedNonce(patient, nonce);
        if (!SignatureChecker.isValidSignatureNowCalldata(patient, _hashTypedDataV4(structHash), signature)) {
            revert ConsentInvalidSignature(patient);
        }
    }

    /// @dev Reverts with the reason `accessor` may not perform the access; returns whether it rests
    /// on an emergency opening.
    function _checkAccess(address patient, address accessor, Access access, uint8 category, uint8 purpose)
        internal
        view
        virtual
        returns (bool emergency)
    {
        (Denial denial, bool viaEmergency, Consent memory c) = _evaluate(patient, accessor, access, category, purpose);
        if (denial == Denial.None) return viaEmergency;
        if (denial == Denial.UnknownCode) revert ConsentUnknownCode(category, purpose);
        if (denial == Denial.PatientNotRegistered) revert RegistryPatientNotRegistered(patient);
        if (denial == Denial.NotFound) {
            if (!_patients[patient].registered) revert RegistryPatientNotRegistered(patient);
            revert ConsentNotFound(patient, accessor, access);
        }
        if (denial == Denial.NotYetValid) revert ConsentNotYetValid(patient, accessor, c.start);
        if (denial == Denial.Expired) revert ConsentExpired(patient, accessor, c.expiry);
        if (denial == Denial.CategoryNotCovered) revert ConsentCategoryNotCovered(patient, accessor, category);
        if (denial == Denial.PurposeNotCovered) revert ConsentPurposeNotCovered(patient, accessor, purpose);
        revert RegistryParticipantSuspended(accessor);
    }

    /// @dev The single place that decides an access. Order: the patient itself; a consent held by an
    /// active participant; then, for reads, a live delegate (family care) and an open emergency access
    /// (emergency purpose, active participant). A suspended participant's consent is void, but a
    /// delegation it holds as a person still counts.
    function _evaluate(address patient, address accessor, Access access, uint8 category, uint8 purpose)
        internal
        view
        virtual
        returns (Denial denial, bool emergency, Consent memory c)
    {
        if (category >= CATEGORY_COUNT || purpose >= PURPOSE_COUNT) return (Denial.UnknownCode, false, c);
        if (accessor == patient) {
            return (_patients[patient].registered ? Denial.None : Denial.PatientNotRegistered, false, c);
        }
        c = _consents[patient][accessor][access];
        denial = _consentDenial(c, category, purpose);
        if (denial == Denial.None) {
            ParticipantState memory state = _participants[accessor];
            if (!state.suspended && state.kind != ParticipantKind.None) return (Denial.None, false, c);
            // Suspension voids what the participant was granted, not a family delegation it also holds.
            denial = Denial.Suspended;
        }
        if (access == Access.Read) {
            if (purpose == PURPOSE_FAMILY_CARE && _isLiveDelegate(patient, accessor, uint16(1) << category)) {
                return (Denial.None, false, c);
            }
            if (purpose == PURPOSE_EMERGENCY && _emergencyAccess[patient][accessor] > block.timestamp) {
                ParticipantState memory state = _participants[accessor];
                if (state.suspended) return (Denial.Suspended, false, c);
                return (Denial.None, true, c);
            }
        }
        return (denial, false, c);
    }

    /// @dev Why consent `c` does not cover `category` and `purpose` now (`None` if it does).
    function _consentDenial(Consent memory c, uint8 category, uint8 purpose) internal view virtual returns (Denial) {
        if (c.expiry == 0) return Denial.NotFound;
        if (block.timestamp < c.start) return Denial.NotYetValid;
        if (block.timestamp >= c.expiry) return Denial.Expired;
        if (c.categories & (uint16(1) << category) == 0) return Denial.CategoryNotCovered;
        if (c.purposes & (uint16(1) << purpose) == 0) return Denial.PurposeNotCovered;
        return Denial.None;
    }

    /// @dev Whether `delegate` is a live delegate of `patient` covering every category in `categories`.
    function _isLiveDelegate(address patient, address delegate, uint16 categories) internal view returns (bool) {
        Delegation memory d = _delegations[patient][delegate];
        return d.expiry > block.timestamp && categories & d.categories == categories;
    }
}
