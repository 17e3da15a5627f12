"""Fleet registry: CRUD over HTTP, white lists, import with bad rows, export, gate events."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from spatial.crs import ClientCRS, to_storage
from spatial.settings import DatabaseSettings, Settings
from tests.auth_support import bearer
from tests.fleet_support import api_key, query

SQUARE_GCJ = {
    "type": "Polygon",
    "coordinates": [
        [[120.47, 33.2], [120.471, 33.2], [120.471, 33.201], [120.47, 33.201], [120.47, 33.2]]
    ],
}


@pytest.fixture
def app_client(scratch_url: str) -> Iterator[TestClient]:
    settings = Settings(db=DatabaseSettings(url=scratch_url))
    with TestClient(create_app(settings), raise_server_exceptions=False) as c:
        yield c


@pytest.fixture
def editor(scratch_url: str) -> dict[str, str]:
    key = api_key(scratch_url, ["layers:write", "data:import", "vehicles:read"])
    return {"X-API-Key": key}


def test_sample_registry_counts(client: TestClient) -> None:
    headers = bearer(client, "leader")
    sites = client.get("/api/v1/fleet/sites", headers=headers).json()
    kinds = {k: sum(1 for s in sites if s["kind"] == k) for k in ("工地", "消纳场")}
    assert kinds == {"工地": 33, "消纳场": 5}
    vehicles = client.get("/api/v1/fleet/vehicles", headers=headers).json()
    assert sum(1 for v in vehicles if v["kind"] == "渣土车") == 157
    assert sum(1 for v in vehicles if v["kind"] == "垃圾车") == 48
    assert len(client.get("/api/v1/fleet/companies", headers=headers).json()) == 10


def test_crud_with_gcj02_geometry(app_client: TestClient, editor: dict) -> None:
    company = app_client.post(
        "/api/v1/fleet/companies",
        headers=editor,
        json={"code": "QY900", "name": "测试运输有限公司"},
    )
    assert company.status_code == 201, company.text
    cid = company.json()["id"]
    site = app_client.post(
        "/api/v1/fleet/sites?crs=gcj02",
        headers=editor,
        json={
            "code": "GD900",
            "name": "测试工地",
            "kind": "工地",
            "company_id": cid,
            "geom": SQUARE_GCJ,
            "gate": {"type": "Point", "coordinates": [120.47, 33.2]},
        },
    )
    assert site.status_code == 201, site.text
    ring = site.json()["geom"]["coordinates"][0][0]
    ex, ey = to_storage(120.47, 33.2, ClientCRS.GCJ02)
    assert site.json()["geom"]["type"] == "MultiPolygon"
    assert ring[0][0] == pytest.approx(ex, abs=1e-6) and ring[0][1] == pytest.approx(ey, abs=1e-6)
    vehicle = app_client.post(
        "/api/v1/fleet/vehicles",
        headers=editor,
        json={"plate": "苏J·T9999", "kind": "渣土车", "company_id": cid},
    )
    assert vehicle.status_code == 201, vehicle.text
    vid = vehicle.json()["id"]
    term = app_client.post(
        "/api/v1/fleet/terminals",
        headers=editor,
        json={"terminal_id": "IMEI860000000001", "vehicle_id": vid},
    )
    assert term.status_code == 201, term.text
    patched = app_client.patch(
        f"/api/v1/fleet/vehicles/{vid}", headers=editor, json={"speed_limit_kmh": 45}
    )
    assert patched.status_code == 200 and patched.json()["speed_limit_kmh"] == 45
    got = app_client.get("/api/v1/fleet/terminals/IMEI860000000001", headers=editor)
    assert got.json()["vehicle_id"] == vid
    assert app_client.delete(f"/api/v1/fleet/vehicles/{vid}", headers=editor).status_code == 204
    assert app_client.get(f"/api/v1/fleet/vehicles/{vid}", headers=editor).status_code == 404


def test_bad_records_name_the_field(app_client: TestClient, editor: dict) -> None:
    plate = app_client.get("/api/v1/fleet/vehicles?limit=1", headers=editor).json()[0]["plate"]
    dup = app_client.post(
        "/api/v1/fleet/vehicles", headers=editor, json={"plate": plate, "kind": "渣土车"}
    )
    assert dup.status_code == 409 and dup.json()["errors"][0]["field"] == "plate"
    kind = app_client.post(
        "/api/v1/fleet/vehicles", headers=editor, json={"plate": "苏J00001", "kind": "飞机"}
    )
    assert kind.status_code == 422 and kind.json()["errors"][0]["field"] == "kind"
    fk = app_client.post(
        "/api/v1/fleet/vehicles",
        headers=editor,
        json={"plate": "苏J00002", "kind": "渣土车", "company_id": 99999},
    )
    assert fk.status_code == 422 and fk.json()["errors"][0]["field"] == "company_id"
    line_as_site = app_client.post(
        "/api/v1/fleet/sites",
        headers=editor,
        json={
            "code": "GD901",
            "name": "x",
            "kind": "工地",
            "geom": {"type": "LineString", "coordinates": [[120.4, 33.2], [120.5, 33.2]]},
        },
    )
    assert line_as_site.status_code == 422, line_as_site.text
    period = app_client.post(
        "/api/v1/fleet/permits",
        headers=editor,
        json={
            "permit_no": "P1",
            "kind": "出土许可",
            "site_id": 1,
            "valid_from": "2026-05-01",
            "valid_to": "2026-01-01",
        },
    )
    assert period.status_code == 422 and period.json()["errors"][0]["field"] == "period"


def test_whitelist_excludes_expired_permits(client: TestClient, db_url: str) -> None:
    headers = bearer(client, "leader")
    rows = client.get("/api/v1/fleet/whitelist", headers=headers).json()
    loading = {r["vehicle_id"] for r in rows if r["role"] == "load"}
    unloading = {r["vehicle_id"] for r in rows if r["role"] == "unload"}
    assert loading == unloading and 100 < len(loading) < 157
    expired = query(
        db_url,
        "SELECT DISTINCT vehicle_id FROM city.fleet_permits"
        " WHERE kind = '运输许可' AND vehicle_id IS NOT NULL"
        " AND valid_to < current_date",
    )
    assert expired and not loading & {v for (v,) in expired}
    site = rows[0]["site_id"]
    one = client.get(f"/api/v1/fleet/whitelist?site_id={site}&role=load", headers=headers).json()
    assert one and {r["site_id"] for r in one} == {site}


CSV = (
    "plate,kind,company_code,sealed_capable,speed_limit_kmh\n"
    "苏J·A0001,渣土车,QY001,是,50\n"
    "苏JA0002,渣土车,QY999,否,50\n"
    "苏JA0003,火箭,QY001,否,50\n"
    "苏JA0004,垃圾车,QY010,maybe,60\n"
    "苏JA0005,垃圾车,,否,60\n"
)


def test_import_keeps_good_rows_and_reports_bad_ones(
    app_client: TestClient, editor: dict, scratch_url: str
) -> None:
    files = {"file": ("vehicles.csv", CSV.encode("utf-8"), "text/csv")}
    r = app_client.post("/api/v1/fleet/vehicles/import", headers=editor, files=files)
    assert r.status_code == 200, r.text
    report = r.json()
    assert report["created"] == 2 and report["rejected"] == 3
    assert {(e["row"], e["field"]) for e in report["errors"]} == {
        (3, "company_code"),
        (4, "kind"),
        (5, "sealed_capable"),
    }
    stored = query(
        scratch_url,
        "SELECT plate FROM city.fleet_vehicles WHERE plate LIKE '苏JA000%%' ORDER BY plate",
    )
    assert stored == [("苏JA0001",), ("苏JA0005",)]
    again = app_client.post("/api/v1/fleet/vehicles/import", headers=editor, files=files).json()
    assert again["created"] == 0 and again["updated"] == 2


def test_export_imports_back(app_client: TestClient, editor: dict) -> None:
    for fmt in ("csv", "xlsx"):
        exported = app_client.get(f"/api/v1/fleet/sites/export?format={fmt}", headers=editor)
        assert exported.status_code == 200
        files = {"file": (f"sites.{fmt}", exported.content, "application/octet-stream")}
        back = app_client.post("/api/v1/fleet/sites/import", headers=editor, files=files).json()
        assert back["rejected"] == 0 and back["updated"] == 43, back["errors"][:3]


def test_gate_events_match_plates(app_client: TestClient, scratch_url: str) -> None:
    key = {"X-API-Key": api_key(scratch_url, ["telemetry:write"])}
    [(site_id, plate)] = query(
        scratch_url,
        "SELECT site_id, plate FROM city.fleet_whitelist() WHERE role = 'load' LIMIT 1",
    )
    at = datetime.now(UTC).isoformat()
    known = app_client.post(
        "/api/v1/fleet/gate-events",
        headers=key,
        json={
            "site_id": site_id,
            "plate": plate,
            "direction": "out",
            "source": "weighbridge",
            "weight_kg": 31000,
            "at": at,
        },
    )
    assert known.status_code == 201, known.text
    assert known.json()["vehicle_id"] and known.json()["whitelisted"] is True
    black = app_client.post(
        "/api/v1/fleet/gate-events",
        headers=key,
        json={"site_id": site_id, "plate": "苏J 黑0001", "direction": "in", "at": at},
    )
    assert black.status_code == 201
    assert black.json()["vehicle_id"] is None and black.json()["whitelisted"] is False
    nosite = app_client.post(
        "/api/v1/fleet/gate-events",
        headers=key,
        json={"site_id": 99999, "plate": plate, "direction": "in", "at": at},
    )
    assert nosite.status_code == 422


def test_vehicle_positions_layer_needs_vehicles_read(client: TestClient) -> None:
    url = "/ogc/collections/vehicle_positions/items?f=json&limit=5"
    assert client.get(url, headers=bearer(client, "dispatcher")).status_code == 403
    r = client.get(url, headers=bearer(client, "leader"))
    assert r.status_code == 200, r.text
    assert r.json()["numberMatched"] == 217
    assert date.today().year > 2000
