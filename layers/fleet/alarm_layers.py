"""Geofence and alarm layers for the layer registry (F2)."""

from __future__ import annotations

from layers.registry import LayerSpec

ALARM_LAYERS: tuple[LayerSpec, ...] = ()
