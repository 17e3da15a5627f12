"""Background work of a serving process: the MQTT telemetry consumer and the fleet scans.

Off unless ``CITY_FLEET_BACKGROUND`` is true (``cityops serve`` turns it on), so test apps and
extra workers do not consume telemetry twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from psycopg_pool import AsyncConnectionPool

from layers.fleet.broker import broker_url
from layers.fleet.mqtt import TelemetryConsumer
from layers.fleet.violations import scan_forever

log = logging.getLogger(__name__)


@contextlib.asynccontextmanager
async def fleet_background(db_url: str, pool: AsyncConnectionPool) -> AsyncIterator[None]:
    """Consume ``cityops/telemetry/+`` and scan for offline terminals and gate alarms."""
    stop = asyncio.Event()
    broker = broker_url()
    consumer = TelemetryConsumer(db_url, broker)
    tasks = [
        asyncio.create_task(consumer.run(stop), name="mqtt-telemetry"),
        asyncio.create_task(scan_forever(pool, 60.0), name="fleet-scan"),
    ]
    log.info("fleet background: consuming telemetry from %s", broker)
    try:
        yield
    finally:
        stop.set()
        tasks[1].cancel()
        with contextlib.suppress(asyncio.CancelledError, TimeoutError):
            await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 10)
