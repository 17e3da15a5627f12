"""The MQTT telemetry consumer (paho-mqtt 2): ``cityops/telemetry/{terminal_id}`` → ingest.

Terminals publish one fix or a JSON list of fixes per message with QoS 1. The consumer keeps a
persistent session (fixed client id, ``clean_session=False``), so the broker queues messages
while it is down, and acknowledges messages **manually, only after their batch committed**: a
consumer killed mid-batch gets the unacknowledged messages again (duplicates are dropped by the
primary key). Messages are batched by count or time into :func:`layers.fleet.ingest.ingest`;
malformed payloads are quarantined with a reason and nothing a terminal sends can stop the
loop. A database outage keeps the batch in memory (unacknowledged) and retries.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Final

import orjson
import paho.mqtt.client as mqtt
import psycopg
from paho.mqtt.enums import CallbackAPIVersion

from layers.fleet.broker import parse_url
from layers.fleet.ingest import IngestResult, ingest
from layers.fleet.telemetry import Fix, Rejected, clip, parse_many
from spatial.db import libpq_url

log = logging.getLogger(__name__)

TOPIC_PREFIX: Final = "cityops/telemetry/"
CLIENT_ID: Final = "cityops-telemetry-consumer"


@dataclass(frozen=True, slots=True)
class Message:
    """A received message awaiting its batch (``mid`` for the manual acknowledgement)."""

    topic: str
    payload: bytes
    mid: int
    qos: int


@dataclass
class ConsumerStats:
    """Running totals of a consumer."""

    messages: int = 0
    batches: int = 0
    accepted: int = 0
    duplicates: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    db_errors: int = 0

    def add(self, result: IngestResult) -> None:
        """Count one committed batch."""
        self.batches += 1
        self.accepted += result.accepted
        self.duplicates += result.duplicates
        self.rejected.update(result.rejected)

    def as_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "messages": self.messages,
            "batches": self.batches,
            "accepted": self.accepted,
            "duplicates": self.duplicates,
            "rejected": dict(self.rejected),
            "db_errors": self.db_errors,
        }


def decode_message(topic: str, payload: bytes) -> tuple[list[Fix], list[Rejected]]:
    """Fixes of one message, or the reasons they were refused (never raises)."""
    terminal = topic[len(TOPIC_PREFIX) :] if topic.startswith(TOPIC_PREFIX) else ""
    text = payload.decode("utf-8", errors="replace")
    if not terminal or "/" in terminal or len(terminal) > 32:
        return [], [
            Rejected(
                "malformed", f"topic {topic[:100]!r} is not {TOPIC_PREFIX}<id>", None, clip(text)
            )
        ]
    try:
        body = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        return [], [Rejected("malformed", f"not JSON: {exc}"[:300], terminal, clip(text))]
    items = body if isinstance(body, list) else [body]
    if not items:
        return [], [Rejected("malformed", "empty list", terminal, clip(text))]
    return parse_many(items, terminal, text if len(items) == 1 else None)


class TelemetryConsumer:
    """Subscribe, batch, ingest, acknowledge; :meth:`run` until ``stop`` is set."""

    def __init__(
        self,
        db_url: str,
        broker: str,
        *,
        client_id: str = CLIENT_ID,
        topic: str = TOPIC_PREFIX + "+",
        batch_size: int = 2000,
        batch_seconds: float = 0.5,
        retry_seconds: float = 2.0,
    ) -> None:
        self.db_url = libpq_url(db_url)
        self.host, self.port = parse_url(broker)
        self.client_id = client_id
        self.topic = topic
        self.batch_size = batch_size
        self.batch_seconds = batch_seconds
        self.retry_seconds = retry_seconds
        self.stats = ConsumerStats()
        self.connected = asyncio.Event()
        self._queue: asyncio.Queue[Message] = asyncio.Queue()
        self._client: mqtt.Client | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def _make_client(self) -> mqtt.Client:
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=self.client_id,
            clean_session=False,
            protocol=mqtt.MQTTv311,
            manual_ack=True,
        )
        client.on_connect = self._on_connect
        client.on_message = self._on_message
        client.reconnect_delay_set(min_delay=1, max_delay=10)
        return client

    def _on_connect(self, client: mqtt.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        if getattr(reason, "is_failure", False):
            log.warning("MQTT connect refused: %s", reason)
            return
        client.subscribe(self.topic, qos=1)
        assert self._loop is not None  # noqa: S101 - set before connecting
        self._loop.call_soon_threadsafe(self.connected.set)

    def _on_message(self, _c: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        assert self._loop is not None  # noqa: S101 - set before connecting
        item = Message(msg.topic, bytes(msg.payload), msg.mid, msg.qos)
        self._loop.call_soon_threadsafe(self._queue.put_nowait, item)

    async def run(self, stop: asyncio.Event | None = None) -> ConsumerStats:
        """Consume until ``stop`` is set; flushes and acknowledges the last batch."""
        stop = stop or asyncio.Event()
        self._loop = asyncio.get_running_loop()
        self._client = client = self._make_client()
        client.connect_async(self.host, self.port, keepalive=30)
        client.loop_start()
        conn: psycopg.AsyncConnection | None = None
        try:
            while True:
                batch = await self._collect(stop)
                if batch:
                    conn = await self._store(conn, batch, stop)
                if stop.is_set() and self._queue.empty():
                    break
        finally:
            client.disconnect()
            client.loop_stop()
            if conn is not None:
                await conn.close()
        return self.stats

    async def _collect(self, stop: asyncio.Event) -> list[Message]:
        """Up to ``batch_size`` messages, waiting at most ``batch_seconds`` after the first."""
        batch: list[Message] = []
        deadline = None
        while len(batch) < self.batch_size:
            timeout = self.batch_seconds if deadline is None else deadline - self._loop_time()
            if timeout <= 0:
                break
            try:
                batch.append(await asyncio.wait_for(self._queue.get(), timeout))
            except TimeoutError:
                if batch or stop.is_set():
                    break
                continue
            if deadline is None:
                deadline = self._loop_time() + self.batch_seconds
        return batch

    def _loop_time(self) -> float:
        assert self._loop is not None  # noqa: S101
        return self._loop.time()

    async def _store(
        self, conn: psycopg.AsyncConnection | None, batch: list[Message], stop: asyncio.Event
    ) -> psycopg.AsyncConnection | None:
        """Ingest a batch (retrying on database errors) and acknowledge its messages."""
        fixes: list[Fix] = []
        rejected: list[Rejected] = []
        for message in batch:
            good, bad = decode_message(message.topic, message.payload)
            fixes.extend(good)
            rejected.extend(bad)
        while True:
            try:
                if conn is None or conn.closed:
                    conn = await psycopg.AsyncConnection.connect(self.db_url, autocommit=True)
                result = await ingest(conn, fixes, rejected=rejected, source="mqtt")
                break
            except psycopg.OperationalError:
                self.stats.db_errors += 1
                log.exception("database unavailable; batch kept, retrying")
                if conn is not None:
                    await conn.close()
                conn = None
                if stop.is_set():
                    return None  # unacknowledged: the broker redelivers to the next consumer
                await asyncio.sleep(self.retry_seconds)
            except Exception as exc:  # noqa: BLE001 - bad input must never stop the consumer
                log.exception("batch failed; splitting it")
                conn = await self._isolate(conn, batch, stop, exc)
                return conn
        self.stats.messages += len(batch)
        self.stats.add(result)
        assert self._client is not None  # noqa: S101
        for message in batch:
            if message.qos > 0:
                self._client.ack(message.mid, message.qos)
        return conn

    async def _isolate(
        self,
        conn: psycopg.AsyncConnection | None,
        batch: list[Message],
        stop: asyncio.Event,
        exc: Exception,
    ) -> psycopg.AsyncConnection | None:
        """Retry a failed batch message by message; quarantine a message that still fails."""
        if len(batch) > 1:
            for message in batch:
                conn = await self._store(conn, [message], stop)
            return conn
        message = batch[0]
        text = message.payload.decode("utf-8", errors="replace")
        reject = Rejected("malformed", f"ingest failed: {type(exc).__name__}", None, clip(text))
        if conn is not None and not conn.closed:
            result = await ingest(conn, [], rejected=[reject], source="mqtt")
            self.stats.add(result)
        self.stats.messages += 1
        assert self._client is not None  # noqa: S101
        if message.qos > 0:
            self._client.ack(message.mid, message.qos)
        return conn
