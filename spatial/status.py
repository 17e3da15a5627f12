"""Row counts per layer and components per major class (``cityops db status``)."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql

from layers.registry import LayerRegistry
from spatial.db import libpq_url

PARTS_BY_MAJOR = """
SELECT CASE WHEN c.is_extension THEN 'ext' ELSE p.major_code END AS major, count(*)
FROM city.parts p
JOIN city.component_classes c USING (major_code, minor_code)
GROUP BY 1 ORDER BY 1
"""


def database_status(url: str, registry: LayerRegistry) -> dict[str, Any]:
    """Counts per registered layer; components per major (extension classes as ``ext``)."""
    with psycopg.connect(libpq_url(url)) as conn:
        layers = {
            spec.id: conn.execute(
                sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(spec.schema, spec.table))
            ).fetchone()[0]
            for spec in registry
        }
        by_major = dict(conn.execute(PARTS_BY_MAJOR).fetchall())
        revision = conn.execute("SELECT version_num FROM city.alembic_version").fetchone()
        versions = conn.execute(
            "SELECT current_setting('server_version'), postgis_lib_version()"
        ).fetchone()
    return {
        "layers": layers,
        "parts_by_major": by_major,
        "migration": revision[0] if revision else None,
        "postgresql": versions[0],
        "postgis": versions[1],
    }
