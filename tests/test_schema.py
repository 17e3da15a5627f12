"""The PostGIS schema: CGCS2000 everywhere, GiST indexes, H3 on point layers, no drift."""

from __future__ import annotations

import psycopg
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from layers.base import default_registry
from spatial.db import make_engine
from spatial.models import Base

LAYERS = list(default_registry())


def fetch(url: str, query: str, *args: object) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute(query, args).fetchall()


@pytest.mark.parametrize("spec", LAYERS, ids=lambda s: s.id)
def test_geometry_is_cgcs2000(psql_url: str, spec) -> None:
    rows = fetch(
        psql_url,
        "SELECT srid, type FROM geometry_columns "
        "WHERE f_table_schema = %s AND f_table_name = %s AND f_geometry_column = %s",
        spec.schema,
        spec.table,
        spec.geom,
    )
    assert rows == [(4490, spec.geometry_type)]


@pytest.mark.parametrize("spec", LAYERS, ids=lambda s: s.id)
def test_geometry_has_gist_index(psql_url: str, spec) -> None:
    rows = fetch(
        psql_url,
        "SELECT indexdef FROM pg_indexes WHERE schemaname = %s "
        "AND tablename = %s AND indexdef ILIKE %s",
        spec.schema,
        spec.table,
        f"%USING gist ({spec.geom})%",
    )
    assert rows


RUNTIME_ONLY = {"alarms"}  # filled by the running system, not by the sample


@pytest.mark.parametrize(
    "spec", [s for s in LAYERS if s.is_point and s.id not in RUNTIME_ONLY], ids=lambda s: s.id
)
def test_point_layers_carry_h3_res9(psql_url: str, spec) -> None:
    rows = fetch(
        psql_url,
        f"SELECT count(*), count(h3), "
        f"count(*) FILTER (WHERE ((h3 >> 52) & 15) <> 9) FROM {spec.qualified_table}",
    )
    total, with_h3, wrong_res = rows[0]
    assert total > 0 and with_h3 == total and wrong_res == 0


def test_migrations_match_models(db_url: str) -> None:
    engine = make_engine(db_url)
    with engine.connect() as conn:
        ctx = MigrationContext.configure(
            conn,
            opts={
                "include_schemas": True,
                "include_object": lambda obj, name, type_, reflected, other: (
                    not (
                        type_ == "table"
                        and (getattr(obj, "schema", None) != "city" or name == "alembic_version")
                    )
                ),
            },
        )
        diff = [
            d
            for d in compare_metadata(ctx, Base.metadata)
            if not (
                isinstance(d, tuple)
                and d[0] in ("add_index", "remove_index")
                and "idx_" in str(d[1].name)
            )
        ]
    engine.dispose()
    assert diff == []
