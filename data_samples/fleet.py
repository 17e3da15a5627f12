"""The fleet registry: sites, companies, trucks, drivers, permits."""

from __future__ import annotations


def load_fleet(url: str, size: str) -> dict[str, int]:
    """Placeholder until its work lands: loads nothing."""
    return {}
