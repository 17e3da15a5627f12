"""The geofence engine: one engine for every module (fleet, sanitation, patrols)."""
