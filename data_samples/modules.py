"""Business-module samples loaded after the core sample and the demo users, in order."""

from __future__ import annotations

from data_samples.case_history import load_case_history
from data_samples.case_rules import load_case_rules
from data_samples.fleet import load_fleet


def load_module_samples(url: str, size: str) -> dict[str, int]:
    """Dispatch rules, roster and calendar; a year of cases; the fleet registry."""
    counts: dict[str, int] = {}
    counts |= load_case_rules(url)
    counts |= load_case_history(url, size)
    counts |= load_fleet(url, size)
    return counts
