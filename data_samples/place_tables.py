"""Roads, compounds, buildings, plates and POIs as table rows."""

from __future__ import annotations

import numpy as np

from data_samples.geography import Geography
from data_samples.places import (
    Plate,
    aliases,
)
from data_samples.rows import (
    COUNTY_NAME,
    GridLocator,
    Table,
    ewkb,
    ewkb_many,
    h3_cells,
    multi,
)


def place_tables(
    geo: Geography,
    roads: list,
    compounds: list,
    buildings: list,
    plates: list[Plate],
    pois: list,
    locator: GridLocator,
) -> list[Table]:
    """Roads, compounds, buildings, plates and POIs."""
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
    addr_t = address_table(plates, locator, street_name)
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


def address_table(plates: list[Plate], locator: GridLocator, street_name: dict[str, str]) -> Table:
    """Door and building plates with their segmented standard address."""
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
