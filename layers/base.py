"""Base reference layers of the spatial core (行政区划, 网格, 地理编码, 部件, 案卷)."""

from __future__ import annotations

from layers.fleet.alarm_layers import ALARM_LAYERS
from layers.fleet.layers import FLEET_LAYERS
from layers.registry import LayerRegistry, LayerScope, LayerSpec, TileSpec

ADMIN = ("基础数据", "行政区划")
GRIDS = ("基础数据", "网格")
GEOCODING = ("基础数据", "地理编码")

BASE_LAYERS = (
    LayerSpec(
        id="districts",
        table="districts",
        title="行政区划（区县）",
        geometry_type="MULTIPOLYGON",
        queryables=("code", "name"),
        required=("code", "name"),
        tree=ADMIN,
    ),
    LayerSpec(
        id="streets",
        table="streets",
        title="街道（镇）",
        geometry_type="MULTIPOLYGON",
        queryables=("code", "name", "kind", "district_code"),
        required=("code", "name", "kind", "district_code"),
        tree=ADMIN,
    ),
    LayerSpec(
        id="communities",
        table="communities",
        title="社区（村）",
        geometry_type="MULTIPOLYGON",
        queryables=("code", "name", "street_code"),
        required=("code", "name", "street_code"),
        tree=ADMIN,
    ),
    LayerSpec(
        id="unit_grids",
        table="unit_grids",
        title="单元网格",
        geometry_type="MULTIPOLYGON",
        queryables=("code", "community_code", "street_code", "responsibility_grid_code"),
        required=("code", "community_code", "street_code"),
        tree=GRIDS,
    ),
    LayerSpec(
        id="responsibility_grids",
        table="responsibility_grids",
        title="责任网格",
        geometry_type="MULTIPOLYGON",
        queryables=("code", "name", "community_code", "inspector_code"),
        required=("code", "name", "community_code", "inspector_code", "inspector_name"),
        tree=GRIDS,
    ),
    LayerSpec(
        id="evaluation_grids",
        table="evaluation_grids",
        title="评价网格",
        geometry_type="MULTIPOLYGON",
        queryables=("code", "street_code", "grid_type"),
        required=("code", "street_code", "grid_type"),
        tree=GRIDS,
    ),
    LayerSpec(
        id="roads",
        table="roads",
        title="道路（街巷）",
        geometry_type="MULTILINESTRING",
        queryables=("code", "name", "kind", "grade"),
        required=("code", "name", "kind"),
        tree=GEOCODING,
    ),
    LayerSpec(
        id="compounds",
        table="compounds",
        title="小区（地片/区片）",
        geometry_type="MULTIPOLYGON",
        queryables=("code", "name", "kind", "street_code", "community_code"),
        required=("code", "name"),
        tree=GEOCODING,
    ),
    LayerSpec(
        id="buildings",
        table="buildings",
        title="楼栋",
        geometry_type="POLYGON",
        queryables=("code", "name", "compound_code", "floors"),
        required=("code", "name"),
        tree=GEOCODING,
    ),
    LayerSpec(
        id="addresses",
        table="addresses",
        title="门（楼）牌地址",
        geometry_type="POINT",
        queryables=(
            "code",
            "kind",
            "base_name",
            "number",
            "standard_address",
            "grid_code",
            "community_code",
        ),
        required=("code", "kind", "base_name", "number"),
        tree=GEOCODING,
        locate_grid=True,
    ),
    LayerSpec(
        id="pois",
        table="pois",
        title="兴趣点",
        geometry_type="POINT",
        queryables=("code", "name", "category", "grid_code"),
        required=("code", "name", "category"),
        tree=GEOCODING,
        locate_grid=True,
    ),
    LayerSpec(
        id="parts",
        table="parts",
        title="城市部件",
        geometry_type="POINT",
        queryables=(
            "code",
            "class_code",
            "major_code",
            "minor_code",
            "name",
            "department",
            "grid_code",
            "status",
        ),
        required=("code", "name"),
        tree=("城市部件",),
        count="estimate",
        locate_grid=True,
        temporal="initial_time",
        tiles=TileSpec(
            minzoom=13,
            maxzoom=20,
            properties=("code", "major_code", "minor_code", "name", "status"),
        ),
    ),
    LayerSpec(
        id="cases",
        table="cases",
        title="案卷",
        geometry_type="POINT",
        pk="id",
        queryables=(
            "case_no",
            "source",
            "category",
            "class_code",
            "major_code",
            "status",
            "stage",
            "grid_code",
            "street_code",
            "department_code",
        ),
        required=("case_no", "source", "category", "class_code", "description"),
        tree=("案卷",),
        locate_grid=True,
        temporal="reported_at",
        read_permission="cases:read",
        scope=LayerScope(
            department="department_code",
            grid="responsibility_grid_code",
            owner="reporter_user_id",
        ),
        classification="重要数据",
    ),
)


def register_base_layers(registry: LayerRegistry) -> None:
    """Add the spatial core's layers and the business modules' layers."""
    for spec in (*BASE_LAYERS, *FLEET_LAYERS, *ALARM_LAYERS):
        registry.register(spec)


def default_registry() -> LayerRegistry:
    """A registry holding every layer the platform ships."""
    registry = LayerRegistry()
    register_base_layers(registry)
    return registry
