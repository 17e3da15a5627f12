"""Case boxes, search and exports."""

from __future__ import annotations

from fastapi import APIRouter


def case_boxes_router() -> APIRouter:
    """Build the router (placeholder until its work lands)."""
    return APIRouter()
