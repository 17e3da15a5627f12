"""Grids are topologically clean: no gaps, no overlaps, each inside exactly one parent."""

from __future__ import annotations

import psycopg
import pytest

CHILD_PARENT = [
    ("unit_grids", "communities", "community_code"),
    ("responsibility_grids", "communities", "community_code"),
    ("communities", "streets", "street_code"),
    ("evaluation_grids", "streets", "street_code"),
    ("streets", "districts", "district_code"),
]
TILINGS = [
    ("unit_grids", "districts"),
    ("responsibility_grids", "districts"),
    ("evaluation_grids", "districts"),
    ("communities", "districts"),
    ("streets", "districts"),
]


def scalar(url: str, query: str) -> object:
    with psycopg.connect(url) as conn:
        return conn.execute(query).fetchone()[0]


@pytest.mark.parametrize(("layer", "_parent"), TILINGS)
def test_no_overlaps(psql_url: str, layer: str, _parent: str) -> None:
    overlapping = scalar(
        psql_url,
        f"""
        SELECT count(*) FROM city.{layer} a JOIN city.{layer} b
          ON a.code < b.code AND a.geom && b.geom AND ST_Relate(a.geom, b.geom, '2********')""",
    )
    assert overlapping == 0


@pytest.mark.parametrize(("layer", "whole"), TILINGS)
def test_no_gaps(psql_url: str, layer: str, whole: str) -> None:
    gap = scalar(
        psql_url,
        f"""
        SELECT ST_Area(ST_Difference(w.geom, (SELECT ST_Union(geom) FROM city.{layer})))
        FROM city.{whole} w""",
    )
    assert gap < 1e-12


@pytest.mark.parametrize(("child", "parent", "fk"), CHILD_PARENT)
def test_each_inside_exactly_one_parent(psql_url: str, child: str, parent: str, fk: str) -> None:
    bad = scalar(
        psql_url,
        f"""
        SELECT count(*) FROM city.{child} c
        WHERE (SELECT count(*) FROM city.{parent} p
               WHERE ST_Covers(p.geom, c.geom)) <> 1
           OR NOT EXISTS (SELECT 1 FROM city.{parent} p
               WHERE p.code = c.{fk} AND ST_Covers(p.geom, c.geom))""",
    )
    assert bad == 0


@pytest.mark.parametrize(
    "layer",
    [
        "districts",
        "streets",
        "communities",
        "unit_grids",
        "responsibility_grids",
        "evaluation_grids",
        "compounds",
    ],
)
def test_polygons_valid(psql_url: str, layer: str) -> None:
    assert scalar(psql_url, f"SELECT count(*) FROM city.{layer} WHERE NOT ST_IsValid(geom)") == 0


def test_unit_grid_codes_nest(psql_url: str) -> None:
    bad = scalar(
        psql_url,
        """
        SELECT count(*) FROM city.unit_grids
        WHERE code !~ '^320904[0-9]{9}$' OR left(code, 12) <> community_code
           OR left(code, 9) <> street_code""",
    )
    assert bad == 0


def test_evaluation_grids_sized_per_standard(psql_url: str) -> None:
    low = scalar(psql_url, "SELECT min(area_m2) FROM city.evaluation_grids")
    high = scalar(psql_url, "SELECT max(area_m2) FROM city.evaluation_grids")
    assert 0.5e6 <= low and high <= 3e6  # GB/T 30428 evaluation grids: 0.5–3 km²


def test_one_inspector_per_responsibility_grid(psql_url: str) -> None:
    assert scalar(
        psql_url,
        """
        SELECT count(DISTINCT inspector_code) = count(*) FROM city.responsibility_grids""",
    )


def test_unit_grid_parent_links_agree(psql_url: str) -> None:
    bad = scalar(
        psql_url,
        """
        SELECT count(*) FROM city.unit_grids u
        JOIN city.responsibility_grids r ON r.code = u.responsibility_grid_code
        WHERE NOT ST_Covers(r.geom, u.geom) OR r.community_code <> u.community_code""",
    )
    assert bad == 0
