"""Fleet layers (vehicle latest positions, sites, routes) for the layer registry (F1)."""

from __future__ import annotations

from layers.registry import LayerSpec

FLEET_LAYERS: tuple[LayerSpec, ...] = ()
