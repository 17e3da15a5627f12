"""Vehicles in motion: registry, telemetry, muck-truck chain (渣土全链条), manifests, tracks."""
