"""Computed columns: H3 cell, length, area, grid, community, address and part codes."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, Final

import h3
from pyproj import Geod
from shapely import Geometry

from spatial.errors import FieldIssue
from spatial.importer.checks import CODE_PATTERNS
from spatial.importer.context import Context
from spatial.importer.convert import CHINA_TZ
from spatial.importer.reference import Reference

H3_RESOLUTION: Final = 9


GEOD: Final = Geod(ellps="GRS80")


def derive(row: dict[str, Any], geom: Geometry, n: int, ctx: Context) -> list[FieldIssue]:
    """Fill computed columns from the geometry: H3 cell, length, area, grid, community."""
    issues: list[FieldIssue] = []
    columns = ctx.columns
    if ctx.spec.is_point and "h3" in columns:
        row["h3"] = h3.str_to_int(h3.latlng_to_cell(geom.y, geom.x, H3_RESOLUTION))
    if "length_m" in columns and row.get("length_m") is None:
        row["length_m"] = round(GEOD.geometry_length(geom), 1)
    if "area_m2" in columns and row.get("area_m2") is None:
        row["area_m2"] = round(abs(GEOD.geometry_area_perimeter(geom)[0]), 1)
    if ctx.ref.grids is not None:
        issues += _locate_grid(row, geom, n, ctx)
    if ctx.ref.communities is not None:
        issues += _locate_community(row, geom, n, ctx)
    if ctx.spec.table == "addresses" and not issues:
        _standard_address(row, ctx)
    return issues


def _locate_grid(row: dict[str, Any], geom: Geometry, n: int, ctx: Context) -> list[FieldIssue]:
    """Unit grid (and community) of a point when the file does not give them."""
    grids = ctx.ref.grids
    assert grids is not None
    if row.get("grid_code"):
        if row["grid_code"] not in grids.parent_of:
            return [
                FieldIssue(
                    field="grid_code", feature=n, message=f"unknown unit grid {row['grid_code']}"
                )
            ]
    else:
        idx = grids.locate(geom)
        if idx is None:
            return [
                FieldIssue(
                    field="grid_code",
                    feature=n,
                    message=(
                        f"point ({geom.x:.6f}, {geom.y:.6f}) is in no unit grid of city.unit_grids"
                    ),
                )
            ]
        row["grid_code"] = grids.codes[idx]
    if "community_code" in ctx.columns and not row.get("community_code"):
        row["community_code"] = grids.parent_of[row["grid_code"]]
    return []


def _locate_community(
    row: dict[str, Any], geom: Geometry, n: int, ctx: Context
) -> list[FieldIssue]:
    """Community and street of an area or line when the file does not give them."""
    wanted = [c for c in ("community_code", "street_code") if c in ctx.columns and not row.get(c)]
    if not wanted:
        return []
    communities = ctx.ref.communities
    assert communities is not None
    idx = communities.locate(geom)
    if idx is None:
        p = geom.representative_point()
        return [
            FieldIssue(
                field=wanted[0],
                feature=n,
                message=(f"({p.x:.6f}, {p.y:.6f}) is in no community of city.communities"),
            )
        ]
    found = {"community_code": communities.codes[idx], "street_code": communities.parents[idx]}
    row.update({c: found[c] for c in wanted})
    return []


def derive_part(row: dict[str, Any], n: int, ref: Reference) -> list[FieldIssue]:
    """Class, county, major and minor codes of a component from its 16-digit code."""
    if row.get("initial_time") is None:
        row["initial_time"] = datetime.now(CHINA_TZ)
    code = row.get("code")
    if not code or not re.fullmatch(CODE_PATTERNS["parts"], code):
        return []  # reported by the code check
    derived = {
        "class_code": code[:10],
        "county_code": code[:6],
        "major_code": code[6:8],
        "minor_code": code[8:10],
    }
    issues = [
        FieldIssue(field=k, feature=n, message=f"{k} {row[k]} does not match code {code}")
        for k, v in derived.items()
        if row.get(k) not in (None, v)
    ]
    row.update(derived)
    if ref.district_code and code[:6] != ref.district_code:
        issues.append(
            FieldIssue(
                field="code",
                feature=n,
                message=(
                    f"code {code} belongs to county {code[:6]}, not district {ref.district_code}"
                ),
            )
        )
    department = ref.classes.get((code[6:8], code[8:10]))
    if department is None:
        issues.append(
            FieldIssue(
                field="code",
                feature=n,
                message=(
                    f"code {code}: unknown component class {code[:10]} (major {code[6:8]}, "
                    f"minor {code[8:10]}) not in city.component_classes"
                ),
            )
        )
    elif not row.get("department"):
        row["department"] = department
    return issues


def _standard_address(row: dict[str, Any], ctx: Context) -> None:
    """Compose 区 + 街道 + name + number + suffix when the file lacks a standard address."""
    if row.get("standard_address") or not row.get("grid_code"):
        return
    suffix = row.get("suffix") or ctx.defaults.get("suffix", "")
    if row.get("base_name") is None or row.get("number") is None:
        return
    street = ctx.ref.street_names.get(row["grid_code"][:9], "")
    row["standard_address"] = (
        f"{ctx.ref.district_name}{street}{row['base_name']}{row['number']}{suffix}"
    )
