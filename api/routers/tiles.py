"""OGC API – Tiles (vector tiles) under ``/ogc``, plus XYZ tiles and TileJSON under ``/tiles``.

Included before the pygeoapi mount at ``/ogc`` so these routes win. Tiles are MVT rendered in
PostGIS (:mod:`spatial.tiles`). Answers: 200 with the tile; **204 No Content** for a tile inside
the tileset's limits that holds no feature; 404 for an unknown collection, tile matrix set or
tile matrix (zoom outside the layer's range) and for a tile outside the tileset's
``tileMatrixSetLimits``; 400 for a row/column outside the tile matrix; 304 on a matching
``If-None-Match``. The ETag is the layer version (plus a fingerprint of the tile statement).

Access: the tile matrix sets are public; every per-collection route needs read access to the
collection (``layer_access("collectionId")``: 401 anonymous, 403 without the permission). A
scoped collection (案卷) is rendered for the caller's data scope (数据范围), cached apart, and
its tiles are ``Cache-Control: private``; the ETag then also names the scope.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Request, Response
from fastapi.responses import JSONResponse

from api.deps import get_registry
from api.routers.tile_docs import (
    MVT,
    TILEJSON,
    TilesetInfo,
    tile_limits,
    tilejson,
    tileset,
    tileset_list,
    tms_document,
    tms_list,
)
from api.security.policy import layer_access, public
from layers.registry import LayerRegistry, LayerSpec
from spatial.errors import FieldIssue, InvalidInput, NotFound
from spatial.security.principal import Principal
from spatial.tiles import TileService, TileSettings
from spatial.tms import WEB_MERCATOR_QUAD, TileGrid, tile_grids

TAG = "矢量瓦片 (vector tiles)"
OGC_TILE_NAMES = ("tileMatrix", "tileRow", "tileCol")
XYZ_NAMES = ("z", "y", "x")
TILE_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"content": {MVT: {}}, "description": "Mapbox vector tile"},
    204: {"description": "No feature in this tile"},
    304: {"description": "Not modified (If-None-Match)"},
}

Registry = Annotated[LayerRegistry, Depends(get_registry)]
Reader = Annotated[Principal, Depends(layer_access("collectionId"))]


def _layer(registry: LayerRegistry, collection_id: str) -> LayerSpec:
    try:
        return registry.get(collection_id)
    except NotFound as exc:
        raise NotFound(exc.detail, [FieldIssue("collectionId", "unknown collection")]) from None


def _grid(tms_id: str) -> TileGrid:
    grid = tile_grids().get(tms_id)
    if grid is None:
        known = ", ".join(tile_grids())
        raise NotFound(
            f"Unknown tile matrix set '{tms_id}'; known: {known}",
            [FieldIssue("tileMatrixSetId", f"one of {known}")],
        )
    return grid


def _check_address(
    grid: TileGrid, spec: LayerSpec, z: int, row: int, col: int, names: tuple[str, str, str]
) -> None:
    """404 for a tile matrix the layer is not published in; 400 outside the matrix."""
    zooms = grid.zoom_range(spec.tiles)
    if z not in zooms:
        span = f"{zooms.start}–{zooms.stop - 1}"
        raise NotFound(
            f"Layer '{spec.id}' has no tile matrix {z} in {grid.id} (published: {span}).",
            [FieldIssue(names[0], f"must be within {span}")],
        )
    matrix = grid.matrix(z)
    for name, value, size in (
        (names[1], row, matrix.matrixHeight),
        (names[2], col, matrix.matrixWidth),
    ):
        if not 0 <= value < size:
            raise InvalidInput(
                f"{name} {value} is outside tile matrix {z} of {grid.id} (0–{size - 1}).",
                [FieldIssue(name, f"must be within 0–{size - 1}")],
            )


def tiles_router(settings: TileSettings | None = None) -> APIRouter:
    """Build the vector tile router; its lifespan runs the :class:`TileService`."""
    service = TileService(settings or TileSettings())

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await service.start(app.state.settings.db.resolved_url())
        app.state.tiles = service
        try:
            yield
        finally:
            await service.stop()

    router = APIRouter(tags=[TAG], lifespan=lifespan)
    # Path parameters keep the OGC names (collectionId, tileMatrixSetId, …) for the OpenAPI.

    def base(request: Request) -> str:
        return str(request.base_url).rstrip("/")

    async def info(request: Request, spec: LayerSpec) -> TilesetInfo:
        version = await service.version(spec)
        columns = await service.columns(spec)
        props = {name: columns[name] for name in await service.properties(spec)}
        return TilesetInfo(base(request), props, await service.extent(spec, version), version)

    async def serve(
        request: Request,
        spec: LayerSpec,
        grid: TileGrid,
        address: tuple[int, int, int],
        names: tuple[str, str, str],
        principal: Principal,
    ) -> Response:
        z, row, col = address
        _check_address(grid, spec, z, row, col, names)
        version = await service.version(spec)
        if version is not None and (extent := await service.extent(spec, version)) is not None:
            c0, r0, c1, r1 = tile_limits(grid.id, z, extent)
            if not (c0 <= col <= c1 and r0 <= row <= r1):
                name = names[1] if not r0 <= row <= r1 else names[2]
                raise NotFound(
                    f"Tile {z}/{row}/{col} is outside the tileMatrixSetLimits of '{spec.id}'.",
                    [FieldIssue(name, f"rows {r0}–{r1}, columns {c0}–{c1} at {z}")],
                )
        _, fingerprint = await service.query(spec, grid)
        tag = await service.scope_tag(spec, principal.scope)
        if tag is not None:
            fingerprint = f"{fingerprint}-{tag}"
        audience = "public" if spec.public else "private"
        headers = {"Cache-Control": f"{audience}, max-age={service.settings.max_age_s}"}
        if version is not None:
            etag = f'"{version}-{fingerprint}"'
            if etag in request.headers.get("if-none-match", ""):
                return Response(status_code=304, headers={**headers, "ETag": etag})
        tile = await service.tile(spec, grid, z, col, row, version, principal.scope)
        headers["X-Cache"] = "hit" if tile.cached else "miss"
        if tile.version is not None:
            headers["ETag"] = f'"{tile.version}-{fingerprint}"'
        if not tile.data:
            return Response(status_code=204, headers=headers)
        return Response(tile.data, media_type=MVT, headers=headers)

    @router.get(
        "/ogc/tileMatrixSets",
        operation_id="getTileMatrixSetsList",
        dependencies=[Depends(public)],
    )
    async def tile_matrix_sets(request: Request) -> JSONResponse:
        """Tile matrix sets (tiling schemes) offered for the vector tiles."""
        return JSONResponse(tms_list(base(request)))

    @router.get(
        "/ogc/tileMatrixSets/{tileMatrixSetId}",
        operation_id="getTileMatrixSet",
        dependencies=[Depends(public)],
    )
    async def tile_matrix_set(tileMatrixSetId: str) -> JSONResponse:
        """One tile matrix set in the OGC TMS 2.0 JSON encoding."""
        return JSONResponse(tms_document(_grid(tileMatrixSetId)))

    @router.get(
        "/ogc/collections/{collectionId}/tiles",
        operation_id="getCollectionVectorTileSets",
        dependencies=[Depends(layer_access("collectionId"))],
    )
    async def collection_tilesets(
        request: Request,
        collectionId: str,
        registry: Registry,
    ) -> JSONResponse:
        """Vector tilesets of a collection, one per tile matrix set."""
        return JSONResponse(tileset_list(base(request), _layer(registry, collectionId)))

    @router.get(
        "/ogc/collections/{collectionId}/tiles/{tileMatrixSetId}",
        operation_id="getCollectionVectorTileSet",
        dependencies=[Depends(layer_access("collectionId"))],
    )
    async def collection_tileset(
        request: Request,
        collectionId: str,
        tileMatrixSetId: str,
        registry: Registry,
    ) -> JSONResponse:
        """Tileset metadata: limits, bounding box, the vector layer and its properties."""
        spec, grid = _layer(registry, collectionId), _grid(tileMatrixSetId)
        return JSONResponse(tileset(spec, grid, await info(request, spec)))

    @router.get(
        "/ogc/collections/{collectionId}/tiles/{tileMatrixSetId}/{tileMatrix}/{tileRow}/{tileCol}",
        operation_id="getCollectionVectorTile",
        response_class=Response,
        responses=TILE_RESPONSES,
    )
    async def collection_tile(
        request: Request,
        collectionId: str,
        tileMatrixSetId: str,
        tileMatrix: int,
        tileRow: int,
        tileCol: int,
        principal: Reader,
        registry: Registry,
    ) -> Response:
        """One vector tile (row = y, column = x)."""
        spec, grid = _layer(registry, collectionId), _grid(tileMatrixSetId)
        address = (tileMatrix, tileRow, tileCol)
        return await serve(request, spec, grid, address, OGC_TILE_NAMES, principal)

    @router.get(
        "/tiles/{collectionId}/{z}/{x}/{y}.mvt",
        operation_id="getXyzVectorTile",
        response_class=Response,
        responses=TILE_RESPONSES,
    )
    async def xyz_tile(
        request: Request,
        collectionId: str,
        z: int,
        x: int,
        y: int,
        principal: Reader,
        registry: Registry,
    ) -> Response:
        """One WebMercatorQuad vector tile at the web-map XYZ address."""
        spec, grid = _layer(registry, collectionId), tile_grids()[WEB_MERCATOR_QUAD]
        return await serve(request, spec, grid, (z, y, x), XYZ_NAMES, principal)

    @router.get(
        "/tiles/{collectionId}/tilejson.json",
        operation_id="getTileJson",
        responses={200: {"content": {TILEJSON: {}}}},
        dependencies=[Depends(layer_access("collectionId"))],
    )
    async def tile_json(
        request: Request,
        collectionId: str,
        registry: Registry,
    ) -> JSONResponse:
        """TileJSON 3.0.0 of a collection's XYZ vector tiles."""
        spec, grid = _layer(registry, collectionId), tile_grids()[WEB_MERCATOR_QUAD]
        return JSONResponse(tilejson(spec, grid, await info(request, spec)))

    return router
