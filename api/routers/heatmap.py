"""H3 heatmaps of point layers."""

from __future__ import annotations

from fastapi import APIRouter


def heatmap_router() -> APIRouter:
    """Build the router (placeholder until its work lands)."""
    return APIRouter()
