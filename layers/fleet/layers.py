"""Fleet layers (vehicle latest positions, sites, routes) for the layer registry (F1)."""

from __future__ import annotations

from layers.registry import LayerSpec, TileSpec

FLEET = ("车辆监管",)

FLEET_LAYERS: tuple[LayerSpec, ...] = (
    LayerSpec(
        id="vehicle_positions",
        table="vehicle_latest",
        title="车辆实时位置",
        geometry_type="POINT",
        pk="vehicle_id",
        queryables=("vehicle_id", "plate", "vehicle_kind", "company_id", "terminal_id", "sealed"),
        required=("plate", "vehicle_kind", "terminal_id", "device_time"),
        tree=FLEET,
        temporal="device_time",
        read_permission="vehicles:read",
        classification="重要数据",
        description="每辆车最新定位（只前进不回退）；CGCS2000。",
        tiles=TileSpec(
            minzoom=8, maxzoom=20, properties=("vehicle_id", "plate", "vehicle_kind", "speed_kmh")
        ),
    ),
    LayerSpec(
        id="fleet_sites",
        table="fleet_sites",
        title="工地、消纳场、中转场与停车场",
        geometry_type="MULTIPOLYGON",
        pk="id",
        queryables=("code", "name", "kind", "street_code", "company_id", "active"),
        required=("code", "name", "kind"),
        tree=FLEET,
        read_permission="vehicles:read",
        tiles=TileSpec(minzoom=8, maxzoom=20, properties=("id", "code", "name", "kind")),
    ),
    LayerSpec(
        id="fleet_routes",
        table="fleet_routes",
        title="核准运输路线",
        geometry_type="MULTILINESTRING",
        pk="id",
        queryables=("code", "name", "corridor_m"),
        required=("code", "name"),
        tree=FLEET,
        read_permission="vehicles:read",
        tiles=TileSpec(minzoom=8, maxzoom=20, properties=("id", "code", "name")),
    ),
)
