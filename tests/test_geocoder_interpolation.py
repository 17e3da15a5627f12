"""Door-number interpolation on a private copy of the sample (a plate is removed).

Kept apart from the other geocoder tests: ``scratch_url`` terminates every connection to the
sample database, which would break a module-scoped client's pooled connections.
"""

from __future__ import annotations

import math
import time

import psycopg
from fastapi.testclient import TestClient

from api.app import create_app
from spatial.db import libpq_url
from spatial.settings import DatabaseSettings, Settings


def metres(a: tuple[float, float], b: tuple[float, float]) -> float:
    dx = (a[0] - b[0]) * 111_320.0 * math.cos(math.radians(a[1]))
    return math.hypot(dx, (a[1] - b[1]) * 110_574.0)


def test_gap_in_plates_is_interpolated(scratch_url: str) -> None:
    with psycopg.connect(libpq_url(scratch_url)) as conn:
        x, y, grid = conn.execute(
            "SELECT ST_X(geom), ST_Y(geom), grid_code FROM city.addresses WHERE code = %s",
            ("REW006M0023",),
        ).fetchone()
        conn.execute("DELETE FROM city.pois WHERE address_code = 'REW006M0023'")
        conn.execute("DELETE FROM city.addresses WHERE code = 'REW006M0023'")
    with TestClient(create_app(Settings(db=DatabaseSettings(url=scratch_url)))) as c:
        body = c.get("/api/v1/geocode", params={"q": "幸福路23号"}).json()
    best = body["candidates"][0]
    assert best["interpolated"] and "按21号与25号插值" in best["note"]
    assert metres((best["point"]["lon"], best["point"]["lat"]), (x, y)) < 1.0
    assert best["unit_grid"] == grid


def test_index_follows_table_changes(scratch_url: str) -> None:
    """A renamed compound is found once the service notices the tables changed."""
    with TestClient(create_app(Settings(db=DatabaseSettings(url=scratch_url)))) as c:
        assert c.get("/api/v1/geocode", params={"q": "莱茵城5栋"}).json()["candidates"]
        service = c.app.state.geocoder
        assert c.portal.call(service.refresh_if_changed) is False
        with psycopg.connect(libpq_url(scratch_url)) as conn:
            conn.execute("UPDATE city.compounds SET name = '莱茵花园', old_name = '莱茵城' "
                         "WHERE code = 'Q0002'")  # fmt: skip
        # The writer's statistics reach pg_stat_user_tables asynchronously (when its backend
        # flushes them, at the latest when it exits); the service polls, and so does the test.
        deadline = time.monotonic() + 15
        while not c.portal.call(service.refresh_if_changed):
            assert time.monotonic() < deadline, "the change was never noticed"
            time.sleep(0.2)
        best = c.get("/api/v1/geocode", params={"q": "莱茵花园"}).json()["candidates"][0]
        assert best["code"] == "Q0002" and best["method"] == "name"
        former = c.get("/api/v1/geocode", params={"q": "莱茵城"}).json()["candidates"][0]
        assert former["code"] == "Q0002" and former["method"] == "old_name"
