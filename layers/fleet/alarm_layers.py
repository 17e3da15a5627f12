"""Geofence and alarm layers for the layer registry (F2)."""

from __future__ import annotations

from layers.registry import LayerScope, LayerSpec, TileSpec

ALARM_LAYERS: tuple[LayerSpec, ...] = (
    LayerSpec(
        id="alarms",
        table="alarms",
        title="车辆监管报警",
        geometry_type="POINT",
        pk="id",
        queryables=(
            "kind",
            "title",
            "state",
            "vehicle_id",
            "plate",
            "company_id",
            "fence_id",
            "site_id",
            "case_id",
        ),
        required=("kind", "title", "started_at"),
        tree=("车辆监管",),
        temporal="started_at",
        read_permission="alarms:read",
        scope=LayerScope(),
        classification="重要数据",
        description="越界、偏离路线、超速、疑似偷倒、未密闭、黑车、非核准消纳、终端离线等报警；CGCS2000。",
        tiles=TileSpec(
            minzoom=8, maxzoom=20, properties=("id", "kind", "state", "plate", "started_at")
        ),
    ),
)
