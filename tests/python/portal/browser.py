"""The browser side of the portal tests and benchmark: Debian's chromium under Playwright, and a
wallet (an EIP-1193 provider injected into the page) that forwards to anvil."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import requests

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


@contextmanager
def chromium() -> Iterator[Any]:
    """Headless Debian chromium (Playwright's own browser download is not reachable here)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-dev-shm-usage"])
        try:
            yield browser
        finally:
            browser.close()


PROVIDER = """
(() => {
  const listeners = {};
  window.ethereum = {
    isMedledgerTestWallet: true,
    async request({ method, params }) {
      const answer = JSON.parse(await window.__wallet(method, JSON.stringify(params || [])));
      if (answer.error) {
        const error = new Error(answer.error.message);
        error.code = answer.error.code;
        error.data = answer.error.data;
        throw error;
      }
      return answer.result;
    },
    on(event, fn) { (listeners[event] ||= []).push(fn); },
    removeListener(event, fn) { listeners[event] = (listeners[event] || []).filter((f) => f !== fn); },
  };
})();
"""


class Wallet:
    """The EIP-1193 wallet of one account: account requests answered here, everything else
    (eth_call, eth_sendTransaction, eth_signTypedData_v4, receipts) forwarded to anvil."""

    def __init__(self, rpc_url: str, address: str) -> None:
        self.rpc_url = rpc_url
        self.address = address
        self.calls: list[str] = []

    def __call__(self, method: str, params_json: str) -> str:
        self.calls.append(method)
        if method in ("eth_requestAccounts", "eth_accounts"):
            return json.dumps({"result": [self.address]})
        body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": json.loads(params_json)}
        answer = requests.post(self.rpc_url, json=body, timeout=60).json()
        return json.dumps({k: answer[k] for k in ("result", "error") if k in answer})

    def inject(self, page: Any) -> None:
        """Make this the page's window.ethereum (from its next navigation on)."""
        page.expose_function("__wallet", self)
        page.add_init_script(PROVIDER)
