"""Mount pygeoapi at ``/ogc``, configured from the layer registry of this very app.

pygeoapi's ``starlette_app`` reads ``PYGEOAPI_CONFIG``/``PYGEOAPI_OPENAPI`` and builds its
``CONFIG``, ``API`` and ``APP`` at import. So each ``create_app`` writes the generated config
and OpenAPI document, points the variables at them and executes a *fresh copy* of that module
(never the cached one), so two apps in one process never share a configuration.

Access: ``OgcMount`` refuses ``/ogc/collections/{id}`` and everything below it when the
request's principal may not read layer ``id`` (401 for anonymous callers, 403 otherwise, as
problem JSON) and leaves such collections out of the JSON collection lists. pygeoapi runs its
API functions in a worker thread; our copy of its module copies the request's context into that
thread so the provider sees the caller (``current_principal()``) and applies its data scope.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import importlib.util
import json
import logging
import os
import tempfile
from collections.abc import AsyncIterator, Callable, Iterator
from http import HTTPStatus
from pathlib import Path
from types import ModuleType
from typing import Any, Final

import psycopg
import yaml
from fastapi import FastAPI
from starlette.datastructures import MutableHeaders
from starlette.requests import HTTPConnection, Request
from starlette.responses import JSONResponse, Response
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.ogc.config import pygeoapi_config
from api.ogc.context import OgcContext, register
from api.ogc.urls import PREFIX, rewrite
from api.security.policy import PER_CALLER_HEADERS, deny, principal_of
from layers.registry import LayerRegistry
from spatial.errors import CityError, InvalidInput, NotFound
from spatial.features_catalog import LayerColumns, load_catalog_sync
from spatial.security.principal import Principal
from spatial.settings import PROJECT_ROOT, OgcSettings, Settings

log = logging.getLogger("cityops.ogc")
VENDOR_DIR: Final = PROJECT_ROOT / "web" / "static" / "vendor"
_TEXTUAL: Final = ("json", "html", "yaml", "text/", "javascript", "xml")


@contextlib.contextmanager
def _workdir(keep: Path | None) -> Iterator[Path]:
    if keep is not None:  # kept for inspection; one directory per worker process
        path = keep / f"pid-{os.getpid()}"
        path.mkdir(parents=True, exist_ok=True)
        yield path
        return
    with tempfile.TemporaryDirectory(prefix="cityops-ogc-") as tmp:
        yield Path(tmp)  # pygeoapi reads both files at import only


@contextlib.contextmanager
def _environ(**values: str) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, old in saved.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old


def build_pygeoapi(config: dict[str, Any], keep: Path | None) -> ModuleType:
    """Write config + OpenAPI, then execute a private copy of ``pygeoapi.starlette_app``."""
    from pygeoapi.openapi import get_oas

    with _workdir(keep) as workdir:
        config_path = workdir / "pygeoapi-config.yml"
        dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
        config_path.write_text(
            yaml.dump(config, Dumper=dumper, allow_unicode=True, sort_keys=False)
        )
        openapi_path = workdir / "pygeoapi-openapi.json"
        openapi = get_oas(json.loads(json.dumps(config)), fail_on_invalid_collection=True)
        openapi_path.write_text(json.dumps(openapi, ensure_ascii=False, default=str))
        spec = importlib.util.find_spec("pygeoapi.starlette_app")
        assert spec is not None and spec.loader is not None  # noqa: S101 - installed dependency
        module = importlib.util.module_from_spec(spec)
        with _environ(PYGEOAPI_CONFIG=str(config_path), PYGEOAPI_OPENAPI=str(openapi_path)):
            spec.loader.exec_module(module)
    module.execute_from_starlette = _execute_in_request_context(module)
    return module


def _execute_in_request_context(module: ModuleType) -> Callable[..., Any]:
    """The ``execute_from_starlette`` of pygeoapi, running the API call in the request context.

    A copy of ``pygeoapi/starlette_app.py::execute_from_starlette`` (pygeoapi 0.24) whose only
    change is ``contextvars.copy_context().run``: ``loop.run_in_executor`` does not carry
    context variables into the worker thread, and the provider needs the request's principal.
    The module's route functions look the name up at call time, so replacing it suffices.
    """

    async def execute_from_starlette(
        api_function: Callable[..., Any],
        request: Request,
        *args: Any,
        skip_valid_check: bool = False,
        alternative_api: Any = None,
    ) -> Response:
        actual_api = module.api_ if alternative_api is None else alternative_api
        api_request = await module.APIRequest.from_starlette(request, actual_api.locales)
        if not skip_valid_check and not api_request.is_valid():
            headers, status, content = actual_api.get_format_exception(api_request)
        else:
            loop = asyncio.get_running_loop()
            context = contextvars.copy_context()
            headers, status, content = await loop.run_in_executor(
                None,
                context.run,
                module.call_api_threadsafe,
                loop,
                api_function,
                actual_api,
                api_request,
                *args,
            )
            if status != HTTPStatus.NO_CONTENT:  # 204 must stay empty (no gzip header)
                content = module.apply_gzip(headers, content)
        return module._to_response(headers, status, content)

    return execute_from_starlette


def _problem(status: int, body: bytes, conn: HTTPConnection) -> bytes:
    """Turn a pygeoapi ``{code, description}`` exception into RFC 7807 (keeping the code)."""
    try:
        doc = json.loads(body)
        code, detail = str(doc.get("code", "")), str(doc.get("description", ""))
    except (ValueError, AttributeError):
        return body
    cls = {400: InvalidInput, 404: NotFound}.get(status, CityError)
    err = cls(detail)
    err.status = status
    problem = err.problem(conn.url.path) | {"code": code, "description": detail}
    return json.dumps(problem, ensure_ascii=False).encode()


def route_segments(scope: Scope) -> list[str]:
    """The non-empty path segments below the mount (``/ogc``)."""
    path, root = scope["path"], scope.get("root_path", "")
    if root and path.startswith(root):
        path = path[len(root) :]
    return [s for s in path.split("/") if s]


def hidden_layers(registry: LayerRegistry, principal: Principal) -> frozenset[str]:
    """Ids of the layers ``principal`` may not read (empty for most public requests)."""
    return frozenset(
        spec.id
        for spec in registry
        if spec.read_permission and not principal.can(spec.read_permission)
    )


def _collection_id(entry: Any) -> str | None:
    """The collection id of a JSON ``collections`` entry or a JSON-LD ``dataset`` entry."""
    if not isinstance(entry, dict):
        return None
    if "id" in entry:
        return str(entry["id"])
    ref = str(entry.get("@id", ""))
    return ref.rstrip("/").rsplit("/", 1)[-1].split("?", 1)[0] or None


def without_collections(body: bytes, hidden: frozenset[str]) -> bytes:
    """Drop ``hidden`` collections from a collections list or landing page (JSON or JSON-LD)."""
    try:
        doc = json.loads(body)
    except ValueError:
        return body
    if not isinstance(doc, dict):
        return body
    changed = False
    for key in ("collections", "dataset"):
        entries = doc.get(key)
        if isinstance(entries, list):
            kept = [e for e in entries if _collection_id(e) not in hidden]
            changed = changed or len(kept) != len(entries)
            doc[key] = kept
    return json.dumps(doc, ensure_ascii=False).encode() if changed else body


def _refusal(error: CityError, conn: HTTPConnection) -> Response:
    return JSONResponse(
        error.problem(conn.url.path),
        status_code=error.status,
        media_type="application/problem+json",
        headers=error.headers() or None,
    )


class OgcMount:
    """Wrap pygeoapi: layer access, request-relative links, JSON errors as problem documents."""

    def __init__(self, app: ASGIApp, ogc: OgcSettings, registry: LayerRegistry) -> None:
        """Wrap ``app``; ``registry`` says which collections need which permission."""
        self.app, self.ogc, self.registry = app, ogc, registry

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Check layer access, buffer textual responses, rewrite, then send."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        conn = Request(scope)
        principal = principal_of(conn)
        segments = route_segments(scope)
        hidden = hidden_layers(self.registry, principal)
        if hidden and segments[:1] == ["collections"] and len(segments) > 1:
            if segments[1] in hidden or segments[1].lower() in hidden:
                try:
                    deny(principal, f"read collection {segments[1]}")
                except CityError as exc:
                    await _refusal(exc, conn)(scope, receive, send)
                    return
        is_listing = segments in ([], ["collections"])
        listing = hidden if hidden and is_listing else frozenset()
        per_caller = is_listing and any(spec.read_permission for spec in self.registry)
        start: Message = {}
        chunks: list[bytes] = []

        async def capture(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                start = message
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
                if not message.get("more_body", False):
                    await self._send(conn, start, b"".join(chunks), send, listing, per_caller)
            else:
                await send(message)

        # pygeoapi's Starlette app writes itself into ``scope["app"]``: give it a copy, so that
        # the middleware around us still finds our app (the state dict stays shared).
        await self.app({**scope}, receive, capture)

    async def _send(
        self,
        conn: HTTPConnection,
        start: Message,
        body: bytes,
        send: Send,
        hidden: frozenset[str] = frozenset(),
        per_caller: bool = False,
    ) -> None:
        headers = MutableHeaders(raw=list(start.get("headers", [])))
        if per_caller:  # the list depends on who asks: never cache it
            headers.update(PER_CALLER_HEADERS)
        ctype = headers.get("content-type", "")
        status = int(start.get("status", 200))
        if status >= 500:
            log.error("pygeoapi answered %s to %s: %s", status, conn.url.path, body[:300])
        if any(t in ctype for t in _TEXTUAL) and "content-encoding" not in headers:
            body = rewrite(body, conn, self.ogc)
            if status >= 400 and "json" in ctype:
                body = _problem(status, body, conn)
                headers["content-type"] = "application/problem+json"
            elif hidden and "json" in ctype:
                body = without_collections(body, hidden)
            headers["content-length"] = str(len(body))
        await send({**start, "headers": headers.raw})
        await send({"type": "http.response.body", "body": body})


def _initial_catalog(settings: Settings, ctx: OgcContext) -> dict[str, LayerColumns] | None:
    """Read the catalog now when the database answers (drift fails start-up loudly)."""
    url = settings.db.resolved_url()
    try:
        return load_catalog_sync(url, ctx.registry, settings.db.connect_timeout_s) or None
    except psycopg.Error as exc:  # database down: read it on first use instead
        log.warning("OGC catalog not read at start-up (%s); will read it on first use", exc)
        return None


def _chain_lifespan(app: FastAPI, ctx: OgcContext) -> None:
    """Give the context the running loop and the pool once the app's lifespan opened it."""
    inner = app.router.lifespan_context

    @contextlib.asynccontextmanager
    async def lifespan(app_: Any) -> AsyncIterator[Any]:
        async with inner(app_) as state:
            ctx.loop = asyncio.get_running_loop()
            ctx.connection = app_.state.pool.connection
            try:
                yield state
            finally:
                ctx.loop = ctx.connection = None

    app.router.lifespan_context = lifespan


def mount_ogc(app: FastAPI, settings: Settings) -> OgcContext:
    """Generate pygeoapi's config from the registry and mount it at ``/ogc``."""
    # pygeoapi logs every 4xx with a traceback; OgcMount logs its 5xx responses instead.
    logging.getLogger("pygeoapi").setLevel(logging.CRITICAL)
    ctx = register(OgcContext(app.state.registry, settings))
    ctx.catalog = _initial_catalog(settings, ctx)
    module = build_pygeoapi(pygeoapi_config(ctx), settings.ogc.workdir)
    ctx.pygeoapi = module.api_
    app.state.ogc = ctx
    app.mount(f"{PREFIX}/vendor", StaticFiles(directory=VENDOR_DIR), name="ogc-vendor")
    app.mount(PREFIX, OgcMount(module.APP, settings.ogc, ctx.registry), name="ogc")
    _chain_lifespan(app, ctx)
    return ctx
