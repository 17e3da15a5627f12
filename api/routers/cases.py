"""Case workflow actions, detail and history."""

from __future__ import annotations

from fastapi import APIRouter


def case_router() -> APIRouter:
    """Build the router (placeholder until its work lands)."""
    return APIRouter()
