"""Field-app intake: reports, media, tasks, positions."""

from __future__ import annotations

from fastapi import APIRouter


def case_intake_router() -> APIRouter:
    """Build the router (placeholder until its work lands)."""
    return APIRouter()
