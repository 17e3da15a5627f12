"""The FastAPI application factory: settings in, app out; no globals at import."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import cache

from fastapi import APIRouter, FastAPI
from fastapi_offline import FastAPIOffline
from starlette.middleware import Middleware
from starlette.staticfiles import StaticFiles

from api.background import fleet_background
from api.ogc.items import features_router
from api.ogc.mount import mount_ogc
from api.problems import install_problem_handlers
from api.raster import raster_router
from api.routers.alarms import alarms_router
from api.routers.audit import audit_router
from api.routers.auth import auth_router
from api.routers.case_boxes import case_boxes_router
from api.routers.case_intake import case_intake_router
from api.routers.case_rules import case_rules_router
from api.routers.cases import case_router
from api.routers.crs import crs_router
from api.routers.fleet import fleet_router
from api.routers.geocode import geocode_router
from api.routers.health import health_router
from api.routers.heatmap import heatmap_router
from api.routers.layers import layers_router
from api.routers.org import org_router
from api.routers.tiles import tiles_router
from api.routers.users import users_router
from api.security.audit_http import AuditWritesMiddleware
from api.security.authn import AuthenticationMiddleware, Authenticator
from api.security.limits import install_abuse_limits, login_guard
from api.security.policy import doc_paths, unguarded_routes
from api.wfs.router import wfs_router
from api.wmts import wmts_router
from geocoder.service import GeocoderService
from layers.base import default_registry
from layers.fleet.violations import install as install_fleet_checks
from spatial.db import make_pool
from spatial.errors import ConfigurationError
from spatial.security.accounts import Accounts
from spatial.security.keystore import KeyStore
from spatial.settings import PROJECT_ROOT, Settings

WEB_STATIC = PROJECT_ROOT / "web" / "static"


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app; the lifespan owns the connection pool and the layer registry."""
    settings = settings or Settings()
    url = settings.db.resolved_url()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        pool = make_pool(url, settings.db.pool_size, settings.db.statement_timeout_ms)
        await pool.open(wait=False)
        app.state.pool = pool
        app.state.geocoder = GeocoderService(pool, settings.db.connect_timeout_s)
        app.state.geocoder.start()  # builds the geocoding index in the background
        background = (
            fleet_background(url, pool) if settings.fleet_background else contextlib.nullcontext()
        )
        try:
            async with background:
                yield
        finally:
            await app.state.geocoder.close()
            await app.state.limiter.close()
            await pool.close()

    app = FastAPIOffline(
        static_url="/static/docs",
        title=settings.title,
        version="0.1.0",
        lifespan=lifespan,
        description="大丰区城市运行管理服务平台 — spatial core API. "
        "Coordinates are stored in CGCS2000 (EPSG:4490).",
    )
    app.state.settings = settings
    app.state.registry = default_registry()
    install_fleet_checks()  # geofences and violations evaluate every ingested batch
    install_problem_handlers(app)
    install_security(app, settings)
    for router in (*stateless_routers(), heatmap_router(), tiles_router()):
        app.include_router(router)
    check_policies(app)
    app.mount("/static", StaticFiles(directory=WEB_STATIC), name="web-static")
    mount_ogc(app, settings)  # last: the /ogc mount catches what the routes above do not
    return app


@cache
def stateless_routers() -> tuple[APIRouter, ...]:
    """Routers that hold no state or settings: built once per process, shared by its apps.

    (Building ~200 routes costs seconds; tests build many apps.) The tile and heatmap routers
    read settings when built and keep caches, so every app gets its own.
    """
    return (
        health_router(),
        auth_router(),
        users_router(),
        org_router(),
        audit_router(),
        case_intake_router(),
        case_boxes_router(),
        case_rules_router(),
        case_router(),
        fleet_router(),
        alarms_router(),
        layers_router(),
        crs_router(),
        geocode_router(),
        wfs_router(),
        wmts_router(),
        raster_router(),
        features_router(),
    )


_CHECKED: set[tuple[tuple[str, str], ...]] = set()


def check_policies(app: FastAPI) -> None:
    """Refuse to start when a route lacks exactly one policy (api/security/policy.py)."""
    key = tuple((type(r).__name__, str(getattr(r, "path", ""))) for r in app.routes)
    if key in _CHECKED:  # the same route table passed before in this process
        return
    unguarded = unguarded_routes(app.routes, doc_paths(app))
    if unguarded:
        raise ConfigurationError(f"routes without exactly one policy: {', '.join(unguarded)}")
    _CHECKED.add(key)


def install_security(app: FastAPI, settings: Settings) -> None:
    """Keys, accounts and the middleware chain.

    Outermost first: security headers, CORS, body limit, authentication, rate limit, write
    audit, routes.
    """
    keys = KeyStore.ensure(settings.security.key_dir)
    accounts = Accounts(keys, settings.security)
    authenticator = Authenticator(accounts, settings.security.basic_cache_s)
    app.state.accounts, app.state.authenticator = accounts, authenticator
    app.add_middleware(
        AuditWritesMiddleware, sensitive_reads=settings.security.audit_sensitive_reads
    )
    limiter = install_abuse_limits(
        app,
        settings,
        authentication=Middleware(AuthenticationMiddleware, authenticator=authenticator),
    )

    async def guard(ip: str | None, username: str) -> None:
        await login_guard(limiter, settings.limits, ip or "unknown", username)

    app.state.login_guard = guard
