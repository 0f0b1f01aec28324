// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Medledger} from "../../contracts/Medledger.sol";
import {IConsentManager} from "../../interfaces/IConsentManager.sol";
import {IParticipantRegistry} from "../../interfaces/IParticipantRegistry.sol";
import {VM} from "./Vm.sol";

/// @title ConsentModel
/// @notice A reference model of the consent rules, written from the NatSpec of {IConsentManager} and
/// {IParticipantRegistry} with plain mappings, independent of the contract's code: who may call what,
/// which error a refused call gives, and who may access what.
abstract contract ConsentModel {
    uint8 internal constant CATEGORY_COUNT = 13;
    uint8 internal constant PURPOSE_COUNT = 6;
    uint16 internal constant ALL_CATEGORIES = (uint16(1) << CATEGORY_COUNT) - 1;
    uint16 internal constant ALL_PURPOSES = (uint16(1) << PURPOSE_COUNT) - 1;
    uint8 internal constant FAMILY_CARE = 4;
    uint8 internal constant EMERGENCY = 5;
    uint32 internal constant MAX_EMERGENCY_WINDOW = 24 hours;

    // The cast: fixed addresses, well away from precompiles and the deployed contracts.
    address internal constant PATIENT = address(0x1000A); // a patient
    address internal constant PATIENT2 = address(0x1000B); // another patient
    address internal constant FAMILY = address(0x1000F); // a registered patient, e.g. a daughter
    address internal constant DUAL = address(0x1000D); // a registered patient who is also a clinician
    address internal constant CLINICIAN = address(0x2000C);
    address internal constant PROVIDER = address(0x2000E); // a care provider
    address internal constant RESEARCHER = address(0x2000B);
    address internal constant STRANGER = address(0x3000); // registered nowhere

    // ---- the model's state ----
    mapping(address => bool) public mPatient;
    mapping(address => IParticipantRegistry.ParticipantKind) public mKind;
    mapping(address => bool) public mSuspended;
    mapping(address => mapping(address => mapping(uint8 => IConsentManager.Consent))) internal _mConsent;
    mapping(address => mapping(address => IConsentManager.Delegation)) internal _mDelegation;
    mapping(address => mapping(address => uint64)) public mEmergency;
    mapping(address => bool) public mOptOut;

    function actors() public pure returns (address[8] memory) {
        return [PATIENT, PATIENT2, FAMILY, DUAL, CLINICIAN, PROVIDER, RESEARCHER, STRANGER];
    }

    function mConsent(address patient, address grantee, IConsentManager.Access access)
        public
        view
        returns (IConsentManager.Consent memory)
    {
        return _mConsent[patient][grantee][uint8(access)];
    }

    function mDelegation(address patient, address delegate) public view returns (IConsentManager.Delegation memory) {
        return _mDelegation[patient][delegate];
    }

    function _now() internal view returns (uint64) {
        return uint64(block.timestamp);
    }

    function _has(uint16 mask, uint8 code) internal pure returns (bool) {
        return mask & (uint16(1) << code) != 0;
    }

    function _active(address account) internal view returns (bool) {
        return mKind[account] != IParticipantRegistry.ParticipantKind.None && !mSuspended[account];
    }

    /// @dev A consent "covers" when it exists, is valid now, and names the category and the purpose.
    function _covers(IConsentManager.Consent memory c, uint8 category, uint8 purpose) internal view returns (bool) {
        return c.expiry != 0 && _now() >= c.start && _now() < c.expiry && _has(c.categories, category)
            && _has(c.purposes, purpose);
    }

    /// @notice The model's answer to `isPermitted` (and whether `checkAccess` would flag emergency).
    /// @dev IConsentManager.isPermitted: "True for the patient itself, a live covering consent held by an
    /// active participant, a live delegate (read, family care, within its categories), or an open
    /// emergency access (read, emergency)"; IParticipantRegistry: while suspended, every consent and
    /// emergency access a participant holds stops working.
    function modelAccess(address patient, address accessor, IConsentManager.Access access, uint8 category, uint8 purpose)
        public
        view
        returns (bool permitted, bool emergency)
    {
        if (category >= CATEGORY_COUNT || purpose >= PURPOSE_COUNT) return (false, false);
        if (accessor == patient) return (mPatient[patient], false);
        if (_covers(_mConsent[patient][accessor][uint8(access)], category, purpose) && _active(accessor)) {
            return (true, false);
        }
        if (access == IConsentManager.Access.Read) {
            // A delegation is a patient-to-patient role: the NatSpec does not make it depend on the
            // delegate's participant status (see test_suspendedDelegateReadsTheSameWithOrWithoutAConsent).
            IConsentManager.Delegation memory d = _mDelegation[patient][accessor];
            if (purpose == FAMILY_CARE && d.expiry > _now() && _has(d.categories, category)) return (true, false);
            if (purpose == EMERGENCY && mEmergency[patient][accessor] > _now() && !mSuspended[accessor]) {
                return (true, true);
            }
        }
        return (false, false);
    }

    /// @notice Every revert `checkAccess` may give when the model refuses an access (exact encodings).
    /// @dev The NatSpec lists the errors but fixes no order among several applicable reasons, so the
    /// model accepts any of the applicable ones (each with its exact arguments).
    function modelDenials(address patient, address accessor, IConsentManager.Access access, uint8 category, uint8 purpose)
        public
        view
        returns (bytes[] memory out, uint256 n)
    {
        out = new bytes[](7);
        if (category >= CATEGORY_COUNT || purpose >= PURPOSE_COUNT) {
            out[n++] = abi.encodeWithSelector(IConsentManager.ConsentUnknownCode.selector, category, purpose);
            return (out, n);
        }
        if (accessor == patient) {
            out[n++] = abi.encodeWithSelector(IParticipantRegistry.RegistryPatientNotRegistered.selector, patient);
            return (out, n);
        }
        IConsentManager.Consent memory c = _mConsent[patient][accessor][uint8(access)];
        if (c.expiry == 0) {
            // "{RegistryPatientNotRegistered} (no consent, and `patient` is not a registered patient)"
            out[n++] = mPatient[patient]
                ? abi.encodeWithSelector(IConsentManager.ConsentNotFound.selector, patient, accessor, access)
                : abi.encodeWithSelector(IParticipantRegistry.RegistryPatientNotRegistered.selector, patient);
        } else {
            if (_now() < c.start) {
                out[n++] = abi.encodeWithSelector(IConsentManager.ConsentNotYetValid.selector, patient, accessor, c.start);
            }
            if (_now() >= c.expiry) {
                out[n++] = abi.encodeWithSelector(IConsentManager.ConsentExpired.selector, patient, accessor, c.expiry);
            }
            if (!_has(c.categories, category)) {
                out[n++] = abi.encodeWithSelector(
                    IConsentManager.ConsentCategoryNotCovered.selector, patient, accessor, category
                );
            }
            if (!_has(c.purposes, purpose)) {
                out[n++] = abi.encodeWithSelector(
                    IConsentManager.ConsentPurposeNotCovered.selector, patient, accessor, purpose
                );
            }
        }
        if (mSuspended[accessor]) {
            out[n++] = abi.encodeWithSelector(IParticipantRegistry.RegistryParticipantSuspended.selector, accessor);
        }
    }
}

/// @title ConsentHandler
/// @notice Drives one {Medledger} with random sequences of consent operations by a fixed cast, predicts
/// each outcome with {ConsentModel} (success, return value, or the exact error), and updates the model.
/// Any disagreement is counted in {mismatches}; the invariant suite requires it to stay zero.
/// @dev Every action first warps to the handler's own clock, so time only moves forward and the model
/// and the contract always see the same `block.timestamp`, whether or not forge keeps warps between calls.
contract ConsentHandler is ConsentModel {
    Medledger public immutable medledger;
    uint64 public clock;

    uint256 public mismatches;
    string public lastMismatch;
    bytes public lastMismatchData;
    mapping(bytes32 action => uint256) public successes;
    mapping(bytes32 action => uint256) public refusals;

    constructor(uint64 startTime) {
        clock = startTime;
        VM.warp(startTime);
        medledger = new Medledger(address(this)); // the handler is admin and registrar
        _registerPatient(PATIENT, 1);
        _registerPatient(PATIENT2, 2);
        _registerPatient(FAMILY, 3);
        _registerPatient(DUAL, 4);
        _registerParticipant(DUAL, IParticipantRegistry.ParticipantKind.Clinician, 5);
        _registerParticipant(CLINICIAN, IParticipantRegistry.ParticipantKind.Clinician, 6);
        _registerParticipant(PROVIDER, IParticipantRegistry.ParticipantKind.CareProvider, 7);
        _registerParticipant(RESEARCHER, IParticipantRegistry.ParticipantKind.Researcher, 8);
    }

    function _registerPatient(address who, uint256 k) internal {
        VM.prank(who);
        medledger.registerPatient(bytes32(k));
        mPatient[who] = true;
    }

    function _registerParticipant(address who, IParticipantRegistry.ParticipantKind kind, uint256 k) internal {
        medledger.registerParticipant(who, kind, bytes32(k << 128), bytes32(k));
        mKind[who] = kind;
    }

    modifier synced() {
        VM.warp(clock);
        _;
    }

    // ---------------------------------------------------------------------------------------------
    // Picking actors and terms from fuzzed seeds
    // ---------------------------------------------------------------------------------------------

    function _anyActor(uint256 seed) internal pure returns (address) {
        return actors()[seed % 8];
    }

    /// @dev Mostly PATIENT or DUAL (the patients whose every access the invariants check), sometimes anyone.
    function _subject(uint256 seed) internal pure returns (address) {
        uint256 r = seed % 16;
        if (r < 8) return PATIENT;
        if (r < 13) return DUAL;
        return _anyActor(seed >> 4);
    }

    /// @dev Mostly a participant, sometimes anyone (a patient, the stranger).
    function _grantee(uint256 seed) internal pure returns (address) {
        uint256 r = seed % 16;
        if (r < 14) return [CLINICIAN, RESEARCHER, DUAL, PROVIDER, CLINICIAN, DUAL, RESEARCHER][r % 7];
        return _anyActor(seed >> 4);
    }

    /// @dev Someone who may be a delegate: usually a registered patient, sometimes not.
    function _family(uint256 seed) internal pure returns (address) {
        return [FAMILY, DUAL, PATIENT2, PATIENT, FAMILY, DUAL, STRANGER, CLINICIAN][seed % 8];
    }

    /// @dev A live delegate of `patient` if there is one (starting the search at a random place),
    /// else a possible one.
    function _delegateOf(uint256 seed, address patient) internal view returns (address) {
        for (uint256 i; i < 8; i++) {
            address d = _family(seed % 8 + i);
            if (_mDelegation[patient][d].expiry > _now()) return d;
        }
        return _family(seed);
    }

    /// @dev Usually the patient, often a delegate (live if any), sometimes anyone.
    function _manager(uint256 seed, address patient) internal view returns (address) {
        uint256 r = seed % 8;
        if (r < 5) return patient;
        if (r < 7) return _delegateOf(seed >> 3, patient);
        return _anyActor(seed >> 3);
    }

    function _access(uint256 seed) internal pure returns (IConsentManager.Access) {
        return seed % 3 == 0 ? IConsentManager.Access.Write : IConsentManager.Access.Read;
    }

    /// @dev A category mask: usually valid and non-empty, one time in 16 the raw fuzzed value.
    function _categories(uint16 raw, uint256 shape) internal pure returns (uint16 m) {
        if (shape % 16 == 0) return raw;
        m = raw & ALL_CATEGORIES;
        if (m == 0) m = uint16(1) << (raw % CATEGORY_COUNT);
    }

    function _purposes(uint16 raw, uint256 shape) internal pure returns (uint16 m) {
        if (shape % 16 == 0) return raw;
        m = raw & ALL_PURPOSES;
        if (m == 0) m = uint16(1) << (raw % PURPOSE_COUNT);
    }

    /// @dev A validity window: from now, from a past or a future second; one time in 10 empty or over.
    function _window(uint64 startSeed, uint64 durSeed, uint256 shape) internal view returns (uint64 start, uint64 expiry) {
        uint256 s = shape % 4;
        if (s == 1) start = _now() + uint64(startSeed % 10 days);
        else if (s == 2) start = _now() - uint64(startSeed % 10 days);
        else if (s == 3) start = _now(); // exactly now
        uint64 base = start > _now() ? start : _now();
        expiry = base + 1 + uint64(durSeed % 40 days);
        uint256 bad = (shape >> 2) % 20;
        if (bad == 0) expiry = start; // empty window
        else if (bad == 1) expiry = _now() - uint64(durSeed % 3 days); // over already (or ends now)
    }

    // ---------------------------------------------------------------------------------------------
    // Outcome bookkeeping
    // ---------------------------------------------------------------------------------------------

    function _mismatch(string memory what, bytes memory data) internal {
        mismatches++;
        lastMismatch = what;
        lastMismatchData = data;
    }

    /// @dev Compares a call's outcome with the prediction (`n` == 0: success, else one of `expected`).
    /// Returns true if the call succeeded as predicted.
    function _judge(string memory action, bool ok, bytes memory err, bytes[] memory expected, uint256 n)
        internal
        returns (bool)
    {
        if (ok && n != 0) {
            _mismatch(string.concat(action, ": succeeded, model expected a revert"), expected[0]);
            return false;
        }
        if (!ok && n == 0) {
            _mismatch(string.concat(action, ": reverted, model expected success"), err);
            return false;
        }
        if (!ok) {
            bytes32 h = keccak256(err);
            for (uint256 i; i < n; i++) {
                if (keccak256(expected[i]) == h) {
                    refusals[keccak256(bytes(action))]++;
                    return false;
                }
            }
            // data: the actual error, then the first error the model expected
            _mismatch(string.concat(action, ": reverted with an error the model did not expect"), abi.encode(err, expected[0]));
            return false;
        }
        successes[keccak256(bytes(action))]++;
        return true;
    }

    function _judgeChanged(string memory action, bool actual, bool predicted) internal {
        if (actual != predicted) {
            _mismatch(string.concat(action, ": `changed` differs from the model"), abi.encode(actual, predicted));
        }
    }

    /// @dev The errors of {_checkManager}-style authorisation: the patient itself (registered), or a
    /// live delegate whose categories include `categories`.
    function _managerDenials(address caller, address patient, uint16 categories, bytes[] memory out, uint256 n)
        internal
        view
        returns (uint256)
    {
        if (caller == patient) {
            if (!mPatient[patient]) {
                out[n++] = abi.encodeWithSelector(IParticipantRegistry.RegistryPatientNotRegistered.selector, patient);
            }
            return n;
        }
        IConsentManager.Delegation memory d = _mDelegation[patient][caller];
        if (d.expiry <= _now()) {
            out[n++] = abi.encodeWithSelector(IConsentManager.ConsentUnauthorized.selector, caller, patient);
        } else if (categories & d.categories != categories) {
            out[n++] = abi.encodeWithSelector(
                IConsentManager.ConsentDelegateOutOfBounds.selector, caller, d.categories, categories
            );
        }
        return n;
    }

    // ---------------------------------------------------------------------------------------------
    // Consent: grant, narrow, widen, delegate grants, revoke
    // ---------------------------------------------------------------------------------------------

    function grant(uint256 seed, uint16 categories, uint16 purposes, uint64 startSeed, uint64 durSeed, bytes32 envelope)
        external
        synced
    {
        address patient = _subject(seed);
        IConsentManager.Consent memory t = _randomTerms(seed, categories, purposes, startSeed, durSeed);
        _grant("grant", _manager(seed >> 8, patient), patient, _grantee(seed >> 16), _access(seed >> 24), t, envelope);
    }

    function _randomTerms(uint256 seed, uint16 categories, uint16 purposes, uint64 startSeed, uint64 durSeed)
        internal
        view
        returns (IConsentManager.Consent memory t)
    {
        (t.start, t.expiry) = _window(startSeed, durSeed, seed >> 32);
        t.categories = _categories(categories, seed >> 40);
        t.purposes = _purposes(purposes, seed >> 48);
    }

    /// @dev Narrows an existing consent (fewer categories or purposes, an earlier expiry, a later start).
    function narrow(uint256 seed, uint16 keepCategories, uint16 keepPurposes, uint32 shortenBy) external synced {
        address patient = _subject(seed);
        address grantee = _grantee(seed >> 16);
        IConsentManager.Access access = _access(seed >> 24);
        IConsentManager.Consent memory t = _mConsent[patient][grantee][uint8(access)];
        if (t.expiry == 0) t = IConsentManager.Consent(ALL_CATEGORIES, ALL_PURPOSES, 0, _now() + 30 days);
        uint16 c = t.categories & keepCategories;
        t.categories = c == 0 ? t.categories : c;
        uint16 p = t.purposes & keepPurposes;
        t.purposes = p == 0 ? t.purposes : p;
        uint64 cut = uint64(shortenBy % 20 days);
        if ((seed >> 32) % 2 == 0) t.expiry = t.expiry > cut ? t.expiry - cut : 0;
        else t.start = t.start + cut;
        _grant("narrow", _manager(seed >> 8, patient), patient, grantee, access, t, bytes32(0));
    }

    /// @dev Widens an existing consent (more categories or purposes, a later expiry, an earlier start).
    function widen(uint256 seed, uint16 addCategories, uint16 addPurposes, uint32 extendBy) external synced {
        address patient = _subject(seed);
        address grantee = _grantee(seed >> 16);
        IConsentManager.Access access = _access(seed >> 24);
        IConsentManager.Consent memory t = _mConsent[patient][grantee][uint8(access)];
        if (t.expiry == 0) t = IConsentManager.Consent(0, 0, 0, _now() + 1 days);
        t.categories |= _categories(addCategories, seed >> 40);
        t.purposes |= _purposes(addPurposes, seed >> 48);
        uint64 ext = uint64(extendBy % 20 days);
        if ((seed >> 32) % 2 == 0) t.expiry += ext;
        else t.start = t.start > ext ? t.start - ext : 0;
        _grant("widen", _manager(seed >> 8, patient), patient, grantee, access, t, bytes32(uint256(1)));
    }

    /// @dev A delegate grants on the patient's behalf, within its bounds or deliberately outside them.
    function delegateGrant(uint256 seed, uint16 categories, uint16 purposes, uint64 durSeed, bool within)
        external
        synced
    {
        address patient = _subject(seed);
        address delegate = _delegateOf(seed >> 8, patient);
        IConsentManager.Consent memory t = IConsentManager.Consent({
            categories: _delegateCategories(patient, delegate, categories, within),
            purposes: _purposes(purposes, 1),
            start: 0,
            expiry: _now() + 1 + uint64(durSeed % 30 days)
        });
        _grant("delegateGrant", delegate, patient, _grantee(seed >> 16), _access(seed >> 24), t, bytes32(0));
    }

    function _delegateCategories(address patient, address delegate, uint16 categories, bool within)
        internal
        view
        returns (uint16 c)
    {
        uint16 bounds = _mDelegation[patient][delegate].categories;
        c = _categories(categories, 1);
        if (within && bounds != 0) {
            c = c & bounds;
            if (c == 0) c = bounds;
        } else if (!within && bounds != ALL_CATEGORIES) {
            uint16 outside = ALL_CATEGORIES & ~bounds;
            c |= outside & (~outside + 1); // the lowest category outside the bounds
        }
    }

    function _grant(
        string memory action,
        address caller,
        address patient,
        address grantee,
        IConsentManager.Access access,
        IConsentManager.Consent memory t,
        bytes32 envelope
    ) internal {
        // IConsentManager.grant: callable by the patient, or a live delegate whose categories include both
        // terms.categories and the categories of the consent it replaces; reverts with the listed errors.
        IConsentManager.Consent memory current = _mConsent[patient][grantee][uint8(access)];
        // A delegate must cover what it removes as well as what it adds.
        uint16 touched = caller == patient ? t.categories : t.categories | current.categories;
        bytes[] memory expected = new bytes[](10);
        uint256 n = _managerDenials(caller, patient, touched, expected, 0);
        if (t.categories == 0 || t.categories & ~ALL_CATEGORIES != 0) {
            expected[n++] = abi.encodeWithSelector(IConsentManager.ConsentInvalidCategories.selector, t.categories);
        }
        if (t.purposes == 0 || t.purposes & ~ALL_PURPOSES != 0) {
            expected[n++] = abi.encodeWithSelector(IConsentManager.ConsentInvalidPurposes.selector, t.purposes);
        }
        if (t.expiry <= t.start || t.expiry <= _now()) {
            expected[n++] =
                abi.encodeWithSelector(IConsentManager.ConsentInvalidWindow.selector, t.start, t.expiry, _now());
        }
        if (grantee == patient) {
            expected[n++] = abi.encodeWithSelector(IConsentManager.ConsentSelfGrant.selector, patient);
        }
        if (!mPatient[patient]) {
            expected[n++] = abi.encodeWithSelector(IParticipantRegistry.RegistryPatientNotRegistered.selector, patient);
        }
        if (mKind[grantee] == IParticipantRegistry.ParticipantKind.None) {
            expected[n++] =
                abi.encodeWithSelector(IParticipantRegistry.RegistryParticipantNotRegistered.selector, grantee);
        } else if (mSuspended[grantee]) {
            expected[n++] = abi.encodeWithSelector(IParticipantRegistry.RegistryParticipantSuspended.selector, grantee);
        }

        bool predicted = current.categories != t.categories || current.purposes != t.purposes
            || current.start != t.start || current.expiry != t.expiry;

        VM.prank(caller);
        try medledger.grant(patient, grantee, access, t, envelope) returns (bool changed) {
            if (_judge(action, true, "", expected, n)) {
                _judgeChanged(action, changed, predicted);
                _mConsent[patient][grantee][uint8(access)] = t;
            }
        } catch (bytes memory err) {
            _judge(action, false, err, expected, n);
        }
    }

    function revoke(uint256 seed) external synced {
        address patient = _subject(seed);
        address caller = _manager(seed >> 8, patient);
        address grantee = _grantee(seed >> 16);
        IConsentManager.Access access = _access(seed >> 24);
        IConsentManager.Consent memory current = _mConsent[patient][grantee][uint8(access)];
        // IConsentManager.revoke: the patient, or a live delegate whose categories include the consent's.
        bytes[] memory expected = new bytes[](2);
        uint256 n = _managerDenials(caller, patient, current.categories, expected, 0);

        VM.prank(caller);
        try medledger.revoke(patient, grantee, access) returns (bool changed) {
            if (_judge("revoke", true, "", expected, n)) {
                _judgeChanged("revoke", changed, current.expiry != 0);
                delete _mConsent[patient][grantee][uint8(access)];
            }
        } catch (bytes memory err) {
            _judge("revoke", false, err, expected, n);
        }
    }

    // ---------------------------------------------------------------------------------------------
    // Time
    // ---------------------------------------------------------------------------------------------

    function warp(uint32 secondsSeed) external {
        clock += 1 + uint64(secondsSeed % 5 days);
        VM.warp(clock);
    }

    /// @dev Jumps to (or one second before) a start or expiry the model knows of: the boundaries.
    function warpToBoundary(uint256 seed) external {
        address patient = _subject(seed);
        address other = _anyActor(seed >> 8);
        IConsentManager.Consent memory c = _mConsent[patient][other][uint8(_access(seed >> 12))];
        uint64[4] memory times =
            [c.start, c.expiry, _mDelegation[patient][other].expiry, mEmergency[patient][other]];
        uint64 target = times[(seed >> 16) % 4];
        if ((seed >> 20) % 2 == 1 && target > 0) target -= 1;
        if (target > clock) clock = target;
        VM.warp(clock);
    }

    // ---------------------------------------------------------------------------------------------
    // Participants
    // ---------------------------------------------------------------------------------------------

    function suspend(uint256 seed, bytes32 reason) external synced {
        address account = _grantee(seed);
        bytes[] memory expected = new bytes[](1);
        uint256 n;
        if (mKind[account] == IParticipantRegistry.ParticipantKind.None) {
            expected[n++] = abi.encodeWithSelector(IParticipantRegistry.RegistryParticipantNotRegistered.selector, account);
        }
        try medledger.suspendParticipant(account, reason) returns (bool changed) {
            if (_judge("suspend", true, "", expected, n)) {
                _judgeChanged("suspend", changed, !mSuspended[account]);
                mSuspended[account] = true;
            }
        } catch (bytes memory err) {
            _judge("suspend", false, err, expected, n);
        }
    }

    /// @dev Reinstates a suspended participant if there is one (so that suspensions stay the exception).
    function reinstate(uint256 seed) external synced {
        address account = _grantee(seed);
        for (uint256 i; i < 8; i++) {
            address a = _anyActor(seed % 8 + i);
            if (mSuspended[a]) {
                account = a;
                break;
            }
        }
        bytes[] memory expected = new bytes[](1);
        uint256 n;
        if (mKind[account] == IParticipantRegistry.ParticipantKind.None) {
            expected[n++] = abi.encodeWithSelector(IParticipantRegistry.RegistryParticipantNotRegistered.selector, account);
        }
        try medledger.reinstateParticipant(account) returns (bool changed) {
            if (_judge("reinstate", true, "", expected, n)) {
                _judgeChanged("reinstate", changed, mSuspended[account]);
                mSuspended[account] = false;
            }
        } catch (bytes memory err) {
            _judge("reinstate", false, err, expected, n);
        }
    }

    // ---------------------------------------------------------------------------------------------
    // Delegation
    // ---------------------------------------------------------------------------------------------

    function appointDelegate(uint256 seed, uint16 categories, uint32 expirySeed) external synced {
        address patient = (seed % 8 == 0) ? _anyActor(seed >> 3) : _subject(seed >> 3);
        address delegate = _family(seed >> 12);
        if (delegate == patient || (seed >> 15) % 8 != 0) delegate = [FAMILY, DUAL, PATIENT2, PATIENT][(seed >> 12) % 4];
        if (delegate == patient) delegate = FAMILY == patient ? DUAL : FAMILY;
        uint16 c = _categories(categories, seed >> 16);
        uint64 expiry = (seed >> 24) % 12 == 0 ? _now() - uint64(expirySeed % 2 days) : _now() + 1 + uint64(expirySeed % 20 days);
        // IConsentManager.appointDelegate: only a registered patient; the delegate must be a registered
        // patient other than the caller; categories valid; expiry in the future.
        bytes[] memory expected = new bytes[](4);
        uint256 n;
        if (!mPatient[patient]) {
            expected[n++] = abi.encodeWithSelector(IParticipantRegistry.RegistryPatientNotRegistered.selector, patient);
        }
        if (delegate == address(0) || delegate == patient || !mPatient[delegate]) {
            expected[n++] = abi.encodeWithSelector(IConsentManager.DelegationInvalidDelegate.selector, patient, delegate);
        }
        if (c == 0 || c & ~ALL_CATEGORIES != 0) {
            expected[n++] = abi.encodeWithSelector(IConsentManager.ConsentInvalidCategories.selector, c);
        }
        if (expiry <= _now()) {
            expected[n++] = abi.encodeWithSelector(IConsentManager.DelegationInvalidExpiry.selector, expiry);
        }
        IConsentManager.Delegation memory current = _mDelegation[patient][delegate];
        bool predicted = current.categories != c || current.expiry != expiry;

        VM.prank(patient);
        try medledger.appointDelegate(delegate, c, expiry) returns (bool changed) {
            if (_judge("appointDelegate", true, "", expected, n)) {
                _judgeChanged("appointDelegate", changed, predicted);
                _mDelegation[patient][delegate] = IConsentManager.Delegation(c, expiry);
            }
        } catch (bytes memory err) {
            _judge("appointDelegate", false, err, expected, n);
        }
    }

    function removeDelegate(uint256 seed) external synced {
        address patient = _subject(seed);
        address delegate = _family(seed >> 8);
        bytes[] memory expected = new bytes[](0);
        VM.prank(patient);
        try medledger.removeDelegate(delegate) returns (bool changed) {
            if (_judge("removeDelegate", true, "", expected, 0)) {
                _judgeChanged("removeDelegate", changed, _mDelegation[patient][delegate].expiry != 0);
                delete _mDelegation[patient][delegate];
            }
        } catch (bytes memory err) {
            _judge("removeDelegate", false, err, expected, 0);
        }
    }

    // ---------------------------------------------------------------------------------------------
    // Emergency access
    // ---------------------------------------------------------------------------------------------

    function openEmergency(uint256 seed, uint32 windowSeed, bytes32 reason) external synced {
        address patient = _subject(seed);
        address caller = (seed >> 8) % 4 == 0 ? _anyActor(seed >> 10) : [CLINICIAN, DUAL, PROVIDER][(seed >> 10) % 3];
        uint32 window = (seed >> 16) % 10 == 0 ? windowSeed : windowSeed % (MAX_EMERGENCY_WINDOW + 1);
        // IConsentManager.openEmergencyAccess: an active clinician or care provider, a window in
        // (0, MAX], a registered patient who has not opted out.
        bytes[] memory expected = new bytes[](5);
        uint256 n;
        IParticipantRegistry.ParticipantKind kind = mKind[caller];
        if (kind != IParticipantRegistry.ParticipantKind.Clinician && kind != IParticipantRegistry.ParticipantKind.CareProvider) {
            expected[n++] = abi.encodeWithSelector(IConsentManager.EmergencyNotClinician.selector, caller);
        } else if (mSuspended[caller]) {
            expected[n++] = abi.encodeWithSelector(IParticipantRegistry.RegistryParticipantSuspended.selector, caller);
        }
        if (window == 0 || window > MAX_EMERGENCY_WINDOW) {
            expected[n++] =
                abi.encodeWithSelector(IConsentManager.EmergencyInvalidWindow.selector, window, MAX_EMERGENCY_WINDOW);
        }
        if (!mPatient[patient]) {
            expected[n++] = abi.encodeWithSelector(IParticipantRegistry.RegistryPatientNotRegistered.selector, patient);
        } else if (mOptOut[patient]) {
            expected[n++] = abi.encodeWithSelector(IConsentManager.EmergencyOptedOut.selector, patient);
        }

        VM.prank(caller);
        // Re-opening never shortens a window that is still open: the later expiry is kept and returned.
        uint64 later = _now() + window;
        if (mEmergency[patient][caller] > later) later = mEmergency[patient][caller];
        try medledger.openEmergencyAccess(patient, window, reason) returns (uint64 expiresAt) {
            if (_judge("openEmergency", true, "", expected, n)) {
                if (expiresAt != later) {
                    _mismatch("openEmergency: expiresAt is not max(open expiry, now + window)", abi.encode(expiresAt, later));
                }
                mEmergency[patient][caller] = later;
            }
        } catch (bytes memory err) {
            _judge("openEmergency", false, err, expected, n);
        }
    }

    function closeEmergency(uint256 seed) external synced {
        address patient = _subject(seed);
        address clinician = [CLINICIAN, DUAL, PROVIDER, RESEARCHER][(seed >> 8) % 4];
        uint256 r = (seed >> 10) % 4;
        address caller = r == 0 ? clinician : r == 1 ? patient : r == 2 ? _delegateOf(seed >> 12, patient) : _anyActor(seed >> 12);
        // IConsentManager.closeEmergencyAccess: the patient, a live delegate, or the clinician.
        bytes[] memory expected = new bytes[](1);
        uint256 n;
        if (caller != clinician) n = _managerDenials(caller, patient, 0, expected, 0);
        bool open = mEmergency[patient][clinician] > _now();

        VM.prank(caller);
        try medledger.closeEmergencyAccess(patient, clinician) returns (bool changed) {
            if (_judge("closeEmergency", true, "", expected, n)) {
                _judgeChanged("closeEmergency", changed, open);
                if (open) mEmergency[patient][clinician] = 0;
            }
        } catch (bytes memory err) {
            _judge("closeEmergency", false, err, expected, n);
        }
    }

    function setOptOut(uint256 seed, bool optedOut) external synced {
        address patient = seed % 8 == 0 ? _anyActor(seed >> 3) : _subject(seed >> 3);
        bytes[] memory expected = new bytes[](1);
        uint256 n;
        if (!mPatient[patient]) {
            expected[n++] = abi.encodeWithSelector(IParticipantRegistry.RegistryPatientNotRegistered.selector, patient);
        }
        VM.prank(patient);
        try medledger.setEmergencyOptOut(optedOut) returns (bool changed) {
            if (_judge("setOptOut", true, "", expected, n)) {
                _judgeChanged("setOptOut", changed, mOptOut[patient] != optedOut);
                mOptOut[patient] = optedOut;
            }
        } catch (bytes memory err) {
            _judge("setOptOut", false, err, expected, n);
        }
    }

    // ---------------------------------------------------------------------------------------------
    // Audit (called by the invariant suite, not fuzzed): the loops run here, next to the model, so
    // that only the calls into Medledger are external calls.
    // ---------------------------------------------------------------------------------------------

    uint8 public constant AUDIT_OK = 0;
    uint8 public constant AUDIT_IS_PERMITTED_DIFFERS = 1;
    uint8 public constant AUDIT_CHECK_ACCESS_RETURNED_THOUGH_NOT_PERMITTED = 2;
    uint8 public constant AUDIT_CHECK_ACCESS_REVERTED_THOUGH_PERMITTED = 3;
    uint8 public constant AUDIT_CHECK_ACCESS_UNEXPECTED_ERROR = 4;
    uint8 public constant AUDIT_EMERGENCY_FLAG_DIFFERS = 5;

    /// @notice Compares, for every category and purpose (all 13 x 6, plus an unknown code of each),
    /// isPermitted with the model and checkAccess with isPermitted (reverts iff false, with an error
    /// the model lists, and the emergency flag). Returns the first disagreement.
    function auditAccess(address patient, address accessor, IConsentManager.Access access)
        external
        view
        returns (uint8 failure, uint8 category, uint8 purpose, bytes memory data)
    {
        for (category = 0; category < CATEGORY_COUNT; category++) {
            for (purpose = 0; purpose < PURPOSE_COUNT; purpose++) {
                (failure, data) = _auditOne(patient, accessor, access, category, purpose);
                if (failure != AUDIT_OK) return (failure, category, purpose, data);
            }
        }
        (category, purpose) = (CATEGORY_COUNT, EMERGENCY);
        (failure, data) = _auditOne(patient, accessor, access, category, purpose);
        if (failure != AUDIT_OK) return (failure, category, purpose, data);
        (category, purpose) = (CATEGORY_COUNT - 1, PURPOSE_COUNT);
        (failure, data) = _auditOne(patient, accessor, access, category, purpose);
    }

    function _auditOne(address patient, address accessor, IConsentManager.Access access, uint8 category, uint8 purpose)
        internal
        view
        returns (uint8, bytes memory)
    {
        bool permitted = medledger.isPermitted(patient, accessor, access, category, purpose);
        (bool expected, bool expectedEmergency) = modelAccess(patient, accessor, access, category, purpose);
        if (permitted != expected) return (AUDIT_IS_PERMITTED_DIFFERS, abi.encode(permitted, expected));
        try medledger.checkAccess(patient, accessor, access, category, purpose) returns (bool emergency) {
            if (!permitted) return (AUDIT_CHECK_ACCESS_RETURNED_THOUGH_NOT_PERMITTED, abi.encode(emergency));
            if (emergency != expectedEmergency) return (AUDIT_EMERGENCY_FLAG_DIFFERS, abi.encode(emergency));
        } catch (bytes memory err) {
            if (permitted) return (AUDIT_CHECK_ACCESS_REVERTED_THOUGH_PERMITTED, err);
            (bytes[] memory denials, uint256 n) = modelDenials(patient, accessor, access, category, purpose);
            bytes32 h = keccak256(err);
            for (uint256 k; k < n; k++) {
                if (keccak256(denials[k]) == h) return (AUDIT_OK, "");
            }
            return (AUDIT_CHECK_ACCESS_UNEXPECTED_ERROR, err);
        }
        return (AUDIT_OK, "");
    }

    /// @notice The handler's actions, for the invariant suite's `targetSelectors`.
    function actions() external pure returns (bytes4[] memory s) {
        s = new bytes4[](14);
        s[0] = this.grant.selector;
        s[1] = this.narrow.selector;
        s[2] = this.widen.selector;
        s[3] = this.delegateGrant.selector;
        s[4] = this.revoke.selector;
        s[5] = this.warp.selector;
        s[6] = this.warpToBoundary.selector;
        s[7] = this.suspend.selector;
        s[8] = this.reinstate.selector;
        s[9] = this.appointDelegate.selector;
        s[10] = this.removeDelegate.selector;
        s[11] = this.openEmergency.selector;
        s[12] = this.closeEmergency.selector;
        s[13] = this.setOptOut.selector;
    }
}
