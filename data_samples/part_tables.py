"""Component (部件) rows: codes, attributes, H3 and EWKB, for the full or small sample."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal

import numpy as np
import shapely

from data_samples.parts import MAINTAINERS, PartBatch
from data_samples.rows import (
    COUNTY,
    GridLocator,
    Table,
    ewkb_many,
    h3_cells,
)

Size = Literal["small", "full"]
SMALL_PART_STRIDE = 40
EPOCH = datetime(2016, 1, 1, tzinfo=UTC)


PART_COLUMNS = (
    "code",
    "class_code",
    "county_code",
    "major_code",
    "minor_code",
    "name",
    "department",
    "owner",
    "maintainer",
    "grid_code",
    "status",
    "initial_time",
    "change_time",
    "data_source",
    "location_desc",
    "currency_date",
    "scale_denominator",
    "h3",
    "geom",
)


def parts_table(batch: PartBatch, roads: list, locator: GridLocator, size: Size) -> Table:
    """The components table for ``size``."""
    grid_idx = locator.locate(batch.lon, batch.lat)
    geoms = shapely.points(batch.lon, batch.lat)
    table = Table("parts", PART_COLUMNS)
    table.rows = list(_part_rows(batch, roads, locator, grid_idx, geoms, size))
    return table


def _part_rows(
    batch: PartBatch,
    roads: list,
    locator: GridLocator,
    grid_idx: np.ndarray,
    geoms: np.ndarray,
    size: Size,
) -> Iterator[tuple[Any, ...]]:
    seq_in_class: dict[int, int] = {}
    keep = []
    for k, c in enumerate(batch.class_idx.tolist()):
        seq = seq_in_class[c] = seq_in_class.get(c, 0) + 1
        if grid_idx[k] >= 0 and (size == "full" or seq % SMALL_PART_STRIDE == 1):
            keep.append((k, seq))
    ks = np.array([k for k, _ in keep], dtype=int)
    cells = h3_cells(batch.lon[ks], batch.lat[ks])
    hexes = ewkb_many(geoms[ks])
    sides = {(1, "EW"): "北侧", (-1, "EW"): "南侧", (1, "NS"): "西侧", (-1, "NS"): "东侧"}
    for (k, seq), h, g in zip(keep, cells, hexes, strict=True):
        cls = batch.classes[batch.class_idx[k]]
        class_code = f"{COUNTY}{cls.major_code}{cls.minor_code}"
        grid = locator.codes[grid_idx[k]]
        r = int(batch.road_idx[k])
        where = (
            f"{roads[r].name}{sides[(int(batch.side[k]), roads[r].direction)]}"
            if r >= 0
            else f"{grid}网格内"
        )
        initial = EPOCH + timedelta(days=int(batch.initial_days[k]))
        changed = initial + timedelta(days=200) if batch.status[k] != "完好" else None
        yield (
            f"{class_code}{seq:06d}",
            class_code,
            COUNTY,
            cls.major_code,
            cls.minor_code,
            cls.minor_name,
            cls.department,
            cls.department,
            MAINTAINERS.get(cls.major_code, "大丰区城市管理局"),
            grid,
            str(batch.status[k]),
            initial,
            changed,
            "普查",
            where,
            date(2024, 6, 30),
            500,
            h,
            g,
        )
