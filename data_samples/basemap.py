"""Render the Dafeng basemaps (light, dark) from the base layers into Cloud-Optimized GeoTIFFs.

The base layers are fetched from PostGIS as WKB (lines and road widths are buffered in metres
on the geography type), burned with ``rasterio.features.rasterize`` into one class raster, and
each palette maps the classes to RGB. The output is deterministic for a given database: the
grid is snapped to the resolution, and nothing time-dependent is written into the files.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import IntEnum
from pathlib import Path

import numpy as np
import psycopg
import rasterio
import shapely
from psycopg import sql
from rasterio.features import rasterize
from rasterio.transform import Affine, from_origin

from layers.basemaps import BASEMAPS, BasemapSpec, BasemapStyle
from spatial.db import libpq_url
from spatial.errors import ConfigurationError
from spatial.models import SCHEMA

DEFAULT_RESOLUTION = 0.00002  # degrees per pixel, about 2 m
MARGIN = 0.002  # degrees of background around the data
ROAD_WIDTH_M = {1: 30.0, 2: 20.0, 3: 12.0}
CASING_M = 3.0

Progress = Callable[[str], None]


class Cls(IntEnum):
    """Classes of the class raster, in drawing order."""

    BACKGROUND = 0
    DISTRICT = 1
    COMPOUND = 2
    BUILDING = 3
    BUILDING_EDGE = 4
    COMMUNITY_LINE = 5
    STREET_LINE = 6
    DISTRICT_LINE = 7
    ROAD_CASING = 8
    ROAD_MINOR = 9
    ROAD_SECONDARY = 10
    ROAD_MAIN = 11


def _hex(colours: dict[Cls, str]) -> np.ndarray:
    table = np.zeros((len(Cls), 3), dtype=np.uint8)
    for cls, colour in colours.items():
        table[cls] = [int(colour[i : i + 2], 16) for i in (1, 3, 5)]
    return table


PALETTES: dict[BasemapStyle, np.ndarray] = {
    "light": _hex(
        {
            Cls.BACKGROUND: "#e9e5dc",
            Cls.DISTRICT: "#f7f5f0",
            Cls.COMPOUND: "#efe6d8",
            Cls.BUILDING: "#dcd3c6",
            Cls.BUILDING_EDGE: "#b9ad9e",
            Cls.COMMUNITY_LINE: "#d5cadf",
            Cls.STREET_LINE: "#a48fb3",
            Cls.DISTRICT_LINE: "#7d6690",
            Cls.ROAD_CASING: "#cbc2b2",
            Cls.ROAD_MINOR: "#ffffff",
            Cls.ROAD_SECONDARY: "#fdf1c9",
            Cls.ROAD_MAIN: "#f9d99a",
        }
    ),
    "dark": _hex(
        {
            Cls.BACKGROUND: "#15181d",
            Cls.DISTRICT: "#1f232a",
            Cls.COMPOUND: "#262b33",
            Cls.BUILDING: "#323843",
            Cls.BUILDING_EDGE: "#464e5b",
            Cls.COMMUNITY_LINE: "#343b47",
            Cls.STREET_LINE: "#56627a",
            Cls.DISTRICT_LINE: "#7a8aa8",
            Cls.ROAD_CASING: "#0e1013",
            Cls.ROAD_MINOR: "#3b424e",
            Cls.ROAD_SECONDARY: "#4b5362",
            Cls.ROAD_MAIN: "#626b7c",
        }
    ),
}


@dataclass(frozen=True)
class Pass:
    """One rasterize pass: a query returning ``(wkb, class)`` rows, drawn over earlier passes."""

    name: str
    query: sql.Composable
    all_touched: bool = False


def _t(table: str) -> sql.Composable:
    return sql.Identifier(SCHEMA, table)


def _road_case(extra_m: float) -> sql.Composable:
    """Roads buffered to their grade's half width plus ``extra_m``: fills, or casings."""
    widths = sql.SQL(" ").join(
        sql.SQL("WHEN {} THEN {}").format(sql.Literal(g), sql.Literal(w / 2 + extra_m))
        for g, w in ROAD_WIDTH_M.items()
    )
    if extra_m:
        cls: sql.Composable = sql.Literal(int(Cls.ROAD_CASING))
    else:
        by_grade = ((1, Cls.ROAD_MAIN), (2, Cls.ROAD_SECONDARY), (3, Cls.ROAD_MINOR))
        cls = sql.SQL("CASE grade {} ELSE {} END").format(
            sql.SQL(" ").join(
                sql.SQL("WHEN {} THEN {}").format(sql.Literal(g), sql.Literal(int(c)))
                for g, c in by_grade
            ),
            sql.Literal(int(Cls.ROAD_MINOR)),
        )
    return sql.SQL(
        "SELECT ST_AsBinary(ST_Buffer(geom::geography, CASE grade {} ELSE {} END)::geometry), {} "
        "FROM {} ORDER BY grade DESC, code"
    ).format(widths, sql.Literal(ROAD_WIDTH_M[3] / 2 + extra_m), cls, _t("roads"))


def _fill(table: str, cls: Cls) -> sql.Composable:
    return sql.SQL("SELECT ST_AsBinary(geom), {} FROM {} ORDER BY code").format(
        sql.Literal(int(cls)), _t(table)
    )


def _outline(table: str, cls: Cls, half_width_m: float = 0.0) -> sql.Composable:
    geom = sql.SQL("ST_Boundary(geom)")
    if half_width_m:
        geom = sql.SQL("ST_Buffer(ST_Boundary(geom)::geography, {})::geometry").format(
            sql.Literal(half_width_m)
        )
    return sql.SQL("SELECT ST_AsBinary({}), {} FROM {} ORDER BY code").format(
        geom, sql.Literal(int(cls)), _t(table)
    )


PASSES: tuple[Pass, ...] = (
    Pass("district", _fill("districts", Cls.DISTRICT)),
    Pass("compounds", _fill("compounds", Cls.COMPOUND)),
    Pass("buildings", _fill("buildings", Cls.BUILDING)),
    Pass("building edges", _outline("buildings", Cls.BUILDING_EDGE), all_touched=True),
    Pass("communities", _outline("communities", Cls.COMMUNITY_LINE), all_touched=True),
    Pass("streets", _outline("streets", Cls.STREET_LINE, 4.0), all_touched=True),
    Pass("district edge", _outline("districts", Cls.DISTRICT_LINE, 6.0), all_touched=True),
    Pass("road casings", _road_case(CASING_M), all_touched=True),
    Pass("roads", _road_case(0.0), all_touched=True),
)

EXTENT_SQL = sql.SQL(
    "SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM (SELECT ST_Extent(geom) AS e "
    "FROM (SELECT geom FROM {} UNION ALL SELECT geom FROM {} UNION ALL SELECT geom FROM {}) g) x"
).format(_t("districts"), _t("communities"), _t("roads"))


@dataclass(frozen=True)
class Grid:
    """The output raster grid: an origin snapped to the resolution and a size in pixels."""

    transform: Affine
    width: int
    height: int


def snapped_grid(bounds: tuple[float, float, float, float], resolution: float) -> Grid:
    """A grid covering ``bounds`` plus a margin, its corners on multiples of ``resolution``."""
    x0 = math.floor(round((bounds[0] - MARGIN) / resolution, 6))
    y0 = math.floor(round((bounds[1] - MARGIN) / resolution, 6))
    x1 = math.ceil(round((bounds[2] + MARGIN) / resolution, 6))
    y1 = math.ceil(round((bounds[3] + MARGIN) / resolution, 6))
    transform = from_origin(x0 * resolution, y1 * resolution, resolution, resolution)
    return Grid(transform, x1 - x0, y1 - y0)


def render_classes(conn: psycopg.Connection, resolution: float) -> tuple[np.ndarray, Grid]:
    """Burn every pass into one ``uint8`` class raster; return it with its grid."""
    extent = conn.execute(EXTENT_SQL).fetchone()
    if extent is None or extent[0] is None:
        raise ConfigurationError("No base layers to render: load the samples first.")
    grid = snapped_grid(tuple(extent), resolution)  # type: ignore[arg-type]
    classes = np.full((grid.height, grid.width), int(Cls.BACKGROUND), dtype=np.uint8)
    for step in PASSES:
        rows = conn.execute(step.query).fetchall()
        geoms = shapely.from_wkb([r[0] for r in rows])
        shapes = [(g, r[1]) for g, r in zip(geoms, rows, strict=True) if not g.is_empty]
        if shapes:
            rasterize(
                shapes,
                out=classes,
                transform=grid.transform,
                all_touched=step.all_touched,
            )
    return classes, grid


def write_cog(rgb: np.ndarray, grid: Grid, path: Path, spec: BasemapSpec) -> None:
    """Write an RGB COG (EPSG:4490, deflate, 512 px blocks, averaged overviews) atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    profile = {
        "driver": "COG",
        "width": grid.width,
        "height": grid.height,
        "count": 3,
        "dtype": "uint8",
        "crs": "EPSG:4490",
        "transform": grid.transform,
        "compress": "DEFLATE",
        "level": 6,
        "blocksize": 512,
        "overview_resampling": "average",
        "bigtiff": "NO",
    }
    try:
        with rasterio.open(tmp, "w", **profile) as dst:
            dst.write(rgb)
            dst.update_tags(basemap=spec.id, style=spec.style, title=spec.title)
            dst.colorinterp = [
                rasterio.enums.ColorInterp.red,
                rasterio.enums.ColorInterp.green,
                rasterio.enums.ColorInterp.blue,
            ]
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)


def build_basemaps(
    url: str,
    directory: Path,
    resolution: float = DEFAULT_RESOLUTION,
    specs: Iterable[BasemapSpec] = BASEMAPS,
    progress: Progress = print,
) -> list[Path]:
    """Render every basemap from the database at ``url`` into ``directory``; return the paths."""
    started = time.perf_counter()
    with psycopg.connect(libpq_url(url)) as conn:
        classes, grid = render_classes(conn, resolution)
    progress(f"  rendered {grid.width}×{grid.height} px in {time.perf_counter() - started:.1f} s")
    paths = []
    for spec in specs:
        began = time.perf_counter()
        rgb = np.moveaxis(PALETTES[spec.style][classes], -1, 0)
        path = spec.path(directory)
        write_cog(rgb, grid, path, spec)
        size = path.stat().st_size / 1e6
        progress(f"  {path}  {size:.1f} MB  {time.perf_counter() - began:.1f} s")
        paths.append(path)
    return paths


def missing_basemaps(directory: Path, specs: Iterable[BasemapSpec] = BASEMAPS) -> list[str]:
    """Ids of the basemaps whose COG is not in ``directory``."""
    return [s.id for s in specs if not s.path(directory).is_file()]
