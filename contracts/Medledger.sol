// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {IConsentManager} from "../interfaces/IConsentManager.sol";
import {IRecordRegistry} from "../interfaces/IRecordRegistry.sol";
import {ConsentManager} from "./ConsentManager.sol";
import {RecordRegistry} from "./RecordRegistry.sol";

/// @title Medledger
/// @notice One deployment of medledger: the participant registry and consent manager (the access-control
/// list) together with the record registry and audit trail that rely on it.
/// @dev The modules stay separate in source and in their interfaces; deploying them as one contract
/// lets every record write and audited access check consent and key freshness with an internal call.
/// Immutable: there is no proxy and no upgrade key, so nobody but a patient (or its delegate) can change
/// what its consents mean; a new version is a new deployment that patients move to (see the README).
contract Medledger is ConsentManager, RecordRegistry {
    /// @param admin Receives the default admin role (manages registrars; transferable with a delay)
    /// and `REGISTRAR_ROLE`.
    constructor(address admin) ConsentManager(admin) {}

    /// @notice Answers {IRecordRegistry}, {IConsentManager}, {IParticipantRegistry} and access control.
    function supportsInterface(bytes4 interfaceId) public view override returns (bool) {
        return interfaceId == type(IRecordRegistry).interfaceId || super.supportsInterface(interfaceId);
    }

    /// @inheritdoc RecordRegistry
    function _checkRecordAccess(
        address patient,
        address accessor,
        IConsentManager.Access access,
        uint8 category,
        uint8 purpose
    ) internal view override returns (bool emergency) {
        return _checkAccess(patient, accessor, access, category, purpose);
    }

    /// @inheritdoc RecordRegistry
    // slither-disable-next-line timestamp a key's validity is chain time, like every consent (see ConsentManager)
    function _checkRecordKey(address patient, uint8 category, uint32 keyEpoch) internal view override {
        (uint32 epoch, uint64 validUntil) = _keyState(patient, category);
        if (keyEpoch != epoch || block.timestamp >= validUntil) {
            revert RecordStaleKey(patient, category, keyEpoch, epoch, validUntil);
        }
    }
}
