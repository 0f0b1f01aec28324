"""Unit checks of what comes in and what is kept: addresses, numbers, JSON-RPC answers, nonce
clashes, and the choice of the saved state a local chain restarts from."""

from __future__ import annotations

import gzip
import json

import pytest

from medledger.chain import utc
from medledger.chain.addresses import checked_address
from medledger.chain.bounds import check_arguments, uint
from medledger.chain.endpoint import checked_answer
from medledger.chain.nonces import is_nonce_clash
from medledger.errors import InvalidAddress, InvalidNumber, ServiceUnavailable
from medledger.localchain import LocalChainFiles

GOOD = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"


def test_addresses_need_a_right_checksum_when_mixed_case():
    assert checked_address(GOOD) == GOOD
    assert checked_address(GOOD.lower()) == GOOD
    assert checked_address("0x" + GOOD[2:].upper()) == GOOD
    for bad, says in (
        ("0x70997970c51812DC3A010C7d01b50e0d17dc79C8", "wrong EIP-55 checksum"),
        (GOOD[:-1], "is not an address"),
        (GOOD + "0", "is not an address"),
        ("0x" + "g" * 40, "is not an address"),
        (12345, "is not an address"),
    ):
        with pytest.raises(InvalidAddress, match=says):
            checked_address(bad)


def test_numbers_fit_their_abi_type():
    assert uint("x", 2**64 - 1, 64) == 2**64 - 1
    for value in (2**64, -1, 1.5, float("inf"), float("nan"), True, "7"):
        with pytest.raises(InvalidNumber):
            uint("x", value, 64)
    grant = {
        "name": "grant",
        "inputs": [
            {"name": "patient", "type": "address"},
            {"name": "terms", "type": "tuple", "components": [
                {"name": "categories", "type": "uint16"}, {"name": "expiry", "type": "uint64"},
            ]},
            {"name": "proof", "type": "bytes32[]"},
            {"name": "ids", "type": "uint8[]"},
        ],
    }  # fmt: skip
    check_arguments(grant, (GOOD, (3, 2**64 - 1), [b"\0" * 32], [1, 2]))
    with pytest.raises(InvalidNumber, match=r"grant\.terms\.expiry 18446744073709551616 is out of range"):
        check_arguments(grant, (GOOD, (3, 2**64), [], []))
    with pytest.raises(InvalidNumber, match=r"grant\.ids 256"):
        check_arguments(grant, (GOOD, (3, 0), [], [1, 256]))


def test_every_uint64_time_has_a_text():
    assert utc(0) == "1970-01-01 00:00 UTC"
    assert utc(2**64 - 1) == "never"
    assert utc(2**64 - 2) == "unix time 18446744073709551614 (after 9999-12-31)"
    assert utc(253402300800) == "unix time 253402300800 (after 9999-12-31)"


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (b"<html>hi</html>", "HTTP 200, text/html: '<html>hi</html>'"),
        (b'{"ok": true}', "'{\"ok\": true}'"),
        (b"[1, 2]", "'[1, 2]'"),
        (b"", "empty body"),
    ],
)
def test_an_answer_that_is_not_json_rpc_is_named(body, says):
    with pytest.raises(ServiceUnavailable, match="not as an Ethereum JSON-RPC endpoint") as err:
        checked_answer("http://127.0.0.1:1", "eth_chainId", 200, {"Content-Type": "text/html"}, body)
    assert says in str(err.value)
    assert checked_answer("u", "m", 200, {}, b'{"jsonrpc": "2.0", "id": 1, "result": "0x1"}')["result"] == "0x1"
    assert "error" in checked_answer("u", "m", 500, {}, b'{"jsonrpc": "2.0", "id": 1, "error": {"message": "x"}}')


def test_nonce_clashes_are_recognised():
    for message in ("nonce too low", "Replacement transaction underpriced", "replacement fee too low"):
        assert is_nonce_clash(f"The node at u refused the request: {message}.")
    assert not is_nonce_clash("insufficient funds for gas * price + value")


def state(block: int) -> bytes:
    return json.dumps({"best_block_number": block, "accounts": {}, "blocks": []}).encode()


def test_a_restart_takes_the_newest_readable_state(tmp_path):
    files = LocalChainFiles(tmp_path)
    assert files.choose().data is None and files.choose().source == "nothing saved"
    with files.lock():
        files.save(gzip.compress(state(5)), 5)
        files.save(gzip.compress(state(8)), 8)
    files.autosave.write_bytes(state(9)[:30])  # torn by a kill during anvil's in-place save
    chosen = files.choose()
    assert (chosen.block, chosen.source) == (8, "saved state")
    assert [p.name for p, _ in chosen.skipped] == ["autosave.json"]
    files.autosave.write_bytes(state(11))  # anvil's periodic save, newer and whole
    assert (files.choose().block, files.choose().source) == (11, "anvil's periodic save")
    files.autosave.write_bytes(state(8))  # a tie goes to the saved state (never torn)
    assert files.choose().source == "saved state"
    files.saved()[0][1].write_bytes(b"\x1f\x8b damaged")
    files.autosave.unlink()
    assert files.choose().block == 5  # the older saved state, and the damaged one is named
    assert "000000000008.json.gz" in [p.name for p, _ in files.choose().skipped]
