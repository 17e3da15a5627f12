"""Business messages (业务短信): one outbox, delivered through a pluggable SMS gateway.

Every reminder — case arrival (案件到达), about to expire (即将超时), overdue (超时亮红灯),
verify/check tasks (核实/核查任务), supervision (督办催办) — is a row of
``city.notifications`` written by :func:`enqueue` inside the caller's transaction, so a
message exists exactly when the business change committed. :func:`deliver_pending` hands
pending rows to a gateway: :class:`DatabaseGateway` (the default) records them in
``city.sms_messages`` with the phone masked; :class:`HttpGateway` posts JSON to an SMS
provider's endpoint. Phone numbers stay SM4-encrypted until the moment of delivery.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

import anyio
import psycopg

from spatial.security.sm4 import CryptoError, Keyring, mask_phone

MAX_ATTEMPTS: Final = 5
KINDS: Final = {
    "arrival": "案件到达提醒",
    "expiring": "即将超时提醒",
    "overdue": "超时提醒",
    "task": "任务通知",
    "supervision": "督办催办",
    "notice": "今日提示",
    "result": "办理结果",
}


class GatewayError(RuntimeError):
    """Delivery failed; the message is retried until ``MAX_ATTEMPTS``."""


class PermanentGatewayError(GatewayError):
    """Delivery can never succeed (no phone number, refused by the provider): fail at once."""


@dataclass(frozen=True)
class OutgoingMessage:
    """One message as a gateway sees it; ``phone`` is plain text here and nowhere else."""

    notification_id: int
    kind: str
    body: str
    phone: str | None
    case_id: int | None = None


class SmsGateway(Protocol):
    """Sends one message; raises :class:`GatewayError` on failure."""

    name: str

    async def send(self, conn: psycopg.AsyncConnection, message: OutgoingMessage) -> None:
        """Deliver ``message`` (``conn`` is inside the delivery transaction)."""
        ...


class DatabaseGateway:
    """The default gateway: records the message in ``city.sms_messages`` (phone masked)."""

    name = "database"

    async def send(self, conn: psycopg.AsyncConnection, message: OutgoingMessage) -> None:
        """Insert one ``sms_messages`` row."""
        await conn.execute(
            "INSERT INTO city.sms_messages (notification_id, phone_mask, body) VALUES (%s, %s, %s)",
            (
                message.notification_id,
                mask_phone(message.phone) if message.phone else None,
                message.body,
            ),
        )


@dataclass
class HttpGateway:
    """Posts ``{"id", "kind", "phone", "body", "case_id"}`` as JSON to an SMS provider's URL.

    A 2xx answer means sent; 4xx (other than 408/429) is permanent; anything else is retried.
    The phone is masked in ``sms_messages`` as with the database gateway.
    """

    url: str
    timeout_s: float = 10.0
    headers: dict[str, str] = field(default_factory=dict)
    name: str = "http"

    def _post(self, payload: bytes) -> int:
        request = urllib.request.Request(  # noqa: S310 - the operator configures the URL
            self.url,
            data=payload,
            method="POST",
            headers={"Content-Type": "application/json; charset=utf-8", **self.headers},
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:  # noqa: S310
                return int(response.status)
        except urllib.error.HTTPError as exc:
            return int(exc.code)
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise GatewayError(f"SMS gateway unreachable: {exc}") from exc

    async def send(self, conn: psycopg.AsyncConnection, message: OutgoingMessage) -> None:
        """POST the message; record it masked when the provider accepted it."""
        if not message.phone:
            raise PermanentGatewayError("recipient has no phone number (无手机号)")
        payload = json.dumps(
            {
                "id": message.notification_id,
                "kind": message.kind,
                "phone": message.phone,
                "body": message.body,
                "case_id": message.case_id,
            },
            ensure_ascii=False,
        ).encode("utf-8")
        status = await anyio.to_thread.run_sync(self._post, payload)
        if 200 <= status < 300:
            await DatabaseGateway().send(conn, message)
            return
        error = f"SMS gateway answered HTTP {status}"
        if 400 <= status < 500 and status not in (408, 429):
            raise PermanentGatewayError(error)
        raise GatewayError(error)


def default_keyring() -> Keyring:
    """The installation's SM4 keyring (``CITY_SECURITY_KEY_DIR``), read when first needed."""
    from spatial.security.keystore import KeyStore
    from spatial.settings import SecuritySettings

    return KeyStore.ensure(SecuritySettings().key_dir).keyring


async def enqueue(
    conn: psycopg.AsyncConnection,
    *,
    kind: str,
    body: str,
    case_id: int | None = None,
    recipient_user_id: int | None = None,
    phone: str | None = None,
    dedupe_key: str | None = None,
    keyring: Keyring | None = None,
    channel: str = "sms",
) -> int | None:
    """Add a message to the outbox; None when ``dedupe_key`` was already used.

    ``phone`` (an extra number, e.g. a public reporter's) is stored SM4-encrypted; without it
    the recipient user's own phone is used at delivery. Runs in the caller's transaction.
    """
    phone_enc = (keyring or default_keyring()).encrypt(phone) if phone else None
    cur = await conn.execute(
        "INSERT INTO city.notifications (kind, case_id, recipient_user_id, recipient_phone_enc,"
        " channel, body, dedupe_key, state, attempts)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, 'pending', 0)"
        " ON CONFLICT (dedupe_key) DO NOTHING RETURNING id",
        (kind, case_id, recipient_user_id, phone_enc, channel, body, dedupe_key),
    )
    row = await cur.fetchone()
    return int(row[0]) if row else None


@dataclass
class DeliveryReport:
    """What one delivery run did."""

    sent: int = 0
    retried: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly."""
        return {"sent": self.sent, "retried": self.retried, "failed": self.failed}


_CLAIM = (
    "SELECT n.id, n.kind, n.body, n.case_id, n.recipient_phone_enc, u.phone_enc, n.attempts"
    " FROM city.notifications n LEFT JOIN city.users u ON u.id = n.recipient_user_id"
    " WHERE n.state = 'pending' AND n.channel = 'sms' AND n.id <> ALL(%s)"
    " ORDER BY n.id LIMIT 1 FOR UPDATE OF n SKIP LOCKED"
)


def _phone(keyring: Keyring, *ciphertexts: str | None) -> str | None:
    for token in ciphertexts:
        if token:
            try:
                return keyring.decrypt(token)
            except CryptoError as exc:
                raise PermanentGatewayError(f"phone cannot be decrypted: {exc}") from exc
    return None


async def _deliver_one(
    conn: psycopg.AsyncConnection,
    gateway: SmsGateway,
    keyring: Keyring,
    row: tuple[Any, ...],
    max_attempts: int,
) -> tuple[str, str | None]:
    """Send one claimed row and record the outcome; returns (new state, error)."""
    nid, kind, body, case_id, extra_enc, user_enc, attempts = row
    error: str | None = None
    try:
        phone = _phone(keyring, extra_enc, user_enc)
        async with conn.transaction():  # a savepoint: a failed gateway write leaves no row
            await gateway.send(conn, OutgoingMessage(nid, kind, body, phone, case_id))
        state = "sent"
    except PermanentGatewayError as exc:
        state, error = "failed", str(exc)
    except GatewayError as exc:
        error = str(exc)
        state = "failed" if attempts + 1 >= max_attempts else "pending"
    await conn.execute(
        "UPDATE city.notifications SET state = %s, attempts = attempts + 1, last_error = %s,"
        " sent_at = CASE WHEN %s = 'sent' THEN now() END WHERE id = %s",
        (state, (error or "")[:500] or None, state, nid),
    )
    return state, error


async def deliver_pending(
    conn: psycopg.AsyncConnection,
    gateway: SmsGateway | None = None,
    limit: int = 100,
    *,
    keyring: Keyring | None = None,
    max_attempts: int = MAX_ATTEMPTS,
) -> DeliveryReport:
    """Deliver up to ``limit`` pending SMS, each in its own transaction (safe to run twice).

    A failure increments ``attempts`` and records ``last_error``; the message stays pending
    for the next run until ``max_attempts``, then it is ``failed``.
    """
    gateway = gateway or DatabaseGateway()
    keyring = keyring or default_keyring()
    report, tried = DeliveryReport(), []
    for _ in range(limit):
        async with conn.transaction():
            row = await (await conn.execute(_CLAIM, (tried,))).fetchone()
            if row is None:
                break
            tried.append(row[0])
            state, error = await _deliver_one(conn, gateway, keyring, row, max_attempts)
        if state == "sent":
            report.sent += 1
        elif state == "pending":
            report.retried += 1
        else:
            report.failed += 1
        if error:
            report.errors.append(f"#{row[0]}: {error}")
    return report


async def my_notifications(
    conn: psycopg.AsyncConnection, user_id: int, limit: int = 50, before_id: int | None = None
) -> list[dict[str, Any]]:
    """A user's messages (今日提示), newest first."""
    cur = await conn.execute(
        "SELECT n.id, n.kind, n.case_id, c.case_no, n.body, n.state, n.created_at, n.sent_at"
        " FROM city.notifications n LEFT JOIN city.cases c ON c.id = n.case_id"
        " WHERE n.recipient_user_id = %s AND (%s::bigint IS NULL OR n.id < %s)"
        " ORDER BY n.id DESC LIMIT %s",
        (user_id, before_id, before_id, limit),
    )
    names = [c.name for c in cur.description or []]
    out = [dict(zip(names, r, strict=True)) for r in await cur.fetchall()]
    for item in out:
        item["kind_name"] = KINDS.get(item["kind"], item["kind"])
    return out
