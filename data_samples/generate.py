"""Build the whole Dafeng sample data set, deterministically, as rows ready for COPY.

``full`` has the tender's real counts (138,662 components); ``small`` is a consistent subset of
the same data (same geography, every 40th component of each class, the first door plates of
every road) for tests.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal

import h3
import numpy as np
import shapely
from pyproj import Geod
from shapely.geometry import MultiPolygon, Polygon

from data_samples import reference as ref
from data_samples.geography import Area, Geography, build_geography, evaluation_grid_type
from data_samples.names import person_name
from data_samples.parts import MAINTAINERS, PartBatch, generate_parts
from data_samples.places import (
    Plate,
    aliases,
    build_roads,
    building_plates,
    door_plates,
    place_buildings,
    place_compounds,
)
from data_samples.pois import build_pois

Size = Literal["small", "full"]
SEED = 320904
COUNTY = "320904"
COUNTY_NAME = "大丰区"
SMALL_PART_STRIDE = 40
SMALL_MAX_PLATE_NUMBER = 60
EPOCH = datetime(2016, 1, 1, tzinfo=UTC)
GEOD = Geod(ellps="GRS80")


@dataclass
class Table:
    """Rows for one table, in COPY column order; geometry columns as hex EWKB."""

    name: str
    columns: tuple[str, ...]
    rows: list[tuple[Any, ...]] = field(default_factory=list)


@dataclass
class SampleData:
    """All tables of a sample set, in foreign-key order."""

    size: Size
    tables: list[Table]

    def table(self, name: str) -> Table:
        """Return one table by name."""
        return next(t for t in self.tables if t.name == name)

    def counts(self) -> dict[str, int]:
        """Rows per table."""
        return {t.name: len(t.rows) for t in self.tables}


def ewkb(geom: shapely.Geometry) -> str:
    """Hex EWKB with SRID 4490 (what PostGIS parses fastest from COPY text)."""
    return shapely.to_wkb(shapely.set_srid(geom, 4490), hex=True, include_srid=True)


def ewkb_many(geoms: Sequence[shapely.Geometry] | np.ndarray) -> list[str]:
    """Vectorised :func:`ewkb`."""
    arr = shapely.set_srid(np.asarray(geoms, dtype=object), 4490)
    return list(shapely.to_wkb(arr, hex=True, include_srid=True))


def area_m2(geom: shapely.Geometry) -> float:
    """Geodesic area on the CGCS2000 ellipsoid."""
    return round(abs(GEOD.geometry_area_perimeter(geom)[0]), 1)


def h3_cells(lon: np.ndarray, lat: np.ndarray) -> list[int]:
    """H3 resolution-9 cells as signed 64-bit integers."""
    return [
        h3.str_to_int(h3.latlng_to_cell(float(y), float(x), 9))
        for x, y in zip(lon, lat, strict=True)
    ]


def multi(geom: shapely.Geometry) -> MultiPolygon:
    """Promote a polygon to a multipolygon."""
    return MultiPolygon([geom]) if isinstance(geom, Polygon) else geom


class GridLocator:
    """Find the unit grid containing points (STRtree over the cells)."""

    def __init__(self, grids: list[Area]) -> None:
        """Index the grid polygons."""
        self.codes = np.array([g.code for g in grids])
        self.community = np.array([g.parent for g in grids])
        self.tree = shapely.STRtree([g.cells[0].polygon for g in grids])

    def locate(self, lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
        """Index into ``codes`` per point, -1 when outside every grid."""
        points = shapely.points(lon, lat)
        pt_idx, grid_idx = self.tree.query(points, predicate="intersects")
        out = np.full(len(points), -1)
        first = np.unique(pt_idx, return_index=True)[1]
        out[pt_idx[first]] = grid_idx[first]
        return out


def build(size: Size = "full", seed: int = SEED) -> SampleData:
    """Generate every table for ``size``."""
    rng = np.random.default_rng(seed)
    streets, communities = ref.streets(), ref.communities()
    geo = build_geography(list(streets), list(communities), COUNTY, seed)
    street_codes = {s.name: f"{COUNTY}{s.code}" for s in streets}
    locator = GridLocator(geo.unit_grids)

    roads = build_roads(geo, list(ref.roads()))
    compounds = place_compounds(geo, ref.compounds(), street_codes, rng)
    buildings = place_buildings(compounds, rng)
    plates = door_plates(roads) + building_plates(buildings)
    pois = build_pois(plates, rng, shop_share=0.12)
    parts = generate_parts(ref.component_classes(), roads, geo.district_geometry(), rng)

    if size == "small":
        plates = [p for p in plates if p.kind == "楼牌" or p.number <= SMALL_MAX_PLATE_NUMBER]
        kept = {p.code for p in plates}
        pois = [p for p in pois if p.address_code in kept]

    tables = [
        _catalogue_tables(),
        _admin_tables(geo),
        _grid_tables(geo, rng),
        _place_tables(geo, roads, compounds, buildings, plates, pois, locator),
        [_parts_table(parts, roads, locator, size)],
    ]
    return SampleData(size, [t for group in tables for t in group])


def _catalogue_tables() -> list[Table]:
    cols = (
        "major_code",
        "minor_code",
        "major_name",
        "minor_name",
        "department",
        "disposal_hours",
        "is_extension",
    )
    comp = Table(
        "component_classes",
        (*cols, "geometry_type"),
        [
            (
                c.major_code,
                c.minor_code,
                c.major_name,
                c.minor_name,
                c.department,
                c.disposal_hours,
                c.is_extension,
                c.geometry_type,
            )
            for c in ref.component_classes()
        ],
    )
    event = Table(
        "event_classes",
        cols,
        [
            (
                c.major_code,
                c.minor_code,
                c.major_name,
                c.minor_name,
                c.department,
                c.disposal_hours,
                c.is_extension,
            )
            for c in ref.event_classes()
        ],
    )
    depts = Table(
        "departments",
        ("code", "name", "kind", "phone"),
        [(d.code, d.name, d.kind, d.phone or None) for d in ref.departments()],
    )
    return [comp, event, depts]


def _admin_tables(geo: Geography) -> list[Table]:
    district = Table(
        "districts",
        ("code", "name", "alias", "old_name", "data_source", "geom"),
        [
            (
                COUNTY,
                COUNTY_NAME,
                *aliases(COUNTY_NAME),
                "基础地理数据",
                ewkb(geo.district_geometry()),
            )
        ],
    )
    streets = Table(
        "streets",
        ("code", "district_code", "name", "kind", "alias", "old_name", "data_source", "geom"),
        [
            (s.code, COUNTY, s.name, s.kind, *aliases(s.name), "基础地理数据", ewkb(s.geometry))
            for s in geo.streets
        ],
    )
    comms = Table(
        "communities",
        ("code", "street_code", "name", "data_source", "geom"),
        [(c.code, c.parent, c.name, "基础地理数据", ewkb(c.geometry)) for c in geo.communities],
    )
    return [district, streets, comms]


def _grid_tables(geo: Geography, rng: np.random.Generator) -> list[Table]:
    resp = Table(
        "responsibility_grids",
        (
            "code",
            "community_code",
            "name",
            "inspector_code",
            "inspector_name",
            "area_m2",
            "data_source",
            "geom",
        ),
        [],
    )
    resp_of: dict[tuple[int, int], str] = {}
    for k, g in enumerate(geo.responsibility_grids, start=1):
        shape = g.geometry
        resp.rows.append(
            (
                g.code,
                g.parent,
                g.name,
                f"JD{k:04d}",
                person_name(rng),
                area_m2(shape),
                "网格划分",
                ewkb(shape),
            )
        )
        resp_of.update({(c.i, c.j): g.code for c in g.cells})
    evals = Table(
        "evaluation_grids",
        ("code", "street_code", "grid_type", "area_m2", "data_source", "geom"),
        [],
    )
    eval_of: dict[tuple[int, int], str] = {}
    for g in geo.evaluation_grids:
        shape = g.geometry
        evals.rows.append(
            (g.code, g.parent, evaluation_grid_type(g), area_m2(shape), "网格划分", ewkb(shape))
        )
        eval_of.update({(c.i, c.j): g.code for c in g.cells})
    units = Table(
        "unit_grids",
        (
            "code",
            "community_code",
            "street_code",
            "responsibility_grid_code",
            "evaluation_grid_code",
            "area_m2",
            "data_source",
            "geom",
        ),
        [],
    )
    for g in geo.unit_grids:
        cell = g.cells[0]
        shape = multi(cell.polygon)
        units.rows.append(
            (
                g.code,
                g.parent,
                g.parent[:9],
                resp_of[(cell.i, cell.j)],
                eval_of[(cell.i, cell.j)],
                area_m2(shape),
                "网格划分",
                ewkb(shape),
            )
        )
    return [resp, evals, units]


def _place_tables(
    geo: Geography,
    roads: list,
    compounds: list,
    buildings: list,
    plates: list[Plate],
    pois: list,
    locator: GridLocator,
) -> list[Table]:
    street_name = {s.code: s.name for s in geo.streets}
    road_t = Table(
        "roads",
        ("code", "name", "kind", "grade", "length_m", "alias", "old_name", "data_source", "geom"),
        [
            (r.code, r.name, r.kind, r.grade, r.length_m, *aliases(r.name), "基础地理数据")
            + (ewkb(r.geometry),)
            for r in roads
        ],
    )
    comp_t = Table(
        "compounds",
        (
            "code",
            "name",
            "kind",
            "street_code",
            "community_code",
            "drop_points",
            "alias",
            "old_name",
            "data_source",
            "geom",
        ),
        [
            (
                c.code,
                c.ref.name,
                "居民小区",
                c.street_code,
                c.community_code,
                c.ref.drop_points,
                *aliases(c.ref.name),
                "实测",
                ewkb(multi(c.geometry)),
            )
            for c in compounds
        ],
    )
    bld_t = Table(
        "buildings",
        ("code", "compound_code", "name", "floors", "geom"),
        [(b.code, b.compound.code, f"{b.number}栋", b.floors, ewkb(b.geometry)) for b in buildings],
    )
    addr_t = _address_table(plates, locator, street_name)
    placed = {row[0] for row in addr_t.rows}
    pois = [p for p in pois if p.address_code in placed]
    lon = np.array([p.point.x for p in pois])
    lat = np.array([p.point.y for p in pois])
    idx = locator.locate(lon, lat)
    cells = h3_cells(lon, lat)
    geoms = ewkb_many([p.point for p in pois])
    poi_t = Table(
        "pois",
        ("code", "name", "category", "address_code", "grid_code", "data_source", "h3", "geom"),
        [
            (p.code, p.name, p.category, p.address_code, locator.codes[i], "实测", h, g)
            for p, i, h, g in zip(pois, idx, cells, geoms, strict=True)
            if i >= 0
        ],
    )
    return [road_t, comp_t, bld_t, addr_t, poi_t]


def _address_table(plates: list[Plate], locator: GridLocator, street_name: dict[str, str]) -> Table:
    lon = np.array([p.point.x for p in plates])
    lat = np.array([p.point.y for p in plates])
    idx = locator.locate(lon, lat)
    keep = [k for k in range(len(plates)) if idx[k] >= 0]
    cells = h3_cells(lon[keep], lat[keep])
    geoms = ewkb_many([plates[k].point for k in keep])
    table = Table(
        "addresses",
        (
            "code",
            "kind",
            "road_code",
            "compound_code",
            "building_code",
            "base_name",
            "number",
            "suffix",
            "standard_address",
            "grid_code",
            "community_code",
            "data_source",
            "h3",
            "geom",
        ),
    )
    for k, h, g in zip(keep, cells, geoms, strict=True):
        p, grid = plates[k], locator.codes[idx[k]]
        std = f"{COUNTY_NAME}{street_name[grid[:9]]}{p.base_name}{p.number}{p.suffix}"
        table.rows.append(
            (
                p.code,
                p.kind,
                p.road_code,
                p.compound_code,
                p.building_code,
                p.base_name,
                p.number,
                p.suffix,
                std,
                grid,
                locator.community[idx[k]],
                "实测",
                h,
                g,
            )
        )
    return table


PART_COLUMNS = (
    "code",
    "class_code",
    "county_code",
    "major_code",
    "minor_code",
    "name",
    "department",
    "owner",
    "maintainer",
    "grid_code",
    "status",
    "initial_time",
    "change_time",
    "data_source",
    "location_desc",
    "currency_date",
    "scale_denominator",
    "h3",
    "geom",
)


def _parts_table(batch: PartBatch, roads: list, locator: GridLocator, size: Size) -> Table:
    grid_idx = locator.locate(batch.lon, batch.lat)
    geoms = shapely.points(batch.lon, batch.lat)
    table = Table("parts", PART_COLUMNS)
    table.rows = list(_part_rows(batch, roads, locator, grid_idx, geoms, size))
    return table


def _part_rows(
    batch: PartBatch,
    roads: list,
    locator: GridLocator,
    grid_idx: np.ndarray,
    geoms: np.ndarray,
    size: Size,
) -> Iterator[tuple[Any, ...]]:
    seq_in_class: dict[int, int] = {}
    keep = []
    for k, c in enumerate(batch.class_idx.tolist()):
        seq = seq_in_class[c] = seq_in_class.get(c, 0) + 1
        if grid_idx[k] >= 0 and (size == "full" or seq % SMALL_PART_STRIDE == 1):
            keep.append((k, seq))
    ks = np.array([k for k, _ in keep], dtype=int)
    cells = h3_cells(batch.lon[ks], batch.lat[ks])
    hexes = ewkb_many(geoms[ks])
    sides = {(1, "EW"): "北侧", (-1, "EW"): "南侧", (1, "NS"): "西侧", (-1, "NS"): "东侧"}
    for (k, seq), h, g in zip(keep, cells, hexes, strict=True):
        cls = batch.classes[batch.class_idx[k]]
        class_code = f"{COUNTY}{cls.major_code}{cls.minor_code}"
        grid = locator.codes[grid_idx[k]]
        r = int(batch.road_idx[k])
        where = (
            f"{roads[r].name}{sides[(int(batch.side[k]), roads[r].direction)]}"
            if r >= 0
            else f"{grid}网格内"
        )
        initial = EPOCH + timedelta(days=int(batch.initial_days[k]))
        changed = initial + timedelta(days=200) if batch.status[k] != "完好" else None
        yield (
            f"{class_code}{seq:06d}",
            class_code,
            COUNTY,
            cls.major_code,
            cls.minor_code,
            cls.minor_name,
            cls.department,
            cls.department,
            MAINTAINERS.get(cls.major_code, "大丰区城市管理局"),
            grid,
            str(batch.status[k]),
            initial,
            changed,
            "普查",
            where,
            date(2024, 6, 30),
            500,
            h,
            g,
        )
