"""Dispatch rules, recommendations, similar cases, timers."""

from __future__ import annotations

from fastapi import APIRouter


def case_rules_router() -> APIRouter:
    """Build the router (placeholder until its work lands)."""
    return APIRouter()
