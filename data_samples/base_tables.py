"""Catalogue, administrative and grid tables of the sample."""

from __future__ import annotations

import numpy as np

from data_samples import reference as ref
from data_samples.geography import Geography, evaluation_grid_type
from data_samples.names import person_name
from data_samples.places import (
    aliases,
)
from data_samples.rows import (
    COUNTY,
    COUNTY_NAME,
    Table,
    area_m2,
    ewkb,
    multi,
)


def catalogue_tables() -> list[Table]:
    """The component and event catalogues and the organisations."""
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
            tuple(getattr(c, col) for col in (*cols, "geometry_type"))
            for c in ref.component_classes()
        ],
    )
    event = Table(
        "event_classes",
        cols,
        [tuple(getattr(c, col) for col in cols) for c in ref.event_classes()],
    )
    depts = Table(
        "departments",
        ("code", "name", "kind", "phone"),
        [(d.code, d.name, d.kind, d.phone or None) for d in ref.departments()],
    )
    return [comp, event, depts]


def admin_tables(geo: Geography) -> list[Table]:
    """District, streets and communities."""
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


def grid_tables(geo: Geography, rng: np.random.Generator) -> list[Table]:
    """Responsibility, evaluation and unit grids (unit grids link to both)."""
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
