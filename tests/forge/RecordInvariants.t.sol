// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Medledger} from "../../contracts/Medledger.sol";
import {IRecordRegistry} from "../../interfaces/IRecordRegistry.sol";
import {HandlerTargets} from "./Assertions.sol";
import {RecordHandler} from "./RecordHandler.sol";
import {VM} from "./Vm.sol";

/// @title RecordInvariants
/// @notice Stateful fuzzing of the record registry: {RecordHandler} applies random registrations
/// (single and bulk), amendments, erasures, batch anchors, audited accesses, key rotations and key
/// losses; after each step every (patient, id) of the id space must hold exactly the model's
/// commitment, and the registry's views must agree with the model's headers.
contract RecordInvariants is HandlerTargets {
    RecordHandler internal handler;
    Medledger internal medledger;

    error OutcomeMismatch(uint256 count, string what, bytes data);
    error RecordMismatch(string what, address patient, bytes32 id);

    function setUp() public {
        handler = new RecordHandler(1_700_000_000);
        medledger = handler.medledger();
    }

    function _handler() internal view override returns (address) {
        return address(handler);
    }

    function _actions() internal view override returns (bytes4[] memory) {
        return handler.actions();
    }

    /// @notice After every call:
    ///  - every call succeeded or failed as the model predicted (exact errors; `changed` of erasures);
    ///  - for both patients and every id of the space: the stored commitment is the explicit encoding of
    ///    the model's header (zero where the model has no record), so ids are per patient, amendments
    ///    link both ways, erasure leaves no fingerprint, and bulk registration is all or nothing;
    ///  - `isRecordHeader` accepts the model's header, `verifyFingerprint` holds exactly for live,
    ///    unerased records, and the model's version links are mutual.
    /// forge-config: default.invariant.fail-on-revert = true
    /// forge-config: default.invariant.runs = 48
    /// forge-config: default.invariant.depth = 64
    function invariant_registryMatchesModel() public {
        VM.warp(handler.clock());
        uint256 count = handler.mismatches();
        if (count != 0) revert OutcomeMismatch(count, handler.lastMismatch(), handler.lastMismatchData());
        address[2] memory patients = [handler.PATIENT(), handler.PATIENT2()];
        for (uint256 p; p < 2; p++) {
            for (uint256 i; i < handler.ID_SPACE(); i++) {
                _checkRecord(patients[p], handler.recordId(i));
            }
        }
    }

    function _checkRecord(address patient, bytes32 id) internal view {
        (bool exists, IRecordRegistry.RecordHeader memory h) = handler.stored(patient, id);
        bytes32 actual = medledger.recordCommitment(patient, id);
        if (!exists) {
            if (actual != bytes32(0)) revert RecordMismatch("a commitment where the model has no record", patient, id);
            return;
        }
        if (actual != handler.commitment(h)) revert RecordMismatch("commitment differs from the model", patient, id);
        if (!medledger.isRecordHeader(patient, id, h)) {
            revert RecordMismatch("isRecordHeader refuses the header", patient, id);
        }
        bool live = !h.erased && !h.isBatch;
        if (medledger.verifyFingerprint(patient, id, h, h.fingerprint) != live) {
            revert RecordMismatch("verifyFingerprint", patient, id);
        }
        if (h.erased && h.fingerprint != bytes32(0)) {
            revert RecordMismatch("an erased record kept its fingerprint", patient, id);
        }
        if (h.next != bytes32(0)) {
            (, IRecordRegistry.RecordHeader memory next) = handler.stored(patient, h.next);
            if (next.previous != id) revert RecordMismatch("next does not link back", patient, id);
        }
        if (h.previous != bytes32(0)) {
            (, IRecordRegistry.RecordHeader memory previous) = handler.stored(patient, h.previous);
            if (previous.next != id) revert RecordMismatch("previous does not link forward", patient, id);
        }
    }
}
