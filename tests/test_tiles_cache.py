"""The tile cache: hits, invalidation by layer version (trigger, NOTIFY, TTL), the loader path."""

from __future__ import annotations

import time

import psycopg
import pytest
from fastapi.testclient import TestClient

from data_samples.generate import SampleData, Table
from data_samples.load import write
from spatial.db import libpq_url
from spatial.tilecache import LayerVersions, TileCache
from spatial.tms import TileGrid, tile_grids
from tests.security_support import basic
from tests.tiles_support import (
    GRID_IDS,
    GRIDS,
    LAYERS,
    data_tile,
    decode,
    ogc_tile_path,
    open_client,
)

PARTS = next(s for s in LAYERS if s.id == "parts")
CASES = next(s for s in LAYERS if s.id == "cases")
LON, LAT = 120.4801, 33.2001
INSERT_CASE = (
    "INSERT INTO city.cases (case_no, source, category, class_code, description, status, geom) "
    "VALUES ('TILE-1', 'inspector', '事件', '3209040101', '井盖破损', '待受理', "
    "ST_SetSRID(ST_Point(%s, %s), 4490))"
)


def _without_cases(url: str) -> None:
    """Empty the cases table (the sample history fills it) so one insert decides the tile."""
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        conn.execute("TRUNCATE city.cases CASCADE")


def _versions(url: str) -> dict[str, int]:
    with psycopg.connect(libpq_url(url)) as conn:
        return dict(conn.execute("SELECT layer, version FROM city.layer_versions").fetchall())


def _wait_for(client: TestClient, path: str, status: int, seconds: float = 5.0):
    deadline = time.monotonic() + seconds
    while True:
        r = client.get(path)
        if r.status_code == status or time.monotonic() > deadline:
            return r
        time.sleep(0.05)


def test_second_request_is_a_cache_hit(client: TestClient, psql_url: str) -> None:
    path = ogc_tile_path(
        PARTS,
        tile_grids()["WebMercatorQuad"],
        data_tile(psql_url, PARTS, tile_grids()["WebMercatorQuad"]),
    )
    first, second = client.get(path), client.get(path)
    assert (first.headers["x-cache"], second.headers["x-cache"]) == ("miss", "hit")
    assert first.content == second.content and first.headers["etag"] == second.headers["etag"]
    assert client.app.state.tiles.cache.stats()["hits"] == 1


@pytest.mark.parametrize("grid", GRIDS, ids=GRID_IDS)
def test_insert_invalidates_the_tile_at_once(
    scratch_url: str, monkeypatch: pytest.MonkeyPatch, grid: TileGrid
) -> None:
    """With a 10-minute version TTL only the trigger's NOTIFY can make the new case visible."""
    _without_cases(scratch_url)
    monkeypatch.setenv("CITY_TILES_VERSION_TTL_S", "600")
    tile = grid.tms.tile(LON, LAT, grid.zoom_range(CASES.tiles).start + 5)
    path = ogc_tile_path(CASES, grid, tile)
    for client in open_client(scratch_url, basic("acceptor")):  # cases need cases:read
        before = client.get(path)
        assert before.status_code == 204 and client.get(path).headers["x-cache"] == "hit"
        with psycopg.connect(libpq_url(scratch_url), autocommit=True) as conn:
            conn.execute(INSERT_CASE, (LON, LAT))
        after = _wait_for(client, path, 200)
        assert after.status_code == 200 and after.headers["etag"] != before.headers["etag"]
        [feature] = decode(after.content)["cases"]["features"]
        assert feature["properties"]["case_no"] == "TILE-1"


def test_without_listener_the_ttl_bounds_staleness(
    scratch_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    _without_cases(scratch_url)
    monkeypatch.setenv("CITY_TILES_LISTEN", "false")
    monkeypatch.setenv("CITY_TILES_VERSION_TTL_S", "0.2")
    grid = tile_grids()["WebMercatorQuad"]
    path = ogc_tile_path(CASES, grid, grid.tms.tile(LON, LAT, 16))
    for client in open_client(scratch_url, basic("acceptor")):
        assert client.get(path).status_code == 204
        with psycopg.connect(libpq_url(scratch_url), autocommit=True) as conn:
            conn.execute(INSERT_CASE, (LON, LAT))
        time.sleep(0.3)
        assert client.get(path).status_code == 200


def test_one_bump_per_transaction_and_none_on_rollback(scratch_url: str) -> None:
    start = _versions(scratch_url)["parts"]
    with psycopg.connect(libpq_url(scratch_url)) as conn:
        conn.execute(
            "UPDATE city.parts SET note = 'a' WHERE code = (SELECT min(code) FROM city.parts)"
        )
        bumped = conn.execute("SELECT version FROM city.layer_versions WHERE layer = 'parts'")
        first = bumped.fetchone()[0]
        conn.execute(
            "UPDATE city.parts SET note = 'b' WHERE code = (SELECT max(code) FROM city.parts)"
        )
        again = conn.execute("SELECT version FROM city.layer_versions WHERE layer = 'parts'")
        assert first > start and again.fetchone()[0] == first
        conn.rollback()
    assert _versions(scratch_url)["parts"] == start


def test_busy_layers_bump_at_commit_without_holding_the_lock(scratch_url: str) -> None:
    """cases (migration 0010): the bump runs at commit, so writers do not queue on it."""
    start = _versions(scratch_url)["cases"]
    with (
        psycopg.connect(libpq_url(scratch_url)) as conn,
        psycopg.connect(libpq_url(scratch_url), autocommit=True) as other,
    ):
        conn.execute(INSERT_CASE, (LON, LAT))
        conn.execute("UPDATE city.cases SET level = '紧急' WHERE case_no = 'TILE-1'")
        assert _versions(scratch_url)["cases"] == start  # nothing bumped (or locked) yet
        other.execute("SET lock_timeout = '1s'")  # a second writer is not blocked meanwhile
        other.execute(
            "UPDATE city.cases SET level = '一般' WHERE id = (SELECT min(id) FROM city.cases)"
        )
        conn.commit()
    assert _versions(scratch_url)["cases"] > start
    rolled = _versions(scratch_url)["cases"]
    with psycopg.connect(libpq_url(scratch_url)) as conn:
        conn.execute("UPDATE city.cases SET level = '紧急' WHERE case_no = 'TILE-1'")
        conn.rollback()
    assert _versions(scratch_url)["cases"] == rolled


def test_sample_loader_truncate_and_copy_bump_versions(scratch_url: str) -> None:
    with psycopg.connect(libpq_url(scratch_url)) as conn:
        rows = conn.execute(
            "SELECT code, name, category, grid_code, data_source, encode(ST_AsEWKB(geom), 'hex') "
            "FROM city.pois"
        ).fetchall()
    before = _versions(scratch_url)
    table = Table("pois", ("code", "name", "category", "grid_code", "data_source", "geom"), rows)
    write(scratch_url, SampleData("small", [table]), progress=lambda _msg: None)
    after = _versions(scratch_url)
    assert after["pois"] > before["pois"] and after["cases"] > before["cases"]
    assert after["parts"] == before["parts"]


def test_lru_evicts_by_bytes() -> None:
    cache = TileCache(max_bytes=10_000)
    for i in range(10):
        cache.put(("parts", 1, "WebMercatorQuad", 15, i, 0), b"x" * 1_000)
    assert cache.size <= 10_000 and cache.get(("parts", 1, "WebMercatorQuad", 15, 0, 0)) is None
    assert cache.get(("parts", 1, "WebMercatorQuad", 15, 9, 0)) == b"x" * 1_000


def test_versions_only_go_up() -> None:
    versions = LayerVersions(ttl_s=60)
    versions.notify("parts:20")
    versions.notify("parts:10")
    versions.notify("garbage")
    versions.load([("parts", 15), ("cases", 3)])
    assert (versions.get("parts"), versions.get("cases"), versions.stale) == (20, 3, False)
