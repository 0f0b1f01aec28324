// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Medledger} from "../../contracts/Medledger.sol";
import {IConsentManager} from "../../interfaces/IConsentManager.sol";
import {IParticipantRegistry} from "../../interfaces/IParticipantRegistry.sol";
import {ConsentModel} from "./ConsentModel.sol";
import {Outcomes} from "./Outcomes.sol";
import {VM} from "./Vm.sol";

/// @title ConsentHandler
/// @notice Drives one {Medledger} with random sequences of consent, delegation, emergency, signed-request
/// and key operations by a fixed cast, predicts each outcome with {ConsentModel} (success, return value,
/// or the exact error), and updates the model. Any disagreement is counted in {mismatches}; the
/// invariant suite requires it to stay zero.
/// @dev Every action first warps to the handler's own clock, so time only moves forward and the model
/// and the contract always see the same `block.timestamp`.
contract ConsentHandler is ConsentModel, Outcomes {
    Medledger public immutable medledger;
    uint64 public clock;
    uint256 internal _keySeed = 1 << 128;

    string internal constant GRANT_TYPE =
        "Grant(address patient,address grantee,uint8 access,uint16 categories,uint16 purposes,uint64 start,uint64 expiry,bytes32 keyEnvelope,uint64 issuedAt,uint256 nonce,uint256 deadline)";
    string internal constant REVOKE_TYPE =
        "Revoke(address patient,address grantee,uint8 access,uint64 issuedAt,uint256 nonce,uint256 deadline)";

    constructor(uint64 startTime) {
        clock = startTime;
        VM.warp(startTime);
        medledger = new Medledger(address(this)); // the handler is admin and registrar
        _registerPatient(PATIENT, 1);
        _registerPatient(PATIENT2, 2);
        _registerPatient(FAMILY, 3);
        _registerPatient(DUAL, 4);
        _registerPatient(SIGNER, 5);
        _registerParticipant(DUAL, IParticipantRegistry.ParticipantKind.Clinician, 5);
        _registerParticipant(CLINICIAN, IParticipantRegistry.ParticipantKind.Clinician, 6);
        _registerParticipant(PROVIDER, IParticipantRegistry.ParticipantKind.CareProvider, 7);
        _registerParticipant(RESEARCHER, IParticipantRegistry.ParticipantKind.Researcher, 8);
    }

    function _registerPatient(address who, uint256 k) internal {
        bytes32[13] memory keys;
        for (uint8 c; c < CATEGORY_COUNT; c++) {
            keys[c] = bytes32((k << 32) | (uint256(c) + 1));
            _mKey[who][c] = IParticipantRegistry.CategoryKey(keys[c], 1, UNLIMITED);
        }
        VM.prank(who);
        medledger.registerPatient(bytes32(k), keys);
        mPatient[who] = true;
        mPatientKey[who] = bytes32(k);
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

    /// @dev Spreads a fuzzed seed's bits: the fuzzer favours edge values (0, 1, max), and the pickers
    /// below read many small fields of one seed.
    function _mix(uint256 seed) internal pure returns (uint256) {
        return uint256(keccak256(abi.encode(seed)));
    }

    function _anyActor(uint256 seed) internal view returns (address) {
        return actors()[seed % 9];
    }

    /// @dev Mostly PATIENT, DUAL or SIGNER (the patients whose every access the invariants check), sometimes anyone.
    function _subject(uint256 seed) internal view returns (address) {
        uint256 r = seed % 16;
        if (r < 7) return PATIENT;
        if (r < 11) return DUAL;
        if (r < 14) return SIGNER;
        return _anyActor(seed >> 4);
    }

    /// @dev Mostly a participant, sometimes anyone (a patient, the stranger).
    function _grantee(uint256 seed) internal view returns (address) {
        uint256 r = seed % 16;
        if (r < 14) return [CLINICIAN, RESEARCHER, DUAL, PROVIDER, CLINICIAN, DUAL, RESEARCHER][r % 7];
        return _anyActor(seed >> 4);
    }

    /// @dev Someone who may be a delegate: usually a registered patient, sometimes not.
    function _family(uint256 seed) internal pure returns (address) {
        return [FAMILY, DUAL, PATIENT2, PATIENT, FAMILY, DUAL, STRANGER, CLINICIAN][seed % 8];
    }

    /// @dev A live delegate of `patient` if there is one (starting the search at a random place), else a possible one.
    function _delegateOf(uint256 seed, address patient) internal view returns (address) {
        for (uint256 i; i < 8; i++) {
            address d = _family(seed % 8 + i);
            if (_liveDelegate(patient, d, 0)) return d;
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
    function _window(uint64 startSeed, uint64 durSeed, uint256 shape)
        internal
        view
        returns (uint64 start, uint64 expiry)
    {
        uint256 s = shape % 4;
        if (s == 1) start = _now() + uint64(startSeed % 10 days);
        else if (s == 2) start = _now() - uint64(startSeed % 10 days);
        else if (s == 3) start = _now();
        uint64 base = start > _now() ? start : _now();
        expiry = base + 1 + uint64(durSeed % 40 days);
        uint256 bad = (shape >> 2) % 20;
        if (bad == 0) expiry = start;
        else if (bad == 1) expiry = _now() - uint64(durSeed % 3 days);
    }

    function _envelope(uint256 seed) internal pure returns (bytes32) {
        return seed % 3 == 0 ? bytes32(0) : keccak256(abi.encode("envelope", seed));
    }

    // ---------------------------------------------------------------------------------------------
    // Expected errors shared by several actions
    // ---------------------------------------------------------------------------------------------

    /// @dev The errors of `_checkManager`: the patient itself (registered), or a live, unsuspended
    /// delegate whose categories include `categories`.
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
        MDelegation memory d = _mDelegation[patient][mDelegationId[patient][caller]];
        if (d.expiry <= _now()) {
            out[n++] = abi.encodeWithSelector(IConsentManager.ConsentUnauthorized.selector, caller, patient);
        } else if (mSuspended[caller]) {
            out[n++] = abi.encodeWithSelector(IParticipantRegistry.RegistryParticipantSuspended.selector, caller);
        } else if (categories & d.categories != categories) {
            out[n++] = abi.encodeWithSelector(
                IConsentManager.ConsentDelegateOutOfBounds.selector, caller, d.categories, categories
            );
        }
        return n;
    }

    /// @dev The errors of `_grant`'s own checks (terms, self-grant, envelope, patient, grantee).
    function _grantDenials(
        address patient,
        address grantee,
        IConsentManager.Access access,
        IConsentManager.Consent memory t,
        bytes32 envelope,
        bytes[] memory out,
        uint256 n
    ) internal view returns (uint256) {
        if (t.categories == 0 || t.categories & ~ALL_CATEGORIES != 0) {
            out[n++] = abi.encodeWithSelector(IConsentManager.ConsentInvalidCategories.selector, t.categories);
        }
        if (t.purposes == 0 || t.purposes & ~ALL_PURPOSES != 0) {
            out[n++] = abi.encodeWithSelector(IConsentManager.ConsentInvalidPurposes.selector, t.purposes);
        }
        if (t.expiry <= t.start || t.expiry <= _now()) {
            out[n++] = abi.encodeWithSelector(IConsentManager.ConsentInvalidWindow.selector, t.start, t.expiry, _now());
        }
        if (grantee == patient) out[n++] = abi.encodeWithSelector(IConsentManager.ConsentSelfGrant.selector, patient);
        if (access == IConsentManager.Access.Write && envelope != bytes32(0)) {
            out[n++] = abi.encodeWithSelector(IConsentManager.ConsentEnvelopeForWrite.selector, grantee);
        }
        if (!mPatient[patient]) {
            out[n++] = abi.encodeWithSelector(IParticipantRegistry.RegistryPatientNotRegistered.selector, patient);
        }
        if (mKind[grantee] == IParticipantRegistry.ParticipantKind.None) {
            out[n++] = abi.encodeWithSelector(IParticipantRegistry.RegistryParticipantNotRegistered.selector, grantee);
        } else if (mSuspended[grantee]) {
            out[n++] = abi.encodeWithSelector(IParticipantRegistry.RegistryParticipantSuspended.selector, grantee);
        }
        return n;
    }

    // ---------------------------------------------------------------------------------------------
    // Consent: grant, narrow, widen, delegate grants, revoke
    // ---------------------------------------------------------------------------------------------

    function grant(uint256 seed, uint16 categories, uint16 purposes, uint64 startSeed, uint64 durSeed) external synced {
        seed = _mix(seed);
        address patient = _subject(seed);
        IConsentManager.Consent memory t = _randomTerms(seed, categories, purposes, startSeed, durSeed);
        IConsentManager.Access access = _access(seed >> 24);
        // A write grant carries an envelope only now and then (it is refused: writers get no secrets).
        bytes32 envelope =
            access == IConsentManager.Access.Read || (seed >> 58) % 8 == 0 ? _envelope(seed >> 60) : bytes32(0);
        _grant("grant", _manager(seed >> 8, patient), patient, _grantee(seed >> 16), access, t, envelope);
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
        seed = _mix(seed);
        address patient = _subject(seed);
        address grantee = _grantee(seed >> 16);
        IConsentManager.Access access = _access(seed >> 24);
        IConsentManager.ConsentState memory c = _mConsent[patient][grantee][uint8(access)];
        IConsentManager.Consent memory t = IConsentManager.Consent(c.categories, c.purposes, c.start, c.expiry);
        if (t.expiry == 0) t = IConsentManager.Consent(ALL_CATEGORIES, ALL_PURPOSES, 0, _now() + 30 days);
        uint16 kept = t.categories & keepCategories;
        t.categories = kept == 0 ? t.categories : kept;
        uint16 p = t.purposes & keepPurposes;
        t.purposes = p == 0 ? t.purposes : p;
        uint64 cut = uint64(shortenBy % 20 days);
        if ((seed >> 32) % 2 == 0) t.expiry = t.expiry > cut ? t.expiry - cut : 0;
        else t.start = t.start + cut;
        _grant("narrow", _manager(seed >> 8, patient), patient, grantee, access, t, bytes32(0));
    }

    /// @dev Widens an existing consent (more categories or purposes, a later expiry, an earlier start).
    function widen(uint256 seed, uint16 addCategories, uint16 addPurposes, uint32 extendBy) external synced {
        seed = _mix(seed);
        address patient = _subject(seed);
        address grantee = _grantee(seed >> 16);
        IConsentManager.Access access = _access(seed >> 24);
        IConsentManager.ConsentState memory c = _mConsent[patient][grantee][uint8(access)];
        IConsentManager.Consent memory t = IConsentManager.Consent(c.categories, c.purposes, c.start, c.expiry);
        if (t.expiry == 0) t = IConsentManager.Consent(0, 0, 0, _now() + 1 days);
        t.categories |= _categories(addCategories, seed >> 40);
        t.purposes |= _purposes(addPurposes, seed >> 48);
        uint64 ext = uint64(extendBy % 20 days);
        if ((seed >> 32) % 2 == 0) t.expiry += ext;
        else t.start = t.start > ext ? t.start - ext : 0;
        bytes32 envelope = access == IConsentManager.Access.Read ? _envelope(seed >> 56) : bytes32(0);
        _grant("widen", _manager(seed >> 8, patient), patient, grantee, access, t, envelope);
    }

    /// @dev A delegate grants on the patient's behalf: within its bounds, outside them, or to itself.
    function delegateGrant(uint256 seed, uint16 categories, uint16 purposes, uint64 durSeed, uint8 shape)
        external
        synced
    {
        seed = _mix(seed);
        address patient = _subject(seed);
        address delegate = _delegateOf(seed >> 8, patient);
        IConsentManager.Consent memory t = IConsentManager.Consent({
            categories: _delegateCategories(patient, delegate, categories, shape % 4 != 0),
            purposes: _purposes(purposes, 1),
            start: 0,
            expiry: _now() + 1 + uint64(durSeed % 30 days)
        });
        // One time in four the delegate names itself (DUAL is a patient and a clinician).
        address grantee = shape % 4 == 1 ? delegate : _grantee(seed >> 16);
        IConsentManager.Access access = _access(seed >> 24);
        bytes32 envelope = access == IConsentManager.Access.Read ? _envelope(shape >> 2) : bytes32(0);
        _grant("delegateGrant", delegate, patient, grantee, access, t, envelope);
    }

    function _delegateCategories(address patient, address delegate, uint16 categories, bool within)
        internal
        view
        returns (uint16 c)
    {
        uint16 bounds = _mDelegation[patient][mDelegationId[patient][delegate]].categories;
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
        IConsentManager.ConsentState memory current = _mConsent[patient][grantee][uint8(access)];
        bytes[] memory expected = new bytes[](12);
        uint256 n;
        uint24 id;
        if (caller != patient) {
            // "a live, unsuspended delegate whose categories include both terms.categories and the
            // categories of the consent it replaces, and that is not the grantee"
            n = _managerDenials(caller, patient, t.categories | current.categories, expected, n);
            if (grantee == caller) {
                expected[n++] = abi.encodeWithSelector(IConsentManager.ConsentDelegateSelfGrant.selector, caller);
            }
            id = mDelegationId[patient][caller];
        }
        n = _grantDenials(patient, grantee, access, t, envelope, expected, n);
        bool predicted = _termsDiffer(current, t) || current.delegation != id;
        uint64 updatedBefore = medledger.consent(patient, grantee, access).updatedAt;

        VM.prank(caller);
        try medledger.grant(patient, grantee, access, t, envelope) returns (bool changed) {
            if (_judge(action, true, "", expected, n)) {
                _judgeChanged(action, changed, predicted);
                if (predicted) _mApplyGrant(patient, grantee, access, t, envelope, id, _now());
                _checkUpdatedAt(action, patient, grantee, access, updatedBefore);
            }
        } catch (bytes memory err) {
            _judge(action, false, err, expected, n);
        }
    }

    function _termsDiffer(IConsentManager.ConsentState memory c, IConsentManager.Consent memory t)
        internal
        pure
        returns (bool)
    {
        return c.categories != t.categories || c.purposes != t.purposes || c.start != t.start || c.expiry != t.expiry;
    }

    /// @dev The model of a grant that changed the consent (as the NatSpec of {IConsentManager-grant} says).
    function _mApplyGrant(
        address patient,
        address grantee,
        IConsentManager.Access access,
        IConsentManager.Consent memory t,
        bytes32 envelope,
        uint24 id,
        uint64 updatedAt
    ) internal {
        IConsentManager.ConsentState storage c = _mConsent[patient][grantee][uint8(access)];
        bool released = c.keysReleased;
        if (released || envelope != bytes32(0)) {
            if (released) _mExpire(patient, c.categories & ~t.categories);
            _mLimit(patient, t.categories, _consentEnd(patient, t.expiry, id));
            released = true;
        }
        _mConsent[patient][grantee][uint8(access)] =
            IConsentManager.ConsentState(t.categories, t.purposes, t.start, t.expiry, updatedAt, id, released);
    }

    function revoke(uint256 seed) external synced {
        seed = _mix(seed);
        address patient = _subject(seed);
        address caller = _manager(seed >> 8, patient);
        address grantee = _grantee(seed >> 16);
        IConsentManager.Access access = _access(seed >> 24);
        IConsentManager.ConsentState memory current = _mConsent[patient][grantee][uint8(access)];
        bytes[] memory expected = new bytes[](2);
        uint256 n = _managerDenials(caller, patient, current.categories, expected, 0);
        uint64 updatedBefore = medledger.consent(patient, grantee, access).updatedAt;

        VM.prank(caller);
        try medledger.revoke(patient, grantee, access) returns (bool changed) {
            if (_judge("revoke", true, "", expected, n)) {
                _judgeChanged("revoke", changed, current.expiry != 0);
                if (current.expiry != 0) _mApplyRevoke(patient, grantee, access, _now());
                _checkUpdatedAt("revoke", patient, grantee, access, updatedBefore);
            }
        } catch (bytes memory err) {
            _judge("revoke", false, err, expected, n);
        }
    }

    function _mApplyRevoke(address patient, address grantee, IConsentManager.Access access, uint64 updatedAt) internal {
        IConsentManager.ConsentState memory c = _mConsent[patient][grantee][uint8(access)];
        if (c.keysReleased) _mExpire(patient, c.categories);
        _mConsent[patient][grantee][uint8(access)] = IConsentManager.ConsentState(0, 0, 0, 0, updatedAt, 0, false);
    }

    /// @dev A consent slot's `updatedAt` never goes back and is never in the future.
    function _checkUpdatedAt(
        string memory action,
        address patient,
        address grantee,
        IConsentManager.Access access,
        uint64 before
    ) internal {
        uint64 afterwards = medledger.consent(patient, grantee, access).updatedAt;
        if (afterwards < before || afterwards > _now()) {
            _mismatch(string.concat(action, ": updatedAt went back or into the future"), abi.encode(before, afterwards));
        }
    }

    // ---------------------------------------------------------------------------------------------
    // Signed requests
    // ---------------------------------------------------------------------------------------------

    /// @dev The request's issuedAt: now, a little earlier, exactly the consent's updatedAt, or in the future.
    function _issuedAt(uint256 seed, uint64 updatedAt) internal view returns (uint64) {
        uint256 s = seed % 8;
        if (s < 4) return _now();
        if (s < 6) return _now() - uint64((seed >> 3) % 3 days);
        if (s == 6) return updatedAt;
        return _now() + 1 + uint64((seed >> 3) % 1 hours);
    }

    /// @dev The signer's current nonce, one time in eight another one.
    function _nonce(uint256 seed, address patient) internal view returns (uint256) {
        if (seed % 8 != 0) return mNonce[patient];
        return mNonce[patient] + 1 + (seed >> 3) % 2;
    }

    function _deadline(uint256 seed) internal view returns (uint256) {
        return seed % 10 == 0 ? _now() - 1 : _now() + (seed >> 4) % 7 days;
    }

    /// @dev SIGNER's EIP-712 signature of `structHash`, over a domain computed here from the standard.
    function _sign(bytes32 structHash) internal view returns (bytes memory) {
        bytes32 domain = keccak256(
            abi.encode(
                keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"),
                keccak256("medledger"),
                keccak256("1"),
                block.chainid,
                address(medledger)
            )
        );
        (uint8 v, bytes32 r, bytes32 s) =
            VM.sign(SIGNER_KEY, keccak256(abi.encodePacked("\x19\x01", domain, structHash)));
        return abi.encodePacked(r, s, v);
    }

    function _signedRequestDenials(
        address patient,
        uint64 issuedAt,
        uint256 nonce,
        uint256 deadline,
        bytes[] memory out,
        uint256 n
    ) internal view returns (uint256) {
        if (block.timestamp > deadline) {
            out[n++] = abi.encodeWithSelector(IConsentManager.ConsentSignatureExpired.selector, deadline);
        }
        if (issuedAt > _now()) {
            out[n++] = abi.encodeWithSelector(IConsentManager.ConsentInvalidIssuedAt.selector, issuedAt, _now());
        }
        if (nonce != mNonce[patient]) {
            out[n++] = abi.encodeWithSignature("InvalidAccountNonce(address,uint256)", patient, mNonce[patient]);
        }
        // Every request is signed with SIGNER's key: for any other patient it is not the patient's signature.
        if (patient != SIGNER) {
            out[n++] = abi.encodeWithSelector(IConsentManager.ConsentInvalidSignature.selector, patient);
        }
        return n;
    }

    function grantBySig(uint256 seed, uint16 categories, uint16 purposes, uint64 startSeed, uint64 durSeed)
        external
        synced
    {
        seed = _mix(seed);
        address patient = seed % 8 == 0 ? _subject(seed >> 3) : SIGNER;
        IConsentManager.Access access = _access(seed >> 24);
        IConsentManager.GrantRequest memory r;
        r.patient = patient;
        r.grantee = _grantee(seed >> 16);
        r.access = access;
        IConsentManager.Consent memory t = _randomTerms(seed, categories, purposes, startSeed, durSeed);
        (r.categories, r.purposes, r.start, r.expiry) = (t.categories, t.purposes, t.start, t.expiry);
        r.keyEnvelope = access == IConsentManager.Access.Read ? _envelope(seed >> 56) : bytes32(0);
        IConsentManager.ConsentState memory current = _mConsent[patient][r.grantee][uint8(access)];
        r.issuedAt = _issuedAt(seed >> 64, current.updatedAt);
        r.nonce = _nonce(seed >> 80, patient);
        r.deadline = _deadline(seed >> 96);
        bytes memory signature = _sign(
            keccak256(
                abi.encode(
                    keccak256(bytes(GRANT_TYPE)),
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
            )
        );
        bytes[] memory expected = new bytes[](14);
        uint256 n = _signedRequestDenials(patient, r.issuedAt, r.nonce, r.deadline, expected, 0);
        n = _grantDenials(patient, r.grantee, access, t, r.keyEnvelope, expected, n);
        if (r.issuedAt <= current.updatedAt) {
            expected[n++] = abi.encodeWithSelector(
                IConsentManager.ConsentRequestSuperseded.selector, patient, r.grantee, r.issuedAt, current.updatedAt
            );
        }
        bool predicted = _termsDiffer(current, t) || current.delegation != 0;
        uint64 updatedBefore = medledger.consent(patient, r.grantee, access).updatedAt;
        try medledger.grantBySig(r, signature) returns (bool changed) {
            if (_judge("grantBySig", true, "", expected, n)) {
                _judgeChanged("grantBySig", changed, predicted);
                if (predicted) _mApplyGrant(patient, r.grantee, access, t, r.keyEnvelope, 0, r.issuedAt);
                else _mConsent[patient][r.grantee][uint8(access)].updatedAt = r.issuedAt;
                _checkUpdatedAt("grantBySig", patient, r.grantee, access, updatedBefore);
            }
        } catch (bytes memory err) {
            _judge("grantBySig", false, err, expected, n);
        }
    }

    function revokeBySig(uint256 seed) external synced {
        seed = _mix(seed);
        address patient = seed % 8 == 0 ? _subject(seed >> 3) : SIGNER;
        IConsentManager.RevokeRequest memory r;
        r.patient = patient;
        r.grantee = _grantee(seed >> 16);
        r.access = _access(seed >> 24);
        IConsentManager.ConsentState memory current = _mConsent[patient][r.grantee][uint8(r.access)];
        r.issuedAt = _issuedAt(seed >> 64, current.updatedAt);
        r.nonce = _nonce(seed >> 80, patient);
        r.deadline = _deadline(seed >> 96);
        bytes memory signature = _sign(
            keccak256(
                abi.encode(
                    keccak256(bytes(REVOKE_TYPE)), r.patient, r.grantee, r.access, r.issuedAt, r.nonce, r.deadline
                )
            )
        );
        bytes[] memory expected = new bytes[](8);
        uint256 n = _signedRequestDenials(patient, r.issuedAt, r.nonce, r.deadline, expected, 0);
        if (!mPatient[patient]) {
            expected[n++] = abi.encodeWithSelector(IParticipantRegistry.RegistryPatientNotRegistered.selector, patient);
        }
        if (r.issuedAt <= current.updatedAt) {
            expected[n++] = abi.encodeWithSelector(
                IConsentManager.ConsentRequestSuperseded.selector, patient, r.grantee, r.issuedAt, current.updatedAt
            );
        }
        uint64 updatedBefore = medledger.consent(patient, r.grantee, r.access).updatedAt;
        try medledger.revokeBySig(r, signature) returns (bool changed) {
            if (_judge("revokeBySig", true, "", expected, n)) {
                _judgeChanged("revokeBySig", changed, current.expiry != 0);
                if (current.expiry != 0) _mApplyRevoke(patient, r.grantee, r.access, r.issuedAt);
                else _mConsent[patient][r.grantee][uint8(r.access)].updatedAt = r.issuedAt;
                _checkUpdatedAt("revokeBySig", patient, r.grantee, r.access, updatedBefore);
            }
        } catch (bytes memory err) {
            _judge("revokeBySig", false, err, expected, n);
        }
    }

    function invalidateSignedRequests(uint256 seed) external synced {
        seed = _mix(seed);
        address patient = seed % 4 == 0 ? _subject(seed >> 2) : SIGNER;
        address caller = _manager(seed >> 8, patient);
        bytes[] memory expected = new bytes[](1);
        uint256 n = _managerDenials(caller, patient, 0, expected, 0);
        VM.prank(caller);
        try medledger.invalidateSignedRequests(patient) returns (uint256 newNonce) {
            if (_judge("invalidateSignedRequests", true, "", expected, n)) {
                mNonce[patient] += 1;
                if (newNonce != mNonce[patient]) {
                    _mismatch("invalidateSignedRequests: newNonce", abi.encode(newNonce, mNonce[patient]));
                }
            }
        } catch (bytes memory err) {
            _judge("invalidateSignedRequests", false, err, expected, n);
        }
    }

    // ---------------------------------------------------------------------------------------------
    // Time
    // ---------------------------------------------------------------------------------------------

    function warp(uint32 secondsSeed) external {
        clock += 1 + uint64(secondsSeed % 5 days);
        VM.warp(clock);
    }

    /// @dev Jumps to (or one second before) a start, expiry or end the model knows of: the boundaries.
    function warpToBoundary(uint256 seed) external {
        seed = _mix(seed);
        address patient = _subject(seed);
        address other = _anyActor(seed >> 8);
        IConsentManager.ConsentState memory c = _mConsent[patient][other][uint8(_access(seed >> 12))];
        MEmergency memory e = _mEmergency[patient][other];
        uint64[7] memory times = [
            c.start,
            c.expiry,
            _mDelegation[patient][mDelegationId[patient][other]].expiry,
            e.expiresAt,
            e.runStart + MAX_EMERGENCY_RUN,
            e.expiresAt + MAX_EMERGENCY_WINDOW,
            _mKey[patient][uint8((seed >> 24) % CATEGORY_COUNT)].validUntil
        ];
        uint64 target = times[(seed >> 16) % 7];
        if ((seed >> 20) % 2 == 1 && target > 0) target -= 1;
        if (target > clock && target < clock + 400 days) clock = target;
        VM.warp(clock);
    }

    // ---------------------------------------------------------------------------------------------
    // Participants
    // ---------------------------------------------------------------------------------------------

    function suspend(uint256 seed, bytes32 reason) external synced {
        seed = _mix(seed);
        address account = _grantee(seed);
        bytes[] memory expected = new bytes[](1);
        uint256 n;
        if (mKind[account] == IParticipantRegistry.ParticipantKind.None) {
            expected[n++] =
                abi.encodeWithSelector(IParticipantRegistry.RegistryParticipantNotRegistered.selector, account);
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
        seed = _mix(seed);
        address account = _grantee(seed);
        for (uint256 i; i < 9; i++) {
            address a = _anyActor(seed % 9 + i);
            if (mSuspended[a]) {
                account = a;
                break;
            }
        }
        bytes[] memory expected = new bytes[](1);
        uint256 n;
        if (mKind[account] == IParticipantRegistry.ParticipantKind.None) {
            expected[n++] =
                abi.encodeWithSelector(IParticipantRegistry.RegistryParticipantNotRegistered.selector, account);
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
        seed = _mix(seed);
        address patient = (seed % 8 == 0) ? _anyActor(seed >> 3) : _subject(seed >> 3);
        address delegate = _family(seed >> 12);
        if (delegate == patient || (seed >> 15) % 8 != 0) {
            delegate = [FAMILY, DUAL, PATIENT2, PATIENT][(seed >> 12) % 4];
        }
        if (delegate == patient) delegate = FAMILY == patient ? DUAL : FAMILY;
        uint16 c = _categories(categories, seed >> 16);
        uint64 expiry =
            (seed >> 24) % 12 == 0 ? _now() - uint64(expirySeed % 2 days) : _now() + 1 + uint64(expirySeed % 20 days);
        bytes[] memory expected = new bytes[](4);
        uint256 n;
        if (!mPatient[patient]) {
            expected[n++] = abi.encodeWithSelector(IParticipantRegistry.RegistryPatientNotRegistered.selector, patient);
        }
        if (delegate == address(0) || delegate == patient || !mPatient[delegate]) {
            expected[n++] =
                abi.encodeWithSelector(IConsentManager.DelegationInvalidDelegate.selector, patient, delegate);
        }
        if (c == 0 || c & ~ALL_CATEGORIES != 0) {
            expected[n++] = abi.encodeWithSelector(IConsentManager.ConsentInvalidCategories.selector, c);
        }
        if (expiry <= _now()) {
            expected[n++] = abi.encodeWithSelector(IConsentManager.DelegationInvalidExpiry.selector, expiry);
        }
        uint24 id = mDelegationId[patient][delegate];
        MDelegation memory current = _mDelegation[patient][id];
        bool live = id != 0 && current.expiry > _now();
        bool predicted = !live || current.categories != c || current.expiry != expiry;

        VM.prank(patient);
        try medledger.appointDelegate(delegate, c, expiry) returns (bool changed) {
            if (_judge("appointDelegate", true, "", expected, n)) {
                _judgeChanged("appointDelegate", changed, predicted);
                if (live && predicted) {
                    // "Dropping categories, or moving the expiry earlier, of a live delegation makes the
                    // keys of the dropped categories stale and clamps the others to the new expiry."
                    _mExpire(patient, current.categories & ~c);
                    if (expiry < current.expiry) _mLimit(patient, c & current.categories, expiry);
                    _mDelegation[patient][id] = MDelegation(delegate, c, expiry);
                } else if (!live) {
                    id = ++mDelegationCount[patient];
                    mDelegationId[patient][delegate] = id;
                    _mDelegation[patient][id] = MDelegation(delegate, c, expiry);
                }
            }
        } catch (bytes memory err) {
            _judge("appointDelegate", false, err, expected, n);
        }
    }

    function removeDelegate(uint256 seed) external synced {
        seed = _mix(seed);
        address patient = _subject(seed);
        address delegate = _family(seed >> 8);
        uint24 id = mDelegationId[patient][delegate];
        bytes[] memory expected = new bytes[](0);
        VM.prank(patient);
        try medledger.removeDelegate(delegate) returns (bool changed) {
            if (_judge("removeDelegate", true, "", expected, 0)) {
                _judgeChanged("removeDelegate", changed, id != 0);
                if (id != 0) {
                    uint16 categories = _mDelegation[patient][id].categories;
                    delete mDelegationId[patient][delegate];
                    delete _mDelegation[patient][id];
                    _mExpire(patient, categories);
                }
            }
        } catch (bytes memory err) {
            _judge("removeDelegate", false, err, expected, 0);
        }
    }

    // ---------------------------------------------------------------------------------------------
    // Emergency access
    // ---------------------------------------------------------------------------------------------

    function openEmergency(uint256 seed, uint32 windowSeed, bytes32 reason) external synced {
        seed = _mix(seed);
        address patient = _subject(seed);
        address caller = (seed >> 8) % 4 == 0 ? _anyActor(seed >> 10) : [CLINICIAN, DUAL, PROVIDER][(seed >> 10) % 3];
        uint32 window = (seed >> 16) % 10 == 0 ? windowSeed : windowSeed % (MAX_EMERGENCY_WINDOW + 1);
        bytes[] memory expected = new bytes[](5);
        uint256 n;
        IParticipantRegistry.ParticipantKind kind = mKind[caller];
        if (
            kind != IParticipantRegistry.ParticipantKind.Clinician
                && kind != IParticipantRegistry.ParticipantKind.CareProvider
        ) {
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
        // The run: "a run ends once no window has been open for MAX_EMERGENCY_WINDOW"; "re-opening never
        // shortens a window that is still open"; openings may not pass runStart + MAX_EMERGENCY_RUN.
        MEmergency memory e = _mEmergency[patient][caller];
        if (e.generation != mGeneration[patient] || e.runStart == 0 || _now() >= e.expiresAt + MAX_EMERGENCY_WINDOW) {
            e = MEmergency(0, _now(), mGeneration[patient], 0);
        }
        uint64 later = _now() + window;
        bool extends = e.expiresAt < later;
        if (n == 0 && extends && later > e.runStart + MAX_EMERGENCY_RUN) {
            expected[n++] = abi.encodeWithSelector(
                IConsentManager.EmergencyRunExceeded.selector, patient, caller, e.runStart + MAX_EMERGENCY_RUN
            );
        }

        VM.prank(caller);
        try medledger.openEmergencyAccess(patient, window, reason) returns (uint64 expiresAt) {
            if (_judge("openEmergency", true, "", expected, n)) {
                uint64 predicted = extends ? later : e.expiresAt;
                if (expiresAt != predicted) {
                    _mismatch(
                        "openEmergency: expiresAt is not max(open expiry, now + window)",
                        abi.encode(expiresAt, predicted)
                    );
                }
                if (extends) {
                    e.expiresAt = later;
                    _mEmergency[patient][caller] = e;
                }
            }
        } catch (bytes memory err) {
            _judge("openEmergency", false, err, expected, n);
        }
    }

    function _emergencyCaller(uint256 seed, address patient, address clinician) internal view returns (address) {
        uint256 r = seed % 4;
        return r == 0 ? clinician : r == 1 ? patient : r == 2 ? _delegateOf(seed >> 2, patient) : _anyActor(seed >> 2);
    }

    function closeEmergency(uint256 seed) external synced {
        seed = _mix(seed);
        address patient = _subject(seed);
        address clinician = [CLINICIAN, DUAL, PROVIDER, RESEARCHER][(seed >> 8) % 4];
        address caller = _emergencyCaller(seed >> 10, patient, clinician);
        bytes[] memory expected = new bytes[](1);
        uint256 n;
        if (caller != clinician) n = _managerDenials(caller, patient, 0, expected, 0);
        bool open = _emergencyOpen(patient, clinician);

        VM.prank(caller);
        try medledger.closeEmergencyAccess(patient, clinician) returns (bool changed) {
            if (_judge("closeEmergency", true, "", expected, n)) {
                _judgeChanged("closeEmergency", changed, open);
                if (open) {
                    MEmergency storage e = _mEmergency[patient][clinician];
                    e.expiresAt = _now();
                    _mExpire(patient, e.keyCategories);
                    e.keyCategories = 0;
                }
            }
        } catch (bytes memory err) {
            _judge("closeEmergency", false, err, expected, n);
        }
    }

    function confirmEmergency(uint256 seed) external synced {
        seed = _mix(seed);
        address patient = _subject(seed);
        address clinician = [CLINICIAN, DUAL, PROVIDER, RESEARCHER][(seed >> 8) % 4];
        address caller = _emergencyCaller(seed >> 10, patient, clinician);
        bytes[] memory expected = new bytes[](1);
        uint256 n = _managerDenials(caller, patient, 0, expected, 0);
        uint64 runStart = _mEmergency[patient][clinician].runStart;
        bool predicted = runStart != 0 && runStart != _now();

        VM.prank(caller);
        try medledger.confirmEmergencyAccess(patient, clinician) returns (bool changed) {
            if (_judge("confirmEmergency", true, "", expected, n)) {
                _judgeChanged("confirmEmergency", changed, predicted);
                if (predicted) _mEmergency[patient][clinician].runStart = _now();
            }
        } catch (bytes memory err) {
            _judge("confirmEmergency", false, err, expected, n);
        }
    }

    function setOptOut(uint256 seed, bool optedOut) external synced {
        seed = _mix(seed);
        address patient = seed % 8 == 0 ? _anyActor(seed >> 3) : _subject(seed >> 3);
        bytes[] memory expected = new bytes[](1);
        uint256 n;
        if (!mPatient[patient]) {
            expected[n++] = abi.encodeWithSelector(IParticipantRegistry.RegistryPatientNotRegistered.selector, patient);
        }
        VM.prank(patient);
        try medledger.setEmergencyOptOut(optedOut) returns (bool changed) {
            if (_judge("setOptOut", true, "", expected, n)) {
                bool predicted = mOptOut[patient] != optedOut;
                _judgeChanged("setOptOut", changed, predicted);
                mOptOut[patient] = optedOut;
                if (predicted && optedOut) {
                    mGeneration[patient] += 1;
                    _mExpire(patient, mEmergencyKeys[patient]);
                    mEmergencyKeys[patient] = 0;
                }
            }
        } catch (bytes memory err) {
            _judge("setOptOut", false, err, expected, n);
        }
    }

    // ---------------------------------------------------------------------------------------------
    // Category keys
    // ---------------------------------------------------------------------------------------------

    function _freshKey() internal returns (bytes32) {
        return bytes32(++_keySeed);
    }

    function setCategoryKeys(uint256 seed, uint16 categories) external synced {
        seed = _mix(seed);
        address patient = _subject(seed);
        address caller = _manager(seed >> 8, patient);
        uint16 c = _categories(categories, seed >> 16);
        uint256 count;
        for (uint16 rest = c; rest != 0; rest &= rest - 1) {
            count++;
        }
        uint256 length = (seed >> 24) % 16 == 0 ? count + 1 : count; // sometimes a key too many
        bytes32[] memory keys = new bytes32[](length);
        for (uint256 i; i < length; i++) {
            keys[i] = _freshKey();
        }
        uint256 bad = (seed >> 28) % 16; // sometimes a zero key, or a category's current key, in first place
        uint8 first = _lowest(c);
        if (length > 0 && bad == 0) keys[0] = bytes32(0);
        if (length > 0 && bad == 1 && first < CATEGORY_COUNT) keys[0] = _mKey[patient][first].publicKey;

        bytes[] memory expected = new bytes[](5);
        uint256 n = _managerDenials(caller, patient, c, expected, 0);
        if (c == 0 || c & ~ALL_CATEGORIES != 0) {
            expected[n++] = abi.encodeWithSelector(IConsentManager.ConsentInvalidCategories.selector, c);
        } else if (length != count) {
            expected[n++] = abi.encodeWithSelector(IConsentManager.KeyCountMismatch.selector, count, length);
        } else if (keys[0] == bytes32(0) || keys[0] == _mKey[patient][first].publicKey) {
            expected[n++] = abi.encodeWithSelector(IParticipantRegistry.RegistryInvalidCategoryKey.selector, first);
        }
        VM.prank(caller);
        try medledger.setCategoryKeys(patient, c, keys) {
            if (_judge("setCategoryKeys", true, "", expected, n)) {
                uint256 next;
                for (uint8 category; category < CATEGORY_COUNT; category++) {
                    if (_has(c, category)) _mRotate(patient, category, keys[next++]);
                }
            }
        } catch (bytes memory err) {
            _judge("setCategoryKeys", false, err, expected, n);
        }
    }

    function _lowest(uint16 mask) internal pure returns (uint8 c) {
        while (c < 16 && mask & (uint16(1) << c) == 0) c++;
    }

    function rotatePatientKey(uint256 seed) external synced {
        seed = _mix(seed);
        address patient = seed % 8 == 0 ? _anyActor(seed >> 3) : _subject(seed >> 3);
        bytes32 key = (seed >> 8) % 16 == 0 ? mPatientKey[patient] : _freshKey();
        bytes32[13] memory keys;
        for (uint8 c; c < CATEGORY_COUNT; c++) {
            keys[c] = _freshKey();
        }
        bytes[] memory expected = new bytes[](2);
        uint256 n;
        if (!mPatient[patient]) {
            expected[n++] = abi.encodeWithSelector(IParticipantRegistry.RegistryPatientNotRegistered.selector, patient);
        } else if (key == bytes32(0) || key == mPatientKey[patient]) {
            expected[n++] = abi.encodeWithSelector(IParticipantRegistry.RegistryInvalidEncryptionKey.selector);
        }
        VM.prank(patient);
        try medledger.rotatePatientKey(key, keys) {
            if (_judge("rotatePatientKey", true, "", expected, n)) {
                mPatientKey[patient] = key;
                for (uint8 c; c < CATEGORY_COUNT; c++) {
                    _mRotate(patient, c, keys[c]);
                }
            }
        } catch (bytes memory err) {
            _judge("rotatePatientKey", false, err, expected, n);
        }
    }

    function publishKeyEnvelope(uint256 seed, uint16 categories) external synced {
        seed = _mix(seed);
        address patient = _subject(seed);
        address caller = _manager(seed >> 8, patient);
        uint256 r = (seed >> 16) % 8;
        address recipient = r == 0 ? patient : r < 3 ? _delegateOf(seed >> 20, patient) : _grantee(seed >> 20);
        uint16 c = _releasable(patient, recipient, _categories(categories, seed >> 24), seed >> 36);
        bytes32 envelope = (seed >> 32) % 16 == 0 ? bytes32(0) : keccak256(abi.encode("envelope", seed));
        bytes[] memory expected = new bytes[](5);
        uint256 n = _managerDenials(caller, patient, c, expected, 0);
        bool validCategories = c != 0 && c & ~ALL_CATEGORIES == 0;
        if (!validCategories) {
            expected[n++] = abi.encodeWithSelector(IConsentManager.ConsentInvalidCategories.selector, c);
        }
        if (envelope == bytes32(0)) {
            expected[n++] = abi.encodeWithSelector(IConsentManager.KeyInvalidEnvelope.selector);
        }
        uint64 end = recipient == patient ? 0 : _releaseEnd(patient, recipient, c);
        if (recipient != patient && end == 0) {
            expected[n++] =
                abi.encodeWithSelector(IConsentManager.KeyRecipientWithoutAccess.selector, patient, recipient, c);
        }
        VM.prank(caller);
        try medledger.publishKeyEnvelope(patient, recipient, c, envelope) {
            if (_judge("publishKeyEnvelope", true, "", expected, n) && recipient != patient) {
                _mRelease(patient, recipient, c, end);
            }
        } catch (bytes memory err) {
            _judge("publishKeyEnvelope", false, err, expected, n);
        }
    }

    /// @dev Three times in four, `categories` cut down to what `recipient` may read (its read consent,
    /// else its delegation), so that releases often succeed; else as given.
    function _releasable(address patient, address recipient, uint16 categories, uint256 seed)
        internal
        view
        returns (uint16)
    {
        if (seed % 4 == 0) return categories;
        uint16 readable = _mConsent[patient][recipient][uint8(IConsentManager.Access.Read)].categories;
        if (readable == 0) readable = _mDelegation[patient][mDelegationId[patient][recipient]].categories;
        uint16 cut = categories & readable;
        return cut != 0 ? cut : readable != 0 ? readable : categories;
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
        s = new bytes4[](25);
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
        s[14] = this.grantBySig.selector;
        s[15] = this.revokeBySig.selector;
        s[16] = this.invalidateSignedRequests.selector;
        s[17] = this.confirmEmergency.selector;
        s[18] = this.setCategoryKeys.selector;
        s[19] = this.rotatePatientKey.selector;
        s[20] = this.publishKeyEnvelope.selector;
        // Twice as often: runs need several openings; delegate grants and releases need a live delegation
        // or access, which other actions keep taking away.
        s[21] = this.openEmergency.selector;
        s[22] = this.appointDelegate.selector;
        s[23] = this.delegateGrant.selector;
        s[24] = this.publishKeyEnvelope.selector;
    }
}
