"""The in-memory geocoding index: every place of GB/T 30428.3's five kinds, by code and name.

Built once from PostGIS rows (``geocoder.loader``) when the app starts, then read-only: areas
(district, streets, communities, unit grids), 区片 (compounds), 街巷 (roads, with their lines
for door-number interpolation), 门(楼)牌 (door and building plates) and 兴趣点 (POIs). The
sample holds ~13,500 places and ~1,700 names; a build takes well under a second.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import shapely
from shapely.geometry.base import BaseGeometry

from geocoder.names import NameRef, NameTable
from geocoder.normalize import PROVINCE_CITY, normalize
from geocoder.trees import SpatialIndex


class Level(StrEnum):
    """Match levels, most precise first (the tender's 基本地点名称类型)."""

    DOOR = "门牌"
    BUILDING = "楼牌"
    POI = "兴趣点"
    ROAD = "街巷"
    ZONE = "区片"
    AREA = "区域"


LEVEL_RANK = {level: rank for rank, level in enumerate(Level)}


@dataclass(slots=True)
class Place:
    """One geocodable place; ``lon``/``lat`` are CGCS2000 (storage)."""

    code: str
    level: Level
    kind: str  # district|street|community|unit_grid|road|compound|door|building|poi
    name: str  # short name: 幸福路23号, 莱茵城5栋, 李记面馆, 幸福路, 幸福社区
    address: str  # standard address (标准地址)
    lon: float
    lat: float
    grid: str | None = None
    community: str | None = None
    street: str | None = None
    parent: str | None = None  # road/compound of a plate, plate of a POI
    number: int | None = None
    category: str | None = None


@dataclass(slots=True)
class Rows:
    """Raw rows from PostGIS, in the column order of ``geocoder.loader``."""

    areas: Sequence[Sequence[Any]] = ()
    grids: Sequence[Sequence[Any]] = ()
    roads: Sequence[Sequence[Any]] = ()
    compounds: Sequence[Sequence[Any]] = ()
    plates: Sequence[Sequence[Any]] = ()
    pois: Sequence[Sequence[Any]] = ()
    shapes: Sequence[Sequence[Any]] = ()


@dataclass(slots=True)
class GeoIndex:
    """Places by code, names by key, plates by (road or compound, number), road lines."""

    places: dict[str, Place] = field(default_factory=dict)
    names: NameTable = field(default_factory=NameTable)
    areas: NameTable = field(default_factory=NameTable)
    plates: dict[tuple[str, int], str] = field(default_factory=dict)
    numbers: dict[str, list[int]] = field(default_factory=dict)
    lines: dict[str, BaseGeometry] = field(default_factory=dict)
    district: str = ""
    trees: SpatialIndex | None = None
    grid_responsibility: dict[str, str] = field(default_factory=dict)
    responsibility: dict[str, tuple[str, str]] = field(default_factory=dict)
    built_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    build_seconds: float = 0.0

    def counts(self) -> dict[str, int]:
        """Places per kind, plus the number of name keys."""
        out: dict[str, int] = {}
        for place in self.places.values():
            out[place.kind] = out.get(place.kind, 0) + 1
        return {**dict(sorted(out.items())), "name_keys": len(self.names)}

    def name_of(self, code: str | None) -> str | None:
        """The name of a place, or None."""
        place = self.places.get(code) if code else None
        return place.name if place else None

    def plate(self, parent: str, number: int) -> Place | None:
        """The plate ``number`` of a road or compound."""
        code = self.plates.get((parent, number))
        return self.places[code] if code else None


def split_names(value: str | None) -> list[str]:
    """GB/T 30428.3 multi-valued names: ``{名称1/…/名称n}`` → list."""
    if not value:
        return []
    return [v.strip() for v in value.strip("{}").split("/") if v.strip()]


def _keys(name: str, strip: Iterable[str]) -> list[str]:
    """The normalised name and, without a leading province/city/district, its short form."""
    key = normalize(name)
    out = [key]
    for prefix in strip:
        if key.startswith(prefix) and len(key) - len(prefix) >= 2:
            out.append(key[len(prefix) :])
    return out


def _register(
    table: NameTable, code: str, name: str, alias: str | None, old: str | None, strip: list[str]
) -> None:
    table.add(_keys(name, strip), NameRef(code, "name", name))
    for method, values in (("alias", alias), ("old_name", old)):
        for value in split_names(values):
            table.add(_keys(value, strip), NameRef(code, method, value))


def build_index(rows: Rows) -> GeoIndex:
    """Build the index from loader rows."""
    started = time.perf_counter()
    ix = GeoIndex()
    _add_areas(ix, rows)
    district = {p.code for p in ix.places.values() if p.kind == "district"}
    names = {k for k, refs in ix.areas.refs.items() if refs[0].code in district}
    strip = sorted(names | set(PROVINCE_CITY), key=len, reverse=True)
    _add_roads(ix, rows, strip)
    _add_compounds(ix, rows, strip)
    _add_plates(ix, rows)
    _add_pois(ix, rows, strip)
    _add_trees(ix, rows)
    ix.names.freeze()
    ix.areas.freeze()
    ix.build_seconds = round(time.perf_counter() - started, 3)
    return ix


def _add_areas(ix: GeoIndex, rows: Rows) -> None:
    streets: dict[str, str] = {}
    for kind, code, name, alias, old, street, community, lon, lat in sorted(
        rows.areas, key=lambda r: len(r[1])
    ):
        if kind == "district":
            ix.district = name
            address = name
        elif kind == "street":
            streets[code] = name
            address = f"{ix.district}{name}"
        else:
            address = f"{ix.district}{streets.get(street, '')}{name}"
        ix.places[code] = Place(
            code, Level.AREA, kind, name, address, lon, lat, None, community, street
        )
        for table in (ix.areas, ix.names):
            _register(table, code, name, alias, old, [])
    for code, community, street, lon, lat in rows.grids:
        address = (
            f"{ix.places[community].address}单元网格{code}" if community in ix.places else code
        )
        ix.places[code] = Place(
            code,
            Level.AREA,
            "unit_grid",
            f"单元网格{code}",
            address,
            lon,
            lat,
            code,
            community,
            street,
        )


def _add_roads(ix: GeoIndex, rows: Rows, strip: list[str]) -> None:
    for code, name, alias, old, wkb, lon, lat in rows.roads:
        ix.places[code] = Place(code, Level.ROAD, "road", name, f"{ix.district}{name}", lon, lat)
        ix.lines[code] = shapely.from_wkb(bytes(wkb))
        _register(ix.names, code, name, alias, old, strip)


def _add_compounds(ix: GeoIndex, rows: Rows, strip: list[str]) -> None:
    for code, name, alias, old, street, community, grid, lon, lat in rows.compounds:
        street_name = ix.name_of(street) or ""
        ix.places[code] = Place(
            code, Level.ZONE, "compound", name, f"{ix.district}{street_name}{name}", lon, lat,
            grid, community, street,
        )  # fmt: skip
        _register(ix.names, code, name, alias, old, strip)


def _add_plates(ix: GeoIndex, rows: Rows) -> None:
    for row in rows.plates:
        code, kind, road, compound, base, number, suffix, address, grid, community, lon, lat = row
        parent = road or compound
        door = kind == "门牌"
        ix.places[code] = Place(
            code, Level.DOOR if door else Level.BUILDING, "door" if door else "building",
            f"{base}{number}{suffix}", address, lon, lat, grid, community, community[:9],
            parent, number,
        )  # fmt: skip
        if parent:
            ix.plates.setdefault((parent, number), code)
            ix.numbers.setdefault(parent, []).append(number)
    for numbers in ix.numbers.values():
        numbers.sort()


def _add_pois(ix: GeoIndex, rows: Rows, strip: list[str]) -> None:
    for code, name, alias, old, category, plate, grid, community, address, lon, lat in rows.pois:
        street = community[:9] if community else None
        full = f"{address}{name}" if address else f"{ix.district}{ix.name_of(street) or ''}{name}"
        ix.places[code] = Place(
            code, Level.POI, "poi", name, full, lon, lat, grid, community, street, plate,
            category=category,
        )  # fmt: skip
        _register(ix.names, code, name, alias, old, strip)


def _add_trees(ix: GeoIndex, rows: Rows) -> None:
    """Spatial trees for reverse geocoding: plates, POIs, roads, grids, compounds, district."""
    points: dict[str, tuple[list[str], list[float], list[float]]] = {}
    for kind, level in (("plate", (Level.DOOR, Level.BUILDING)), ("poi", (Level.POI,))):
        chosen = [p for p in ix.places.values() if p.level in level]
        points[kind] = ([p.code for p in chosen], [p.lon for p in chosen], [p.lat for p in chosen])
    shapes: dict[str, tuple[list[str], list[bytes]]] = {
        "road": ([code for code, *_ in rows.roads], [row[4] for row in rows.roads])
    }
    for kind, code, wkb, extra, inspector in rows.shapes:
        if kind == "responsibility":
            ix.responsibility[code] = (extra, inspector)
            continue
        codes, wkbs = shapes.setdefault(kind, ([], []))
        codes.append(code)
        wkbs.append(wkb)
        if kind == "grid" and extra:
            ix.grid_responsibility[code] = extra
    ix.trees = SpatialIndex(points, shapes)
