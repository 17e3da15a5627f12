"""Geocoding quality on the small sample: ≥500 perturbed queries and reverse at real plates.

The probes come from ``geocoder.quality`` (seeded; ground truth read from the tables, not from
the index): prefixes full or dropped, full-width and Chinese-numeral numbers, 號/#, building
suffix variants, unit/room, relative descriptions, aliases and former names, a wrong street,
pinyin and initials, one wrong or missing character (alone and combined with the rest).
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from geocoder.forward import geocode
from geocoder.index import GeoIndex
from geocoder.loader import load_index_from_url
from geocoder.quality import Probe, Truth, fetch_truth, forward_probes, reverse_probes
from spatial.crs import ClientCRS, from_storage
from spatial.db import libpq_url
from spatial.settings import DatabaseSettings, Settings

MIN_TOP1 = 0.97


@pytest.fixture(scope="module")
def truth(db_url: str) -> Truth:
    return fetch_truth(libpq_url(db_url))


@pytest.fixture(scope="module")
def index(db_url: str) -> GeoIndex:
    return asyncio.run(load_index_from_url(db_url))


@pytest.fixture(scope="module")
def probes(truth: Truth) -> list[Probe]:
    return forward_probes(truth)


@pytest.fixture(scope="module")
def qclient(db_url: str) -> Iterator[TestClient]:
    with TestClient(create_app(Settings(db=DatabaseSettings(url=db_url)))) as c:
        yield c


def test_enough_varied_and_deterministic_probes(truth: Truth, probes: list[Probe]) -> None:
    kinds = Counter(p.perturbation for p in probes)
    assert len(probes) >= 500
    assert {"homophone", "missing_char", "wrong_char", "fullwidth", "alias", "initials"} <= set(
        kinds
    )
    assert forward_probes(truth) == probes


def test_forward_top1_accuracy(index: GeoIndex, probes: list[Probe]) -> None:
    failures = []
    per_kind: Counter[str] = Counter()
    for p in probes:
        result = geocode(index, p.query, limit=1)
        got = result.matches[0].place.code if result.matches else None
        per_kind[p.perturbation] += 1
        if got != p.expected:
            failures.append(f"{p.perturbation}: {p.query!r} → {got}, expected {p.expected}")
    accuracy = 1 - len(failures) / len(probes)
    print(f"\ntop-1 accuracy {accuracy:.2%} on {len(probes)} probes: {dict(per_kind)}")
    assert accuracy >= MIN_TOP1, "\n".join(failures[:30])


def test_http_agrees_with_the_engine(
    index: GeoIndex, probes: list[Probe], qclient: TestClient
) -> None:
    for p in probes[::10]:
        body = qclient.get("/api/v1/geocode", params={"q": p.query, "limit": 1}).json()
        best = body["candidates"][0] if body["candidates"] else None
        engine = geocode(index, p.query, limit=1).matches[0]
        code = None if engine.interpolated else engine.place.code
        assert best is not None and best["code"] == code, p


@pytest.mark.parametrize("crs", ["cgcs2000", "gcj02", "bd09"])
def test_reverse_returns_the_plate_and_its_grid(
    truth: Truth, qclient: TestClient, crs: str
) -> None:
    wrong = []
    points = reverse_probes(truth, count=100)
    for code, grid, x, y in points:
        lon, lat = from_storage(x, y, ClientCRS(crs))
        body = qclient.get("/api/v1/reverse", params={"lon": lon, "lat": lat, "crs": crs}).json()
        plate = body["plate"]["code"] if body["plate"] else None
        if (plate, body["unit_grid"]) != (code, grid) or not body["inside_district"]:
            wrong.append((code, grid, plate, body["unit_grid"]))
    assert not wrong, wrong[:10]


def test_memory_and_postgis_reverse_agree(truth: Truth, qclient: TestClient) -> None:
    """The in-memory trees and the PostGIS query give the same answer (random points)."""
    rng = random.Random(7)
    near_plates = reverse_probes(truth, count=60)
    points = [
        (x + rng.uniform(-4e-4, 4e-4), y + rng.uniform(-4e-4, 4e-4)) for *_, x, y in near_plates
    ]
    points += [(rng.uniform(120.43, 120.53), rng.uniform(33.16, 33.24)) for _ in range(40)]
    keys = (
        "inside_district",
        "unit_grid",
        "responsibility_grid",
        "community",
        "street",
        "compound",
    )
    for lon, lat in points:
        params = {"lon": lon, "lat": lat}
        mem = qclient.get("/api/v1/reverse", params=params).json()
        sql = qclient.get("/api/v1/reverse", params={**params, "source": "postgis"}).json()
        assert {k: mem[k] for k in keys} == {k: sql[k] for k in keys}, (lon, lat)
        for near in ("plate", "poi", "road"):
            a, b = mem[near], sql[near]
            assert (a and a["code"]) == (b and b["code"]), (near, lon, lat)
            if a and b:
                assert abs(a["distance_m"] - b["distance_m"]) < 0.5
                assert a["bearing"] == b["bearing"], (near, lon, lat)
