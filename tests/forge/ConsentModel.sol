// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IConsentManager} from "../../interfaces/IConsentManager.sol";
import {IParticipantRegistry} from "../../interfaces/IParticipantRegistry.sol";
import {VM} from "./Vm.sol";

/// @title ConsentModel
/// @notice A reference model of the consent rules, written from the NatSpec of {IConsentManager} and
/// {IParticipantRegistry} with plain mappings, independent of the contract's code: who may access
/// what, which errors a refused access may give, and how category keys follow consent.
abstract contract ConsentModel {
    uint8 internal constant CATEGORY_COUNT = 13;
    uint8 internal constant PURPOSE_COUNT = 6;
    uint16 internal constant ALL_CATEGORIES = (uint16(1) << CATEGORY_COUNT) - 1;
    uint16 internal constant ALL_PURPOSES = (uint16(1) << PURPOSE_COUNT) - 1;
    uint8 internal constant FAMILY_CARE = 4;
    uint8 internal constant EMERGENCY = 5;
    uint32 internal constant MAX_EMERGENCY_WINDOW = 24 hours;
    uint32 internal constant MAX_EMERGENCY_RUN = 72 hours;
    uint64 internal constant UNLIMITED = type(uint64).max;

    // The cast: fixed addresses, well away from precompiles and the deployed contracts; SIGNER's
    // private key is known, so that the handler can sign requests for it.
    address internal constant PATIENT = address(0x1000A); // a patient
    address internal constant PATIENT2 = address(0x1000B); // another patient
    address internal constant FAMILY = address(0x1000F); // a registered patient, e.g. a daughter
    address internal constant DUAL = address(0x1000D); // a registered patient who is also a clinician
    address internal constant CLINICIAN = address(0x2000C);
    address internal constant PROVIDER = address(0x2000E); // a care provider
    address internal constant RESEARCHER = address(0x2000B);
    address internal constant STRANGER = address(0x3000); // registered nowhere
    uint256 internal constant SIGNER_KEY = 0xA11CE;
    address internal immutable SIGNER = VM.addr(SIGNER_KEY); // a patient whose wallet signs requests

    struct MDelegation {
        address delegate;
        uint16 categories;
        uint64 expiry;
    }

    struct MEmergency {
        uint64 expiresAt;
        uint64 runStart;
        uint32 generation;
        uint16 keyCategories;
    }

    // ---- the model's state ----
    mapping(address => bool) public mPatient;
    mapping(address => bytes32) public mPatientKey;
    mapping(address => IParticipantRegistry.ParticipantKind) public mKind;
    mapping(address => bool) public mSuspended;
    mapping(address => uint256) public mNonce;
    mapping(address => mapping(address => mapping(uint8 => IConsentManager.ConsentState))) internal _mConsent;
    mapping(address => uint24) public mDelegationCount;
    mapping(address => mapping(address => uint24)) public mDelegationId;
    mapping(address => mapping(uint24 => MDelegation)) internal _mDelegation;
    mapping(address => mapping(address => MEmergency)) internal _mEmergency;
    mapping(address => bool) public mOptOut;
    mapping(address => uint32) public mGeneration;
    mapping(address => uint16) public mEmergencyKeys;
    mapping(address => mapping(uint8 => IParticipantRegistry.CategoryKey)) internal _mKey;

    function actors() public view returns (address[9] memory) {
        return [PATIENT, PATIENT2, FAMILY, DUAL, CLINICIAN, PROVIDER, RESEARCHER, STRANGER, SIGNER];
    }

    function mConsent(address patient, address grantee, IConsentManager.Access access)
        public
        view
        returns (IConsentManager.ConsentState memory)
    {
        return _mConsent[patient][grantee][uint8(access)];
    }

    /// @notice The model's delegation of `delegate` by `patient` (as {IConsentManager-delegation} returns it).
    function mDelegationOf(address patient, address delegate) public view returns (IConsentManager.Delegation memory) {
        return mDelegationById(patient, mDelegationId[patient][delegate]);
    }

    function mDelegationById(address patient, uint24 id) public view returns (IConsentManager.Delegation memory d) {
        MDelegation memory m = _mDelegation[patient][id];
        if (m.delegate == address(0)) return d;
        return IConsentManager.Delegation({id: id, delegate: m.delegate, categories: m.categories, expiry: m.expiry});
    }

    function mEmergency(address patient, address clinician)
        public
        view
        returns (IConsentManager.EmergencyAccess memory)
    {
        MEmergency memory e = _mEmergency[patient][clinician];
        return IConsentManager.EmergencyAccess({
            expiresAt: e.expiresAt, runStart: e.runStart, open: _emergencyOpen(patient, clinician)
        });
    }

    function mKey(address patient, uint8 category) public view returns (IParticipantRegistry.CategoryKey memory) {
        return _mKey[patient][category];
    }

    function _now() internal view returns (uint64) {
        return uint64(block.timestamp);
    }

    function _has(uint16 mask, uint8 code) internal pure returns (bool) {
        return code < 16 && mask & (uint16(1) << code) != 0;
    }

    function _active(address account) internal view returns (bool) {
        return mKind[account] != IParticipantRegistry.ParticipantKind.None && !mSuspended[account];
    }

    // ---------------------------------------------------------------------------------------------
    // Delegations and emergency access, as the NatSpec describes them
    // ---------------------------------------------------------------------------------------------

    /// @dev "A live delegate ... not a suspended participant", covering `categories`.
    function _liveDelegate(address patient, address delegate, uint16 categories) internal view returns (bool) {
        MDelegation memory d = _mDelegation[patient][mDelegationId[patient][delegate]];
        return d.expiry > _now() && categories & d.categories == categories;
    }

    /// @dev Whether a consent made by delegation `id` still works for `categories` (id 0: the patient).
    function _delegationCarries(address patient, uint24 id, uint16 categories) internal view returns (bool) {
        if (id == 0) return true;
        MDelegation memory d = _mDelegation[patient][id];
        return d.expiry > _now() && !mSuspended[d.delegate] && categories & d.categories == categories;
    }

    /// @dev When a consent ending at `expiry` made by delegation `id` ends.
    function _consentEnd(address patient, uint64 expiry, uint24 id) internal view returns (uint64) {
        if (id == 0) return expiry;
        uint64 d = _mDelegation[patient][id].expiry;
        return d < expiry ? d : expiry;
    }

    /// @dev "Opting out closes every open emergency access ... windows opened before an opt-out never reopen."
    function _emergencyOpen(address patient, address clinician) internal view returns (bool) {
        MEmergency memory e = _mEmergency[patient][clinician];
        return e.expiresAt > _now() && !mOptOut[patient] && e.generation == mGeneration[patient];
    }

    /// @dev A consent "covers" when it exists, is valid now, and names the category and the purpose.
    function _covers(IConsentManager.ConsentState memory c, uint8 category, uint8 purpose)
        internal
        view
        returns (bool)
    {
        return c.expiry != 0 && _now() >= c.start && _now() < c.expiry && _has(c.categories, category)
            && _has(c.purposes, purpose);
    }

    // ---------------------------------------------------------------------------------------------
    // The access decision
    // ---------------------------------------------------------------------------------------------

    /// @notice The model's answer to `isPermitted` (and whether `checkAccess` would flag emergency).
    function modelAccess(
        address patient,
        address accessor,
        IConsentManager.Access access,
        uint8 category,
        uint8 purpose
    ) public view returns (bool permitted, bool emergency) {
        if (category >= CATEGORY_COUNT || purpose >= PURPOSE_COUNT) return (false, false);
        if (accessor == patient) return (mPatient[patient], false);
        IConsentManager.ConsentState memory c = _mConsent[patient][accessor][uint8(access)];
        if (
            _covers(c, category, purpose) && _delegationCarries(patient, c.delegation, uint16(1) << category)
                && _active(accessor)
        ) return (true, false);
        if (access == IConsentManager.Access.Read) {
            // A suspended account reads nothing, whatever its access rests on.
            if (purpose == FAMILY_CARE && _liveDelegate(patient, accessor, uint16(1) << category)) {
                return (!mSuspended[accessor], false);
            }
            if (purpose == EMERGENCY && _emergencyOpen(patient, accessor)) {
                return (!mSuspended[accessor], !mSuspended[accessor]);
            }
        }
        return (false, false);
    }

    /// @notice Every revert `checkAccess` may give when the model refuses an access (exact encodings).
    /// @dev The consent's own reasons are listed together (the NatSpec fixes no order among them);
    /// the delegation's reasons only once the consent itself covers the access (as documented).
    function modelDenials(
        address patient,
        address accessor,
        IConsentManager.Access access,
        uint8 category,
        uint8 purpose
    ) public view returns (bytes[] memory out, uint256 n) {
        out = new bytes[](8);
        if (category >= CATEGORY_COUNT || purpose >= PURPOSE_COUNT) {
            out[n++] = abi.encodeWithSelector(IConsentManager.ConsentUnknownCode.selector, category, purpose);
            return (out, n);
        }
        if (accessor == patient) {
            out[n++] = abi.encodeWithSelector(IParticipantRegistry.RegistryPatientNotRegistered.selector, patient);
            return (out, n);
        }
        IConsentManager.ConsentState memory c = _mConsent[patient][accessor][uint8(access)];
        if (c.expiry == 0) {
            out[n++] = mPatient[patient]
                ? abi.encodeWithSelector(IConsentManager.ConsentNotFound.selector, patient, accessor, access)
                : abi.encodeWithSelector(IParticipantRegistry.RegistryPatientNotRegistered.selector, patient);
        } else {
            n = _ownConsentDenials(c, patient, accessor, category, purpose, out, n);
            if (n == 0 && c.delegation != 0) n = _delegationDenials(c, patient, accessor, category, out, n);
        }
        if (mSuspended[accessor]) {
            out[n++] = abi.encodeWithSelector(IParticipantRegistry.RegistryParticipantSuspended.selector, accessor);
        }
    }

    function _ownConsentDenials(
        IConsentManager.ConsentState memory c,
        address patient,
        address accessor,
        uint8 category,
        uint8 purpose,
        bytes[] memory out,
        uint256 n
    ) private view returns (uint256) {
        if (_now() < c.start) {
            out[n++] = abi.encodeWithSelector(IConsentManager.ConsentNotYetValid.selector, patient, accessor, c.start);
        }
        if (_now() >= c.expiry) {
            out[n++] = abi.encodeWithSelector(IConsentManager.ConsentExpired.selector, patient, accessor, c.expiry);
        }
        if (!_has(c.categories, category)) {
            out[n++] =
                abi.encodeWithSelector(IConsentManager.ConsentCategoryNotCovered.selector, patient, accessor, category);
        }
        if (!_has(c.purposes, purpose)) {
            out[n++] =
                abi.encodeWithSelector(IConsentManager.ConsentPurposeNotCovered.selector, patient, accessor, purpose);
        }
        return n;
    }

    function _delegationDenials(
        IConsentManager.ConsentState memory c,
        address patient,
        address accessor,
        uint8 category,
        bytes[] memory out,
        uint256 n
    ) private view returns (uint256) {
        MDelegation memory d = _mDelegation[patient][c.delegation];
        if (d.expiry <= _now()) {
            out[n++] = abi.encodeWithSelector(
                IConsentManager.ConsentDelegationEnded.selector, patient, accessor, c.delegation
            );
        } else if (mSuspended[d.delegate]) {
            out[n++] = abi.encodeWithSelector(
                IConsentManager.ConsentDelegationSuspended.selector, patient, accessor, c.delegation
            );
        } else if (!_has(d.categories, category)) {
            out[n++] =
                abi.encodeWithSelector(IConsentManager.ConsentCategoryNotCovered.selector, patient, accessor, category);
        }
        return n;
    }

    // ---------------------------------------------------------------------------------------------
    // Keys that follow consent
    // ---------------------------------------------------------------------------------------------

    /// @dev "validUntil becomes min(validUntil, end)" for every category in `categories`.
    function _mLimit(address patient, uint16 categories, uint64 end) internal {
        for (uint8 c; c < CATEGORY_COUNT; c++) {
            if (_has(categories, c) && _mKey[patient][c].validUntil > end) _mKey[patient][c].validUntil = end;
        }
    }

    /// @dev "Every early loss of access makes released keys stale now."
    function _mExpire(address patient, uint16 categories) internal {
        _mLimit(patient, categories, _now());
    }

    /// @dev A rotation: epoch + 1, not limited, the new key.
    function _mRotate(address patient, uint8 category, bytes32 publicKey) internal {
        IParticipantRegistry.CategoryKey storage k = _mKey[patient][category];
        k.publicKey = publicKey;
        k.epoch += 1;
        k.validUntil = UNLIMITED;
    }

    /// @dev The end of `recipient`'s live read access to all of `categories` (0: none): a started,
    /// unended read consent (carried by its delegation), its own delegation, or an open emergency
    /// access, the latest of them ({IConsentManager-publishKeyEnvelope}).
    function _releaseEnd(address patient, address recipient, uint16 categories) internal view returns (uint64 end) {
        if (_consentCarriesRelease(patient, recipient, categories)) {
            IConsentManager.ConsentState memory c = _mConsent[patient][recipient][uint8(IConsentManager.Access.Read)];
            end = _consentEnd(patient, c.expiry, c.delegation);
        }
        MDelegation memory d = _mDelegation[patient][mDelegationId[patient][recipient]];
        if (d.expiry > _now() && d.categories & categories == categories && !mSuspended[recipient] && d.expiry > end) {
            end = d.expiry;
        }
        if (_emergencyOpen(patient, recipient) && !mSuspended[recipient]) {
            uint64 e = _mEmergency[patient][recipient].expiresAt;
            if (e > end) end = e;
        }
    }

    /// @dev Applies a release to `recipient` (which {_releaseEnd} found to have access until `end`).
    function _mRelease(address patient, address recipient, uint16 categories, uint64 end) internal {
        if (_consentCarriesRelease(patient, recipient, categories)) {
            _mConsent[patient][recipient][uint8(IConsentManager.Access.Read)].keysReleased = true;
        }
        if (_emergencyOpen(patient, recipient) && !mSuspended[recipient]) {
            _mEmergency[patient][recipient].keyCategories |= categories;
            mEmergencyKeys[patient] |= categories;
        }
        _mLimit(patient, categories, end);
    }

    function _consentCarriesRelease(address patient, address recipient, uint16 categories) private view returns (bool) {
        IConsentManager.ConsentState memory c = _mConsent[patient][recipient][uint8(IConsentManager.Access.Read)];
        return c.start <= _now() && _consentEnd(patient, c.expiry, c.delegation) > _now()
            && c.categories & categories == categories && !mSuspended[recipient]
            && _delegationCarries(patient, c.delegation, categories);
    }
}
