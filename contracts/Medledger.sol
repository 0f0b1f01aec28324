// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IConsentManager} from "../interfaces/IConsentManager.sol";
import {IRecordRegistry} from "../interfaces/IRecordRegistry.sol";
import {ConsentManager} from "./ConsentManager.sol";
import {RecordRegistry} from "./RecordRegistry.sol";

/// @title Medledger
/// @notice One deployment of medledger: the participant registry and consent manager (the access-control
/// list) together with the record registry and audit trail that rely on it.
/// @dev The modules stay separate in source and in their interfaces; deploying them as one contract
/// lets every record write and audited access check consent with an internal call.
contract Medledger is ConsentManager, RecordRegistry {
    /// @param admin Receives `DEFAULT_ADMIN_ROLE` (manages registrars) and `REGISTRAR_ROLE`.
    constructor(address admin) ConsentManager(admin) {}

    /// @inheritdoc IRecordRegistry
    function consentManager() external view returns (IConsentManager) {
        return this;
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
}
