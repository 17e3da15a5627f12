"""Fleet registry, telemetry ingest and tracks."""

from __future__ import annotations

from fastapi import APIRouter


def fleet_router() -> APIRouter:
    """Build the router (placeholder until its work lands)."""
    return APIRouter()
