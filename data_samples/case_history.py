"""A realistic year of cases across every state."""

from __future__ import annotations


def load_case_history(url: str, size: str) -> dict[str, int]:
    """Placeholder until its work lands: loads nothing."""
    return {}
