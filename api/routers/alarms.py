"""Geofences, alarms and manifests."""

from __future__ import annotations

from fastapi import APIRouter


def alarms_router() -> APIRouter:
    """Build the router (placeholder until its work lands)."""
    return APIRouter()
