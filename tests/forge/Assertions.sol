// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @dev Shared assertion errors: forge decodes them in a failure report.
abstract contract Assertions {
    error AssertionFailed(string what);
    error BoolMismatch(string what, bool actual, bool expected);
    error UintMismatch(string what, uint256 actual, uint256 expected);
    error BytesMismatch(string what, bytes actual, bytes expected);

    function _assertTrue(bool condition, string memory what) internal pure {
        if (!condition) revert AssertionFailed(what);
    }

    function _assertEq(bool actual, bool expected, string memory what) internal pure {
        if (actual != expected) revert BoolMismatch(what, actual, expected);
    }

    function _assertEq(uint256 actual, uint256 expected, string memory what) internal pure {
        if (actual != expected) revert UintMismatch(what, actual, expected);
    }

    function _assertEq(bytes memory actual, bytes memory expected, string memory what) internal pure {
        if (keccak256(actual) != keccak256(expected)) revert BytesMismatch(what, actual, expected);
    }
}

/// @dev What forge fuzzes in an invariant suite: one handler's actions only.
abstract contract HandlerTargets {
    struct FuzzSelector {
        address addr;
        bytes4[] selectors;
    }

    function _handler() internal view virtual returns (address);

    function _actions() internal view virtual returns (bytes4[] memory);

    function targetContracts() public view returns (address[] memory t) {
        t = new address[](1);
        t[0] = _handler();
    }

    function targetSelectors() public view returns (FuzzSelector[] memory s) {
        s = new FuzzSelector[](1);
        s[0] = FuzzSelector({addr: _handler(), selectors: _actions()});
    }
}
