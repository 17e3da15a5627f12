"""Per-feature geometry: type check, repair of invalid shapes, promotion, district check."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Final

import numpy as np
import shapely
from shapely import Geometry

from spatial.errors import FieldIssue
from spatial.importer.context import Context
from spatial.importer.reference import Reference

GEOMETRY_FAMILY: Final[dict[str, tuple[str, ...]]] = {
    "POINT": ("Point", "MultiPoint"),
    "MULTILINESTRING": ("LineString", "MultiLineString"),
    "MULTIPOLYGON": ("Polygon", "MultiPolygon"),
    "POLYGON": ("Polygon", "MultiPolygon"),
}


DIMENSION: Final = {"POINT": 0, "MULTILINESTRING": 1, "MULTIPOLYGON": 2, "POLYGON": 2}


def check_geometry(
    geom: Geometry | None, n: int, ctx: Context
) -> tuple[Geometry | None, list[FieldIssue], bool]:
    """Type, validity and district checks; returns the storable geometry or issues."""
    target = ctx.spec.geometry_type

    def fail(message: str) -> tuple[None, list[FieldIssue], bool]:
        return None, [FieldIssue(field="geometry", message=message, feature=n)], False

    if geom is None or geom.is_empty:
        return fail("geometry is empty or missing")
    if not np.isfinite(shapely.get_coordinates(geom)).all():
        return fail(f"coordinates cannot be transformed from {ctx.crs.label}")
    if geom.geom_type not in GEOMETRY_FAMILY[target]:
        return fail(f"expected {target.title()} geometry, got {geom.geom_type}")
    repaired = False
    if not geom.is_valid:
        reason = shapely.is_valid_reason(geom)
        if ctx.options.invalid == "reject":
            return fail(f"invalid geometry: {reason}")
        geom, repaired = repair(geom, DIMENSION[target]), True
        if geom is None:
            return fail(f"invalid geometry ({reason}) and nothing usable remains after repair")
    shaped = conform(geom, target)
    if isinstance(shaped, str):
        return fail(shaped)
    outside = _outside_message(shaped, ctx.ref)
    return fail(outside) if outside else (shaped, [], repaired)


def _flatten(geom: Geometry) -> Iterator[Geometry]:
    """Single-part components of any geometry, collections included."""
    for part in shapely.get_parts(geom):
        if part.geom_type.startswith("Multi") or part.geom_type == "GeometryCollection":
            yield from _flatten(part)
        else:
            yield part


def repair(geom: Geometry, dimension: int) -> Geometry | None:
    """``make_valid`` keeping only parts of the layer's dimension; None if none remain."""
    parts = [
        p
        for p in _flatten(shapely.make_valid(geom))
        if not p.is_empty and shapely.get_dimensions(p) == dimension
    ]
    if not parts:
        return None
    if dimension == 2:
        return shapely.union_all(parts)
    return shapely.multilinestrings(parts) if dimension == 1 else shapely.multipoints(parts)


def conform(geom: Geometry, target: str) -> Geometry | str:
    """Promote/demote to the column type, or return an error message."""
    if geom.geom_type.upper() == target:
        return geom
    parts = list(_flatten(geom))
    if target.startswith("MULTI"):
        builder = shapely.multipolygons if target == "MULTIPOLYGON" else shapely.multilinestrings
        return builder(parts)
    if len(parts) != 1:
        return f"expected a single {target.title()}, got {geom.geom_type} with {len(parts)} parts"
    return parts[0]


def _outside_message(geom: Geometry, ref: Reference) -> str | None:
    """Message when the geometry misses the (buffered) district, else None."""
    if ref.district is None or ref.district.intersects(geom):
        return None
    p = geom.representative_point()
    message = f"outside district {ref.district_code} ({p.x:.6f}, {p.y:.6f})"
    swapped = shapely.transform(geom, lambda c: np.ascontiguousarray(c[:, ::-1]))
    if ref.district.intersects(swapped):
        message += "; the axes look swapped (lat, lon): check the file's CRS/axis order"
    elif abs(p.x) > 180 or abs(p.y) > 90:
        message += "; coordinates look projected: pass the source CRS with --crs"
    return message
