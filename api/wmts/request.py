"""Validate a GetTile request (KVP or RESTful) against the layers and tile matrix sets."""

from __future__ import annotations

from dataclasses import dataclass

import morecantile
from starlette.requests import Request

from api.ows_errors import OwsError, invalid, missing
from api.wmts.styles import DEFAULT_STYLE
from api.wmts.tms import MAX_ZOOM, TMS_INFO, get_tms
from layers.basemaps import BASEMAPS, BasemapSpec
from layers.registry import LayerRegistry, LayerSpec

PNG = "image/png"
GET_TILE_PARAMS = (
    "layer",
    "style",
    "format",
    "tilematrixset",
    "tilematrix",
    "tilerow",
    "tilecol",
)


@dataclass(frozen=True)
class TileTarget:
    """A validated tile: a basemap or a registry layer, its TMS and tile indices."""

    layer_id: str
    basemap: BasemapSpec | None
    spec: LayerSpec | None
    tms_id: str
    tms: morecantile.TileMatrixSet
    z: int
    row: int
    col: int


def kvp_params(request: Request) -> dict[str, str]:
    """Query parameters with lower-cased names (OGC KVP names are case-insensitive)."""
    return {k.lower(): v for k, v in request.query_params.multi_items()}


def require(params: dict[str, str], name: str) -> str:
    """A non-empty KVP value or ``MissingParameterValue``."""
    value = params.get(name, "").strip()
    if not value:
        raise missing(name)
    return value


def _index(value: str, locator: str, status: int) -> int:
    if not (value.isascii() and value.isdigit()):
        raise invalid(locator, f"{locator} must be a non-negative integer, got '{value}'.", status)
    return int(value)


def _layer(
    layer: str, registry: LayerRegistry, status: int
) -> tuple[BasemapSpec | None, LayerSpec | None]:
    for basemap in BASEMAPS:
        if basemap.id == layer:
            return basemap, None
    if layer in registry.ids():
        return None, registry.get(layer)
    known = ", ".join([b.id for b in BASEMAPS] + registry.ids())
    raise invalid("layer", f"Unknown layer '{layer}'; known layers: {known}.", status)


def resolve_tile(
    registry: LayerRegistry,
    *,
    layer: str,
    style: str,
    fmt: str,
    tms_id: str,
    matrix: str,
    row: str,
    col: str,
    status: int = 400,
) -> TileTarget:
    """Check every GetTile parameter; raise the matching OWS exception on the first bad one."""
    basemap, spec = _layer(layer, registry, status)
    if style != DEFAULT_STYLE:
        raise invalid("style", f"Unknown style '{style}'; layer {layer} offers 'default'.", status)
    if fmt != PNG:
        raise invalid("format", f"Unsupported format '{fmt}'; only {PNG} is offered.", status)
    if tms_id not in TMS_INFO:
        known = ", ".join(TMS_INFO)
        raise invalid("tilematrixset", f"Unknown TileMatrixSet '{tms_id}'; known: {known}.", status)
    z = _index(matrix, "tilematrix", status)
    if z > MAX_ZOOM:
        raise invalid(
            "tilematrix", f"TileMatrix '{matrix}' is not in {tms_id} (0–{MAX_ZOOM}).", status
        )
    tms = get_tms(tms_id)
    r, c = _index(row, "tilerow", status), _index(col, "tilecol", status)
    m = tms.matrix(z)
    if r >= m.matrixHeight:
        raise OwsError(
            "TileOutOfRange", f"TileRow {r} is outside 0–{m.matrixHeight - 1}.", "tilerow", status
        )
    if c >= m.matrixWidth:
        raise OwsError(
            "TileOutOfRange", f"TileCol {c} is outside 0–{m.matrixWidth - 1}.", "tilecol", status
        )
    return TileTarget(layer, basemap, spec, tms_id, tms, z, r, c)
