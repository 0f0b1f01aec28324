// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IERC1271} from "@openzeppelin/contracts/interfaces/IERC1271.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";

/// @title MockContractWallet
/// @notice TEST ONLY. A minimal ERC-1271 contract wallet owned by one EOA: a signature is the wallet's
/// iff it is the owner's ECDSA signature of the hash. The owner acts through {execute}, so the wallet
/// itself can, for instance, register as a medledger patient.
contract MockContractWallet is IERC1271 {
    /// @notice The EOA whose signatures count as the wallet's.
    address public immutable owner;

    /// @notice Only the owner may call {execute}.
    error MockWalletNotOwner(address caller);

    constructor(address owner_) {
        owner = owner_;
    }

    /// @inheritdoc IERC1271
    function isValidSignature(bytes32 hash, bytes calldata signature) external view returns (bytes4 magicValue) {
        (address recovered, ECDSA.RecoverError err,) = ECDSA.tryRecoverCalldata(hash, signature);
        if (err == ECDSA.RecoverError.NoError && recovered == owner) return IERC1271.isValidSignature.selector;
        return 0xffffffff;
    }

    /// @notice Calls `target` with `data` as the wallet; bubbles up a revert. Owner only.
    function execute(address target, bytes calldata data) external returns (bytes memory result) {
        if (msg.sender != owner) revert MockWalletNotOwner(msg.sender);
        bool ok;
        (ok, result) = target.call(data);
        if (!ok) {
            assembly ("memory-safe") {
                revert(add(result, 32), mload(result))
            }
        }
    }
}
