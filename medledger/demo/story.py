"""The frame of the demo: numbered steps, what happened, and expectations that must hold."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TextIO

from eth_account import Account

from medledger import crypto
from medledger.errors import MedledgerError
from medledger.keystore import Identity


def identities(mnemonic: str, names: list[str]) -> dict[str, Identity]:
    """Demo actors: anvil's funded accounts, each with a fresh X25519 key pair."""
    Account.enable_unaudited_hdwallet_features()
    out = {}
    for index, name in enumerate(names):
        account = Account.from_mnemonic(mnemonic, account_path=f"m/44'/60'/0'/0/{index}")
        out[name] = Identity(name, account.address, account, crypto.generate_keypair())
    return out


class Story:
    """Prints steps and checks expectations."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.failures: list[str] = []
        self.step_no = 0
        self.started = time.monotonic()

    def step(self, title: str) -> None:
        self.step_no += 1
        self.out.write(f"\n[{self.step_no:2d}] {title}\n")
        self.out.flush()

    def say(self, text: str) -> None:
        self.out.write(f"     {text}\n")
        self.out.flush()

    def expect(self, condition: bool, what: str) -> None:
        mark = "ok " if condition else "FAILED"
        self.out.write(f"     [{mark}] {what}\n")
        if not condition:
            self.failures.append(what)

    def expect_refusal(self, action: Callable[[], Any], error: type[Exception], what: str) -> Exception | None:
        try:
            action()
        except error as exc:
            self.expect(True, what)
            self.say(f"       refused: {exc}")
            return exc
        except MedledgerError as exc:
            self.expect(False, f"{what} (refused, but with {type(exc).__name__}: {exc})")
            return exc
        self.expect(False, f"{what} (it was allowed)")
        return None
