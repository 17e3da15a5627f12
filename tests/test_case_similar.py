"""Similar cases (相似案卷) on the GiST index, and the cross-grid reminder (跨网格智能提醒)."""

from __future__ import annotations

import asyncio
import math
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import psycopg
import pytest

from layers.cases import crossgrid, similar
from spatial.crs import ClientCRS, from_storage
from spatial.db import libpq_url
from tests.case_support import auth, case_client, user_id

T = TypeVar("T")
CLASS = "3209040102"  # 事件 暴露垃圾
OTHER_CLASS = "3209040103"
AT = datetime(2026, 5, 12, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai"))


def arun(url: str, fn: Callable[[psycopg.AsyncConnection], Awaitable[T]]) -> T:
    async def main() -> T:
        async with await psycopg.AsyncConnection.connect(libpq_url(url), autocommit=True) as conn:
            return await fn(conn)

    return asyncio.run(main())


def query(url: str, sql: str, args: Any = ()) -> list[tuple]:
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        cur = conn.execute(sql, args)
        return cur.fetchall() if cur.description else []


def origin(url: str) -> tuple[float, float]:
    """A point inside the demo inspector's first responsibility grid."""
    return query(
        url,
        "SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(g.geom) p"
        " FROM city.inspector_grids ig JOIN city.users u ON u.id = ig.user_id"
        " JOIN city.responsibility_grids g ON g.code = ig.grid_code"
        " WHERE u.username = 'inspector' ORDER BY g.code LIMIT 1) x",
    )[0]


def east(lon: float, lat: float, metres: float) -> tuple[float, float]:
    return lon + metres / (111_320.0 * math.cos(math.radians(lat))), lat


def add(
    url: str,
    lon: float,
    lat: float,
    *,
    class_code: str = CLASS,
    stage: str = "reported",
    days_ago: float = 1,
    part_code: str | None = None,
) -> int:
    rows = query(
        url,
        "INSERT INTO city.cases (case_no, source, category, class_code, description, stage,"
        " status, reported_at, part_code, geom) VALUES (%s, 'inspector', '事件', %s, '测试',"
        " %s, '测试', %s, %s, ST_SetSRID(ST_MakePoint(%s, %s), 4490)) RETURNING id",
        (
            f"S{uuid.uuid4().hex[:12]}",
            class_code,
            stage,
            AT - timedelta(days=days_ago),
            part_code,
            lon,
            lat,
        ),
    )
    return int(rows[0][0])


def find(url: str, lon: float, lat: float, **kwargs: Any) -> list[similar.SimilarCase]:
    args = {"category": "事件", "class_code": CLASS, "lon": lon, "lat": lat, "at": AT} | kwargs
    return arun(url, lambda c: similar.find_similar(c, **args))


@pytest.fixture
def scene(scratch_url: str) -> dict[str, Any]:
    lon, lat = origin(scratch_url)
    part = query(scratch_url, "SELECT code FROM city.parts ORDER BY code LIMIT 1")[0][0]
    ids = {
        "near": add(scratch_url, *east(lon, lat, 20)),
        "mid": add(scratch_url, *east(lon, lat, 40), days_ago=3),
        "far": add(scratch_url, *east(lon, lat, 80)),
        "other_class": add(scratch_url, *east(lon, lat, 10), class_code=OTHER_CLASS),
        "old_closed": add(scratch_url, *east(lon, lat, 10), stage="closed", days_ago=30),
        "old_open": add(scratch_url, *east(lon, lat, 30), stage="dispatched", days_ago=30),
        "recent_closed": add(scratch_url, *east(lon, lat, 15), stage="closed", days_ago=2),
        "merged": add(scratch_url, *east(lon, lat, 5), stage="merged"),
        "same_part": add(scratch_url, *east(lon, lat, 45), days_ago=6, part_code=part),
    }
    return {"url": scratch_url, "lon": lon, "lat": lat, "part": part, "ids": ids}


def test_radius_window_and_class(scene: dict[str, Any]) -> None:
    ids = scene["ids"]
    found = find(scene["url"], scene["lon"], scene["lat"])
    got = {s.id for s in found}
    expected = {"near", "mid", "old_open", "recent_closed", "same_part"}
    assert got == {ids[k] for k in expected}
    assert all(0 < s.distance_m <= 50 for s in found)
    wider = {s.id for s in find(scene["url"], scene["lon"], scene["lat"], radius_m=100)}
    assert ids["far"] in wider
    longer = {s.id for s in find(scene["url"], scene["lon"], scene["lat"], window_days=60)}
    assert ids["old_closed"] in longer


def test_ranking(scene: dict[str, Any]) -> None:
    ids = scene["ids"]
    plain = find(scene["url"], scene["lon"], scene["lat"])
    assert plain[0].id == ids["recent_closed"] or plain[0].id == ids["near"]
    assert [s.score for s in plain] == sorted((s.score for s in plain), reverse=True)
    by_part = find(scene["url"], scene["lon"], scene["lat"], part_code=scene["part"])
    assert by_part[0].id == ids["same_part"] and by_part[0].same_part
    assert not any(s.same_part for s in by_part[1:])


def test_exclusion_and_limit(scene: dict[str, Any]) -> None:
    ids = scene["ids"]
    found = find(scene["url"], scene["lon"], scene["lat"], exclude_id=ids["near"], limit=2)
    assert len(found) == 2 and ids["near"] not in {s.id for s in found}


def test_configured_defaults(scene: dict[str, Any]) -> None:
    query(
        scene["url"],
        "UPDATE city.workflow_definitions SET definition = jsonb_set(definition, '{rules}',"
        " coalesce(definition->'rules', '{}') || '{\"similar_radius_m\": 100,"
        ' "similar_window_days": 60}\')',
    )
    got = {s.id for s in find(scene["url"], scene["lon"], scene["lat"])}
    assert {scene["ids"]["far"], scene["ids"]["old_closed"]} <= got


def test_similar_to_a_case(scene: dict[str, Any]) -> None:
    near = scene["ids"]["near"]
    found = arun(scene["url"], lambda c: similar.similar_to_case(c, near))
    assert found is not None and near not in {s.id for s in found}
    assert scene["ids"]["mid"] in {s.id for s in found}
    assert arun(scene["url"], lambda c: similar.similar_to_case(c, 987654321)) is None


def test_api(scene: dict[str, Any]) -> None:
    glon, glat = from_storage(scene["lon"], scene["lat"], ClientCRS.GCJ02)
    with case_client(scene["url"]) as client:
        headers = auth(client, "acceptor")
        got = client.get(
            "/api/v1/cases/similar",
            params={
                "category": "事件",
                "class_code": CLASS,
                "lon": glon,
                "lat": glat,
                "crs": "gcj02",
                "at": AT.isoformat(),
            },
            headers=headers,
        )
        assert got.status_code == 200, got.text
        assert got.json()["radius_m"] == 50 and got.json()["window_days"] == 7
        assert scene["ids"]["near"] in [i["id"] for i in got.json()["items"]]
        near = scene["ids"]["near"]
        by_case = client.get(f"/api/v1/cases/{near}/similar", headers=headers)
        assert by_case.status_code == 200
        assert near not in [i["id"] for i in by_case.json()["items"]]
        bad = client.get(
            "/api/v1/cases/similar",
            params={"category": "事件", "class_code": CLASS, "lon": 1, "lat": 1, "crs": "x"},
            headers=headers,
        )
        assert bad.status_code == 400
        assert bad.json()["errors"][0]["field"] == "crs"


def test_explain_uses_the_gist_index(scratch_url: str) -> None:
    lon, lat = origin(scratch_url)
    query(
        scratch_url,
        "INSERT INTO city.cases (case_no, source, category, class_code, description, stage,"
        " status, reported_at, geom)"
        " SELECT 'E' || i, 'inspector', '事件', '32090401' || lpad((1 + i %% 20)::text, 2, '0'),"
        " '测试', 'reported', '测试', %s - i * interval '1 hour',"
        " ST_SetSRID(ST_MakePoint(%s + (i %% 50) * 0.001 - 0.025,"
        " %s + (i / 50) * 0.001 - 0.02), 4490) FROM generate_series(1, 2000) i",
        (AT, lon, lat),
    )
    query(scratch_url, "ANALYZE city.cases")
    sql, args = similar.similar_query(
        category="事件",
        class_code=CLASS,
        lon=lon,
        lat=lat,
        at=AT,
        part_code=None,
        exclude_id=None,
        radius_m=50,
        window_days=7,
        limit=10,
    )
    plan = "\n".join(r[0] for r in query(scratch_url, "EXPLAIN " + sql, args))
    assert "idx_cases_geom" in plan, plan


# --- cross-grid reminder -------------------------------------------------------------------


def other_grid_point(url: str) -> tuple[str, float, float]:
    """A point in a responsibility grid that is not the demo inspector's."""
    code, lon, lat = query(
        url,
        "SELECT g.code, ST_X(ST_PointOnSurface(g.geom)), ST_Y(ST_PointOnSurface(g.geom))"
        " FROM city.responsibility_grids g WHERE g.code NOT IN (SELECT grid_code"
        " FROM city.inspector_grids ig JOIN city.users u ON u.id = ig.user_id"
        " WHERE u.username = 'inspector') ORDER BY g.code LIMIT 1",
    )[0]
    return code, lon, lat


def test_cross_grid(db_url: str) -> None:
    inspector = user_id(db_url, "inspector")
    lon, lat = origin(db_url)
    assert arun(db_url, lambda c: crossgrid.cross_grid(c, inspector, lon, lat)) is None
    code, olon, olat = other_grid_point(db_url)
    hit = arun(db_url, lambda c: crossgrid.cross_grid(c, inspector, olon, olat))
    assert hit is not None and hit.grid_code == code
    assert hit.own_grids and code not in hit.own_grids
    assert hit.message.startswith("跨网格上报") and hit.distance_m is not None
    outside = arun(db_url, lambda c: crossgrid.cross_grid(c, inspector, 100.0, 30.0))
    assert outside is not None and outside.grid_code is None
    dispatcher = user_id(db_url, "dispatcher")
    assert arun(db_url, lambda c: crossgrid.cross_grid(c, dispatcher, olon, olat)) is None


def test_cross_grid_api(client: Any, db_url: str) -> None:
    _code, olon, olat = other_grid_point(db_url)
    wlon, wlat = from_storage(olon, olat, ClientCRS.WGS84)
    headers = auth(client, "inspector")
    got = client.get(
        "/api/v1/cases/cross-grid",
        params={"lon": wlon, "lat": wlat, "crs": "wgs84"},
        headers=headers,
    )
    assert got.status_code == 200, got.text
    assert got.json()["cross_grid"] is True and got.json()["crs"] == "wgs84"
    lon, lat = origin(db_url)
    inside = client.get(
        "/api/v1/cases/cross-grid", params={"lon": lon, "lat": lat}, headers=headers
    )
    assert inside.json()["cross_grid"] is False
    denied = client.get(
        "/api/v1/cases/cross-grid",
        params={"lon": lon, "lat": lat},
        headers=auth(client, "dispatcher"),
    )
    assert denied.status_code == 403
