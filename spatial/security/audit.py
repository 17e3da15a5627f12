"""The audit trail (审计日志): append-only, SM3 hash-chained, verifiable in one SQL statement.

Every write and every sensitive read is recorded in ``city.audit_log`` (migration 0004): who
(actor, positions), when, from where (IP, user agent), what (action, target, method, path,
status) and the before/after images. A database trigger numbers each entry gap-free and chains
it: ``hash = SM3(prev_hash || city.audit_payload(row))``. Rows cannot be updated, deleted or
truncated; a superuser who disables the triggers is caught by :func:`verify`, which recomputes
every hash, checks every link and the gap-free numbering. Cutting off the newest entries leaves a
valid shorter chain: publish the head (``cityops audit verify`` prints ``SEQ:HASH``) somewhere
else and pass it back as ``expect_head``.

:func:`record` runs in the caller's transaction, so a write and its entry commit or roll back
together. Writers are serialised by a transaction-scoped advisory lock until commit: record the
entry last in a transaction, and use READ COMMITTED (the default) — under REPEATABLE READ a
concurrent writer fails with a duplicate ``seq`` instead of waiting for a fresh head.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import math
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import Decimal
from enum import Enum
from pathlib import PurePath
from typing import Any, Literal
from uuid import UUID

import psycopg
from psycopg import sql
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from spatial.errors import FieldIssue, InvalidInput
from spatial.security.principal import Principal

ActorKind = Literal["anonymous", "user", "api_key", "system"]
ACTOR_KINDS: tuple[str, ...] = ("anonymous", "user", "api_key", "system")
GENESIS = bytes(32)  # prev_hash of the first entry
MAX_USER_AGENT = 512
MAX_PATH = 2048

# Actions used by the audit module itself.
AUDIT_READ = "audit.read"
AUDIT_EXPORT = "audit.export"


@dataclass
class AuditEvent:
    """One entry to record; ``seq``, ``at`` and the hashes are set by the database."""

    action: str  # e.g. auth.login, auth.login_failed, user.create, layer.read, http.write
    actor: str = "anonymous"  # user name, anonymous, apikey:<prefix>, or a system name
    actor_id: int | None = None
    actor_kind: ActorKind | None = "anonymous"
    positions: tuple[str, ...] | list[str] = ()
    ip: str | None = None
    user_agent: str | None = None
    target_type: str | None = None
    target_id: str | int | None = None
    method: str | None = None
    path: str | None = None
    status: int | None = None
    detail: Any = None
    before: Any = None
    after: Any = None


@dataclass(frozen=True)
class AuditReport:
    """The outcome of :func:`verify`."""

    ok: bool
    count: int
    head_seq: int | None = None
    head_hash: str | None = None  # hex
    first_bad_seq: int | None = None
    reason: str | None = None

    @property
    def head(self) -> str | None:
        """The head as ``SEQ:HASH``, to publish and pass back as ``expect_head`` later."""
        return f"{self.head_seq}:{self.head_hash}" if self.head_seq is not None else None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {**dataclasses.asdict(self), "head": self.head}


# --- building events ------------------------------------------------------------------------


def event_for(
    principal: Principal,
    action: str,
    *,
    ip: str | None = None,
    user_agent: str | None = None,
    **fields: Any,
) -> AuditEvent:
    """An event by ``principal``; ``fields`` are further :class:`AuditEvent` fields."""
    return AuditEvent(
        action=action,
        actor=principal.name,
        actor_id=principal.id,
        actor_kind=principal.kind,
        positions=tuple(principal.positions),
        ip=ip,
        user_agent=user_agent,
        **fields,
    )


def event_from_request(
    request: Any, principal: Principal, action: str, **fields: Any
) -> AuditEvent:
    """An event by ``principal`` with a Starlette request's client, user agent, method, path.

    The request is duck-typed: this module does not depend on the web framework.
    """
    fields.setdefault("method", request.method)
    fields.setdefault("path", request.url.path)
    return event_for(
        principal,
        action,
        ip=request.client.host if request.client else None,
        user_agent=request.headers.get("user-agent"),
        **fields,
    )


def system_event(action: str, actor: str = "system", **fields: Any) -> AuditEvent:
    """An event by the platform itself or an operator at the command line."""
    return AuditEvent(action=action, actor=actor, actor_kind="system", **fields)


# --- JSON and text hygiene ------------------------------------------------------------------


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)  # exact; a float would round
    if isinstance(value, UUID | PurePath | ipaddress.IPv4Address | ipaddress.IPv6Address):
        return str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).hex()
    if isinstance(value, set | frozenset):
        return sorted(value, key=str)
    if isinstance(value, Enum):
        return value.value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    return str(value)


def _clean(value: Any) -> Any:
    """PostgreSQL text and jsonb refuse NUL characters, jsonb refuses NaN and infinities."""
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd")
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {_clean(str(k)): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


def _dumps(value: Any) -> str:
    return json.dumps(value, default=_json_default, ensure_ascii=False, allow_nan=False)


def _jsonb(value: Any) -> Jsonb | None:
    if value is None:
        return None
    # Round-trip through JSON first so objects rendered by ``default`` get cleaned too.
    plain = json.loads(json.dumps(value, default=_json_default, ensure_ascii=False))
    return Jsonb(_clean(plain), dumps=_dumps)


def _text(value: Any, limit: int | None = None) -> str | None:
    if value is None:
        return None
    text = _clean(str(value))
    return text[:limit] if limit else text


def inet_or_none(value: str | None) -> str | None:
    """A valid IP address, or None (e.g. Starlette's ``testclient``)."""
    if not value:
        return None
    try:
        return str(ipaddress.ip_address(value.strip().strip("[]")))
    except ValueError:
        return None


def _params(event: AuditEvent) -> dict[str, Any]:
    if not event.action or not event.action.strip():
        raise InvalidInput("An audit event needs an action.", [FieldIssue("action", "empty")])
    if event.actor_kind is not None and event.actor_kind not in ACTOR_KINDS:
        raise InvalidInput(
            "Unknown actor kind.", [FieldIssue("actor_kind", f"one of {', '.join(ACTOR_KINDS)}")]
        )
    ip = inet_or_none(event.ip)
    detail = event.detail
    if event.ip and ip is None and (detail is None or isinstance(detail, dict)):
        detail = {**(detail or {}), "client": event.ip}  # keep what the client claimed to be
    return {
        "actor": _text(event.actor) or "anonymous",
        "actor_id": event.actor_id,
        "actor_kind": event.actor_kind,
        "positions": [_text(p) for p in event.positions],
        "ip": ip,
        "user_agent": _text(event.user_agent, MAX_USER_AGENT),
        "action": _text(event.action),
        "target_type": _text(event.target_type),
        "target_id": _text(event.target_id),
        "method": _text(event.method),
        "path": _text(event.path, MAX_PATH),
        "status": event.status,
        "detail": _jsonb(detail),
        "before": _jsonb(event.before),
        "after": _jsonb(event.after),
    }


# --- recording --------------------------------------------------------------------------------

INSERT = """
INSERT INTO city.audit_log (actor, actor_id, actor_kind, positions, ip, user_agent, action,
    target_type, target_id, method, path, status, detail, before, after)
VALUES (%(actor)s, %(actor_id)s, %(actor_kind)s, %(positions)s::text[], %(ip)s::inet,
    %(user_agent)s, %(action)s, %(target_type)s, %(target_id)s, %(method)s, %(path)s,
    %(status)s, %(detail)s, %(before)s, %(after)s)
RETURNING seq
"""


async def record(conn: psycopg.AsyncConnection, event: AuditEvent) -> int:
    """Append ``event`` in the caller's transaction (if any) and return its ``seq``."""
    cur = await conn.execute(INSERT, _params(event))
    row = await cur.fetchone()
    assert row is not None  # noqa: S101 - INSERT … RETURNING one row
    return int(row[0])


def record_sync(conn: psycopg.Connection, event: AuditEvent) -> int:
    """Synchronous :func:`record` (CLI, loaders)."""
    row = conn.execute(INSERT, _params(event)).fetchone()
    assert row is not None  # noqa: S101 - INSERT … RETURNING one row
    return int(row[0])


# --- verification -----------------------------------------------------------------------------

# One statement: recompute each hash, check the numbering and each link, and (optionally) that
# a head published earlier is still there with the same hash.
VERIFY = """
WITH chain AS (
    SELECT a.seq, a.hash, a.prev_hash,
           public.digest(a.prev_hash || convert_to(city.audit_payload(a), 'UTF8'), 'sm3')
               AS computed,
           lag(a.seq) OVER w AS last_seq,
           lag(a.hash) OVER w AS last_hash
    FROM city.audit_log a
    WINDOW w AS (ORDER BY a.seq)
), bad AS (
    SELECT seq, CASE
        WHEN computed IS DISTINCT FROM hash
            THEN 'hash mismatch at seq ' || seq || ': the entry was altered'
        WHEN last_seq IS NULL AND seq <> 1
            THEN 'the chain starts at seq ' || seq || ': entries before it were deleted'
        WHEN seq <> last_seq + 1
            THEN 'seq ' || (last_seq + 1)
                 || CASE WHEN seq - last_seq > 2 THEN '..' || (seq - 1) ELSE '' END
                 || ' missing before seq ' || seq || ': entries were deleted'
        WHEN prev_hash IS DISTINCT FROM coalesce(last_hash, decode(repeat('00', 32), 'hex'))
            THEN 'prev_hash of seq ' || seq
                 || ' does not match the previous entry: the entry was forged or replaced'
    END AS reason
    FROM chain
), head AS (
    SELECT seq, hash FROM chain ORDER BY seq DESC LIMIT 1
), first_bad AS (
    SELECT seq, reason FROM bad WHERE reason IS NOT NULL ORDER BY seq LIMIT 1
), published AS (
    SELECT CASE
        WHEN %(expect_seq)s::bigint IS NULL THEN NULL
        WHEN NOT EXISTS (SELECT 1 FROM chain WHERE seq = %(expect_seq)s::bigint)
            THEN 'published head seq ' || %(expect_seq)s::bigint
                 || ' is missing: the newest entries were removed'
        WHEN (SELECT hash FROM chain WHERE seq = %(expect_seq)s::bigint)
                 IS DISTINCT FROM %(expect_hash)s::bytea
            THEN 'published head seq ' || %(expect_seq)s::bigint
                 || ' has a different hash: the log was rewritten'
    END AS reason
)
SELECT (SELECT count(*) FROM chain), (SELECT seq FROM head), (SELECT hash FROM head),
       (SELECT seq FROM first_bad), (SELECT reason FROM first_bad),
       (SELECT reason FROM published)
"""


def _verify_params(expect_head: tuple[int, bytes] | None) -> dict[str, Any]:
    seq, digest = expect_head if expect_head else (None, None)
    return {"expect_seq": seq, "expect_hash": digest}


def _report(row: tuple[Any, ...] | None, expect_head: tuple[int, bytes] | None) -> AuditReport:
    assert row is not None  # noqa: S101 - an aggregate-only SELECT returns one row
    count, head_seq, head_hash, bad_seq, bad_reason, published = row
    head_hex = bytes(head_hash).hex() if head_hash is not None else None
    if bad_seq is None and published is not None and expect_head is not None:
        # The newest surviving entry is intact; the first missing one is right after it.
        if head_seq is None or head_seq < expect_head[0]:
            bad_seq = (head_seq or 0) + 1
        else:
            bad_seq = expect_head[0]
        bad_reason = published
    return AuditReport(
        ok=bad_seq is None,
        count=int(count),
        head_seq=head_seq,
        head_hash=head_hex,
        first_bad_seq=bad_seq,
        reason=bad_reason,
    )


async def verify(
    conn: psycopg.AsyncConnection, expect_head: tuple[int, bytes] | None = None
) -> AuditReport:
    """Check the whole chain; ``expect_head`` is a ``(seq, hash)`` published earlier."""
    cur = await conn.execute(VERIFY, _verify_params(expect_head))
    return _report(await cur.fetchone(), expect_head)


def verify_sync(
    conn: psycopg.Connection, expect_head: tuple[int, bytes] | None = None
) -> AuditReport:
    """Synchronous :func:`verify` (CLI)."""
    return _report(conn.execute(VERIFY, _verify_params(expect_head)).fetchone(), expect_head)


def parse_head(text: str) -> tuple[int, bytes]:
    """Parse ``SEQ:HASH`` (hex SM3) as printed by ``cityops audit verify``."""
    seq, sep, digest = text.strip().partition(":")
    try:
        parsed = (int(seq), bytes.fromhex(digest))
    except ValueError:
        parsed = None
    if not sep or parsed is None or parsed[0] < 1 or len(parsed[1]) != 32:
        raise InvalidInput(
            "Expected head as SEQ:HASH (64 hex digits).", [FieldIssue("expect_head", text)]
        )
    return parsed


# --- reading ----------------------------------------------------------------------------------

COLUMNS = (
    "seq",
    "at",
    "actor",
    "actor_id",
    "actor_kind",
    "positions",
    "ip",
    "user_agent",
    "action",
    "target_type",
    "target_id",
    "method",
    "path",
    "status",
    "detail",
    "before",
    "after",
    "prev_hash",
    "hash",
)

_SELECT = sql.SQL(
    "SELECT seq, at, actor, actor_id, actor_kind, positions, host(ip) AS ip, user_agent, action,"
    " target_type, target_id, method, path, status, detail, before, after,"
    " encode(prev_hash, 'hex') AS prev_hash, encode(hash, 'hex') AS hash FROM city.audit_log"
)


def _query(
    *,
    actor: str | None = None,
    action: str | None = None,
    target_type: str | None = None,
    target_id: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    after_seq: int | None = None,
    newest_first: bool = True,
    limit: int | None = 100,
    offset: int = 0,
) -> tuple[sql.Composable, list[Any]]:
    where: list[sql.Composable] = []
    args: list[Any] = []
    for column, value in (
        ("actor", actor),
        ("target_type", target_type),
        ("target_id", target_id),
    ):
        if value is not None:
            where.append(sql.SQL("{} = %s").format(sql.Identifier(column)))
            args.append(value)
    if action is not None:
        if action.endswith("*"):  # a prefix such as ``auth.*``
            where.append(sql.SQL("starts_with(action, %s)"))
            args.append(action[:-1])
        else:
            where.append(sql.SQL("action = %s"))
            args.append(action)
    for condition, value in (("at >= %s", since), ("at < %s", until), ("seq > %s", after_seq)):
        if value is not None:
            where.append(sql.SQL(condition))
            args.append(value)
    query = _SELECT
    if where:
        query = query + sql.SQL(" WHERE ") + sql.SQL(" AND ").join(where)
    query = query + sql.SQL(" ORDER BY seq DESC" if newest_first else " ORDER BY seq")
    if limit is not None:
        query = query + sql.SQL(" LIMIT %s")
        args.append(limit)
    if offset:
        query = query + sql.SQL(" OFFSET %s")
        args.append(offset)
    return query, args


def _entry(row: dict[str, Any]) -> dict[str, Any]:
    row["at"] = row["at"].isoformat()
    return row


async def search(
    conn: psycopg.AsyncConnection,
    *,
    actor: str | None = None,
    action: str | None = None,
    target_type: str | None = None,
    target_id: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 100,
    offset: int = 0,
    after_seq: int | None = None,
    newest_first: bool = True,
) -> list[dict[str, Any]]:
    """Entries matching every given filter, newest first (``at`` in [since, until)).

    ``action`` is exact, or a prefix when it ends in ``*`` (``auth.*``); hashes are hex, ``at``
    is ISO 8601, so the entries are JSON-ready.
    """
    query, args = _query(
        actor=actor,
        action=action,
        target_type=target_type,
        target_id=target_id,
        since=since,
        until=until,
        after_seq=after_seq,
        newest_first=newest_first,
        limit=limit,
        offset=offset,
    )
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(query, args)
        return [_entry(row) for row in await cur.fetchall()]


def iter_entries_sync(
    conn: psycopg.Connection,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    batch: int = 2000,
) -> Iterator[dict[str, Any]]:
    """Every entry in ``seq`` order through a server-side cursor (export of large logs).

    Needs a transaction (a non-autocommit connection, or inside ``conn.transaction()``).
    """
    query, args = _query(since=since, until=until, newest_first=False, limit=None)
    with conn.cursor(name="audit_export", row_factory=dict_row) as cur:
        cur.itersize = batch
        cur.execute(query, args)
        for row in cur:
            yield _entry(row)


async def iter_entries(
    conn: psycopg.AsyncConnection,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    batch: int = 2000,
) -> AsyncIterator[dict[str, Any]]:
    """Async :func:`iter_entries_sync` (inside a transaction)."""
    query, args = _query(since=since, until=until, newest_first=False, limit=None)
    async with conn.cursor(name="audit_export", row_factory=dict_row) as cur:
        cur.itersize = batch
        await cur.execute(query, args)
        async for row in cur:
            yield _entry(row)


# --- export -----------------------------------------------------------------------------------

CSV_HEADERS: dict[str, str] = {
    "seq": "序号 (seq)",
    "at": "时间 (at)",
    "actor": "操作人 (actor)",
    "actor_id": "操作人ID (actor_id)",
    "actor_kind": "主体类型 (actor_kind)",
    "positions": "岗位 (positions)",
    "ip": "IP地址 (ip)",
    "user_agent": "客户端 (user_agent)",
    "action": "操作 (action)",
    "target_type": "对象类型 (target_type)",
    "target_id": "对象标识 (target_id)",
    "method": "方法 (method)",
    "path": "路径 (path)",
    "status": "状态码 (status)",
    "detail": "详情 (detail)",
    "before": "变更前 (before)",
    "after": "变更后 (after)",
    "prev_hash": "前序哈希 (prev_hash)",
    "hash": "哈希 (hash)",
}

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_row(entry: dict[str, Any]) -> list[str]:
    """One entry as CSV cells: JSON for structured values, formulas defused for spreadsheets.

    Cells that a spreadsheet would run as a formula get a leading ``'`` (OWASP CSV injection);
    the JSON Lines export keeps every value exactly.
    """
    cells = []
    for column in COLUMNS:
        value = entry.get(column)
        if value is None:
            cells.append("")
            continue
        if isinstance(value, dict | list):
            text = json.dumps(value, ensure_ascii=False, default=_json_default)
        else:
            text = str(value)
        if isinstance(value, str) and text.startswith(_FORMULA_START):
            text = "'" + text
        cells.append(text)
    return cells


def jsonl_line(entry: dict[str, Any]) -> str:
    """One entry as a JSON Lines record (exact values)."""
    return json.dumps(entry, ensure_ascii=False, default=_json_default) + "\n"
