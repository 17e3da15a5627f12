"""A throwaway mosquitto for the tests (or ``CITYOPS_TEST_MQTT_URL``)."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from layers.fleet.broker import LocalBroker


@pytest.fixture(scope="session")
def mqtt_url() -> Iterator[str]:
    """URL of an MQTT broker: ``CITYOPS_TEST_MQTT_URL`` or a throwaway ``mosquitto -p``."""
    external = os.environ.get("CITYOPS_TEST_MQTT_URL")
    if external:
        yield external
        return
    root = Path(tempfile.mkdtemp(prefix="cityops-mqtt-"))
    broker = LocalBroker(root, persistent=False)
    try:
        yield broker.ensure_running(daemon=False)
    finally:
        broker.stop()
        shutil.rmtree(root, ignore_errors=True)
