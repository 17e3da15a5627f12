"""Roads, compounds, buildings, door/building plates and POIs laid on the lattice."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import shapely
from shapely.geometry import LineString, MultiLineString, Point, Polygon, box

from data_samples.geography import BLOCK, NX, NY, Geography
from data_samples.reference import CompoundRef, RoadRef

M_PER_DEG_LAT = 110_574.0
M_PER_DEG_LON = 111_320.0 * float(np.cos(np.radians(33.2)))
PLATE_SPACING_M = 35.0
PLATE_OFFSET_M = 18.0

# GB/T 30428.3 别名 (alias) and 曾用名 (former names) of a few places, "{名称1/…/名称n}".
ALIASES: dict[str, tuple[str | None, str | None]] = {
    "大丰区": ("大丰", "大丰县/大丰市"),
    "开发区": ("经济开发区/大丰经济开发区", None),
    "健康路": (None, "卫生路"),
    "东进路": (None, "东方红路"),
    "八一路": ("八一大街", None),
    "常新路": (None, "常新街"),
    "黄海路": ("黄海大道", None),
    "友谊路": (None, "友好路"),
    "莱茵城": ("莱茵城小区", None),
    "碧桂园一期": ("碧桂园", None),
    "恒生南苑、北苑": ("恒生南苑/恒生北苑", None),
    "三纺厂宿舍": (None, "第三纺织厂宿舍"),
    "中凯银杏湖": ("银杏湖小区", None),
    "东方一号": ("东方壹号", None),
    "荣润理想城": ("理想城", None),
    "新民北": ("新民北小区", None),
    "翰林华府": (None, "翰林苑"),
    "飞轮厂教师公寓": (None, "飞轮厂宿舍"),
    "淮二新村": (None, "淮河二村"),
}


def aliases(name: str) -> tuple[str | None, str | None]:
    """The (alias, old_name) pair of a place, or (None, None)."""
    return ALIASES.get(name, (None, None))


@dataclass
class RoadFeature:
    """A generated road with its straight lattice edges."""

    code: str
    name: str
    kind: str
    grade: int
    direction: str  # EW or NS
    geometry: MultiLineString
    length_m: float


@dataclass
class CompoundFeature:
    """A generated compound polygon in a given cell."""

    code: str
    ref: CompoundRef
    community_code: str
    street_code: str
    geometry: Polygon


@dataclass
class BuildingFeature:
    """A building footprint inside a compound."""

    code: str
    compound: CompoundFeature
    number: int
    floors: int
    geometry: Polygon


@dataclass
class Plate:
    """A door plate (门牌) or building plate (楼牌)."""

    code: str
    kind: str
    base_name: str
    number: int
    suffix: str
    point: Point
    road_code: str | None = None
    compound_code: str | None = None
    building_code: str | None = None


def _road_edges(geo: Geography, direction: str, line: int) -> list[LineString]:
    """Lattice edges on one road line that border at least one district cell."""
    v, cells, edges = geo.vertices, geo.cells, []
    if direction == "EW":
        for i in range(NX):
            if (i, line) in cells or (i, line - 1) in cells:
                edges.append(LineString([v[i, line], v[i + 1, line]]))
    else:
        for j in range(NY):
            if (line, j) in cells or (line - 1, j) in cells:
                edges.append(LineString([v[line, j], v[line, j + 1]]))
    return edges


def _length_m(line: LineString | MultiLineString) -> float:
    total = 0.0
    for part in getattr(line, "geoms", [line]):
        xy = np.asarray(part.coords)
        d = np.diff(xy, axis=0) * [M_PER_DEG_LON, M_PER_DEG_LAT]
        total += float(np.hypot(d[:, 0], d[:, 1]).sum())
    return total


def build_roads(geo: Geography, names: list[RoadRef]) -> list[RoadFeature]:
    """One road per lattice line every ``BLOCK`` cells, named from the reference list."""
    pools = {d: [r for r in names if r.direction == d] for d in ("EW", "NS")}
    lines = {"EW": range(BLOCK, NY, BLOCK), "NS": range(BLOCK, NX, BLOCK)}
    roads: list[RoadFeature] = []
    for direction in ("EW", "NS"):
        for k, line in enumerate(lines[direction]):
            edges = _road_edges(geo, direction, line)
            if not edges:
                continue
            merged = shapely.line_merge(shapely.union_all(edges))
            multi = merged if isinstance(merged, MultiLineString) else MultiLineString([merged])
            pool = pools[direction]
            ref = (
                pool[k] if k < len(pool) else RoadRef(f"规划{direction}{k + 1}路", "路", direction)
            )
            grade = 1 if k % 3 == 1 else 2 if k % 3 == 0 else 3
            code = f"R{direction}{line:03d}"
            roads.append(
                RoadFeature(
                    code, ref.name, ref.kind, grade, direction, multi, round(_length_m(multi), 1)
                )
            )
    return roads


def door_plates(roads: list[RoadFeature]) -> list[Plate]:
    """Odd numbers on the north/west side, even on the south/east, every 35 m."""
    plates: list[Plate] = []
    for road in roads:
        normal = (
            (0.0, PLATE_OFFSET_M / M_PER_DEG_LAT)
            if road.direction == "EW"
            else (-PLATE_OFFSET_M / M_PER_DEG_LON, 0.0)
        )
        line = max(road.geometry.geoms, key=lambda g: g.length)
        coords = np.asarray(line.coords)
        if (road.direction == "EW" and coords[0, 0] > coords[-1, 0]) or (
            road.direction == "NS" and coords[0, 1] > coords[-1, 1]
        ):
            line = LineString(coords[::-1])
        length = _length_m(line)
        stations = np.arange(PLATE_SPACING_M / 2, length, PLATE_SPACING_M)
        for k, dist in enumerate(stations):
            at = line.interpolate(dist / length, normalized=True)
            for side, number in ((1, 2 * k + 1), (-1, 2 * k + 2)):
                p = Point(at.x + side * normal[0], at.y + side * normal[1])
                plates.append(
                    Plate(
                        f"{road.code}M{number:04d}",
                        "门牌",
                        road.name,
                        number,
                        "号",
                        p,
                        road_code=road.code,
                    )
                )
    return plates


def place_compounds(
    geo: Geography,
    refs: tuple[CompoundRef, ...],
    street_codes: dict[str, str],
    rng: np.random.Generator,
) -> list[CompoundFeature]:
    """Put each compound in a distinct cell of its street, set back from the roads."""
    community_of = {(g.cells[0].i, g.cells[0].j): g.parent for g in geo.unit_grids}
    by_street = {s.code: list(s.cells) for s in geo.streets}
    taken: set[tuple[int, int]] = set()
    out: list[CompoundFeature] = []
    for ref in refs:
        scode = street_codes.get(ref.street) or geo.streets[0].code
        free = [c for c in by_street[scode] if (c.i, c.j) not in taken]
        cell = free[int(rng.integers(len(free)))]
        taken.add((cell.i, cell.j))
        shape = cell.polygon.buffer(-0.00022, join_style="mitre")
        out.append(
            CompoundFeature(f"Q{ref.seq:04d}", ref, community_of[(cell.i, cell.j)], scode, shape)
        )
    return out


def place_buildings(
    compounds: list[CompoundFeature], rng: np.random.Generator
) -> list[BuildingFeature]:
    """Rows of slab buildings (about 45 m × 14 m) inside each compound."""
    w, h = 45 / M_PER_DEG_LON, 14 / M_PER_DEG_LAT
    gap_x, gap_y = 12 / M_PER_DEG_LON, 22 / M_PER_DEG_LAT
    out: list[BuildingFeature] = []
    for comp in compounds:
        minx, miny, maxx, maxy = comp.geometry.bounds
        number = 0
        y = maxy - h - gap_y / 2
        while y > miny:
            x = minx + gap_x / 2
            while x + w < maxx:
                footprint = box(x, y, x + w, y + h)
                if comp.geometry.contains(footprint):
                    number += 1
                    floors = int(rng.choice([6, 6, 7, 11, 18, 26]))
                    out.append(
                        BuildingFeature(
                            f"{comp.code}B{number:03d}", comp, number, floors, footprint
                        )
                    )
                x += w + gap_x
            y -= h + gap_y
    return out


def building_plates(buildings: list[BuildingFeature]) -> list[Plate]:
    """One building plate (楼牌) per building: e.g. 莱茵城5栋."""
    return [
        Plate(
            f"{b.code}L",
            "楼牌",
            b.compound.ref.name,
            b.number,
            "栋",
            b.geometry.centroid,
            compound_code=b.compound.code,
            building_code=b.code,
        )
        for b in buildings
    ]
