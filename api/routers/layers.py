"""``/api/v1/layers``: the layer registry as the clients' catalogue."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import BaseModel

from api.deps import get_registry
from api.security.policy import public
from layers.registry import LayerRegistry, LayerSpec
from spatial.security.classification import catalogue


class LayerInfo(BaseModel):
    """A published layer."""

    id: str
    title: str
    geometry_type: str
    storage_crs: str
    queryables: list[str]
    tree: list[str]
    access: str = "public"  # or the permission reading it needs
    scoped: bool = False  # rows limited by the reader's data scope (数据范围)
    classification: str = "一般数据"  # 数据分类分级


def _info(spec: LayerSpec) -> LayerInfo:
    return LayerInfo(
        id=spec.id,
        title=spec.title,
        geometry_type=spec.geometry_type,
        storage_crs=f"http://www.opengis.net/def/crs/EPSG/0/{spec.srid}",
        queryables=list(spec.queryables),
        tree=list(spec.tree),
        access=spec.read_permission or "public",
        scoped=spec.scope is not None,
        classification=spec.classification,
    )


def layers_router() -> APIRouter:
    """Build the catalogue router."""
    router = APIRouter(
        prefix="/api/v1/layers", tags=["图层 (layers)"], dependencies=[Depends(public)]
    )

    @router.get("", response_model=list[LayerInfo], operation_id="listLayers")
    async def list_layers(
        registry: Annotated[LayerRegistry, Depends(get_registry)],
    ) -> list[LayerInfo]:
        return [_info(spec) for spec in registry]

    @router.get(
        "/data-classification",
        response_model=list[dict[str, object]],
        operation_id="getDataClassification",
        summary="数据分类分级: level, access and protected personal fields of every table",
    )
    async def data_classification(
        registry: Annotated[LayerRegistry, Depends(get_registry)],
    ) -> list[dict[str, object]]:
        return catalogue(registry)

    @router.get("/{layer_id}", response_model=LayerInfo, operation_id="getLayer")
    async def get_layer(
        layer_id: str, registry: Annotated[LayerRegistry, Depends(get_registry)]
    ) -> LayerInfo:
        return _info(registry.get(layer_id))

    return router
