"""Read the geocoding base from PostGIS (one statement per kind) and build the index."""

from __future__ import annotations

import asyncio

import psycopg

from geocoder.index import GeoIndex, Rows, build_index
from spatial.db import libpq_url

AREAS = """
SELECT 'district', code, name, alias, old_name, NULL, NULL, ST_X(p), ST_Y(p)
  FROM districts, ST_PointOnSurface(geom) p
UNION ALL
SELECT 'street', code, name, alias, old_name, code, NULL, ST_X(p), ST_Y(p)
  FROM streets, ST_PointOnSurface(geom) p
UNION ALL
SELECT 'community', code, name, alias, old_name, street_code, code, ST_X(p), ST_Y(p)
  FROM communities, ST_PointOnSurface(geom) p
"""
GRIDS = """
SELECT code, community_code, street_code, ST_X(p), ST_Y(p)
  FROM unit_grids, ST_PointOnSurface(geom) p ORDER BY code
"""
ROADS = """
SELECT code, name, alias, old_name, ST_AsBinary(ST_LineMerge(geom)), ST_X(p), ST_Y(p)
  FROM roads, ST_LineInterpolatePoint(
    (SELECT d.geom FROM ST_Dump(geom) d ORDER BY ST_Length(d.geom) DESC LIMIT 1), 0.5) p
 ORDER BY code
"""
COMPOUNDS = """
SELECT c.code, c.name, c.alias, c.old_name, c.street_code, c.community_code,
       (SELECT u.code FROM unit_grids u WHERE ST_Covers(u.geom, p) ORDER BY u.code LIMIT 1),
       ST_X(p), ST_Y(p)
  FROM compounds c, ST_PointOnSurface(c.geom) p ORDER BY c.code
"""
PLATES = """
SELECT code, kind, road_code, compound_code, base_name, number, suffix, standard_address,
       grid_code, community_code, ST_X(geom), ST_Y(geom)
  FROM addresses ORDER BY code
"""
POIS = """
SELECT p.code, p.name, p.alias, p.old_name, p.category, p.address_code, p.grid_code,
       u.community_code, a.standard_address, ST_X(p.geom), ST_Y(p.geom)
  FROM pois p
  LEFT JOIN unit_grids u ON u.code = p.grid_code
  LEFT JOIN addresses a ON a.code = p.address_code
 ORDER BY p.code
"""

SHAPES = """
SELECT 'district', code, ST_AsBinary(geom), NULL, NULL FROM districts
UNION ALL
SELECT 'grid', code, ST_AsBinary(geom), responsibility_grid_code, NULL FROM unit_grids
UNION ALL
SELECT 'compound', code, ST_AsBinary(geom), NULL, NULL FROM compounds
UNION ALL
SELECT 'responsibility', code, NULL, name, inspector_name FROM responsibility_grids
"""


async def load_rows(conn: psycopg.AsyncConnection) -> Rows:
    """Fetch every geocodable place (schema ``city`` is on the pool's search_path)."""
    fetched = []
    for sql in (AREAS, GRIDS, ROADS, COMPOUNDS, PLATES, POIS, SHAPES):
        cur = await conn.execute(sql)
        fetched.append(await cur.fetchall())
    return Rows(*fetched)


async def load_index(conn: psycopg.AsyncConnection) -> GeoIndex:
    """Fetch the rows, then build the index in a worker thread (the event loop stays free)."""
    rows = await load_rows(conn)
    return await asyncio.to_thread(build_index, rows)


async def load_index_from_url(url: str) -> GeoIndex:
    """Build the index from a database URL (tests, benchmarks, scripts)."""
    options = "-c search_path=city,public"
    async with await psycopg.AsyncConnection.connect(libpq_url(url), options=options) as conn:
        return await load_index(conn)
