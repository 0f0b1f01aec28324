"""Fixtures for the portal: the real server (in a thread, 127.0.0.1, a free port) over the session's
anvil + IPFS deployment, every request body it receives recorded; Debian's chromium driven by
Playwright; a wallet (EIP-1193 provider) injected into each page that forwards to anvil, which signs
and sends for its unlocked dev accounts exactly as MetaMask would answer.

Every browser context fails the test on any request to a host other than 127.0.0.1, and screenshots
go to ``reports/portal/`` (the CI's test artifacts).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
from eth_account import Account

from medledger.client import Client
from medledger.keystore import Identity, Keystore
from medledger.portal.app import create_app
from medledger.portal.backend import Backend
from medledger.portal.relayer import Relayer
from medledger.portal.server import running

ROOT = Path(__file__).resolve().parents[3]
SHOTS = ROOT / "reports" / "portal"
PASSPHRASE = "correct horse battery staple"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


@dataclass
class Recorder:
    """An ASGI wrapper that keeps every request (method, path, body) the portal receives."""

    app: Any
    requests: list[tuple[str, str, bytes]] = field(default_factory=list)

    async def __call__(self, scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        entry: list[bytes] = []
        self.requests.append((scope["method"], scope["path"] + "?" + scope["query_string"].decode(), b""))
        index = len(self.requests) - 1

        async def recording_receive() -> dict[str, Any]:
            message = await receive()
            if message["type"] == "http.request":
                entry.append(message.get("body", b""))
                method, path, _ = self.requests[index]
                self.requests[index] = (method, path, b"".join(entry))
            return message

        await self.app(scope, recording_receive, send)

    def everything(self) -> bytes:
        """All paths, query strings and bodies received, as one byte string to search."""
        return b"\n".join(m.encode() + b" " + p.encode() + b" " + b for m, p, b in self.requests)


@dataclass
class Portal:
    url: str
    recorder: Recorder
    backend: Backend
    relayer: Relayer


@pytest.fixture
def portal(client: Client, relayer: Identity) -> Iterator[Portal]:
    backend = Backend(client)
    relay = Relayer(backend, relayer, limit=5, window=60)
    recorder = Recorder(create_app(backend, relay))
    with running(recorder) as url:
        yield Portal(url, recorder, backend, relay)


def anvil_account(node_config: Any, index: int) -> Any:
    Account.enable_unaudited_hdwallet_features()
    return Account.from_mnemonic(node_config.mnemonic, account_path=f"m/44'/60'/0'/0/{index}")


@pytest.fixture
def keystore_file(tmp_path: Path) -> Callable[[Identity], Path]:
    """Write an identity's keystore file (cheap scrypt: tests only) and return its path."""

    def write(identity: Identity) -> Path:
        ks = Keystore(tmp_path / "keys", scrypt_n=2**10)
        ks.create(identity.name, PASSPHRASE, private_key=identity.account.key,
                  encryption_secret=identity.encryption.secret)
        return ks.path_for(identity.name)

    return write


# --- the browser ---------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-dev-shm-usage"])
        yield b
        b.close()


_PROVIDER = """
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


@dataclass
class Session:
    page: Any
    wallet: Wallet
    outside: list[str]

    def shot(self, name: str, *, width: int | None = None) -> Path:
        SHOTS.mkdir(parents=True, exist_ok=True)
        path = SHOTS / f"{name}.png"
        if width:
            size = self.page.viewport_size
            self.page.set_viewport_size({"width": width, "height": 900})
            self.page.screenshot(path=str(path), full_page=True)
            self.page.set_viewport_size(size)
        else:
            self.page.screenshot(path=str(path), full_page=True)
        return path


@pytest.fixture
def open_portal(browser: Any, portal: Portal, node_config: Any) -> Iterator[Callable[..., Session]]:
    """open_portal(address, path="/") -> a page of the portal with that account's wallet."""
    contexts = []
    sessions: list[Session] = []

    def open_(address: str, path: str = "/", *, wallet: bool = True) -> Session:
        context = browser.new_context(viewport={"width": 1200, "height": 900}, accept_downloads=True)
        contexts.append(context)
        outside: list[str] = []

        def guard(route: Any) -> None:
            host = urlsplit(route.request.url).hostname
            if route.request.url.startswith(("data:", "blob:")) or host == "127.0.0.1":
                route.continue_()
            else:
                outside.append(route.request.url)
                route.abort()

        context.route("**/*", guard)
        page = context.new_page()
        w = Wallet(node_config.rpc_url, address)
        if wallet:
            page.expose_function("__wallet", w)
            page.add_init_script(_PROVIDER)
        page.set_default_timeout(30_000)
        page.goto(portal.url + path)
        page.wait_for_selector(f"body[data-ready='{path.split('?')[0]}']")
        session = Session(page, w, outside)
        sessions.append(session)
        return session

    yield open_
    leaked = [url for s in sessions for url in s.outside]
    for context in contexts:
        context.close()
    assert not leaked, f"the page tried to load from other hosts: {leaked}"
