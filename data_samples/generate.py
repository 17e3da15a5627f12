"""Build the whole Dafeng sample data set, deterministically, as rows ready for COPY.

``full`` has the tender's real counts (138,662 components); ``small`` is a consistent subset of
the same data (same geography, every 40th component of each class, the first door plates of
every road) for tests.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from data_samples import reference as ref
from data_samples.base_tables import admin_tables, catalogue_tables, grid_tables
from data_samples.geography import build_geography
from data_samples.part_tables import PART_COLUMNS, SMALL_PART_STRIDE, parts_table
from data_samples.parts import generate_parts
from data_samples.place_tables import place_tables
from data_samples.places import (
    build_roads,
    building_plates,
    door_plates,
    place_buildings,
    place_compounds,
)
from data_samples.pois import build_pois
from data_samples.rows import COUNTY, GridLocator, Table

__all__ = ["PART_COLUMNS", "SMALL_PART_STRIDE", "SampleData", "Size", "Table", "build"]

Size = Literal["small", "full"]
SEED = 320904
SMALL_MAX_PLATE_NUMBER = 60


@dataclass
class SampleData:
    """All tables of a sample set, in foreign-key order."""

    size: Size
    tables: list[Table]

    def table(self, name: str) -> Table:
        """Return one table by name."""
        return next(t for t in self.tables if t.name == name)

    def counts(self) -> dict[str, int]:
        """Rows per table."""
        return {t.name: len(t.rows) for t in self.tables}


def build(size: Size = "full", seed: int = SEED) -> SampleData:
    """Generate every table for ``size``."""
    rng = np.random.default_rng(seed)
    streets, communities = ref.streets(), ref.communities()
    geo = build_geography(list(streets), list(communities), COUNTY, seed)
    street_codes = {s.name: f"{COUNTY}{s.code}" for s in streets}
    locator = GridLocator(geo.unit_grids)

    roads = build_roads(geo, list(ref.roads()))
    compounds = place_compounds(geo, ref.compounds(), street_codes, rng)
    buildings = place_buildings(compounds, rng)
    plates = door_plates(roads) + building_plates(buildings)
    pois = build_pois(plates, rng, shop_share=0.12)
    parts = generate_parts(ref.component_classes(), roads, geo.district_geometry(), rng)

    if size == "small":
        plates = [p for p in plates if p.kind == "楼牌" or p.number <= SMALL_MAX_PLATE_NUMBER]
        kept = {p.code for p in plates}
        pois = [p for p in pois if p.address_code in kept]

    tables = [
        catalogue_tables(),
        admin_tables(geo),
        grid_tables(geo, rng),
        place_tables(geo, roads, compounds, buildings, plates, pois, locator),
        [parts_table(parts, roads, locator, size)],
    ]
    return SampleData(size, [t for group in tables for t in group])
