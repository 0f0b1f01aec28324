// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Medledger} from "../../contracts/Medledger.sol";
import {IConsentManager} from "../../interfaces/IConsentManager.sol";
import {IParticipantRegistry} from "../../interfaces/IParticipantRegistry.sol";
import {IRecordRegistry} from "../../interfaces/IRecordRegistry.sol";
import {Outcomes} from "./Outcomes.sol";
import {VM} from "./Vm.sol";

/// @title RecordHandler
/// @notice Drives one {Medledger} with random registrations (single and bulk), amendments, erasures,
/// batch anchors, audited accesses, key rotations and key losses by a fixed cast, predicts each outcome
/// from a reference model of the record registry written from the NatSpec of {IRecordRegistry} (the
/// records of two patients over a small id space, so that ids collide within and across namespaces),
/// and counts disagreements in {mismatches}.
/// @dev Consents are fixed at construction (the consent state machine has its own invariants): the
/// clinician writes and reads conditions, observations and medications for direct care; the app
/// writes device data and observations for direct care and research; the researcher reads
/// observations and device data for research; the stranger holds nothing.
contract RecordHandler is Outcomes {
    uint8 internal constant CATEGORIES = 13;
    uint8 internal constant CONDITIONS = 3;
    uint8 internal constant OBSERVATIONS = 4;
    uint8 internal constant MEDICATIONS = 2;
    uint8 internal constant DEVICE = 9;
    uint8 internal constant DIRECT_CARE = 0;
    uint8 internal constant RESEARCH = 1;
    uint8 internal constant EMERGENCY = 5;
    uint8 internal constant RAW = 0x55;
    uint8 internal constant DAG_PB = 0x70;
    uint256 public constant ID_SPACE = 24;

    address public constant PATIENT = address(0x1000A);
    address public constant PATIENT2 = address(0x1000B);
    address internal constant CLINICIAN = address(0x2000C);
    address internal constant APP = address(0x2000A);
    address internal constant RESEARCHER = address(0x2000B);
    address internal constant STRANGER = address(0x3000);
    address internal constant STRANGER_READER = address(0x2000D); // reads once, then is revoked

    Medledger public immutable medledger;
    uint64 public clock;
    uint256 internal _keySeed = 1 << 200;

    struct Stored {
        bool exists;
        IRecordRegistry.RecordHeader header;
    }

    mapping(address patient => mapping(bytes32 id => Stored)) internal _records;
    mapping(address patient => bytes32[] ids) internal _ids;
    mapping(address patient => mapping(uint8 category => uint32)) public mEpoch;
    mapping(address patient => mapping(uint8 category => uint64)) public mValidUntil;
    /// @dev Write and read rights of the fixed consents: (grantee, access) => (categories, purposes).
    mapping(address grantee => mapping(uint8 access => uint32 masks)) internal _rights;

    constructor(uint64 startTime) {
        clock = startTime;
        VM.warp(startTime);
        medledger = new Medledger(address(this));
        _registerPatient(PATIENT, 1);
        _registerPatient(PATIENT2, 2);
        medledger.registerParticipant(CLINICIAN, IParticipantRegistry.ParticipantKind.Clinician, 0, bytes32(uint256(3)));
        medledger.registerParticipant(APP, IParticipantRegistry.ParticipantKind.App, 0, bytes32(uint256(4)));
        medledger.registerParticipant(
            RESEARCHER, IParticipantRegistry.ParticipantKind.Researcher, 0, bytes32(uint256(5))
        );
        medledger.registerParticipant(
            STRANGER_READER, IParticipantRegistry.ParticipantKind.Researcher, 0, bytes32(uint256(6))
        );
        uint16 care = (uint16(1) << CONDITIONS) | (uint16(1) << OBSERVATIONS) | (uint16(1) << MEDICATIONS);
        uint16 device = (uint16(1) << DEVICE) | (uint16(1) << OBSERVATIONS);
        uint16 study = (uint16(1) << OBSERVATIONS) | (uint16(1) << DEVICE);
        _consent(CLINICIAN, IConsentManager.Access.Write, care, uint16(1) << DIRECT_CARE);
        _consent(CLINICIAN, IConsentManager.Access.Read, care, uint16(1) << DIRECT_CARE);
        _consent(APP, IConsentManager.Access.Write, device, (uint16(1) << DIRECT_CARE) | (uint16(1) << RESEARCH));
        _consent(RESEARCHER, IConsentManager.Access.Read, study, uint16(1) << RESEARCH);
    }

    function _registerPatient(address who, uint256 k) internal {
        bytes32[13] memory keys;
        for (uint8 c; c < CATEGORIES; c++) {
            keys[c] = bytes32((k << 32) | (uint256(c) + 1));
            mEpoch[who][c] = 1;
            mValidUntil[who][c] = type(uint64).max;
        }
        VM.prank(who);
        medledger.registerPatient(bytes32(k), keys);
    }

    /// @dev Both patients give `grantee` the same ten-year consent (longer than any campaign).
    function _consent(address grantee, IConsentManager.Access kind, uint16 categories, uint16 purposes) internal {
        IConsentManager.Consent memory t = IConsentManager.Consent(categories, purposes, 0, clock + 3650 days);
        VM.prank(PATIENT);
        medledger.grant(PATIENT, grantee, kind, t, bytes32(0));
        VM.prank(PATIENT2);
        medledger.grant(PATIENT2, grantee, kind, t, bytes32(0));
        _rights[grantee][uint8(kind)] = (uint32(categories) << 16) | purposes;
    }

    modifier synced() {
        VM.warp(clock);
        _;
    }

    // ---------------------------------------------------------------------------------------------
    // The model
    // ---------------------------------------------------------------------------------------------

    function recordId(uint256 index) public pure returns (bytes32) {
        return keccak256(abi.encode("record", index % ID_SPACE));
    }

    function stored(address patient, bytes32 id)
        public
        view
        returns (bool exists, IRecordRegistry.RecordHeader memory h)
    {
        Stored memory s = _records[patient][id];
        return (s.exists, s.header);
    }

    /// @notice The commitment the NatSpec defines, computed here with the explicit encoding.
    function commitment(IRecordRegistry.RecordHeader memory h) public pure returns (bytes32) {
        return keccak256(
            abi.encode(
                h.author, h.category, h.keyEpoch, h.erased, h.isBatch, h.leafCount, h.fingerprint, h.previous, h.next
            )
        );
    }

    /// @dev The errors a write (register, bulk, anchor, amend) gives for consent and keys, before its inputs.
    function _writeDenials(
        address patient,
        address author,
        uint8 category,
        uint8 purpose,
        uint32 keyEpoch,
        bytes[] memory out,
        uint256 n
    ) internal view returns (uint256) {
        if (category >= CATEGORIES || purpose >= 6) {
            out[n++] = abi.encodeWithSelector(IConsentManager.ConsentUnknownCode.selector, category, purpose);
            return n;
        }
        if (author != patient) {
            uint32 rights = _rights[author][uint8(IConsentManager.Access.Write)];
            if (rights == 0) {
                out[n++] = abi.encodeWithSelector(
                    IConsentManager.ConsentNotFound.selector, patient, author, IConsentManager.Access.Write
                );
                return n;
            }
            if ((rights >> 16) & (uint32(1) << category) == 0) {
                out[n++] = abi.encodeWithSelector(
                    IConsentManager.ConsentCategoryNotCovered.selector, patient, author, category
                );
            }
            if (rights & (uint32(1) << purpose) == 0) {
                out[n++] =
                    abi.encodeWithSelector(IConsentManager.ConsentPurposeNotCovered.selector, patient, author, purpose);
            }
            if (n != 0) return n;
        }
        uint32 current = mEpoch[patient][category];
        uint64 validUntil = mValidUntil[patient][category];
        if (keyEpoch != current || block.timestamp >= validUntil) {
            out[n++] = abi.encodeWithSelector(
                IRecordRegistry.RecordStaleKey.selector, patient, category, keyEpoch, current, validUntil
            );
        }
        return n;
    }

    function _inputDenials(
        address patient,
        bytes32 id,
        bytes32 fingerprint,
        uint8 codec,
        bytes32 digest,
        bytes[] memory out,
        uint256 n
    ) internal view returns (uint256) {
        if (id == bytes32(0)) {
            out[n++] = abi.encodeWithSelector(IRecordRegistry.RecordInvalidId.selector);
        } else if (fingerprint == bytes32(0)) {
            out[n++] = abi.encodeWithSelector(IRecordRegistry.RecordInvalidFingerprint.selector);
        } else if ((codec != RAW && codec != DAG_PB) || digest == bytes32(0)) {
            out[n++] = abi.encodeWithSelector(IRecordRegistry.RecordInvalidCid.selector, codec, digest);
        } else if (_records[patient][id].exists) {
            out[n++] = abi.encodeWithSelector(IRecordRegistry.RecordAlreadyExists.selector, patient, id);
        }
        return n;
    }

    // ---------------------------------------------------------------------------------------------
    // Picking from fuzzed seeds
    // ---------------------------------------------------------------------------------------------

    function _mix(uint256 seed) internal pure returns (uint256) {
        return uint256(keccak256(abi.encode(seed)));
    }

    function _patient(uint256 seed) internal pure returns (address) {
        return seed % 4 == 0 ? PATIENT2 : PATIENT;
    }

    function _author(uint256 seed, address patient) internal pure returns (address) {
        address other = patient == PATIENT ? PATIENT2 : PATIENT;
        return
            [
                patient, CLINICIAN, APP, patient, CLINICIAN, APP, patient, CLINICIAN, RESEARCHER, STRANGER, other
            ][seed % 11];
    }

    function _category(uint256 seed) internal pure returns (uint8) {
        if (seed % 16 == 0) return uint8(13 + (seed >> 4) % 3); // an unknown code
        return
            [
                CONDITIONS, OBSERVATIONS, MEDICATIONS, DEVICE, CONDITIONS, OBSERVATIONS, uint8(7), uint8(0)
            ][(seed >> 4) % 8];
    }

    function _purpose(uint256 seed) internal pure returns (uint8) {
        if (seed % 16 == 0) return 6; // an unknown code
        return [
            DIRECT_CARE, DIRECT_CARE, RESEARCH, EMERGENCY, DIRECT_CARE, RESEARCH, DIRECT_CARE, DIRECT_CARE
        ][(seed >> 4) % 8];
    }

    /// @dev The current epoch mostly, sometimes the previous one or one ahead.
    function _keyEpoch(uint256 seed, address patient, uint8 category) internal view returns (uint32) {
        uint32 current = category < CATEGORIES ? mEpoch[patient][category] : 1;
        uint256 s = seed % 16;
        if (s == 0) return current - 1;
        if (s == 1) return current + 1;
        return current;
    }

    /// @dev Who writes what for whom, sealed to which epoch: the common part of every write action.
    struct Write {
        address patient;
        address author;
        uint8 category;
        uint8 purpose;
        uint32 keyEpoch;
    }

    function _write(uint256 seed) internal view returns (Write memory w) {
        w.patient = _patient(seed);
        w.author = _author(seed >> 4, w.patient);
        w.category = _category(seed >> 8);
        w.purpose = _purpose(seed >> 16);
        w.keyEpoch = _keyEpoch(seed >> 20, w.patient, w.category);
    }

    function _fingerprint(uint256 seed) internal pure returns (bytes32) {
        return seed % 32 == 0 ? bytes32(0) : keccak256(abi.encode("fingerprint", seed));
    }

    function _cid(uint256 seed) internal pure returns (uint8 codec, bytes32 digest) {
        uint256 s = seed % 32;
        codec = s == 0 ? 0x71 : s % 2 == 0 ? RAW : DAG_PB;
        digest = s == 1 ? bytes32(0) : keccak256(abi.encode("cid", seed));
    }

    /// @dev The header of `patient`'s record `id` as the caller would pass it: the current one mostly,
    /// sometimes a forged one (another author, fingerprint or link).
    function _header(uint256 seed, address patient, bytes32 id)
        internal
        view
        returns (IRecordRegistry.RecordHeader memory h)
    {
        h = _records[patient][id].header;
        uint256 s = seed % 16;
        if (s == 0) h.fingerprint = keccak256(abi.encode(h.fingerprint));
        else if (s == 1) h.next = bytes32(0) == h.next ? recordId(seed >> 4) : bytes32(0);
        else if (s == 2) h.author = STRANGER;
    }

    function _isCurrent(address patient, bytes32 id, IRecordRegistry.RecordHeader memory h)
        internal
        view
        returns (bool)
    {
        return _records[patient][id].exists && commitment(h) == commitment(_records[patient][id].header);
    }

    function _headerDenials(
        address patient,
        bytes32 id,
        IRecordRegistry.RecordHeader memory h,
        bytes[] memory out,
        uint256 n
    ) internal view returns (uint256) {
        if (!_records[patient][id].exists) {
            out[n++] = abi.encodeWithSelector(IRecordRegistry.RecordNotFound.selector, patient, id);
        } else if (!_isCurrent(patient, id, h)) {
            out[n++] = abi.encodeWithSelector(IRecordRegistry.RecordHeaderMismatch.selector, patient, id);
        }
        return n;
    }

    // ---------------------------------------------------------------------------------------------
    // Actions
    // ---------------------------------------------------------------------------------------------

    function register(uint256 seed) external synced {
        seed = _mix(seed);
        Write memory w = _write(seed);
        (address patient, address author, uint8 category, uint8 purpose, uint32 keyEpoch) =
            (w.patient, w.author, w.category, w.purpose, w.keyEpoch);
        bytes32 id = (seed >> 28) % 64 == 0 ? bytes32(0) : recordId(seed >> 32);
        bytes32 fingerprint = _fingerprint(seed >> 40);
        (uint8 codec, bytes32 digest) = _cid(seed >> 48);
        bytes[] memory expected = new bytes[](4);
        uint256 n = _writeDenials(patient, author, category, purpose, keyEpoch, expected, 0);
        if (n == 0) n = _inputDenials(patient, id, fingerprint, codec, digest, expected, n);
        VM.prank(author);
        try medledger.registerRecord(patient, id, category, purpose, keyEpoch, fingerprint, codec, digest) {
            if (_judge("register", true, "", expected, n)) {
                _store(
                    patient,
                    id,
                    IRecordRegistry.RecordHeader(author, category, keyEpoch, false, false, 0, fingerprint, 0, 0)
                );
            }
        } catch (bytes memory err) {
            _judge("register", false, err, expected, n);
        }
    }

    function _store(address patient, bytes32 id, IRecordRegistry.RecordHeader memory h) internal {
        _records[patient][id] = Stored(true, h);
        _ids[patient].push(id);
    }

    /// @dev An id the model holds for `patient` seven times in eight (if any), else any id of the space.
    function _existing(uint256 seed, address patient) internal view returns (bytes32) {
        bytes32[] storage ids = _ids[patient];
        if (ids.length == 0 || seed % 8 == 0) return recordId(seed >> 3);
        return ids[(seed >> 3) % ids.length];
    }

    function registerBulk(uint256 seed, uint8 count) external synced {
        seed = _mix(seed);
        Write memory w = _write(seed);
        (address patient, address author, uint8 category, uint8 purpose, uint32 keyEpoch) =
            (w.patient, w.author, w.category, w.purpose, w.keyEpoch);
        IRecordRegistry.RecordEntry[] memory entries = new IRecordRegistry.RecordEntry[](count % 6);
        for (uint256 i; i < entries.length; i++) {
            uint256 e = uint256(keccak256(abi.encode(seed, i)));
            (uint8 codec, bytes32 digest) = _cid(e >> 8);
            entries[i] = IRecordRegistry.RecordEntry(recordId(e), _fingerprint(e >> 16), codec, digest);
        }
        bytes[] memory expected = new bytes[](4);
        uint256 n;
        if (entries.length == 0) expected[n++] = abi.encodeWithSelector(IRecordRegistry.RecordEmptyBatch.selector);
        else n = _writeDenials(patient, author, category, purpose, keyEpoch, expected, 0);
        if (n == 0) n = _bulkInputDenials(patient, entries, expected);
        VM.prank(author);
        try medledger.registerRecords(patient, category, purpose, keyEpoch, entries) {
            if (_judge("registerBulk", true, "", expected, n)) {
                for (uint256 i; i < entries.length; i++) {
                    _store(
                        patient,
                        entries[i].recordId,
                        IRecordRegistry.RecordHeader(
                            author, category, keyEpoch, false, false, 0, entries[i].fingerprint, 0, 0
                        )
                    );
                }
            }
        } catch (bytes memory err) {
            _judge("registerBulk", false, err, expected, n);
        }
    }

    /// @dev "all-or-nothing ... (the first failing entry decides), including a duplicate id within the call".
    function _bulkInputDenials(address patient, IRecordRegistry.RecordEntry[] memory entries, bytes[] memory out)
        internal
        view
        returns (uint256 n)
    {
        for (uint256 i; i < entries.length; i++) {
            IRecordRegistry.RecordEntry memory e = entries[i];
            n = _inputDenials(patient, e.recordId, e.fingerprint, e.cidCodec, e.cidDigest, out, 0);
            for (uint256 j; j < i && n == 0; j++) {
                if (entries[j].recordId == e.recordId) {
                    out[n++] = abi.encodeWithSelector(IRecordRegistry.RecordAlreadyExists.selector, patient, e.recordId);
                }
            }
            if (n != 0) return n;
        }
    }

    function amend(uint256 seed) external synced {
        seed = _mix(seed);
        address patient = _patient(seed);
        bytes32 previousId = _existing(seed >> 4, patient);
        IRecordRegistry.RecordHeader memory previous = _header(seed >> 12, patient, previousId);
        address caller = seed % 3 == 0 ? previous.author : _author(seed >> 16, patient);
        uint8 purpose = _purpose(seed >> 20);
        uint32 keyEpoch = _keyEpoch(seed >> 24, patient, previous.category);
        bytes32 id = recordId(seed >> 32);
        bytes32 fingerprint = _fingerprint(seed >> 40);
        (uint8 codec, bytes32 digest) = _cid(seed >> 48);

        bytes[] memory expected = new bytes[](4);
        uint256 n = _headerDenials(patient, previousId, previous, expected, 0);
        if (n == 0 && previous.isBatch) {
            expected[n++] = abi.encodeWithSelector(IRecordRegistry.RecordIsBatch.selector, patient, previousId);
        }
        if (n == 0 && previous.next != bytes32(0)) {
            expected[n++] = abi.encodeWithSelector(
                IRecordRegistry.RecordAlreadySuperseded.selector, patient, previousId, previous.next
            );
        }
        // "Only the patient, or the previous version's author while it holds a write consent"
        if (n == 0 && caller != patient && caller != previous.author) {
            expected[n++] = abi.encodeWithSelector(IRecordRegistry.RecordNotAuthor.selector, caller, previous.author);
        }
        if (n == 0) n = _writeDenials(patient, caller, previous.category, purpose, keyEpoch, expected, 0);
        if (n == 0) n = _inputDenials(patient, id, fingerprint, codec, digest, expected, 0);

        VM.prank(caller);
        try medledger.amendRecord(patient, previousId, previous, id, purpose, keyEpoch, fingerprint, codec, digest) {
            if (_judge("amend", true, "", expected, n)) {
                _store(
                    patient,
                    id,
                    IRecordRegistry.RecordHeader(
                        caller, previous.category, keyEpoch, false, false, 0, fingerprint, previousId, 0
                    )
                );
                _records[patient][previousId].header.next = id;
            }
        } catch (bytes memory err) {
            _judge("amend", false, err, expected, n);
        }
    }

    function erase(uint256 seed) external synced {
        seed = _mix(seed);
        address patient = _patient(seed);
        bytes32 id = _existing(seed >> 4, patient);
        IRecordRegistry.RecordHeader memory h = _header(seed >> 12, patient, id);
        address caller = seed % 8 == 0 ? _author(seed >> 16, patient) : patient;
        bytes[] memory expected = new bytes[](2);
        uint256 n;
        if (caller != patient) {
            expected[n++] = abi.encodeWithSelector(IRecordRegistry.RecordNotPatient.selector, caller, patient);
        } else {
            n = _headerDenials(patient, id, h, expected, 0);
        }
        bool predicted = n == 0 && !h.erased;
        VM.prank(caller);
        try medledger.eraseRecord(patient, id, h) returns (bool changed) {
            if (_judge("erase", true, "", expected, n)) {
                _judgeChanged("erase", changed, predicted);
                if (predicted) {
                    _records[patient][id].header.erased = true;
                    _records[patient][id].header.fingerprint = bytes32(0);
                }
            }
        } catch (bytes memory err) {
            _judge("erase", false, err, expected, n);
        }
    }

    function anchor(uint256 seed, uint32 leafCount) external synced {
        seed = _mix(seed);
        Write memory w = _write(seed);
        (address patient, address author, uint8 category, uint8 purpose, uint32 keyEpoch) =
            (w.patient, w.author, w.category, w.purpose, w.keyEpoch);
        bytes32 root = (seed >> 28) % 64 == 0 ? bytes32(0) : recordId(seed >> 32);
        leafCount = (seed >> 40) % 16 == 0 ? 0 : 1 + leafCount % 5000;
        (uint8 codec, bytes32 digest) = _cid(seed >> 48);
        bytes[] memory expected = new bytes[](4);
        uint256 n = _writeDenials(patient, author, category, purpose, keyEpoch, expected, 0);
        if (n == 0) {
            if (root == bytes32(0)) expected[n++] = abi.encodeWithSelector(IRecordRegistry.RecordInvalidId.selector);
            else if (leafCount == 0) expected[n++] = abi.encodeWithSelector(IRecordRegistry.RecordEmptyBatch.selector);
            else n = _inputDenials(patient, root, bytes32(uint256(1)), codec, digest, expected, 0);
        }
        VM.prank(author);
        try medledger.anchorBatch(patient, root, category, purpose, keyEpoch, leafCount, codec, digest) {
            if (_judge("anchor", true, "", expected, n)) {
                _store(
                    patient,
                    root,
                    IRecordRegistry.RecordHeader(author, category, keyEpoch, false, true, leafCount, 0, 0, 0)
                );
            }
        } catch (bytes memory err) {
            _judge("anchor", false, err, expected, n);
        }
    }

    function access(uint256 seed) external synced {
        seed = _mix(seed);
        address patient = _patient(seed);
        bytes32 id = _existing(seed >> 4, patient);
        IRecordRegistry.RecordHeader memory h = _header(seed >> 12, patient, id);
        address reader = _author(seed >> 16, patient);
        uint8 purpose = _purpose(seed >> 20);
        bytes[] memory expected = new bytes[](3);
        uint256 n = _headerDenials(patient, id, h, expected, 0);
        if (n == 0 && h.erased) {
            expected[n++] = abi.encodeWithSelector(IRecordRegistry.RecordIsErased.selector, patient, id);
        }
        if (n == 0) n = _readDenials(patient, reader, h.category, purpose, expected);
        VM.prank(reader);
        try medledger.recordAccess(patient, id, h, purpose) returns (bool emergency) {
            if (_judge("access", true, "", expected, n) && emergency) _mismatch("access: flagged emergency", "");
        } catch (bytes memory err) {
            _judge("access", false, err, expected, n);
        }
    }

    function _readDenials(address patient, address reader, uint8 category, uint8 purpose, bytes[] memory out)
        internal
        view
        returns (uint256 n)
    {
        if (purpose >= 6) {
            out[n++] = abi.encodeWithSelector(IConsentManager.ConsentUnknownCode.selector, category, purpose);
            return n;
        }
        if (reader == patient) return 0;
        uint32 rights = _rights[reader][uint8(IConsentManager.Access.Read)];
        if (rights == 0) {
            out[n++] = abi.encodeWithSelector(
                IConsentManager.ConsentNotFound.selector, patient, reader, IConsentManager.Access.Read
            );
            return n;
        }
        if ((rights >> 16) & (uint32(1) << category) == 0) {
            out[n++] =
                abi.encodeWithSelector(IConsentManager.ConsentCategoryNotCovered.selector, patient, reader, category);
        }
        if (rights & (uint32(1) << purpose) == 0) {
            out[n++] =
                abi.encodeWithSelector(IConsentManager.ConsentPurposeNotCovered.selector, patient, reader, purpose);
        }
    }

    /// @dev The patient rotates one category's key: records must be sealed to the new epoch from now on.
    function rotateKey(uint256 seed) external synced {
        seed = _mix(seed);
        address patient = _patient(seed);
        uint8 category = _category(seed >> 8) % CATEGORIES;
        for (uint8 c; c < CATEGORIES; c++) {
            if (mValidUntil[patient][(category + c) % CATEGORIES] <= clock) {
                category = (category + c) % CATEGORIES; // a stale key first: the patient's tools rotate it
                break;
            }
        }
        bytes32[] memory keys = new bytes32[](1);
        keys[0] = bytes32(++_keySeed);
        VM.prank(patient);
        try medledger.setCategoryKeys(patient, uint16(1) << category, keys) {
            mEpoch[patient][category] += 1;
            mValidUntil[patient][category] = type(uint64).max;
            successes[keccak256("rotateKey")]++;
        } catch (bytes memory err) {
            _mismatch("rotateKey: reverted", err);
        }
    }

    /// @dev The patient releases keys of one category to a passing reader and revokes it at once: the
    /// category's keys are stale until the next rotation.
    function loseReader(uint256 seed) external synced {
        seed = _mix(seed);
        address patient = _patient(seed);
        uint8 category = _category(seed >> 8) % CATEGORIES;
        IConsentManager.Consent memory t = IConsentManager.Consent(uint16(1) << category, 1, 0, clock + 1 days);
        VM.prank(patient);
        try medledger.grant(patient, STRANGER_READER, IConsentManager.Access.Read, t, bytes32(uint256(7))) {
            VM.prank(patient);
            medledger.revoke(patient, STRANGER_READER, IConsentManager.Access.Read);
            if (mValidUntil[patient][category] > clock) mValidUntil[patient][category] = clock;
            successes[keccak256("loseReader")]++;
        } catch (bytes memory err) {
            _mismatch("loseReader: reverted", err);
        }
    }

    function warp(uint32 secondsSeed) external {
        clock += 1 + uint64(secondsSeed % 3 days);
        VM.warp(clock);
    }

    /// @notice The handler's actions, for the invariant suite's `targetSelectors`.
    function actions() external pure returns (bytes4[] memory s) {
        s = new bytes4[](14);
        s[0] = this.register.selector;
        s[1] = this.register.selector;
        s[2] = this.registerBulk.selector;
        s[3] = this.registerBulk.selector;
        s[4] = this.amend.selector;
        s[5] = this.amend.selector;
        s[6] = this.erase.selector;
        s[7] = this.anchor.selector;
        s[8] = this.access.selector;
        s[9] = this.access.selector;
        s[10] = this.rotateKey.selector;
        s[11] = this.rotateKey.selector;
        s[12] = this.loseReader.selector;
        s[13] = this.warp.selector;
    }
}
