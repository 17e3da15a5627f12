"""``/api/v1/layers``: the layer registry as the clients' catalogue."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import BaseModel

from api.deps import get_registry
from layers.registry import LayerRegistry, LayerSpec


class LayerInfo(BaseModel):
    """A published layer."""

    id: str
    title: str
    geometry_type: str
    storage_crs: str
    queryables: list[str]
    tree: list[str]


def _info(spec: LayerSpec) -> LayerInfo:
    return LayerInfo(
        id=spec.id,
        title=spec.title,
        geometry_type=spec.geometry_type,
        storage_crs=f"http://www.opengis.net/def/crs/EPSG/0/{spec.srid}",
        queryables=list(spec.queryables),
        tree=list(spec.tree),
    )


def layers_router() -> APIRouter:
    """Build the catalogue router."""
    router = APIRouter(prefix="/api/v1/layers", tags=["图层 (layers)"])

    @router.get("", response_model=list[LayerInfo], operation_id="listLayers")
    async def list_layers(
        registry: Annotated[LayerRegistry, Depends(get_registry)],
    ) -> list[LayerInfo]:
        return [_info(spec) for spec in registry]

    @router.get("/{layer_id}", response_model=LayerInfo, operation_id="getLayer")
    async def get_layer(
        layer_id: str, registry: Annotated[LayerRegistry, Depends(get_registry)]
    ) -> LayerInfo:
        return _info(registry.get(layer_id))

    return router
