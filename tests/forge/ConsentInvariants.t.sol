// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Medledger} from "../../contracts/Medledger.sol";
import {IConsentManager} from "../../interfaces/IConsentManager.sol";
import {IParticipantRegistry} from "../../interfaces/IParticipantRegistry.sol";
import {Assertions, HandlerTargets} from "./Assertions.sol";
import {ConsentHandler} from "./ConsentHandler.sol";
import {VM} from "./Vm.sol";

/// @title ConsentInvariants
/// @notice Stateful fuzzing of the consent state machine: {ConsentHandler} applies random sequences of
/// grants, narrowings, widenings, revocations (direct and signed, with fresh, old, replayed and
/// future requests), cancellations, time warps, suspensions, delegations (with ids), emergency
/// openings, confirmations and opt-outs, key rotations and releases, by a fixed cast; after each step
/// every access the cast could ask for, every stored consent, delegation, emergency access and
/// category key must be what the reference model (written from the NatSpec) says.
contract ConsentInvariants is Assertions, HandlerTargets {
    ConsentHandler internal handler;
    Medledger internal medledger;

    error OutcomeMismatch(uint256 count, string what, bytes data);
    error AccessDecisionMismatch(
        string what, address patient, address accessor, uint8 access, uint8 category, uint8 purpose, bytes data
    );
    error ConsentStateMismatch(
        address patient,
        address grantee,
        uint8 access,
        IConsentManager.ConsentState actual,
        IConsentManager.ConsentState expected
    );
    error StateMismatch(string what, address patient, address other);
    error KeyMismatch(
        address patient,
        uint8 category,
        IParticipantRegistry.CategoryKey actual,
        IParticipantRegistry.CategoryKey expected
    );

    function setUp() public {
        handler = new ConsentHandler(1_700_000_000);
        medledger = handler.medledger();
    }

    function _handler() internal view override returns (address) {
        return address(handler);
    }

    function _actions() internal view override returns (bytes4[] memory) {
        return handler.actions();
    }

    modifier atHandlerTime() {
        VM.warp(handler.clock());
        _;
    }

    // ---------------------------------------------------------------------------------------------
    // Invariants
    // ---------------------------------------------------------------------------------------------

    /// @notice After every call, the whole state agrees with the model:
    ///  - every call the handler made succeeded or failed as the model predicted: same success, same
    ///    `changed`/`expiresAt`/`newNonce`, a revert with one of the errors the NatSpec gives for the
    ///    case, and no consent's `updatedAt` ever went back or into the future;
    ///  - every stored consent, delegation, emergency access, opt-out, suspension, nonce and category key.
    /// @dev One invariant (one forge campaign) for all the cheap checks: each invariant function is a
    /// campaign of its own, so splitting them would multiply the run time.
    /// forge-config: default.invariant.fail-on-revert = true
    function invariant_stateMatchesModel() public atHandlerTime {
        uint256 count = handler.mismatches();
        if (count != 0) revert OutcomeMismatch(count, handler.lastMismatch(), handler.lastMismatchData());
        _checkConsentStates();
        _checkDelegationsEmergenciesAndStatus();
        _checkCategoryKeys();
    }

    /// @notice For the patients PATIENT, DUAL (also a clinician) and SIGNER (who signs requests), every
    /// actor, both accesses, all 13 categories and 6 purposes (and an unknown code of each):
    ///  - isPermitted equals the model's decision;
    ///  - checkAccess reverts iff isPermitted is false, with an error the NatSpec gives for that refusal
    ///    (exact arguments), and flags `emergency` iff access rests on an emergency opening.
    /// @dev The expensive check (~4,000 decisions, two calls each): checked after every 16th call of a
    /// 64-call sequence (inline config) rather than after each.
    /// forge-config: default.invariant.runs = 24
    /// forge-config: default.invariant.depth = 64
    /// forge-config: default.invariant.check-interval = 16
    function invariant_accessDecisionsMatchModel() public atHandlerTime {
        address[3] memory subjects = [address(0x1000A), address(0x1000D), handler.actors()[8]];
        address[9] memory cast = handler.actors();
        for (uint256 i; i < subjects.length; i++) {
            for (uint256 j; j < cast.length; j++) {
                for (uint8 access; access < 2; access++) {
                    (uint8 failure, uint8 category, uint8 purpose, bytes memory data) =
                        handler.auditAccess(subjects[i], cast[j], IConsentManager.Access(access));
                    if (failure != 0) {
                        revert AccessDecisionMismatch(
                            _auditFailure(failure), subjects[i], cast[j], access, category, purpose, data
                        );
                    }
                }
            }
        }
    }

    function _auditFailure(uint8 failure) internal pure returns (string memory) {
        if (failure == 1) return "isPermitted differs from the model (data: actual, expected)";
        if (failure == 2) return "checkAccess returned though isPermitted is false";
        if (failure == 3) return "checkAccess reverted though isPermitted is true (data: the error)";
        if (failure == 4) return "checkAccess reverted with an error the model does not list (data: the error)";
        return "checkAccess emergency flag differs from the model";
    }

    /// @dev consent() returns the model's state for every patient, grantee and access: terms,
    /// updatedAt (never in the future), the delegation that made it, and whether keys were released.
    function _checkConsentStates() internal view {
        address[9] memory cast = handler.actors();
        for (uint256 i; i < cast.length; i++) {
            for (uint256 j; j < cast.length; j++) {
                for (uint8 access; access < 2; access++) {
                    IConsentManager.ConsentState memory actual =
                        medledger.consent(cast[i], cast[j], IConsentManager.Access(access));
                    IConsentManager.ConsentState memory expected =
                        handler.mConsent(cast[i], cast[j], IConsentManager.Access(access));
                    if (
                        keccak256(abi.encode(actual)) != keccak256(abi.encode(expected))
                            || actual.updatedAt > block.timestamp
                    ) {
                        revert ConsentStateMismatch(cast[i], cast[j], access, actual, expected);
                    }
                }
            }
        }
    }

    /// @dev Delegations (by delegate and by id), isDelegate, emergency accesses, opt-outs,
    /// suspensions and the signed-request nonces read as the model holds them.
    function _checkDelegationsEmergenciesAndStatus() internal view {
        address[9] memory cast = handler.actors();
        for (uint256 i; i < cast.length; i++) {
            address p = cast[i];
            if (medledger.emergencyOptedOut(p) != handler.mOptOut(p)) revert StateMismatch("optOut", p, p);
            if (medledger.participant(p).suspended != handler.mSuspended(p)) revert StateMismatch("suspended", p, p);
            if (medledger.nonces(p) != handler.mNonce(p)) revert StateMismatch("nonce", p, p);
            for (uint24 id = 1; id <= handler.mDelegationCount(p); id++) {
                if (
                    keccak256(abi.encode(medledger.delegationById(p, id)))
                        != keccak256(abi.encode(handler.mDelegationById(p, id)))
                ) {
                    revert StateMismatch("delegationById", p, address(uint160(id)));
                }
            }
            for (uint256 j; j < cast.length; j++) {
                address d = cast[j];
                IConsentManager.Delegation memory expected = handler.mDelegationOf(p, d);
                if (keccak256(abi.encode(medledger.delegation(p, d))) != keccak256(abi.encode(expected))) {
                    revert StateMismatch("delegation", p, d);
                }
                bool live = expected.expiry > block.timestamp && !handler.mSuspended(d);
                if (medledger.isDelegate(p, d, expected.categories) != live) revert StateMismatch("isDelegate", p, d);
                if (medledger.isDelegate(p, d, 0) != live) revert StateMismatch("isDelegate(0)", p, d);
                if (
                    keccak256(abi.encode(medledger.emergencyAccess(p, d)))
                        != keccak256(abi.encode(handler.mEmergency(p, d)))
                ) {
                    revert StateMismatch("emergencyAccess", p, d);
                }
            }
        }
    }

    /// @dev Every category key of every patient (public key, epoch, validUntil) is the model's: epochs
    /// only grow by rotations, and validUntil follows every release and every early loss of access.
    function _checkCategoryKeys() internal view {
        address[9] memory cast = handler.actors();
        for (uint256 i; i < cast.length; i++) {
            for (uint8 c; c < 13; c++) {
                IParticipantRegistry.CategoryKey memory actual = medledger.categoryKey(cast[i], c);
                IParticipantRegistry.CategoryKey memory expected = handler.mKey(cast[i], c);
                if (keccak256(abi.encode(actual)) != keccak256(abi.encode(expected))) {
                    revert KeyMismatch(cast[i], c, actual, expected);
                }
            }
        }
    }
}

/// @title ConsentFuzz
/// @notice Stateless fuzz tests of single consent rules, each against a formula written from the NatSpec.
contract ConsentFuzz is Assertions {
    uint8 internal constant FAMILY_CARE = 4;
    uint8 internal constant EMERGENCY = 5;
    uint16 internal constant ALL_CATEGORIES = 0x1FFF;
    uint16 internal constant ALL_PURPOSES = 0x3F;
    uint64 internal constant T0 = 1_700_000_000;

    address internal constant PATIENT = address(0x1000A);
    address internal constant FAMILY = address(0x1000F);
    address internal constant CLINICIAN = address(0x2000C);
    address internal constant RESEARCHER = address(0x2000B);

    IConsentManager.Access internal constant READ = IConsentManager.Access.Read;
    IConsentManager.Access internal constant WRITE = IConsentManager.Access.Write;

    Medledger internal medledger;

    function setUp() public {
        VM.warp(T0);
        medledger = new Medledger(address(this));
        _registerPatient(PATIENT, 1);
        _registerPatient(FAMILY, 2);
        medledger.registerParticipant(CLINICIAN, IParticipantRegistry.ParticipantKind.Clinician, 0, bytes32(uint256(3)));
        medledger.registerParticipant(
            RESEARCHER, IParticipantRegistry.ParticipantKind.Researcher, 0, bytes32(uint256(4))
        );
    }

    // ---- helpers ----

    function _registerPatient(address who, uint256 k) internal {
        bytes32[13] memory keys;
        for (uint256 c; c < 13; c++) {
            keys[c] = bytes32((k << 32) | (c + 1));
        }
        VM.prank(who);
        medledger.registerPatient(bytes32(k), keys);
    }

    function _terms(address patient, address grantee, IConsentManager.Access access)
        internal
        view
        returns (IConsentManager.Consent memory)
    {
        IConsentManager.ConsentState memory c = medledger.consent(patient, grantee, access);
        return IConsentManager.Consent(c.categories, c.purposes, c.start, c.expiry);
    }

    function _validCategories(uint16 raw) internal pure returns (uint16 m) {
        m = raw & ALL_CATEGORIES;
        if (m == 0) m = uint16(1) << (raw % 13);
    }

    function _validPurposes(uint16 raw) internal pure returns (uint16 m) {
        m = raw & ALL_PURPOSES;
        if (m == 0) m = uint16(1) << (raw % 6);
    }

    function _has(uint16 mask, uint8 code) internal pure returns (bool) {
        return code < 16 && mask & (uint16(1) << code) != 0;
    }

    function _grant(address by, address grantee, IConsentManager.Access access, IConsentManager.Consent memory t)
        internal
        returns (bool)
    {
        VM.prank(by);
        return medledger.grant(PATIENT, grantee, access, t, bytes32(0));
    }

    /// @dev The reason checkAccess gives for a single consent, in the order the NatSpec lists the errors.
    function _consentError(
        address grantee,
        IConsentManager.Access access,
        IConsentManager.Consent memory c,
        uint8 category,
        uint8 purpose
    ) internal view returns (bytes memory) {
        if (category >= 13 || purpose >= 6) {
            return abi.encodeWithSelector(IConsentManager.ConsentUnknownCode.selector, category, purpose);
        }
        if (c.expiry == 0) {
            return abi.encodeWithSelector(IConsentManager.ConsentNotFound.selector, PATIENT, grantee, access);
        }
        if (block.timestamp < c.start) {
            return abi.encodeWithSelector(IConsentManager.ConsentNotYetValid.selector, PATIENT, grantee, c.start);
        }
        if (block.timestamp >= c.expiry) {
            return abi.encodeWithSelector(IConsentManager.ConsentExpired.selector, PATIENT, grantee, c.expiry);
        }
        if (!_has(c.categories, category)) {
            return
                abi.encodeWithSelector(IConsentManager.ConsentCategoryNotCovered.selector, PATIENT, grantee, category);
        }
        if (!_has(c.purposes, purpose)) {
            return abi.encodeWithSelector(IConsentManager.ConsentPurposeNotCovered.selector, PATIENT, grantee, purpose);
        }
        return "";
    }

    /// @dev isPermitted must equal `expected`; checkAccess must revert with `reason` iff not permitted.
    function _assertAccess(
        address accessor,
        IConsentManager.Access access,
        uint8 category,
        uint8 purpose,
        bool expected,
        bytes memory reason
    ) internal {
        _assertEq(medledger.isPermitted(PATIENT, accessor, access, category, purpose), expected, "isPermitted");
        if (expected) {
            medledger.checkAccess(PATIENT, accessor, access, category, purpose);
        } else {
            VM.expectRevert(reason);
            medledger.checkAccess(PATIENT, accessor, access, category, purpose);
        }
    }

    // ---------------------------------------------------------------------------------------------
    // Grants
    // ---------------------------------------------------------------------------------------------

    /// @notice A grant with random masks and window, then a random time: access is exactly
    /// "start <= now < expiry, category and purpose in the masks", for that access only.
    function testFuzz_grantThenIsPermitted(
        uint16 categories,
        uint16 purposes,
        uint32 startSeed,
        uint32 durSeed,
        uint32 elapsed,
        uint8 category,
        uint8 purpose,
        bool write
    ) public {
        IConsentManager.Access access = write ? WRITE : READ;
        IConsentManager.Consent memory t = _randomTerms(categories, purposes, startSeed, durSeed);
        _assertEq(_grant(PATIENT, CLINICIAN, access, t), true, "changed");
        _assertEq(abi.encode(_terms(PATIENT, CLINICIAN, access)), abi.encode(t), "stored terms");
        _assertEq(_grant(PATIENT, CLINICIAN, access, t), false, "same terms again: unchanged");

        VM.warp(T0 + uint64(elapsed % 100 days));
        _checkSingleConsent(access, t, category % 15, purpose % 8); // mostly known codes, sometimes not
    }

    function _randomTerms(uint16 categories, uint16 purposes, uint32 startSeed, uint32 durSeed)
        internal
        pure
        returns (IConsentManager.Consent memory t)
    {
        t.start = startSeed % 3 == 0 ? 0 : T0 + uint64(startSeed % 30 days);
        t.expiry = (t.start > T0 ? t.start : T0) + 1 + uint64(durSeed % 60 days);
        t.categories = _validCategories(categories);
        t.purposes = _validPurposes(purposes);
    }

    function _checkSingleConsent(
        IConsentManager.Access access,
        IConsentManager.Consent memory t,
        uint8 category,
        uint8 purpose
    ) internal {
        bytes memory reason = _consentError(CLINICIAN, access, t, category, purpose);
        _assertAccess(CLINICIAN, access, category, purpose, reason.length == 0, reason);
        // The other access and the other participant are unaffected.
        IConsentManager.Access other = access == WRITE ? READ : WRITE;
        bytes memory none = _consentError(CLINICIAN, other, IConsentManager.Consent(0, 0, 0, 0), category, purpose);
        _assertAccess(CLINICIAN, other, category, purpose, false, none);
        _assertEq(medledger.isPermitted(PATIENT, RESEARCHER, access, category, purpose), false, "researcher");
    }

    /// @notice Narrowing or widening replaces the terms as a whole: access follows the new masks only.
    function testFuzz_regrantReplacesTerms(uint16 first, uint16 second, uint16 purposes, uint8 category) public {
        category = category % 13;
        uint16 p = _validPurposes(purposes);
        uint8 purpose = uint8(_lowestBit(p));
        _grant(PATIENT, CLINICIAN, READ, IConsentManager.Consent(_validCategories(first), p, 0, T0 + 10 days));
        uint16 c2 = _validCategories(second);
        _grant(PATIENT, CLINICIAN, READ, IConsentManager.Consent(c2, p, 0, T0 + 5 days));
        _assertEq(
            medledger.isPermitted(PATIENT, CLINICIAN, READ, category, purpose), _has(c2, category), "second terms"
        );
        VM.warp(T0 + 5 days);
        _assertEq(medledger.isPermitted(PATIENT, CLINICIAN, READ, category, purpose), false, "second expiry");
    }

    function _lowestBit(uint16 m) internal pure returns (uint256 i) {
        while (m & 1 == 0) {
            m >>= 1;
            i++;
        }
    }

    /// @notice Masks: empty or naming unknown codes are rejected, categories before purposes.
    function testFuzz_grantRejectsInvalidMasks(uint16 categories, uint16 purposes) public {
        IConsentManager.Consent memory t = IConsentManager.Consent(categories, purposes, 0, T0 + 1 days);
        bool badCategories = categories == 0 || categories & ~ALL_CATEGORIES != 0;
        bool badPurposes = purposes == 0 || purposes & ~ALL_PURPOSES != 0;
        if (badCategories) {
            VM.expectRevert(abi.encodeWithSelector(IConsentManager.ConsentInvalidCategories.selector, categories));
        } else if (badPurposes) {
            VM.expectRevert(abi.encodeWithSelector(IConsentManager.ConsentInvalidPurposes.selector, purposes));
        }
        VM.prank(PATIENT);
        medledger.grant(PATIENT, CLINICIAN, READ, t, bytes32(0));
    }

    /// @notice A window that is empty or already over is rejected; any other is stored as given.
    function testFuzz_grantRejectsEmptyOrPastWindow(uint64 start, uint64 expiry) public {
        start = start % (T0 * 2);
        expiry = expiry % (T0 * 2);
        IConsentManager.Consent memory t = IConsentManager.Consent(1, 1, start, expiry);
        if (expiry <= start || expiry <= T0) {
            VM.expectRevert(abi.encodeWithSelector(IConsentManager.ConsentInvalidWindow.selector, start, expiry, T0));
        }
        VM.prank(PATIENT);
        medledger.grant(PATIENT, CLINICIAN, READ, t, bytes32(0));
    }

    /// @notice A revocation ends access at once, whatever the terms were; a second one changes nothing.
    function testFuzz_revokeEndsAccess(uint16 categories, uint16 purposes, uint8 category, uint8 purpose) public {
        IConsentManager.Consent memory t =
            IConsentManager.Consent(_validCategories(categories), _validPurposes(purposes), 0, T0 + 1 days);
        _grant(PATIENT, CLINICIAN, WRITE, t);
        VM.prank(PATIENT);
        _assertEq(medledger.revoke(PATIENT, CLINICIAN, WRITE), true, "revoked");
        VM.prank(PATIENT);
        _assertEq(medledger.revoke(PATIENT, CLINICIAN, WRITE), false, "revoked twice");
        category = category % 13;
        purpose = purpose % 6;
        _assertAccess(
            CLINICIAN,
            WRITE,
            category,
            purpose,
            false,
            abi.encodeWithSelector(IConsentManager.ConsentNotFound.selector, PATIENT, CLINICIAN, WRITE)
        );
        _assertEq(
            abi.encode(_terms(PATIENT, CLINICIAN, WRITE)), abi.encode(IConsentManager.Consent(0, 0, 0, 0)), "terms"
        );
        _assertEq(medledger.consent(PATIENT, CLINICIAN, WRITE).updatedAt, T0, "the tombstone keeps the decision's time");
    }

    /// @notice Unknown codes are refused for everyone, the patient included.
    function testFuzz_unknownCodesNeverPermitted(uint8 category, uint8 purpose, bool write) public {
        VM.assume(category >= 13 || purpose >= 6);
        IConsentManager.Access access = write ? WRITE : READ;
        _grant(PATIENT, CLINICIAN, access, IConsentManager.Consent(ALL_CATEGORIES, ALL_PURPOSES, 0, T0 + 1 days));
        bytes memory reason = abi.encodeWithSelector(IConsentManager.ConsentUnknownCode.selector, category, purpose);
        _assertAccess(PATIENT, access, category, purpose, false, reason);
        _assertAccess(CLINICIAN, access, category, purpose, false, reason);
    }

    // ---------------------------------------------------------------------------------------------
    // Suspension
    // ---------------------------------------------------------------------------------------------

    /// @notice While suspended, a covering consent does not work; it works again after reinstatement.
    function testFuzz_suspensionPausesConsent(uint16 categories, uint16 purposes, uint8 category, uint8 purpose)
        public
    {
        IConsentManager.Consent memory t =
            IConsentManager.Consent(_validCategories(categories), _validPurposes(purposes), 0, T0 + 1 days);
        _grant(PATIENT, CLINICIAN, READ, t);
        category = category % 13;
        purpose = purpose % 6;
        bool covered = _has(t.categories, category) && _has(t.purposes, purpose);
        medledger.suspendParticipant(CLINICIAN, bytes32(0));
        bytes memory reason = covered
            ? abi.encodeWithSelector(IParticipantRegistry.RegistryParticipantSuspended.selector, CLINICIAN)
            : _consentError(CLINICIAN, READ, t, category, purpose);
        _assertAccess(CLINICIAN, READ, category, purpose, false, reason);
        medledger.reinstateParticipant(CLINICIAN);
        _assertEq(medledger.isPermitted(PATIENT, CLINICIAN, READ, category, purpose), covered, "after reinstatement");
    }

    // ---------------------------------------------------------------------------------------------
    // Delegation
    // ---------------------------------------------------------------------------------------------

    /// @notice A delegate's grant succeeds iff its categories lie within the delegate's bounds.
    function testFuzz_delegateGrantsWithinBounds(uint16 bounds, uint16 requested, uint16 purposes) public {
        bounds = _validCategories(bounds);
        requested = _validCategories(requested);
        VM.prank(PATIENT);
        medledger.appointDelegate(FAMILY, bounds, T0 + 10 days);
        IConsentManager.Consent memory t = IConsentManager.Consent(requested, _validPurposes(purposes), 0, T0 + 1 days);
        if (requested & bounds != requested) {
            VM.expectRevert(
                abi.encodeWithSelector(IConsentManager.ConsentDelegateOutOfBounds.selector, FAMILY, bounds, requested)
            );
        }
        VM.prank(FAMILY);
        medledger.grant(PATIENT, CLINICIAN, READ, t, bytes32(0));
    }

    /// @notice After the delegation's expiry the delegate can neither manage nor read.
    function testFuzz_delegationExpires(uint16 bounds, uint32 life, uint32 elapsed, uint8 category) public {
        bounds = _validCategories(bounds);
        uint64 expiry = T0 + 1 + uint64(life % 30 days);
        VM.prank(PATIENT);
        medledger.appointDelegate(FAMILY, bounds, expiry);
        VM.warp(T0 + uint64(elapsed % 40 days));
        category = category % 13;
        bool live = block.timestamp < expiry;
        _assertEq(medledger.isDelegate(PATIENT, FAMILY, bounds), live, "isDelegate");
        _assertEq(
            medledger.isPermitted(PATIENT, FAMILY, READ, category, FAMILY_CARE), live && _has(bounds, category), "read"
        );
        if (!live) {
            VM.expectRevert(abi.encodeWithSelector(IConsentManager.ConsentUnauthorized.selector, FAMILY, PATIENT));
        }
        VM.prank(FAMILY);
        medledger.grant(
            PATIENT,
            CLINICIAN,
            READ,
            IConsentManager.Consent(bounds, 1, 0, uint64(block.timestamp) + 1 days),
            bytes32(0)
        );
    }

    /// @notice A delegate reads only for family care, only within its categories, and never writes.
    function testFuzz_delegateReadsFamilyCareWithinBounds(uint16 bounds, uint8 category, uint8 purpose, bool write)
        public
    {
        bounds = _validCategories(bounds);
        category = category % 13;
        purpose = purpose % 6;
        VM.prank(PATIENT);
        medledger.appointDelegate(FAMILY, bounds, T0 + 10 days);
        IConsentManager.Access access = write ? WRITE : READ;
        bool expected = !write && purpose == FAMILY_CARE && _has(bounds, category);
        _assertAccess(
            FAMILY,
            access,
            category,
            purpose,
            expected,
            abi.encodeWithSelector(IConsentManager.ConsentNotFound.selector, PATIENT, FAMILY, access)
        );
    }

    // ---------------------------------------------------------------------------------------------
    // Emergency access
    // ---------------------------------------------------------------------------------------------

    /// @notice An emergency opening lets the clinician read any category for the emergency purpose until
    /// now + window, flagged as emergency; a window of 0 or above the maximum is rejected.
    function testFuzz_emergencyWindow(uint32 window, uint32 elapsed, uint8 category, uint8 purpose, bool write) public {
        window = window % (2 days);
        if (window == 0 || window > 24 hours) {
            VM.expectRevert(abi.encodeWithSelector(IConsentManager.EmergencyInvalidWindow.selector, window, 24 hours));
            VM.prank(CLINICIAN);
            medledger.openEmergencyAccess(PATIENT, window, bytes32(0));
            return;
        }
        VM.prank(CLINICIAN);
        _assertEq(medledger.openEmergencyAccess(PATIENT, window, bytes32("code")), T0 + window, "expiresAt");
        VM.warp(T0 + uint64(elapsed % (2 days)));
        category = category % 13;
        purpose = purpose % 6;
        IConsentManager.Access access = write ? WRITE : READ;
        bool expected = !write && purpose == EMERGENCY && block.timestamp < T0 + window;
        _assertAccess(
            CLINICIAN,
            access,
            category,
            purpose,
            expected,
            abi.encodeWithSelector(IConsentManager.ConsentNotFound.selector, PATIENT, CLINICIAN, access)
        );
        if (expected) _assertEq(medledger.checkAccess(PATIENT, CLINICIAN, READ, category, purpose), true, "flag");
    }

    /// @notice Only active clinicians and care providers open emergency access; opting out blocks new
    /// openings and closes the open one, which opting back in does not reopen.
    function testFuzz_emergencyOptOut(uint32 window) public {
        window = 1 + window % 24 hours;
        VM.expectRevert(abi.encodeWithSelector(IConsentManager.EmergencyNotClinician.selector, RESEARCHER));
        VM.prank(RESEARCHER);
        medledger.openEmergencyAccess(PATIENT, window, bytes32(0));

        VM.prank(CLINICIAN);
        medledger.openEmergencyAccess(PATIENT, window, bytes32(0));
        VM.prank(PATIENT);
        medledger.setEmergencyOptOut(true);
        _assertEq(medledger.isPermitted(PATIENT, CLINICIAN, READ, 0, EMERGENCY), false, "closed by the opt-out");
        VM.expectRevert(abi.encodeWithSelector(IConsentManager.EmergencyOptedOut.selector, PATIENT));
        VM.prank(CLINICIAN);
        medledger.openEmergencyAccess(PATIENT, window, bytes32(0));
        VM.prank(PATIENT);
        medledger.setEmergencyOptOut(false);
        _assertEq(medledger.isPermitted(PATIENT, CLINICIAN, READ, 0, EMERGENCY), false, "not reopened");
        VM.prank(PATIENT);
        _assertEq(medledger.closeEmergencyAccess(PATIENT, CLINICIAN), false, "nothing open to close");
    }

    // ---------------------------------------------------------------------------------------------
    // Regressions: rules the invariant campaign checked, pinned down on their own
    // ---------------------------------------------------------------------------------------------

    /// @notice A delegate cannot drop categories outside its bounds by re-granting (it could not revoke
    /// them either): it must cover the old categories as well as the new.
    function testFuzz_delegateCannotNarrowAwayCategoriesOutsideItsBounds(uint16 bounds, uint16 existing) public {
        bounds = _validCategories(bounds);
        existing = _validCategories(existing);
        _grant(PATIENT, CLINICIAN, READ, IConsentManager.Consent(existing, 1, 0, T0 + 10 days));
        VM.prank(PATIENT);
        medledger.appointDelegate(FAMILY, bounds, T0 + 10 days);
        uint16 touched = bounds | existing; // re-grant within the bounds, over the existing consent
        bool allowed = existing & bounds == existing;
        if (!allowed) {
            VM.expectRevert(
                abi.encodeWithSelector(IConsentManager.ConsentDelegateOutOfBounds.selector, FAMILY, bounds, touched)
            );
        }
        VM.prank(FAMILY);
        medledger.grant(PATIENT, CLINICIAN, READ, IConsentManager.Consent(bounds, 1, 0, T0 + 5 days), bytes32(0));
        if (!allowed) {
            VM.expectRevert(
                abi.encodeWithSelector(IConsentManager.ConsentDelegateOutOfBounds.selector, FAMILY, bounds, existing)
            );
        }
        VM.prank(FAMILY);
        medledger.revoke(PATIENT, CLINICIAN, READ);
    }

    /// @notice Re-opening emergency access never shortens a window that is still open.
    function testFuzz_reopeningEmergencyNeverShortens(uint32 first, uint32 second, uint32 elapsed) public {
        first = 1 + first % 24 hours;
        second = 1 + second % 24 hours;
        VM.prank(CLINICIAN);
        medledger.openEmergencyAccess(PATIENT, first, bytes32(0));
        VM.warp(T0 + elapsed % (2 days));
        uint64 expected = uint64(block.timestamp) + second;
        if (T0 + first > expected) expected = T0 + first;
        VM.prank(CLINICIAN);
        _assertEq(medledger.openEmergencyAccess(PATIENT, second, bytes32(0)), expected, "expiresAt");
        _assertEq(medledger.emergencyAccess(PATIENT, CLINICIAN).expiresAt, expected, "stored expiry");
    }

    /// @notice Without a consent, an access to the data of an unregistered "patient" is refused with
    /// RegistryPatientNotRegistered, not ConsentNotFound.
    function testFuzz_checkAccessOnUnregisteredPatient(uint8 category, uint8 purpose, bool write) public {
        category = category % 13;
        purpose = purpose % 6;
        address nobody = address(0xDEAD);
        IConsentManager.Access access = write ? WRITE : READ;
        _assertEq(medledger.isPermitted(nobody, CLINICIAN, access, category, purpose), false, "isPermitted");
        VM.expectRevert(abi.encodeWithSelector(IParticipantRegistry.RegistryPatientNotRegistered.selector, nobody));
        medledger.checkAccess(nobody, CLINICIAN, access, category, purpose);
    }

    /// @notice Holding a consent must not change the answer: a registered patient who is also a
    /// suspended clinician and a live family-care delegate of PATIENT reads nothing (a suspended
    /// account has no delegate powers), with or without a read consent for family care.
    function test_suspendedDelegateReadsTheSameWithOrWithoutAConsent() public {
        address dual = address(0x1000D);
        _registerPatient(dual, 9);
        medledger.registerParticipant(dual, IParticipantRegistry.ParticipantKind.Clinician, 0, bytes32(uint256(10)));
        VM.prank(PATIENT);
        medledger.appointDelegate(dual, 1 << 3, T0 + 10 days);
        _grant(PATIENT, dual, READ, IConsentManager.Consent(1 << 3, uint16(1) << FAMILY_CARE, 0, T0 + 10 days));
        medledger.suspendParticipant(dual, bytes32(0));

        bool withConsent = medledger.isPermitted(PATIENT, dual, READ, 3, FAMILY_CARE);
        VM.prank(PATIENT);
        medledger.revoke(PATIENT, dual, READ);
        bool withoutConsent = medledger.isPermitted(PATIENT, dual, READ, 3, FAMILY_CARE);
        _assertEq(withConsent, withoutConsent, "access with a consent vs. without it");
        _assertEq(withConsent, false, "a suspended delegate reads nothing");
    }
}
