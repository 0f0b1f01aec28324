"""Fixtures for the portal: the real server (in a thread, 127.0.0.1, a free port) over the session's
anvil + IPFS deployment, every request body it receives recorded; Debian's chromium driven by
Playwright; a wallet (EIP-1193 provider) injected into each page that forwards to anvil, which signs
and sends for its unlocked dev accounts exactly as MetaMask would answer.

One browser and one portal server serve the whole session: each test points the server at its own
client (the chain is reverted after every test, so block times cached by an earlier client would be
wrong), with a fresh record of requests and a fresh rate limit. Every browser context fails the test
on any request to a host other than 127.0.0.1, and screenshots go to ``reports/portal/`` (the CI's test
artifacts).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from eth_account import Account

from medledger.client import Client
from medledger.keystore import Identity, Keystore
from medledger.portal.app import create_app
from medledger.portal.backend import Backend
from medledger.portal.relayer import RateLimiter, Relayer
from medledger.portal.server import running
from tests.python.cli.conftest import cli_env, cli_keys, run  # noqa: F401  (fixtures: the CLI as the study)

from .browser import Wallet, chromium

ROOT = Path(__file__).resolve().parents[3]
SHOTS = ROOT / "reports" / "portal"
PASSPHRASE = "correct horse battery staple"


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


@pytest.fixture(scope="session")
def _portal_server(deployed: Any, cast: dict[str, Identity]) -> Iterator[Portal]:
    backend = Backend(Client.connect(deployed))
    relay = Relayer(backend, cast["relayer"], limit=5, window=60)
    recorder = Recorder(create_app(backend, relay))
    with running(recorder) as url:
        yield Portal(url, recorder, backend, relay)


@pytest.fixture
def portal(_portal_server: Portal, client: Client) -> Portal:
    """The session's portal server, reading through this test's client, its request record emptied."""
    _portal_server.backend.client = client
    _portal_server.recorder.requests.clear()
    _portal_server.relayer.limiter = RateLimiter(5, 60)
    return _portal_server


def anvil_account(node_config: Any, index: int) -> Any:
    Account.enable_unaudited_hdwallet_features()
    return Account.from_mnemonic(node_config.mnemonic, account_path=f"m/44'/60'/0'/0/{index}")


@pytest.fixture
def keystore_file(tmp_path: Path) -> Callable[[Identity], Path]:
    """Write an identity's keystore file and return its path."""

    def write(identity: Identity) -> Path:
        ks = Keystore(tmp_path / "keys", scrypt_n=2**15)  # the floor: the page refuses weaker files
        ks.create(
            identity.name, PASSPHRASE, private_key=identity.account.key, encryption_secret=identity.encryption.secret
        )
        return ks.path_for(identity.name)

    return write


# --- the browser ---------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    with chromium() as b:
        yield b


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
        page.on("pageerror", lambda error: print(f"page error: {error}"))
        page.on("console", lambda msg: print(f"console {msg.type}: {msg.text}"))
        page.on("requestfailed", lambda r: print(f"request failed: {r.url} {r.failure}"))
        w = Wallet(node_config.rpc_url, address)
        if wallet:
            w.inject(page)
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
