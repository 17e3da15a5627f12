"""Dafeng district-seat geography: a jittered lattice of unit grids nested in communities.

Unit grids are the cells of a lattice whose interior vertices are jittered, so every cell is
an irregular quadrilateral that shares its exact vertices with its neighbours: no gaps and no
overlaps by construction. Every third lattice line is a road; the 3×3 blocks between roads are
the responsibility grids; blocks are grouped into communities and streets, so boundaries run
along roads as they do in a real city.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import shapely
from shapely.geometry import MultiPolygon, Polygon

from data_samples.reference import CommunityRef, StreetRef

WEST, EAST, SOUTH, NORTH = 120.43, 120.53, 33.16, 33.24
NX, NY = 50, 44
BLOCK = 3  # cells per block side; block edges are roads
CENTRE = (120.478, 33.198)


@dataclass(frozen=True)
class Cell:
    """One lattice cell (a unit grid)."""

    i: int
    j: int
    polygon: Polygon

    @property
    def block(self) -> tuple[int, int]:
        """The road-bounded block this cell lies in."""
        return (self.i // BLOCK, self.j // BLOCK)


@dataclass
class Area:
    """A polygonal area made of whole cells, with its code and name."""

    code: str
    name: str
    cells: list[Cell] = field(default_factory=list)
    parent: str = ""
    kind: str = ""

    @property
    def geometry(self) -> MultiPolygon:
        """Exact union of the area's cells."""
        merged = shapely.union_all([c.polygon for c in self.cells])
        if isinstance(merged, Polygon):
            return MultiPolygon([merged])
        return merged


@dataclass
class Geography:
    """Everything the sample generator derives from the lattice."""

    vertices: np.ndarray  # (NX+1, NY+1, 2) lon/lat
    cells: dict[tuple[int, int], Cell]
    streets: list[Area]
    communities: list[Area]
    unit_grids: list[Area]
    responsibility_grids: list[Area]
    evaluation_grids: list[Area]

    def district_geometry(self) -> MultiPolygon:
        """Union of all cells: the built-up district seat."""
        merged = shapely.union_all([s.geometry for s in self.streets])
        return merged if isinstance(merged, MultiPolygon) else MultiPolygon([merged])


def lattice_vertices(rng: np.random.Generator) -> np.ndarray:
    """Jittered vertices; road lines are kept straight (jitter only along the road)."""
    xs = np.linspace(WEST, EAST, NX + 1)
    ys = np.linspace(SOUTH, NORTH, NY + 1)
    gx, gy = np.meshgrid(xs, ys, indexing="ij")
    dx, dy = (EAST - WEST) / NX, (NORTH - SOUTH) / NY
    jx = rng.uniform(-0.22, 0.22, gx.shape) * dx
    jy = rng.uniform(-0.22, 0.22, gy.shape) * dy
    road_col = (np.arange(NX + 1) % BLOCK == 0)[:, None]
    road_row = (np.arange(NY + 1) % BLOCK == 0)[None, :]
    jx = np.where(road_col, 0.0, jx)
    jy = np.where(road_row, 0.0, jy)
    jx[[0, -1], :] = 0.0
    jy[:, [0, -1]] = 0.0
    return np.stack([gx + jx, gy + jy], axis=-1)


def inside_district(lon: float, lat: float) -> bool:
    """A noisy ellipse around the district seat centre."""
    x = (lon - CENTRE[0]) / 0.047
    y = (lat - CENTRE[1]) / 0.037
    theta = np.arctan2(y, x)
    radius = 1.0 + 0.07 * np.sin(3 * theta + 0.6) + 0.04 * np.sin(5 * theta + 2.1)
    return bool(np.hypot(x, y) <= radius)


def build_cells(vertices: np.ndarray) -> dict[tuple[int, int], Cell]:
    """Cells whose centre lies inside the district outline."""
    cells: dict[tuple[int, int], Cell] = {}
    for i in range(NX):
        for j in range(NY):
            ring = [vertices[i, j], vertices[i + 1, j], vertices[i + 1, j + 1], vertices[i, j + 1]]
            poly = Polygon([tuple(map(float, p)) for p in ring])
            centre = poly.centroid
            if inside_district(centre.x, centre.y):
                cells[(i, j)] = Cell(i, j, poly)
    return cells


def _block_centres(cells: dict[tuple[int, int], Cell]) -> dict[tuple[int, int], np.ndarray]:
    by_block: dict[tuple[int, int], list[Cell]] = {}
    for cell in cells.values():
        by_block.setdefault(cell.block, []).append(cell)
    return {
        b: np.mean([[c.polygon.centroid.x, c.polygon.centroid.y] for c in cs], axis=0)
        for b, cs in sorted(by_block.items())
    }


def _nearest(point: np.ndarray, seeds: np.ndarray, weights: np.ndarray | None = None) -> int:
    dist = np.hypot(*(seeds - point).T)
    if weights is not None:
        dist = dist * weights
    return int(np.argmin(dist))


STREET_SEEDS = {  # approximate relative position of each street in the district seat
    "大中街道": (120.465, 33.208),
    "丰华街道": (120.480, 33.172),
    "开发区": (120.515, 33.200),
}
STREET_WEIGHTS = {"大中街道": 0.8, "丰华街道": 1.0, "开发区": 1.1}


def assign_streets(
    blocks: dict[tuple[int, int], np.ndarray], streets: list[StreetRef]
) -> dict[tuple[int, int], str]:
    """Give each block to the nearest street seed (weighted: the old town is larger)."""
    names = [s.name for s in streets]
    seeds = np.array([STREET_SEEDS.get(n, CENTRE) for n in names])
    weights = np.array([STREET_WEIGHTS.get(n, 1.0) for n in names])
    return {b: names[_nearest(c, seeds, weights)] for b, c in blocks.items()}


def assign_communities(
    blocks: dict[tuple[int, int], np.ndarray],
    street_of: dict[tuple[int, int], str],
    communities: list[CommunityRef],
    rng: np.random.Generator,
) -> dict[tuple[int, int], CommunityRef]:
    """Within each street, give blocks to community seeds chosen among its blocks."""
    result: dict[tuple[int, int], CommunityRef] = {}
    for street in sorted(set(street_of.values())):
        own = [b for b in blocks if street_of[b] == street]
        refs = [c for c in communities if c.street_name == street][: len(own)]
        picks = rng.choice(len(own), size=len(refs), replace=False)
        seeds = np.array([blocks[own[k]] for k in picks])
        for b in own:
            result[b] = refs[_nearest(blocks[b], seeds)]
    return result


def build_geography(
    streets: list[StreetRef], communities: list[CommunityRef], county: str, seed: int
) -> Geography:
    """Derive streets, communities and the three grid layers from one seed."""
    rng = np.random.default_rng(seed)
    vertices = lattice_vertices(rng)
    cells = build_cells(vertices)
    blocks = _block_centres(cells)
    street_of = assign_streets(blocks, streets)
    community_of = assign_communities(blocks, street_of, communities, rng)
    street_code = {s.name: f"{county}{s.code}" for s in streets}

    street_areas = {
        s.name: Area(street_code[s.name], s.name, parent=county, kind=s.kind) for s in streets
    }
    comm_areas: dict[str, Area] = {}
    resp: dict[tuple[int, int], Area] = {}
    for key in sorted(cells):
        cell = cells[key]
        ref = community_of[cell.block]
        street_areas[ref.street_name].cells.append(cell)
        scode = street_code[ref.street_name]
        comm = comm_areas.setdefault(ref.name, Area(f"{scode}{ref.code}", ref.name, parent=scode))
        comm.cells.append(cell)
        resp.setdefault(cell.block, Area("", "", parent=comm.code)).cells.append(cell)

    unit_grids = _unit_grids(comm_areas.values())
    responsibility = _responsibility_grids(resp, comm_areas)
    evaluation = _evaluation_grids(street_areas.values())
    return Geography(
        vertices=vertices,
        cells=cells,
        streets=[a for a in street_areas.values() if a.cells],
        communities=sorted(comm_areas.values(), key=lambda a: a.code),
        unit_grids=unit_grids,
        responsibility_grids=responsibility,
        evaluation_grids=evaluation,
    )


def _unit_grids(communities: object) -> list[Area]:
    """One unit grid per cell; 3-digit sequence within the community, row by row."""
    grids: list[Area] = []
    for comm in communities:  # type: ignore[attr-defined]
        ordered = sorted(comm.cells, key=lambda c: (-c.j, c.i))
        for seq, cell in enumerate(ordered, start=1):
            grids.append(
                Area(f"{comm.code}{seq:03d}", f"{comm.name}{seq:03d}网格", [cell], parent=comm.code)
            )
    return sorted(grids, key=lambda a: a.code)


def _responsibility_grids(
    blocks: dict[tuple[int, int], Area], communities: dict[str, Area]
) -> list[Area]:
    """One responsibility grid per block part inside a community; 2-digit sequence."""
    by_comm: dict[str, list[Area]] = {}
    for key in sorted(blocks):
        by_comm.setdefault(blocks[key].parent, []).append(blocks[key])
    name_of = {c.code: c.name for c in communities.values()}
    out: list[Area] = []
    for comm_code, areas in sorted(by_comm.items()):
        for seq, area in enumerate(areas, start=1):
            area.code = f"{comm_code}{seq:02d}"
            area.name = f"{name_of[comm_code]}第{seq}责任网格"
            out.append(area)
    return out


def _evaluation_grids(streets: object) -> list[Area]:
    """Group cells of a street by 2×2 blocks (about 1 km²); fold small remnants in."""
    out: list[Area] = []
    for street in streets:  # type: ignore[attr-defined]
        groups: dict[tuple[int, int], list[Cell]] = {}
        for cell in street.cells:
            groups.setdefault((cell.block[0] // 2, cell.block[1] // 2), []).append(cell)
        keys = sorted(groups)
        big = [k for k in keys if len(groups[k]) >= 14]
        for k in keys:
            if k in big or not big:
                continue
            target = min(big, key=lambda b: (b[0] - k[0]) ** 2 + (b[1] - k[1]) ** 2)
            groups[target].extend(groups.pop(k))
        for seq, k in enumerate(sorted(groups), start=1):
            out.append(
                Area(
                    f"{street.code}{seq:03d}",
                    f"{street.name}评价网格{seq:03d}",
                    groups[k],
                    parent=street.code,
                )
            )
    return out


def evaluation_grid_type(area: Area) -> str:
    """A (core), B (ordinary) or C (outskirts) by distance from the seat centre."""
    c = area.geometry.centroid
    d = np.hypot((c.x - CENTRE[0]) / 0.047, (c.y - CENTRE[1]) / 0.037)
    return "A" if d < 0.35 else "B" if d < 0.7 else "C"
