"""Shared fixtures and helpers for the OGC API – Features tests (imported by test_ogc_*)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import psycopg
from fastapi.testclient import TestClient

from api.app import create_app
from layers.base import default_registry
from spatial.db import libpq_url
from spatial.settings import DatabaseSettings, OgcSettings, Settings

PROBLEM = "application/problem+json"
GEOJSON = "application/geo+json"
LAYER_IDS = default_registry().ids()
PUBLIC_LAYER_IDS = [spec.id for spec in default_registry() if spec.public]  # anonymous sees these
CJK = re.compile(r"[\u4e00-\u9fff]")


def make_client(db_url: str, **ogc: Any) -> TestClient:
    """A client over a fresh app (``ogc`` overrides ``OgcSettings``)."""
    settings = Settings(db=DatabaseSettings(url=db_url), ogc=OgcSettings(**ogc))
    return TestClient(create_app(settings), raise_server_exceptions=False)


def open_client(db_url: str) -> Iterator[TestClient]:
    """Body of a module-scoped client fixture (building an app takes about a second)."""
    with make_client(db_url) as client:
        yield client


def open_pg(db_url: str) -> Iterator[psycopg.Connection[Any]]:
    """Body of a module-scoped fixture: a read-only connection to the sample database."""
    with psycopg.connect(libpq_url(db_url), autocommit=True) as conn:
        conn.execute("SET search_path = city, public")
        conn.execute("SET TimeZone = 'UTC'")
        yield conn


def scalar(pg: psycopg.Connection[Any], query: str, *params: Any) -> Any:
    """First column of the first row."""
    row = pg.execute(query, params).fetchone()
    assert row is not None
    return row[0]


def ids(pg: psycopg.Connection[Any], query: str, *params: Any) -> list[str]:
    """First column of every row, as strings."""
    return [str(r[0]) for r in pg.execute(query, params).fetchall()]


def items(client: TestClient, layer: str, **params: Any) -> dict[str, Any]:
    """GET items as GeoJSON, asserting success."""
    r = client.get(f"/ogc/collections/{layer}/items", params={"f": "json", **params})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith(GEOJSON)
    return r.json()


def feature_ids(doc: dict[str, Any]) -> list[str]:
    """Feature ids of a FeatureCollection, as strings."""
    return [str(f["id"]) for f in doc["features"]]
