"""``/health``: is the database up, and which PostgreSQL/PostGIS versions serve us."""

from __future__ import annotations

from typing import Annotated

import psycopg
from fastapi import APIRouter, Depends
from pydantic import BaseModel

from api.deps import get_conn
from api.security.policy import public


class Health(BaseModel):
    """Health report."""

    status: str
    database: str
    postgresql: str
    postgis: str
    geos: str
    proj: str
    storage_crs: str = "http://www.opengis.net/def/crs/EPSG/0/4490"


def health_router() -> APIRouter:
    """Build the health router."""
    router = APIRouter(tags=["系统 (system)"], dependencies=[Depends(public)])

    @router.get(
        "/health",
        response_model=Health,
        operation_id="getHealth",
        summary="Service and database health",
    )
    async def health(conn: Annotated[psycopg.AsyncConnection, Depends(get_conn)]) -> Health:
        row = await (
            await conn.execute(
                "SELECT current_database(), current_setting('server_version'),"
                " postgis_lib_version(), postgis_geos_version(), postgis_proj_version()"
            )
        ).fetchone()
        assert row is not None  # noqa: S101 - a SELECT without FROM always returns a row
        db, pg, postgis, geos, proj = row
        return Health(
            status="ok", database=db, postgresql=pg, postgis=postgis, geos=geos, proj=proj
        )

    return router
