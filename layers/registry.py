"""The typed layer registry: one ``LayerSpec`` per published layer, one registry for all.

The registry is the single source for what the platform publishes: row counts in
``cityops db status``, the importer's targets, and (in later modules) the pygeoapi
configuration, OpenAPI tags and the web client's layer tree.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Literal

from spatial.errors import NotFound

GeometryType = Literal["POINT", "MULTILINESTRING", "MULTIPOLYGON", "POLYGON"]
CountPolicy = Literal["exact", "estimate", "none"]


@dataclass(frozen=True)
class TileSpec:
    """Vector-tile publishing of a layer: zoom range and the properties carried in tiles."""

    minzoom: int = 10
    maxzoom: int = 18
    properties: tuple[str, ...] = ()


@dataclass(frozen=True)
class LayerScope:
    """Columns a layer's rows are scoped by (数据范围); see ``spatial.security.scope``.

    ``area``: rows inside a street's or community's polygon; ``department``: the column
    holding the responsible department's code; ``grid``: the responsibility-grid column;
    ``owner``: the column holding the reporting user's id.
    """

    area: bool = True
    department: str | None = None
    grid: str | None = None
    owner: str | None = None


@dataclass(frozen=True)
class LayerSpec:
    """One published layer: a PostGIS table in EPSG:4490 and how to present it."""

    id: str
    table: str
    title: str
    geometry_type: GeometryType
    pk: str = "code"
    geom: str = "geom"
    srid: int = 4490
    schema: str = "city"
    queryables: tuple[str, ...] = ()
    required: tuple[str, ...] = ()
    tree: tuple[str, ...] = ()
    count: CountPolicy = "exact"
    locate_grid: bool = False
    description: str = ""
    temporal: str | None = None
    tiles: TileSpec = field(default_factory=TileSpec)
    keywords: tuple[str, ...] = ()
    read_permission: str | None = None  # None: public map data, readable anonymously
    scope: LayerScope | None = None  # None: no row-level data scope
    classification: str = "一般数据"  # 数据分类分级: 一般数据 / 重要数据 / 核心数据

    @property
    def public(self) -> bool:
        """True when anyone may read the layer (公开地图数据)."""
        return self.read_permission is None

    @property
    def qualified_table(self) -> str:
        """``schema.table``."""
        return f"{self.schema}.{self.table}"

    @property
    def is_point(self) -> bool:
        """Point layers also carry an H3 cell."""
        return self.geometry_type == "POINT"


@dataclass
class LayerRegistry:
    """Ordered, duplicate-free collection of layers."""

    _layers: dict[str, LayerSpec] = field(default_factory=dict)

    def register(self, spec: LayerSpec) -> LayerSpec:
        """Add a layer; a duplicate id is a programming error."""
        if spec.id in self._layers:
            raise ValueError(f"layer {spec.id!r} registered twice")
        self._layers[spec.id] = spec
        return spec

    def get(self, layer_id: str) -> LayerSpec:
        """Return a layer or raise ``NotFound`` naming the known ids."""
        try:
            return self._layers[layer_id]
        except KeyError:
            known = ", ".join(self._layers)
            raise NotFound(f"Unknown layer '{layer_id}'; known layers: {known}") from None

    def find(self, layer_id: str) -> LayerSpec | None:
        """Return a layer, or None."""
        return self._layers.get(layer_id)

    def __iter__(self) -> Iterator[LayerSpec]:
        """Layers in registration order."""
        return iter(self._layers.values())

    def __len__(self) -> int:
        """Number of layers."""
        return len(self._layers)

    def ids(self) -> list[str]:
        """Layer ids in order."""
        return list(self._layers)
