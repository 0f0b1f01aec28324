"""Issue 8 item 8: an RPC URL that serves HTML, another API or garbage, or that hangs, is named as
what it is (exit 3) within seconds, for the library and at the command line."""

from __future__ import annotations

import time

import pytest
from hostile_rpc import HostileRpc

from medledger.chain import Chain
from medledger.errors import ServiceUnavailable

#: the first request of a session waits PROBE_TIMEOUT (5 s); a person waits that long, not 153 s
PATIENCE = 8.0


@pytest.mark.parametrize(
    ("mode", "says"),
    [
        ("html", "not as an Ethereum JSON-RPC endpoint (eth_chainId: HTTP 200, text/html: '<!doctype html>"),
        ("json", 'not as an Ethereum JSON-RPC endpoint (eth_chainId: HTTP 200, application/json: \'{"status"'),
        ("garbage", "not as an Ethereum JSON-RPC endpoint"),
        ("status", "HTTP 502, text/plain: '502 Bad Gateway'"),
        ("hang", "accepted the connection but sent no answer within 5 s (eth_chainId); it hangs"),
    ],
)
def test_a_hostile_endpoint_is_named_for_what_it_is(run, mode, says):
    with HostileRpc(mode) as hostile:
        started = time.monotonic()
        with pytest.raises(ServiceUnavailable) as err:
            Chain(hostile.url).check()
        assert says in str(err.value) and hostile.url in str(err.value)
        for argv in (["records", "list"], ["consent", "list"], ["records", "recover"]):
            result = run(*argv, as_="patient", env={"MEDLEDGER_RPC_URL": hostile.url})
            assert result.exit_code == 3, result.stdout + result.stderr
            assert says in result.stderr and "unexpected" not in result.stderr
        took = time.monotonic() - started
    assert took < 4 * PATIENCE  # four attempts in all, each within the patience of a person
    assert hostile.calls >= 4


def test_an_endpoint_that_hangs_later_fails_within_the_rpc_timeout():
    with HostileRpc("hang") as hostile:
        chain = Chain(hostile.url, timeout=2.0)
        chain._chain_id = 1337  # as if the first request had been answered
        started = time.monotonic()
        with pytest.raises(ServiceUnavailable, match=r"no answer within 2 s \(eth_blockNumber\)"):
            chain.block_number()
        assert time.monotonic() - started < 4  # no retries behind the caller's back
        assert hostile.calls == 1
