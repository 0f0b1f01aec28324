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
    // `owner()` is the getter wallets conventionally expose.
    // solhint-disable-next-line immutable-vars-naming
    address public immutable owner;

    /// @notice Only the owner may call {execute}.
    error MockWalletNotOwner(address caller);

    // slither-disable-next-line missing-zero-check a test double: a zero owner simply never signs
    constructor(address owner_) {
        owner = owner_;
    }

    /// @inheritdoc IERC1271
    // slither-disable-next-line unused-return the third value (the error's argument) is not needed
    function isValidSignature(bytes32 hash, bytes calldata signature) external view returns (bytes4 magicValue) {
        (address recovered, ECDSA.RecoverError err,) = ECDSA.tryRecoverCalldata(hash, signature);
        if (err == ECDSA.RecoverError.NoError && recovered == owner) return IERC1271.isValidSignature.selector;
        return 0xffffffff;
    }

    /// @notice Calls `target` with `data` as the wallet; bubbles up a revert. Owner only.
    // slither-disable-next-line missing-zero-check,assembly,low-level-calls a wallet forwards any call, as is
    function execute(address target, bytes calldata data) external returns (bytes memory result) {
        if (msg.sender != owner) revert MockWalletNotOwner(msg.sender);
        bool ok;
        // A wallet forwards arbitrary calls by design.
        // solhint-disable-next-line avoid-low-level-calls
        (ok, result) = target.call(data);
        if (!ok) {
            // Bubbles up the callee's revert data unchanged.
            // solhint-disable-next-line no-inline-assembly
            assembly ("memory-safe") {
                revert(add(result, 32), mload(result))
            }
        }
    }
}
