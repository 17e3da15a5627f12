"""The MQTT consumer through a real throwaway mosquitto: store, quarantine, resume."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Callable

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from layers.fleet.broker import parse_url
from layers.fleet.mqtt import TOPIC_PREFIX, TelemetryConsumer, decode_message
from tests.fleet_support import clear_vehicle, drive, query, recent, terminal_of
from tests.mqtt_support import mqtt_url  # noqa: F401

WAIT_S = 60.0


def publish(url: str, messages: list[tuple[str, bytes]]) -> None:
    """Publish with QoS 1 and wait until the broker acknowledged every message."""
    host, port = parse_url(url)
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"pub-{uuid.uuid4().hex[:8]}")
    client.connect(host, port)
    client.loop_start()
    try:
        infos = [client.publish(topic, payload, qos=1) for topic, payload in messages]
        for info in infos:
            info.wait_for_publish(timeout=WAIT_S)
    finally:
        client.disconnect()
        client.loop_stop()


async def _consume_until(consumer: TelemetryConsumer, done: Callable[[], bool]) -> None:
    stop = asyncio.Event()
    task = asyncio.create_task(consumer.run(stop))
    deadline = time.monotonic() + WAIT_S
    while not done() and time.monotonic() < deadline and not task.done():
        await asyncio.sleep(0.1)
    stop.set()
    await asyncio.wait_for(task, WAIT_S)


def consume(url: str, broker: str, client_id: str, done: Callable[[], bool]) -> TelemetryConsumer:
    consumer = TelemetryConsumer(url, broker, client_id=client_id, batch_seconds=0.2)
    asyncio.run(_consume_until(consumer, done))
    return consumer


def connect_once(url: str, broker: str, client_id: str) -> None:
    """Start and stop a consumer so the broker knows its persistent session."""
    consumer = TelemetryConsumer(url, broker, client_id=client_id, batch_seconds=0.2)

    async def main() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(consumer.run(stop))
        await asyncio.wait_for(consumer.connected.wait(), WAIT_S)
        await asyncio.sleep(0.3)  # the SUBSCRIBE reaches the broker
        stop.set()
        await asyncio.wait_for(task, WAIT_S)

    asyncio.run(main())


def _count(url: str, vehicle_id: int) -> int:
    return query(
        url, "SELECT count(*) FROM city.telemetry_fixes WHERE vehicle_id = %s", vehicle_id
    )[0][0]


def test_decode_never_raises() -> None:
    topic = TOPIC_PREFIX + "T1"
    assert decode_message(topic, b"\xff\xfe{")[1][0].reason == "malformed"
    assert decode_message(topic, b"[]")[1][0].reason == "malformed"
    assert decode_message("other/topic", b"{}")[1][0].reason == "malformed"
    fixes, bad = decode_message(
        topic, b'[{"device_time": 1764000000, "lon": 120.4, "lat": 33.2}, {"lon": 1}]'
    )
    assert len(fixes) == 1 and fixes[0].terminal_id == "T1" and bad[0].reason == "malformed"


def test_consumer_stores_fixes_and_quarantines_bad_payloads(
    scratch_url: str,
    mqtt_url: str,  # noqa: F811
) -> None:
    clear_vehicle(scratch_url, 11)
    terminal = terminal_of(scratch_url, 11)
    items = drive(terminal, recent(30), 12)
    topic = TOPIC_PREFIX + terminal
    messages = [(topic, json.dumps(items[:6]).encode())]
    messages += [(topic, json.dumps(item).encode()) for item in items[6:]]
    messages += [(topic, b"not json at all"), (topic, b'{"lon": "x"}')]
    client_id = f"consumer-{uuid.uuid4().hex[:8]}"
    connect_once(scratch_url, mqtt_url, client_id)
    publish(mqtt_url, messages)
    consumer = consume(
        scratch_url, mqtt_url, client_id, lambda: consumer_done(scratch_url, 11, 12, 2)
    )
    assert _count(scratch_url, 11) == 12
    reasons = query(scratch_url, "SELECT reason, source FROM city.fix_quarantine ORDER BY id")
    assert reasons == [("malformed", "mqtt"), ("malformed", "mqtt")]
    assert consumer.stats.rejected["malformed"] == 2


def consumer_done(url: str, vehicle_id: int, fixes: int, quarantined: int) -> bool:
    stored = _count(url, vehicle_id)
    bad = query(url, "SELECT count(*) FROM city.fix_quarantine")[0][0]
    return stored >= fixes and bad >= quarantined


def test_restarted_consumer_resumes_without_loss(
    scratch_url: str,
    mqtt_url: str,  # noqa: F811 - the fixture
) -> None:
    batches = 3
    clear_vehicle(scratch_url, 12)
    terminal = terminal_of(scratch_url, 12)
    topic = TOPIC_PREFIX + terminal
    items = drive(terminal, recent(45), 30 * batches)
    client_id = f"consumer-{uuid.uuid4().hex[:8]}"
    connect_once(scratch_url, mqtt_url, client_id)
    publish(mqtt_url, [(topic, json.dumps(i).encode()) for i in items[:30]])
    consume(scratch_url, mqtt_url, client_id, lambda: _count(scratch_url, 12) >= 30)
    assert _count(scratch_url, 12) == 30
    # the consumer is down: the broker queues these for its persistent session
    publish(mqtt_url, [(topic, json.dumps(i).encode()) for i in items[30:]])
    assert _count(scratch_url, 12) == 30
    consume(scratch_url, mqtt_url, client_id, lambda: _count(scratch_url, 12) >= len(items))
    assert _count(scratch_url, 12) == len(items)
