// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {SignatureChecker} from "@openzeppelin/contracts/utils/cryptography/SignatureChecker.sol";
import {Nonces} from "@openzeppelin/contracts/utils/Nonces.sol";
import {IConsentManager} from "../interfaces/IConsentManager.sol";
import {ParticipantRegistry} from "./ParticipantRegistry.sol";

/// @title ConsentManager
/// @notice The access-control list of medledger: consents, delegates, emergency access, and the
/// release of category keys to readers.
/// @dev Abstract: deployed as part of {Medledger}, so that record writes and accesses check consent
/// without a cross-contract call. Other contracts can still ask {checkAccess}.
abstract contract ConsentManager is IConsentManager, ParticipantRegistry, EIP712, Nonces {
    // Slither: consents, delegations, emergency windows and key validity are defined in chain time
    // (periods of hours to years: a proposer's few seconds of drift change nothing), and the strict
    // equalities it flags compare enum values (`Denial`), ids and zero sentinels, not balances.
    // slither-disable-start timestamp,incorrect-equality
    /// @dev Number of purpose codes (0..5); masks must stay inside them (categories: {CATEGORY_COUNT}).
    uint8 internal constant PURPOSE_COUNT = 6;
    uint16 internal constant ALL_CATEGORIES = uint16((1 << CATEGORY_COUNT) - 1);
    uint16 internal constant ALL_PURPOSES = uint16((1 << PURPOSE_COUNT) - 1);
    uint8 internal constant PURPOSE_FAMILY_CARE = 4;
    uint8 internal constant PURPOSE_EMERGENCY = 5;

    /// @inheritdoc IConsentManager
    uint32 public constant MAX_EMERGENCY_WINDOW = 24 hours;

    /// @inheritdoc IConsentManager
    uint32 public constant MAX_EMERGENCY_RUN = 72 hours;

    // An EIP-712 type string is as long as its fields.
    // solhint-disable gas-small-strings
    /// @inheritdoc IConsentManager
    bytes32 public constant GRANT_TYPEHASH = keccak256(
        "Grant(address patient,address grantee,uint8 access,uint16 categories,uint16 purposes,uint64 start,uint64 expiry,bytes32 keyEnvelope,uint64 issuedAt,uint256 nonce,uint256 deadline)"
    );

    /// @inheritdoc IConsentManager
    bytes32 public constant REVOKE_TYPEHASH = keccak256(
        "Revoke(address patient,address grantee,uint8 access,uint64 issuedAt,uint256 nonce,uint256 deadline)"
    );
    // solhint-enable gas-small-strings

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
        DelegationEnded,
        DelegationSuspended,
        Suspended
    }

    /// @dev Who decided a change of consent, and when: the patient or a delegate (`delegation` = its
    /// id) directly (`time` = now), or the patient by a signed request (`time` = its `issuedAt`).
    struct Decision {
        address by;
        uint24 delegation;
        uint64 time;
        bool signed;
    }

    /// @dev One delegation, under its id: zeroed on removal, so consents that name it end at once.
    struct DelegationTerms {
        address delegate;
        uint16 categories;
        uint64 expiry;
    }

    /// @dev One clinician's emergency access to one patient.
    /// @param generation The patient's opt-out generation when the window was opened.
    /// @param keyCategories Categories whose keys were released to the clinician in this run.
    struct EmergencyState {
        uint64 expiresAt;
        uint64 runStart;
        uint32 generation;
        uint16 keyCategories;
    }

    mapping(address patient => mapping(address grantee => mapping(Access access => ConsentState))) private _consents;
    mapping(address patient => mapping(address delegate => uint24 id)) private _delegationIds;
    mapping(address patient => mapping(uint24 id => DelegationTerms)) private _delegations;
    mapping(address patient => mapping(address clinician => EmergencyState)) private _emergencies;

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
        address caller = _msgSender();
        uint24 delegationId = 0;
        if (caller != patient) {
            // A delegate changes the whole consent: it must cover what it removes as well as what it adds.
            delegationId =
                _checkManager(patient, caller, terms.categories | _consents[patient][grantee][access].categories);
            if (grantee == caller) revert ConsentDelegateSelfGrant(caller);
        }
        return _grant(patient, grantee, access, terms, keyEnvelope, Decision(caller, delegationId, _now(), false));
    }

    /// @inheritdoc IConsentManager
    function revoke(address patient, address grantee, Access access) external returns (bool changed) {
        address caller = _msgSender();
        uint24 delegationId = _checkManager(patient, caller, _consents[patient][grantee][access].categories);
        return _revoke(patient, grantee, access, Decision(caller, delegationId, _now(), false));
    }

    /// @inheritdoc IConsentManager
    function grantBySig(GrantRequest calldata request, bytes calldata signature) external returns (bool changed) {
        _checkSignedRequest(
            request.patient, request.issuedAt, request.nonce, request.deadline, _hashGrant(request), signature
        );
        Consent memory terms = Consent({
            categories: request.categories, purposes: request.purposes, start: request.start, expiry: request.expiry
        });
        return _grant(
            request.patient,
            request.grantee,
            request.access,
            terms,
            request.keyEnvelope,
            Decision(request.patient, 0, request.issuedAt, true)
        );
    }

    /// @inheritdoc IConsentManager
    function revokeBySig(RevokeRequest calldata request, bytes calldata signature) external returns (bool changed) {
        _checkSignedRequest(
            request.patient, request.issuedAt, request.nonce, request.deadline, _hashRevoke(request), signature
        );
        _checkPatient(request.patient);
        return
            _revoke(
                request.patient, request.grantee, request.access, Decision(request.patient, 0, request.issuedAt, true)
            );
    }

    /// @inheritdoc IConsentManager
    function invalidateSignedRequests(address patient) external returns (uint256 newNonce) {
        address caller = _msgSender();
        _checkManager(patient, caller, 0);
        newNonce = _useNonce(patient) + 1;
        emit SignedRequestsInvalidated(patient, newNonce, caller);
    }

    /// @inheritdoc IConsentManager
    function nonces(address patient) public view override(IConsentManager, Nonces) returns (uint256) {
        return super.nonces(patient);
    }

    /// @inheritdoc IConsentManager
    function consent(address patient, address grantee, Access access) external view returns (ConsentState memory) {
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

    // The ERC-2612 name that wallets and tools look for.
    // slither-disable-start naming-convention
    /// @inheritdoc IConsentManager
    // solhint-disable-next-line func-name-mixedcase
    function DOMAIN_SEPARATOR() external view returns (bytes32) {
        return _domainSeparatorV4();
    }

    // slither-disable-end naming-convention

    // ------------------------------------------------------------------------------------------------
    // Delegation
    // ------------------------------------------------------------------------------------------------

    /// @inheritdoc IConsentManager
    function appointDelegate(address delegate, uint16 categories, uint64 expiry) external returns (bool changed) {
        address patient = _msgSender();
        _checkPatient(patient);
        if (delegate == address(0) || delegate == patient || !_patientState(delegate).registered) {
            revert DelegationInvalidDelegate(patient, delegate);
        }
        _checkCategories(categories);
        if (expiry <= block.timestamp) revert DelegationInvalidExpiry(expiry);
        uint24 id = _delegationIds[patient][delegate];
        DelegationTerms storage terms = _delegations[patient][id];
        if (id != 0 && terms.expiry > block.timestamp) {
            // A live delegate keeps its id: its consents are bounded by the new terms from now on.
            if (terms.categories == categories && terms.expiry == expiry) return false;
            _expireKeys(patient, terms.categories & ~categories);
            if (expiry < terms.expiry) _limitKeys(patient, categories & terms.categories, expiry);
            terms.categories = categories;
            terms.expiry = expiry;
        } else {
            // A new delegation (or one after expiry): consents made under an ended one stay ended.
            id = ++_patientState(patient).delegationCount;
            _delegationIds[patient][delegate] = id;
            _delegations[patient][id] = DelegationTerms({delegate: delegate, categories: categories, expiry: expiry});
        }
        emit DelegateAppointed(patient, delegate, id, categories, expiry);
        return true;
    }

    /// @inheritdoc IConsentManager
    function removeDelegate(address delegate) external returns (bool changed) {
        address patient = _msgSender();
        uint24 id = _delegationIds[patient][delegate];
        if (id == 0) return false;
        uint16 categories = _delegations[patient][id].categories;
        delete _delegationIds[patient][delegate];
        delete _delegations[patient][id];
        _expireKeys(patient, categories);
        emit DelegateRemoved(patient, delegate, id);
        return true;
    }

    /// @inheritdoc IConsentManager
    function delegation(address patient, address delegate) external view returns (Delegation memory) {
        return _delegationView(patient, _delegationIds[patient][delegate]);
    }

    /// @inheritdoc IConsentManager
    function delegationById(address patient, uint24 id) external view returns (Delegation memory) {
        return _delegationView(patient, id);
    }

    /// @inheritdoc IConsentManager
    function isDelegate(address patient, address delegate, uint16 categories) external view returns (bool) {
        DelegationTerms memory terms = _delegations[patient][_delegationIds[patient][delegate]];
        return terms.expiry > block.timestamp && categories & terms.categories == categories && !_isSuspended(delegate);
    }

    // ------------------------------------------------------------------------------------------------
    // Emergency access
    // ------------------------------------------------------------------------------------------------

    /// @inheritdoc IConsentManager
    function openEmergencyAccess(address patient, uint32 window, bytes32 reasonCode)
        external
        returns (uint64 expiresAt)
    {
        address clinician = _msgSender();
        _checkClinician(clinician);
        if (window == 0 || window > MAX_EMERGENCY_WINDOW) revert EmergencyInvalidWindow(window, MAX_EMERGENCY_WINDOW);
        PatientState storage state = _patientState(patient);
        if (!state.registered) revert RegistryPatientNotRegistered(patient);
        if (state.emergencyOptOut) revert EmergencyOptedOut(patient);
        EmergencyState memory e = _emergencies[patient][clinician];
        uint64 nowTime = _now();
        if (
            e.generation != state.emergencyGeneration || e.runStart == 0
                || nowTime >= e.expiresAt + MAX_EMERGENCY_WINDOW
        ) {
            // No window open or recently closed in this opt-out generation: a new run starts now.
            e = EmergencyState({
                expiresAt: 0, runStart: nowTime, generation: state.emergencyGeneration, keyCategories: 0
            });
        }
        expiresAt = nowTime + window;
        if (e.expiresAt >= expiresAt) return e.expiresAt; // re-opening never shortens an open window
        uint64 runEnd = e.runStart + MAX_EMERGENCY_RUN;
        if (expiresAt > runEnd) revert EmergencyRunExceeded(patient, clinician, runEnd);
        e.expiresAt = expiresAt;
        _emergencies[patient][clinician] = e;
        emit EmergencyAccessOpened(patient, clinician, expiresAt, e.runStart, reasonCode);
    }

    /// @inheritdoc IConsentManager
    function confirmEmergencyAccess(address patient, address clinician) external returns (bool changed) {
        address caller = _msgSender();
        _checkManager(patient, caller, 0);
        EmergencyState storage e = _emergencies[patient][clinician];
        uint64 nowTime = _now();
        if (e.runStart == 0 || e.runStart == nowTime) return false;
        e.runStart = nowTime;
        emit EmergencyAccessConfirmed(patient, clinician, caller);
        return true;
    }

    /// @inheritdoc IConsentManager
    function closeEmergencyAccess(address patient, address clinician) external returns (bool changed) {
        address caller = _msgSender();
        if (caller != clinician) _checkManager(patient, caller, 0);
        EmergencyState storage e = _emergencies[patient][clinician];
        if (!_isEmergencyOpen(patient, e)) return false;
        e.expiresAt = _now();
        uint16 released = e.keyCategories;
        if (released != 0) {
            e.keyCategories = 0;
            _expireKeys(patient, released);
        }
        emit EmergencyAccessClosed(patient, clinician, caller);
        return true;
    }

    /// @inheritdoc IConsentManager
    function setEmergencyOptOut(bool optedOut) external returns (bool changed) {
        address patient = _msgSender();
        _checkPatient(patient);
        PatientState storage state = _patientState(patient);
        if (state.emergencyOptOut == optedOut) return false;
        state.emergencyOptOut = optedOut;
        if (optedOut) {
            // Closes every open window: they were opened under the previous generation.
            ++state.emergencyGeneration;
            uint16 released = state.emergencyKeyCategories;
            if (released != 0) {
                state.emergencyKeyCategories = 0;
                _expireKeys(patient, released);
            }
        }
        emit EmergencyOptOutChanged(patient, optedOut);
        return true;
    }

    /// @inheritdoc IConsentManager
    function emergencyOptedOut(address patient) external view returns (bool) {
        return _patientState(patient).emergencyOptOut;
    }

    /// @inheritdoc IConsentManager
    function emergencyAccess(address patient, address clinician) external view returns (EmergencyAccess memory) {
        EmergencyState storage e = _emergencies[patient][clinician];
        return EmergencyAccess({expiresAt: e.expiresAt, runStart: e.runStart, open: _isEmergencyOpen(patient, e)});
    }

    // ------------------------------------------------------------------------------------------------
    // Category keys
    // ------------------------------------------------------------------------------------------------

    /// @inheritdoc IConsentManager
    function setCategoryKeys(address patient, uint16 categories, bytes32[] calldata publicKeys) external {
        address caller = _msgSender();
        _checkManager(patient, caller, categories);
        _checkCategories(categories);
        uint256 count = 0;
        for (uint16 rest = categories; rest != 0; rest &= rest - 1) {
            ++count;
        }
        if (publicKeys.length != count) revert KeyCountMismatch(count, publicKeys.length);
        uint256 next = 0;
        for (uint8 category; category < CATEGORY_COUNT; ++category) {
            if (categories & (uint16(1) << category) != 0) {
                _rotateCategoryKey(patient, category, publicKeys[next], caller);
                ++next;
            }
        }
    }

    /// @inheritdoc IConsentManager
    function publishKeyEnvelope(address patient, address recipient, uint16 categories, bytes32 envelope) external {
        address caller = _msgSender();
        _checkManager(patient, caller, categories);
        _checkCategories(categories);
        if (envelope == bytes32(0)) revert KeyInvalidEnvelope();
        if (recipient != patient) _releaseKeys(patient, recipient, categories);
        emit KeyEnvelopePublished(patient, recipient, categories, envelope, caller);
    }

    /// @notice Answers {IConsentManager} as well as {IParticipantRegistry} and access control.
    function supportsInterface(bytes4 interfaceId) public view virtual override returns (bool) {
        return interfaceId == type(IConsentManager).interfaceId || super.supportsInterface(interfaceId);
    }

    // ------------------------------------------------------------------------------------------------
    // Internal mutators: idempotent, emit only on change
    // ------------------------------------------------------------------------------------------------

    /// @dev Stores `terms` as `patient`'s `access` consent to `grantee`, as decided by `decision`;
    /// releases the keys of `terms.categories` if `keyEnvelope` is set (read access only).
    function _grant(
        address patient,
        address grantee,
        Access access,
        Consent memory terms,
        bytes32 keyEnvelope,
        Decision memory decision
    ) internal virtual returns (bool changed) {
        _checkTerms(terms);
        if (grantee == patient) revert ConsentSelfGrant(patient);
        if (access == Access.Write && keyEnvelope != bytes32(0)) revert ConsentEnvelopeForWrite(grantee);
        _checkPatient(patient);
        _checkActiveParticipant(grantee);
        ConsentState storage slot = _consents[patient][grantee][access];
        ConsentState memory current = slot;
        _checkDecisionOrder(patient, grantee, current, decision);
        if (
            current.categories == terms.categories && current.purposes == terms.purposes && current.start == terms.start
                && current.expiry == terms.expiry && current.delegation == decision.delegation
        ) {
            _consumeUnchanged(slot, patient, grantee, access, decision);
            return false;
        }
        bool keysReleased = current.keysReleased;
        if (keysReleased || keyEnvelope != bytes32(0)) {
            // The grantee holds keys: a dropped category is lost now, the rest must not outlive the consent.
            if (keysReleased) _expireKeys(patient, current.categories & ~terms.categories);
            _limitKeys(patient, terms.categories, _consentEnd(patient, terms.expiry, decision.delegation));
            keysReleased = true;
        }
        slot.categories = terms.categories;
        slot.purposes = terms.purposes;
        slot.start = terms.start;
        slot.expiry = terms.expiry;
        slot.updatedAt = decision.time;
        slot.delegation = decision.delegation;
        slot.keysReleased = keysReleased;
        emit ConsentGranted(
            patient,
            grantee,
            access,
            terms.categories,
            terms.purposes,
            terms.start,
            terms.expiry,
            keyEnvelope,
            decision.by,
            decision.delegation
        );
        return true;
    }

    /// @dev Revokes `patient`'s `access` consent to `grantee`, leaving a tombstone (zero terms,
    /// `updatedAt` = the decision's time). Keys released to a reader become stale.
    function _revoke(address patient, address grantee, Access access, Decision memory decision)
        internal
        virtual
        returns (bool changed)
    {
        ConsentState storage slot = _consents[patient][grantee][access];
        ConsentState memory current = slot;
        _checkDecisionOrder(patient, grantee, current, decision);
        if (current.expiry == 0) {
            _consumeUnchanged(slot, patient, grantee, access, decision);
            return false;
        }
        if (current.keysReleased) _expireKeys(patient, current.categories);
        _consents[patient][grantee][access] = ConsentState({
            categories: 0,
            purposes: 0,
            start: 0,
            expiry: 0,
            updatedAt: decision.time,
            delegation: 0,
            keysReleased: false
        });
        emit ConsentRevoked(patient, grantee, access, decision.by);
        return true;
    }

    /// @dev A signed request that changes no terms still moves `updatedAt` (it can never be replayed)
    /// and says so in an event; a direct call that changes nothing writes and emits nothing.
    function _consumeUnchanged(
        ConsentState storage slot,
        address patient,
        address grantee,
        Access access,
        Decision memory decision
    ) private {
        if (!decision.signed) return;
        slot.updatedAt = decision.time;
        emit SignedConsentConsumed(patient, grantee, access, decision.time);
    }

    /// @dev Clamps the keys of `categories` to the end of `recipient`'s live read access covering them
    /// (consent, delegation, emergency), and notes the release on each access it rests on.
    function _releaseKeys(address patient, address recipient, uint16 categories) private {
        uint64 end = 0;
        ConsentState storage slot = _consents[patient][recipient][Access.Read];
        if (slot.start <= block.timestamp && slot.categories & categories == categories && !_isSuspended(recipient)) {
            uint64 consentEnd = _consentEnd(patient, slot.expiry, slot.delegation);
            if (consentEnd > block.timestamp && _delegationCovers(patient, slot.delegation, categories)) {
                end = consentEnd;
                if (!slot.keysReleased) slot.keysReleased = true;
            }
        }
        DelegationTerms memory terms = _delegations[patient][_delegationIds[patient][recipient]];
        if (
            terms.expiry > block.timestamp && terms.categories & categories == categories && !_isSuspended(recipient)
                && terms.expiry > end
        ) end = terms.expiry;
        EmergencyState storage e = _emergencies[patient][recipient];
        if (_isEmergencyOpen(patient, e) && !_isSuspended(recipient)) {
            if (e.expiresAt > end) end = e.expiresAt;
            e.keyCategories |= categories;
            _patientState(patient).emergencyKeyCategories |= categories;
        }
        if (end == 0) revert KeyRecipientWithoutAccess(patient, recipient, categories);
        _limitKeys(patient, categories, end);
    }

    // ------------------------------------------------------------------------------------------------
    // Checks (small and overridable)
    // ------------------------------------------------------------------------------------------------

    /// @dev Reverts unless `caller` is `patient` (registered) or a live, unsuspended delegate covering
    /// `categories`; returns the caller's delegation id (0 for the patient).
    function _checkManager(address patient, address caller, uint16 categories)
        internal
        view
        virtual
        returns (uint24 id)
    {
        if (caller == patient) {
            _checkPatient(patient);
            return 0;
        }
        id = _delegationIds[patient][caller];
        DelegationTerms memory terms = _delegations[patient][id];
        if (id == 0 || terms.expiry <= block.timestamp) revert ConsentUnauthorized(caller, patient);
        if (_isSuspended(caller)) revert RegistryParticipantSuspended(caller);
        if (categories & terms.categories != categories) {
            revert ConsentDelegateOutOfBounds(caller, terms.categories, categories);
        }
    }

    /// @dev Reverts if a signed `decision` is not newer than the last decision on `current`.
    function _checkDecisionOrder(
        address patient,
        address grantee,
        ConsentState memory current,
        Decision memory decision
    ) internal pure virtual {
        if (decision.signed && decision.time <= current.updatedAt) {
            revert ConsentRequestSuperseded(patient, grantee, decision.time, current.updatedAt);
        }
    }

    /// @dev Reverts unless `account` is an active clinician or care provider.
    function _checkClinician(address account) internal view virtual {
        ParticipantState memory state = _participantState(account);
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
            revert ConsentInvalidWindow(terms.start, terms.expiry, _now());
        }
    }

    /// @dev Reverts unless `signature` is `patient`'s signature of `structHash`, submitted by
    /// `deadline`, issued no later than now, and carrying the patient's current nonce (not consumed).
    function _checkSignedRequest(
        address patient,
        uint64 issuedAt,
        uint256 nonce,
        uint256 deadline,
        bytes32 structHash,
        bytes calldata signature
    ) internal view virtual {
        if (block.timestamp > deadline) revert ConsentSignatureExpired(deadline);
        if (issuedAt > block.timestamp) revert ConsentInvalidIssuedAt(issuedAt, _now());
        uint256 current = nonces(patient);
        if (nonce != current) revert InvalidAccountNonce(patient, current);
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
        (Denial denial, bool viaEmergency, ConsentState memory c) =
            _evaluate(patient, accessor, access, category, purpose);
        if (denial == Denial.None) return viaEmergency;
        if (denial == Denial.UnknownCode) revert ConsentUnknownCode(category, purpose);
        if (denial == Denial.PatientNotRegistered) revert RegistryPatientNotRegistered(patient);
        if (denial == Denial.NotFound) {
            if (!_patientState(patient).registered) revert RegistryPatientNotRegistered(patient);
            revert ConsentNotFound(patient, accessor, access);
        }
        if (denial == Denial.NotYetValid) revert ConsentNotYetValid(patient, accessor, c.start);
        if (denial == Denial.Expired) revert ConsentExpired(patient, accessor, c.expiry);
        if (denial == Denial.CategoryNotCovered) revert ConsentCategoryNotCovered(patient, accessor, category);
        if (denial == Denial.PurposeNotCovered) revert ConsentPurposeNotCovered(patient, accessor, purpose);
        if (denial == Denial.DelegationEnded) revert ConsentDelegationEnded(patient, accessor, c.delegation);
        if (denial == Denial.DelegationSuspended) revert ConsentDelegationSuspended(patient, accessor, c.delegation);
        revert RegistryParticipantSuspended(accessor);
    }

    // ------------------------------------------------------------------------------------------------
    // The access decision and its parts
    // ------------------------------------------------------------------------------------------------

    /// @dev The single place that decides an access. Order: the patient itself; a consent held by an
    /// active participant (bounded by the delegation that made it, if any); then, for reads, a live
    /// delegate (family care) and an open emergency access (emergency purpose). A suspended account
    /// reads nothing, whatever its access rests on.
    function _evaluate(address patient, address accessor, Access access, uint8 category, uint8 purpose)
        internal
        view
        virtual
        returns (Denial denial, bool emergency, ConsentState memory c)
    {
        if (category >= CATEGORY_COUNT || purpose >= PURPOSE_COUNT) return (Denial.UnknownCode, false, c);
        if (accessor == patient) {
            return (_patientState(patient).registered ? Denial.None : Denial.PatientNotRegistered, false, c);
        }
        c = _consents[patient][accessor][access];
        denial = _consentDenial(c, category, purpose);
        if (denial == Denial.None && c.delegation != 0) denial = _delegationDenial(patient, c.delegation, category);
        if (denial == Denial.None) {
            ParticipantState memory state = _participantState(accessor);
            if (!state.suspended && state.kind != ParticipantKind.None) return (Denial.None, false, c);
            denial = Denial.Suspended;
        }
        if (access == Access.Read) {
            if (purpose == PURPOSE_FAMILY_CARE) {
                DelegationTerms memory terms = _delegations[patient][_delegationIds[patient][accessor]];
                if (terms.expiry > block.timestamp && terms.categories & (uint16(1) << category) != 0) {
                    return (_isSuspended(accessor) ? Denial.Suspended : Denial.None, false, c);
                }
            } else if (purpose == PURPOSE_EMERGENCY && _isEmergencyOpen(patient, _emergencies[patient][accessor])) {
                if (_isSuspended(accessor)) return (Denial.Suspended, false, c);
                return (Denial.None, true, c);
            }
        }
        return (denial, false, c);
    }

    /// @dev Why consent `c` does not cover `category` and `purpose` now (`None` if it does).
    function _consentDenial(ConsentState memory c, uint8 category, uint8 purpose)
        internal
        view
        virtual
        returns (Denial)
    {
        if (c.expiry == 0) return Denial.NotFound;
        if (block.timestamp < c.start) return Denial.NotYetValid;
        if (block.timestamp >= c.expiry) return Denial.Expired;
        if (c.categories & (uint16(1) << category) == 0) return Denial.CategoryNotCovered;
        if (c.purposes & (uint16(1) << purpose) == 0) return Denial.PurposeNotCovered;
        return Denial.None;
    }

    /// @dev Why delegation `id` of `patient` no longer carries a consent it made for `category`.
    function _delegationDenial(address patient, uint24 id, uint8 category) internal view virtual returns (Denial) {
        DelegationTerms memory terms = _delegations[patient][id];
        if (terms.expiry <= block.timestamp) return Denial.DelegationEnded;
        if (_isSuspended(terms.delegate)) return Denial.DelegationSuspended;
        if (terms.categories & (uint16(1) << category) == 0) return Denial.CategoryNotCovered;
        return Denial.None;
    }

    /// @dev Whether delegation `id` (0: the patient's own decision) is live, unsuspended and covers `categories`.
    function _delegationCovers(address patient, uint24 id, uint16 categories) private view returns (bool) {
        if (id == 0) return true;
        DelegationTerms memory terms = _delegations[patient][id];
        return
            terms.expiry > block.timestamp && !_isSuspended(terms.delegate)
                && terms.categories & categories == categories;
    }

    /// @dev When a consent ending at `expiry`, made by delegation `id` (0: the patient), ends: the
    /// earlier of its expiry and the delegation's.
    function _consentEnd(address patient, uint64 expiry, uint24 id) private view returns (uint64) {
        if (id == 0) return expiry;
        uint64 delegationExpiry = _delegations[patient][id].expiry;
        return delegationExpiry < expiry ? delegationExpiry : expiry;
    }

    /// @dev Whether emergency access `e` to `patient` is open now: not expired or closed, and opened
    /// in the patient's current opt-out generation while not opted out.
    function _isEmergencyOpen(address patient, EmergencyState storage e) private view returns (bool) {
        if (e.expiresAt <= block.timestamp) return false;
        PatientState storage state = _patientState(patient);
        return !state.emergencyOptOut && e.generation == state.emergencyGeneration;
    }

    function _delegationView(address patient, uint24 id) private view returns (Delegation memory view_) {
        DelegationTerms memory terms = _delegations[patient][id];
        if (terms.delegate == address(0)) return view_;
        return Delegation({id: id, delegate: terms.delegate, categories: terms.categories, expiry: terms.expiry});
    }

    function _hashGrant(GrantRequest calldata r) private pure returns (bytes32) {
        return keccak256(
            abi.encode(
                GRANT_TYPEHASH,
                r.patient,
                r.grantee,
                r.access,
                r.categories,
                r.purposes,
                r.start,
                r.expiry,
                r.keyEnvelope,
                r.issuedAt,
                r.nonce,
                r.deadline
            )
        );
    }

    function _hashRevoke(RevokeRequest calldata r) private pure returns (bytes32) {
        return keccak256(abi.encode(REVOKE_TYPEHASH, r.patient, r.grantee, r.access, r.issuedAt, r.nonce, r.deadline));
    }

    function _now() internal view returns (uint64) {
        return uint64(block.timestamp);
    }
    // slither-disable-end timestamp,incorrect-equality
}
