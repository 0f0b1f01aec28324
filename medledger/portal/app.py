"""The portal's web application: the page, its assets, a read-only JSON API over public chain state,
a small IPFS door for sealed key envelopes (ciphertext only), and the relayer.

Every asset comes from this package (``static/``; ``app.js`` is bundled from npm packages at
set-up), and the Content-Security-Policy lets the page load and connect to nothing but this
server. Requests whose ``Host`` is not this machine (DNS rebinding) or that come from another
origin's page are refused.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse, PlainTextResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool

from medledger.errors import (
    AccessDenied,
    ConfigError,
    ContentNotFound,
    ContractRevert,
    InvalidRequest,
    MedledgerError,
    ServiceUnavailable,
    StorageError,
    UnknownRecord,
)

from .backend import MAX_SMALL_OBJECT, Backend
from .relayer import RateLimited, Relayer

T = TypeVar("T")
STATIC = Path(__file__).resolve().parent / "static"
PAGES = ("", "consents", "delegates", "emergency", "audit", "records", "researcher")
CSP = (
    "default-src 'none'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self'; img-src 'self' data: blob:; "
    "connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
_STATUS: tuple[tuple[type[MedledgerError], int], ...] = (
    (RateLimited, 429),
    (AccessDenied, 403),
    (UnknownRecord, 404),
    (ContentNotFound, 404),
    (ContractRevert, 422),
    (ConfigError, 400),
    (InvalidRequest, 400),
    (ServiceUnavailable, 503),
    (StorageError, 502),
)


def _status(exc: MedledgerError) -> int:
    for cls, code in _STATUS:
        if isinstance(exc, cls):
            return code
    return 500


def _error(exc: MedledgerError) -> JSONResponse:
    body: dict[str, Any] = {"error": str(exc), "kind": type(exc).__name__}
    name = getattr(exc, "error_name", None)
    if name:
        body["contract_error"] = name
    headers = {"Retry-After": f"{exc.retry_after:.0f}"} if isinstance(exc, RateLimited) else None
    return JSONResponse(body, status_code=_status(exc), headers=headers)


#: A signed request or revert data is a few KiB at most; the IPFS door takes up to MAX_SMALL_OBJECT.
MAX_JSON = 64 * 1024


async def _body(request: Request, limit: int, what: str) -> bytes:
    """The body, read only up to ``limit`` bytes: a larger one is refused without being held in memory."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise ConfigError(f"The portal takes {what} of at most {limit} bytes, not {declared} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ConfigError(f"The portal takes {what} of at most {limit} bytes, not more")
        chunks.append(chunk)
    return b"".join(chunks)


async def _json(request: Request) -> Any:
    try:
        return json.loads(await _body(request, MAX_JSON, "JSON bodies"))
    except ValueError:
        raise ConfigError("The request body is not JSON") from None


def _guard(
    allowed_hosts: Iterable[str],
) -> Callable[[Request, Callable[[Request], Awaitable[Response]]], Awaitable[Response]]:
    hosts = {h.lower() for h in allowed_hosts}

    async def guard(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        host = (request.headers.get("host") or "").lower()
        if host.rsplit(":", 1)[0].strip("[]") not in hosts:
            return PlainTextResponse("This portal answers only under its own local address.", status_code=421)
        origin = request.headers.get("origin")
        if (
            request.method not in ("GET", "HEAD")
            and origin is not None
            and origin.lower() != f"{request.url.scheme}://{host}"
        ):
            return PlainTextResponse("Requests from other sites' pages are refused.", status_code=403)
        response = await call_next(request)
        response.headers["Content-Security-Policy"] = CSP
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        # answers about the chain are never cached; the page's assets are revalidated (ETag)
        response.headers["Cache-Control"] = "no-store" if request.url.path.startswith("/api/") else "no-cache"
        return response

    return guard


def create_app(
    backend: Backend,
    relayer: Relayer | None = None,
    *,
    allowed_hosts: Iterable[str] = ("127.0.0.1", "localhost"),
    static_dir: Path = STATIC,
) -> FastAPI:
    """The portal as an ASGI application (run it with :func:`medledger.portal.server.serve`)."""
    if not (static_dir / "app.js").is_file():
        raise ConfigError(
            f"The portal's script {static_dir / 'app.js'} is missing: build it with `make portal-assets` "
            "(esbuild bundles it from the npm packages installed by `make setup`)"
        )
    app = FastAPI(title="medledger portal", docs_url=None, redoc_url=None, openapi_url=None)
    app.middleware("http")(_guard(allowed_hosts))

    @app.exception_handler(MedledgerError)
    async def medledger_error(_request: Request, exc: MedledgerError) -> JSONResponse:
        return _error(exc)

    # --- the page ----------------------------------------------------------------------------------
    index = static_dir / "index.html"
    for page in PAGES:
        app.add_api_route(f"/{page}", lambda: FileResponse(index), methods=["GET"], include_in_schema=False)
    app.mount("/static", StaticFiles(directory=static_dir), name="static")
    _chain_routes(app, backend, relayer)
    _patient_routes(app, backend)
    _ipfs_and_relay_routes(app, backend, relayer)
    return app


def _call(fn: Callable[..., T], *args: Any) -> Awaitable[T]:
    """Run a blocking backend call (JSON-RPC, IPFS) off the event loop."""
    return run_in_threadpool(fn, *args)


def _csv(text: str, filename: str) -> PlainTextResponse:
    return PlainTextResponse(
        text, media_type="text/csv", headers={"Content-Disposition": f'attachment; filename="{filename}"'}
    )


def _chain_routes(app: FastAPI, backend: Backend, relayer: Relayer | None) -> None:
    """Public chain state that is not one patient's: the deployment, the registry, grants held."""

    @app.get("/api/info")
    async def info() -> dict[str, Any]:
        body = await _call(backend.info)
        body["relayer"] = relayer.address if relayer else None
        return body

    @app.get("/api/now")
    async def now() -> dict[str, int]:
        return {"now": await _call(backend.now)}

    @app.get("/api/participants")
    async def participants() -> list[dict[str, Any]]:
        return await _call(backend.participants)

    @app.get("/api/grantees/{account}/grants", response_model=None)
    async def grants_held(account: str, format: str = "json") -> Any:
        grants = await _call(backend.grants_held, account)
        return _csv(backend.grants_csv(grants), "grants.csv") if format == "csv" else grants

    @app.post("/api/explain")
    async def explain(request: Request) -> dict[str, Any]:
        body = await _json(request)
        if not isinstance(body, dict) or not isinstance(body.get("data"), str):
            raise ConfigError('Send {"data": "0x…"} with the revert data to explain')
        context = body.get("context") if isinstance(body.get("context"), dict) else {}
        return await _call(backend.explain, body["data"], context)


def _patient_routes(app: FastAPI, backend: Backend) -> None:
    """One patient's public state on chain: consents, keys, envelopes, readers, emergencies, trail, records."""

    @app.get("/api/patients/{account}")
    async def patient(account: str) -> dict[str, Any]:
        return await _call(backend.patient, account)

    @app.get("/api/patients/{account}/consents")
    async def consents(account: str) -> dict[str, Any]:
        return await _call(backend.consents, account)

    @app.get("/api/patients/{account}/consents/{grantee}/{access}")
    async def one_consent(account: str, grantee: str, access: int) -> dict[str, Any]:
        return await _call(backend.consent, account, grantee, access)

    @app.get("/api/patients/{account}/keys")
    async def keys(account: str) -> dict[str, Any]:
        return await _call(backend.keys, account)

    @app.get("/api/patients/{account}/envelopes/{holder}")
    async def envelopes(account: str, holder: str) -> list[dict[str, Any]]:
        return await _call(backend.envelopes, account, holder)

    @app.get("/api/patients/{account}/readers")
    async def readers(account: str) -> list[dict[str, Any]]:
        return await _call(backend.readers, account)

    @app.get("/api/patients/{account}/emergency")
    async def emergency(account: str) -> list[dict[str, Any]]:
        return await _call(backend.emergency, account)

    @app.get("/api/patients/{account}/trail", response_model=None)
    async def trail(account: str, format: str = "json") -> Any:
        if format == "csv":
            return _csv(await _call(backend.trail_csv, account), "audit-trail.csv")
        return await _call(backend.trail, account)

    @app.get("/api/patients/{account}/records")
    async def patient_records(account: str) -> list[dict[str, Any]]:
        return await _call(backend.records, account)

    @app.get("/api/patients/{account}/records/{record_id}")
    async def record(account: str, record_id: str) -> dict[str, Any]:
        return await _call(backend.record, account, record_id)


def _ipfs_and_relay_routes(app: FastAPI, backend: Backend, relayer: Relayer | None) -> None:
    """What the page sends: ciphertext (key envelopes) to IPFS, signed requests to the relayer."""

    @app.post("/api/ipfs")
    async def ipfs_add(request: Request) -> dict[str, str]:
        if request.headers.get("content-type") != "application/octet-stream":
            raise ConfigError("Send the object as application/octet-stream")
        return await _call(backend.put_small, await _body(request, MAX_SMALL_OBJECT, "key envelopes"))

    @app.get("/api/ipfs/{cid}")
    async def ipfs_get(cid: str) -> Response:
        data = await _call(backend.get, cid)
        return Response(data, media_type="application/octet-stream")

    @app.post("/api/relay")
    async def relay(request: Request) -> dict[str, Any]:
        if relayer is None:
            raise ConfigError("This portal runs without a relayer; send the request from your wallet instead")
        if request.headers.get("content-type") != "application/json":
            raise ConfigError("Send the signed request as application/json")
        return await _call(relayer.relay, await _json(request))
