"""The sample generator: deterministic, the tender's real counts, small ⊂ full."""

from __future__ import annotations

import hashlib
from collections import Counter

import psycopg
import pytest

from data_samples import reference
from data_samples.generate import SampleData, build


@pytest.fixture(scope="module")
def full() -> SampleData:
    return build("full")


def digest(data: SampleData) -> str:
    h = hashlib.sha256()
    for table in data.tables:
        for row in table.rows:
            h.update(repr(row).encode())
    return h.hexdigest()


def test_generation_is_deterministic() -> None:
    assert digest(build("small")) == digest(build("small"))


def test_full_has_tender_component_counts(full: SampleData) -> None:
    ext = {(c.major_code, c.minor_code) for c in reference.component_classes() if c.is_extension}
    idx = full.table("parts").columns.index
    counts = Counter(
        "ext" if (r[idx("major_code")], r[idx("minor_code")]) in ext else r[idx("major_code")]
        for r in full.table("parts").rows
    )
    assert counts == {"01": 90_498, "02": 6_787, "03": 5_716, "04": 26_485, "05": 279, "ext": 8_897}
    assert sum(counts.values()) == 138_662


def test_full_has_thousands_of_plates(full: SampleData) -> None:
    kinds = Counter(r[1] for r in full.table("addresses").rows)
    assert kinds["门牌"] > 5_000 and kinds["楼牌"] > 500


def test_tender_compounds_with_drop_points(full: SampleData) -> None:
    rows = full.table("compounds").rows
    assert len(rows) == 111
    assert sum(r[5] for r in rows) == 286  # the tender's 286 fixed drop points


@pytest.mark.parametrize("table", ["parts", "addresses", "pois", "unit_grids"])
def test_small_is_a_subset_of_full(full: SampleData, table: str) -> None:
    small = build("small").table(table).rows
    full_rows = set(full.table(table).rows)
    assert small and all(row in full_rows for row in small)


def test_every_part_code_has_its_class_prefix(full: SampleData) -> None:
    assert all(r[0][:10] == r[1] and len(r[0]) == 16 for r in full.table("parts").rows)


def test_points_inside_district_seat_bbox(psql_url: str) -> None:
    with psycopg.connect(psql_url) as conn:
        box = conn.execute(
            "SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM "
            "(SELECT ST_Extent(geom) e FROM city.parts) s"
        ).fetchone()
    assert 120.43 <= box[0] and box[2] <= 120.53 and 33.16 <= box[1] and box[3] <= 33.24
