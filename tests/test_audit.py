"""The audit trail: SM3 hash chain, append-only, tamper detection, CLI and API."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest
from fastapi import FastAPI, Request
from fastapi.testclient import TestClient
from gmssl import sm3
from typer.testing import CliRunner

from api.cli import app as cli_app
from api.problems import install_problem_handlers
from api.routers.audit import audit_router
from spatial.db import libpq_url, make_pool
from spatial.security.audit import (
    AuditEvent,
    event_for,
    record,
    record_sync,
    search,
    system_event,
    verify,
    verify_sync,
)
from spatial.security.principal import Principal
from spatial.settings import DatabaseSettings, Settings

runner = CliRunner()
ZERO = bytes(32)
CLERK = Principal(kind="user", id=7, name="zhang.san", positions=("网格员",))


@pytest.fixture
def conn(scratch_url: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(libpq_url(scratch_url), autocommit=True) as c:
        yield c


def base_seq(conn: psycopg.Connection) -> int:
    """Entries already in the database (migrations or seeds may add some)."""
    return int(conn.execute("SELECT coalesce(max(seq), 0) FROM city.audit_log").fetchone()[0])


def fill(conn: psycopg.Connection, n: int, actor: str = "zhang.san") -> list[int]:
    principal = Principal(kind="user", id=7, name=actor, positions=("网格员", "值班长"))
    return [
        record_sync(
            conn,
            event_for(
                principal,
                "case.update",
                ip="10.0.0.1",
                user_agent="pytest",
                target_type="case",
                target_id=str(i),
                method="PATCH",
                path=f"/api/v1/cases/{i}",
                status=200,
                detail={"note": f"第{i}次", "amount": Decimal("12.30")},
                before={"status": "open"},
                after={"status": "closed", "at": datetime(2026, 12, 1, tzinfo=UTC)},
            ),
        )
        for i in range(n)
    ]


def tamper(conn: psycopg.Connection, *statements: str) -> None:
    """Change the log as a superuser who switched the protecting triggers off."""
    with conn.transaction():
        conn.execute("ALTER TABLE city.audit_log DISABLE TRIGGER USER")
        for statement in statements:
            conn.execute(statement)
        conn.execute("ALTER TABLE city.audit_log ENABLE TRIGGER USER")


# --- the chain -------------------------------------------------------------------------------


def test_chain_of_entries_verifies(conn: psycopg.Connection) -> None:
    base = base_seq(conn)
    seqs = fill(conn, 20)
    assert seqs == list(range(base + 1, base + 21))
    report = verify_sync(conn)
    assert report.ok and report.count == base + 20 and report.head_seq == base + 20
    assert report.first_bad_seq is None and report.reason is None
    rows = conn.execute(
        "SELECT seq, prev_hash, hash FROM city.audit_log WHERE seq > %s ORDER BY seq", (base,)
    ).fetchall()
    assert (
        rows[-1][2].hex() == report.head_hash and report.head == f"{base + 20}:{rows[-1][2].hex()}"
    )
    assert all(later[1] == earlier[2] for earlier, later in zip(rows, rows[1:], strict=False))
    if base == 0:
        assert rows[0][1] == ZERO


def test_hash_is_sm3_of_prev_hash_and_payload(conn: psycopg.Connection) -> None:
    seq = fill(conn, 2)[-1]
    prev, digest, payload = conn.execute(
        "SELECT prev_hash, hash, city.audit_payload(a) FROM city.audit_log a WHERE seq = %s",
        (seq,),
    ).fetchone()
    assert sm3.sm3_hash(list(prev + payload.encode())) == digest.hex()
    assert json.loads(payload)["detail"] == {"note": "第1次", "amount": "12.30"}


def test_payload_does_not_depend_on_the_session_time_zone(conn: psycopg.Connection) -> None:
    fill(conn, 3)
    conn.execute("SET TimeZone = 'Asia/Shanghai'")
    assert verify_sync(conn).ok
    conn.execute("SET TimeZone = 'America/New_York'")
    assert verify_sync(conn).ok


def test_caller_cannot_choose_seq_or_hashes(conn: psycopg.Connection) -> None:
    base = base_seq(conn)
    row = conn.execute(
        "INSERT INTO city.audit_log (seq, actor, action, prev_hash, hash)"
        " VALUES (999, 'mallory', 'x', '\\x01', '\\x02') RETURNING seq, length(hash)"
    ).fetchone()
    assert row == (base + 1, 32)
    assert verify_sync(conn).ok


def test_multi_row_insert_chains_each_row(conn: psycopg.Connection) -> None:
    base = base_seq(conn)
    conn.execute(
        "INSERT INTO city.audit_log (actor, action) SELECT 'system', 'bulk.' || g"
        " FROM generate_series(1, 5) g"
    )
    report = verify_sync(conn)
    assert report.ok and report.head_seq == base + 5


def test_concurrent_writers_produce_a_gap_free_chain(scratch_url: str) -> None:
    url = libpq_url(scratch_url)
    writers, per_writer = 4, 15
    barrier = threading.Barrier(writers)
    seqs: list[int] = []
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            with psycopg.connect(url) as c:
                barrier.wait()
                for i in range(per_writer):
                    with c.transaction():  # some transactions hold two entries
                        seqs.append(record_sync(c, system_event("load.test", f"w{n}", detail=i)))
                        if i % 3 == 0:
                            seqs.append(record_sync(c, system_event("load.extra", f"w{n}")))
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    with psycopg.connect(url, autocommit=True) as c:
        base = base_seq(c)
    threads = [threading.Thread(target=work, args=(n,)) for n in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    total = writers * (per_writer + len(range(0, per_writer, 3)))
    assert sorted(seqs) == list(range(base + 1, base + total + 1))
    with psycopg.connect(url, autocommit=True) as c:
        report = verify_sync(c)
    assert report.ok and report.count == base + total


def test_async_writers_chain_too(scratch_url: str) -> None:
    url = libpq_url(scratch_url)

    async def one(n: int) -> list[int]:
        async with await psycopg.AsyncConnection.connect(url, autocommit=True) as c:
            return [await record(c, system_event("async.test", f"a{n}")) for _ in range(5)]

    async def main() -> tuple[list[list[int]], bool]:
        results = await asyncio.gather(*(one(n) for n in range(3)))
        async with await psycopg.AsyncConnection.connect(url) as c:
            return list(results), (await verify(c)).ok

    results, ok = asyncio.run(main())
    seqs = sorted(s for r in results for s in r)
    assert ok and seqs == list(range(seqs[0], seqs[0] + 15))


# --- append-only -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE city.audit_log SET detail = '{}' WHERE seq = {seq}",
        "DELETE FROM city.audit_log WHERE seq = {seq}",
        "TRUNCATE city.audit_log",
    ],
    ids=["update", "delete", "truncate"],
)
def test_log_is_append_only(conn: psycopg.Connection, statement: str) -> None:
    seq = fill(conn, 2)[0]
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
        conn.execute(statement.replace("{seq}", str(seq)))
    assert verify_sync(conn).ok and base_seq(conn) == seq + 1


def test_privileges_revoked_from_public(conn: psycopg.Connection) -> None:
    granted = conn.execute(
        "SELECT count(*) FROM pg_class c,"
        " aclexplode(coalesce(c.relacl, acldefault('r', c.relowner))) a"
        " WHERE c.oid = 'city.audit_log'::regclass AND a.grantee = 0"
        " AND a.privilege_type IN ('UPDATE', 'DELETE', 'TRUNCATE')"
    ).fetchone()[0]
    assert granted == 0


# --- tampering -------------------------------------------------------------------------------

FORGE_ROW = (
    "INSERT INTO city.audit_log (seq, actor, action, prev_hash, hash)"
    " VALUES ({seq}, 'mallory', 'user.create', {prev}, '\\x00')"
)
REHASH = (
    "UPDATE city.audit_log a SET hash = public.digest("
    "a.prev_hash || convert_to(city.audit_payload(a), 'UTF8'), 'sm3') WHERE seq = {seq}"
)


@pytest.mark.parametrize(
    ("statements", "bad", "reason"),
    [
        (['UPDATE city.audit_log SET detail = \'{{"note": "x"}}\' WHERE seq = {k}'], 0, "altered"),
        (["UPDATE city.audit_log SET at = at - interval '1 day' WHERE seq = {k}"], 0, "altered"),
        (["DELETE FROM city.audit_log WHERE seq = {k}"], 1, "seq {k} missing"),
        (["DELETE FROM city.audit_log WHERE seq IN ({k}, {k1})"], 2, "seq {k}..{k1} missing"),
        # replaced by a forged entry whose own hash is right but whose link is not
        (
            [
                "DELETE FROM city.audit_log WHERE seq = {k}",
                FORGE_ROW.format(seq="{k}", prev="'\\x00'::bytea"),
                REHASH.format(seq="{k}"),
            ],
            0,
            "forged",
        ),
        # rewritten with a correct link and a recomputed hash: the next entry no longer links
        (
            [
                "UPDATE city.audit_log SET actor = 'mallory' WHERE seq = {k}",
                REHASH.format(seq="{k}"),
            ],
            1,
            "forged",
        ),
    ],
    ids=["edit-detail", "edit-time", "delete-one", "delete-two", "forged-link", "rehashed"],
)
def test_tampering_is_detected(
    conn: psycopg.Connection, statements: list[str], bad: int, reason: str
) -> None:
    seqs = fill(conn, 10)
    k = seqs[4]
    tamper(conn, *(s.format(k=k, k1=k + 1) for s in statements))
    report = verify_sync(conn)
    assert not report.ok
    assert report.first_bad_seq == k + bad
    assert reason.format(k=k, k1=k + 1) in str(report.reason)


def test_deleted_first_entries_are_detected(conn: psycopg.Connection) -> None:
    fill(conn, 3)
    tamper(conn, "DELETE FROM city.audit_log WHERE seq = 1")
    report = verify_sync(conn)
    assert not report.ok and report.first_bad_seq == 2 and "starts at seq 2" in report.reason


def test_tail_truncation_is_caught_only_with_a_published_head(conn: psycopg.Connection) -> None:
    seqs = fill(conn, 10)
    published = verify_sync(conn)
    head = (published.head_seq, bytes.fromhex(published.head_hash))
    assert verify_sync(conn, head).ok
    tamper(conn, f"DELETE FROM city.audit_log WHERE seq > {seqs[6]}")
    assert verify_sync(conn).ok  # a shorter chain is still a valid chain
    report = verify_sync(conn, head)
    assert not report.ok and report.first_bad_seq == seqs[7]
    assert "missing" in str(report.reason)
    # a forger who rebuilds the tail cannot reproduce the published hash
    fill(conn, 3, actor="mallory")
    report = verify_sync(conn, head)
    assert not report.ok and report.first_bad_seq == head[0] and "different hash" in report.reason


# --- transactions and hygiene ----------------------------------------------------------------


def test_rolled_back_write_takes_its_audit_entry_with_it(conn: psycopg.Connection) -> None:
    before = base_seq(conn)
    poi_id, name = conn.execute("SELECT code, name FROM city.pois ORDER BY code LIMIT 1").fetchone()
    with conn.transaction():
        conn.execute("UPDATE city.pois SET name = '改名' WHERE code = %s", (poi_id,))
        record_sync(
            conn,
            event_for(CLERK, "poi.update", target_type="poi", target_id=poi_id, after={"n": 1}),
        )
        raise psycopg.Rollback
    assert base_seq(conn) == before
    assert (
        conn.execute("SELECT name FROM city.pois WHERE code = %s", (poi_id,)).fetchone()[0] == name
    )
    with conn.transaction():
        conn.execute("UPDATE city.pois SET name = '改名' WHERE code = %s", (poi_id,))
        seq = record_sync(conn, event_for(CLERK, "poi.update", target_type="poi", target_id=poi_id))
    assert seq == before + 1 and verify_sync(conn).ok


def test_async_record_rolls_back_with_the_transaction(scratch_url: str) -> None:
    async def main() -> tuple[int, int]:
        async with await psycopg.AsyncConnection.connect(
            libpq_url(scratch_url), autocommit=True
        ) as c:
            start = (await verify(c)).count
            async with c.transaction(force_rollback=True):
                await record(c, event_for(CLERK, "user.create", target_type="user"))
            return start, (await verify(c)).count

    start, end = asyncio.run(main())
    assert start == end


def test_awkward_values_are_stored_safely(conn: psycopg.Connection) -> None:
    seq = record_sync(
        conn,
        AuditEvent(
            action="auth.login_failed",
            actor="bad\x00name",
            ip="testclient",
            user_agent="x" * 5000,
            detail={"nan": float("nan"), "d": Decimal("0.1"), "when": datetime(2026, 1, 1)},
        ),
    )
    row = conn.execute(
        "SELECT actor, ip, length(user_agent), detail FROM city.audit_log WHERE seq = %s", (seq,)
    ).fetchone()
    assert row[0] == "bad\ufffdname" and row[1] is None and row[2] == 512
    assert row[3] == {
        "nan": "nan",
        "d": "0.1",
        "when": "2026-01-01T00:00:00",
        "client": "testclient",
    }
    assert verify_sync(conn).ok


def test_search_filters(scratch_url: str, conn: psycopg.Connection) -> None:
    fill(conn, 3, actor="li.si")
    record_sync(conn, event_for(CLERK, "auth.login", ip="::1"))
    record_sync(conn, event_for(CLERK, "auth.logout"))

    async def main() -> dict[str, list[dict]]:
        url = libpq_url(scratch_url)
        async with await psycopg.AsyncConnection.connect(url, autocommit=True) as c:
            now = datetime.now(UTC)
            return {
                "li": await search(c, actor="li.si"),
                "auth": await search(c, action="auth.*"),
                "login": await search(c, action="auth.login"),
                "target": await search(c, target_type="case", target_id="1"),
                "page": await search(c, actor="li.si", limit=1, offset=1),
                "future": await search(c, since=now + timedelta(hours=1)),
                "past": await search(c, until=now - timedelta(days=365)),
            }

    found = asyncio.run(main())
    assert [e["target_id"] for e in found["li"]] == ["2", "1", "0"]  # newest first
    assert {e["action"] for e in found["auth"]} == {"auth.login", "auth.logout"}
    assert [e["ip"] for e in found["login"]] == ["::1"]
    assert len(found["target"]) == 1 and found["target"][0]["positions"] == ["网格员", "值班长"]
    assert [e["target_id"] for e in found["page"]] == ["1"]
    assert found["future"] == [] and found["past"] == []
    entry = found["li"][0]
    assert len(entry["hash"]) == 64 and len(entry["prev_hash"]) == 64
    assert entry["after"] == {"status": "closed", "at": "2026-12-01T00:00:00+00:00"}
    assert datetime.fromisoformat(entry["at"]).tzinfo is not None


# --- CLI ---------------------------------------------------------------------------------------


def test_cli_verify_exit_codes(scratch_url: str, conn: psycopg.Connection) -> None:
    env = {"DATABASE_URL": scratch_url}
    seqs = fill(conn, 5)
    ok = runner.invoke(cli_app, ["audit", "verify"], env=env)
    assert ok.exit_code == 0 and "intact" in ok.output
    head = verify_sync(conn).head
    assert head and head in ok.output
    again = runner.invoke(cli_app, ["audit", "verify", "--expect-head", head], env=env)
    assert again.exit_code == 0
    bad = runner.invoke(cli_app, ["audit", "verify", "--expect-head", "3:zz"], env=env)
    assert bad.exit_code == 2
    tamper(conn, f"UPDATE city.audit_log SET actor = 'x' WHERE seq = {seqs[2]}")
    tampered = runner.invoke(cli_app, ["audit", "verify", "--json"], env=env)
    assert tampered.exit_code == 1
    assert json.loads(tampered.output)["first_bad_seq"] == seqs[2]


def test_cli_export_jsonl_and_csv(
    scratch_url: str, conn: psycopg.Connection, tmp_path: Path
) -> None:
    env = {"DATABASE_URL": scratch_url}
    fill(conn, 4)
    count = verify_sync(conn).count
    out = tmp_path / "audit.jsonl"
    result = runner.invoke(cli_app, ["audit", "export", "--out", str(out)], env=env)
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [e["seq"] for e in lines] == list(range(1, count + 1))
    assert lines[-1]["detail"]["note"] == "第3次"
    exported = search_sync(conn, "audit.export")
    assert exported["actor_kind"] == "system" and exported["detail"]["rows"] == count

    out_csv = tmp_path / "audit.csv"
    since = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    args = ["audit", "export", "--out", str(out_csv), "--format", "csv", "--since", since]
    assert runner.invoke(cli_app, args, env=env).exit_code == 0
    raw = out_csv.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
    assert rows[0][0] == "序号 (seq)" and len(rows) == 1 + count + 1  # + the first export
    bad = ["audit", "export", "--out", str(out_csv), "--format", "xml"]
    assert runner.invoke(cli_app, bad, env=env).exit_code == 2


def search_sync(conn: psycopg.Connection, action: str) -> dict:
    """The newest entry with ``action``."""
    with conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
        cur.execute(
            "SELECT * FROM city.audit_log WHERE action = %s ORDER BY seq DESC LIMIT 1", (action,)
        )
        return cur.fetchone()


# --- API ---------------------------------------------------------------------------------------

AUDITOR = Principal(
    kind="user", id=2, name="auditor", positions=("审计员",), permissions=frozenset({"audit:read"})
)
ADMIN = Principal(
    kind="user", id=1, name="admin", permissions=frozenset({"user:write", "layer:write"})
)
TEST_PRINCIPALS = {"auditor": AUDITOR, "admin": ADMIN}


def audit_app(url: str) -> FastAPI:
    """The audit router alone, with a test middleware standing in for authentication."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        pool = make_pool(url, max_size=2)
        await pool.open(wait=True)
        app.state.pool = pool
        try:
            yield
        finally:
            await pool.close()

    app = FastAPI(lifespan=lifespan)
    app.state.settings = Settings(db=DatabaseSettings(url=url))
    install_problem_handlers(app)
    app.include_router(audit_router())

    @app.middleware("http")
    async def principal(request: Request, call_next):  # type: ignore[no-untyped-def]
        who = request.headers.get("x-test-principal")
        if who in TEST_PRINCIPALS:
            request.state.principal = TEST_PRINCIPALS[who]
        return await call_next(request)

    return app


@pytest.fixture
def api(scratch_url: str) -> Iterator[TestClient]:
    app = audit_app(scratch_url)
    with TestClient(app, raise_server_exceptions=False, client=("10.1.2.3", 50000)) as c:
        yield c


@pytest.mark.parametrize("path", ["/api/v1/audit", "/api/v1/audit/verify", "/api/v1/audit/export"])
def test_api_needs_audit_read(api: TestClient, conn: psycopg.Connection, path: str) -> None:
    before = base_seq(conn)
    anonymous = api.get(path)
    assert anonymous.status_code == 401
    assert anonymous.headers["content-type"] == "application/problem+json"
    assert "WWW-Authenticate" in anonymous.headers
    assert api.get(path, headers={"x-test-principal": "admin"}).status_code == 403
    assert base_seq(conn) == before  # denied reads are not served (and not logged here)
    assert api.get(path, headers={"x-test-principal": "auditor"}).status_code == 200
    assert base_seq(conn) == before + 1


def test_api_search_is_itself_audited(api: TestClient, conn: psycopg.Connection) -> None:
    fill(conn, 3, actor="li.si")
    headers = {"x-test-principal": "auditor", "user-agent": "audit-ui/1.0"}
    r = api.get("/api/v1/audit", params={"actor": "li.si", "limit": 2}, headers=headers)
    assert r.status_code == 200 and r.headers["cache-control"] == "no-store"
    page = r.json()
    assert [e["target_id"] for e in page["items"]] == ["2", "1"] and page["next_offset"] == 2
    read = search_sync(conn, "audit.read")
    assert read["actor"] == "auditor" and read["actor_kind"] == "user"
    assert read["positions"] == ["审计员"] and read["user_agent"] == "audit-ui/1.0"
    assert read["method"] == "GET" and read["path"] == "/api/v1/audit" and read["status"] == 200
    assert read["detail"] == {
        "op": "search",
        "actor": "li.si",
        "limit": 2,
        "offset": 0,
        "rows": 2,
    }
    assert str(read["ip"]) == "10.1.2.3"
    r = api.get("/api/v1/audit", params={"action": "audit.*"}, headers=headers)
    assert r.json()["items"][0]["seq"] == read["seq"]
    assert api.get("/api/v1/audit", params={"limit": 1001}, headers=headers).status_code == 400


def test_api_verify_and_export(api: TestClient, conn: psycopg.Connection) -> None:
    headers = {"x-test-principal": "auditor"}
    fill(conn, 3)
    r = api.get("/api/v1/audit/verify", headers=headers)
    body = r.json()
    assert r.status_code == 200 and body["ok"] and body["head"].startswith(f"{body['head_seq']}:")
    again = api.get("/api/v1/audit/verify", params={"expect_head": body["head"]}, headers=headers)
    assert again.json()["ok"] and again.json()["count"] == body["count"] + 1
    bad = api.get("/api/v1/audit/verify", params={"expect_head": "x"}, headers=headers)
    assert bad.status_code == 400
    tamper(conn, f"UPDATE city.audit_log SET actor = 'x' WHERE seq = {body['head_seq']}")
    broken = api.get("/api/v1/audit/verify", headers=headers).json()
    assert not broken["ok"] and broken["first_bad_seq"] == body["head_seq"]

    r = api.get("/api/v1/audit/export", params={"limit": 2, "after_seq": 1}, headers=headers)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert "attachment" in r.headers["content-disposition"]
    rows = list(csv.reader(io.StringIO(r.content.decode("utf-8-sig"))))
    assert rows[0][:3] == ["序号 (seq)", "时间 (at)", "操作人 (actor)"]
    assert [row[0] for row in rows[1:]] == ["2", "3"] and r.headers["x-audit-last-seq"] == "3"
    exported = search_sync(conn, "audit.export")
    assert exported["actor"] == "auditor" and exported["detail"]["rows"] == 2
