"""Dafeng's supervision manual (dispatch rules), staff roster and calendar."""

from __future__ import annotations


def load_case_rules(url: str) -> dict[str, int]:
    """Placeholder until its work lands: loads nothing."""
    return {}
