// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title Outcomes
/// @notice Bookkeeping shared by the model-based handlers: compares each call's outcome with the
/// model's prediction (success, or a revert with one of the predicted errors, exact bytes) and counts
/// disagreements, which the invariant suites require to stay zero.
abstract contract Outcomes {
    uint256 public mismatches;
    string public lastMismatch;
    bytes public lastMismatchData;
    mapping(bytes32 action => uint256) public successes;
    mapping(bytes32 action => uint256) public refusals;

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
            _mismatch(
                string.concat(action, ": reverted with an error the model did not expect"), abi.encode(err, expected[0])
            );
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
}
