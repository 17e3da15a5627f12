"""A throwaway redis-server for the tests (or ``CITYOPS_TEST_REDIS_URL``)."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from spatial.redisd import LocalRedis


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """URL of a Redis server: ``CITYOPS_TEST_REDIS_URL`` or a throwaway local one."""
    external = os.environ.get("CITYOPS_TEST_REDIS_URL")
    if external:
        yield external
        return
    root = Path(tempfile.mkdtemp(prefix="cityops-redis-"))
    server = LocalRedis(root)
    try:
        yield server.ensure_running()
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)
