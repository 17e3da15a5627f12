"""The FastAPI application factory: settings in, app out; no globals at import."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi_offline import FastAPIOffline

from api.ogc.items import features_router
from api.ogc.mount import mount_ogc
from api.problems import install_problem_handlers
from api.raster import raster_router
from api.routers.crs import crs_router
from api.routers.geocode import geocode_router
from api.routers.health import health_router
from api.routers.layers import layers_router
from api.routers.tiles import tiles_router
from api.wfs.router import wfs_router
from api.wmts import wmts_router
from geocoder.service import GeocoderService
from layers.base import default_registry
from spatial.db import make_pool
from spatial.settings import Settings


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
        try:
            yield
        finally:
            await app.state.geocoder.close()
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
    install_problem_handlers(app)
    for router in (
        health_router(),
        layers_router(),
        crs_router(),
        geocode_router(),
        wfs_router(),
        raster_router(),
        wmts_router(),
        tiles_router(),
        features_router(),
    ):
        app.include_router(router)
    mount_ogc(app, settings)  # last: the /ogc mount catches what the routes above do not
    return app
