"""audit trail: append-only, SM3 hash-chained audit log (审计日志)

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02 09:00:00

``city.audit_log`` records who did what, when, from where, with before/after images. A BEFORE
INSERT trigger serialises writers with a transaction-scoped advisory lock, numbers the row
gap-free (``seq``) and chains it: ``hash = SM3(prev_hash || payload)`` where ``payload`` is
``city.audit_payload(row)``, a canonical JSON text of every other column (jsonb output is
canonical; timestamps are rendered in UTC, independent of the session's TimeZone). Caller-supplied
``seq``/``prev_hash``/``hash`` are overwritten. UPDATE, DELETE and TRUNCATE are refused by
triggers; a superuser who disables them is caught by ``spatial.security.audit.verify``.

``city.audit_payload`` must never change for existing rows: a later column needs a new payload
version, or every old hash stops verifying.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# pg_advisory_xact_lock key of the chain head: b"cityaudt" as a big-endian bigint.
AUDIT_LOCK_KEY = int.from_bytes(b"cityaudt", "big")

TABLE = """
CREATE TABLE city.audit_log (
    seq bigint NOT NULL,
    at timestamptz NOT NULL DEFAULT clock_timestamp(),
    actor text NOT NULL,
    actor_id bigint,
    actor_kind text,
    positions text[],
    ip inet,
    user_agent text,
    action text NOT NULL,
    target_type text,
    target_id text,
    method text,
    path text,
    status integer,
    detail jsonb,
    before jsonb,
    after jsonb,
    prev_hash bytea NOT NULL,
    hash bytea NOT NULL,
    CONSTRAINT pk_audit_log PRIMARY KEY (seq)
)
"""

COMMENTS = (
    "COMMENT ON TABLE city.audit_log IS "
    "'审计日志: append-only, SM3 hash chain (hash = SM3(prev_hash || audit_payload(row)))'",
    "COMMENT ON COLUMN city.audit_log.seq IS 'gap-free chain position, set by the trigger'",
    "COMMENT ON COLUMN city.audit_log.actor IS 'user name, anonymous or apikey:<prefix>'",
    "COMMENT ON COLUMN city.audit_log.actor_kind IS 'anonymous, user, api_key or system'",
    "COMMENT ON COLUMN city.audit_log.prev_hash IS 'hash of the previous row (genesis: 32 zeros)'",
    "COMMENT ON COLUMN city.audit_log.hash IS 'SM3(prev_hash || audit_payload(row))'",
)

INDEXES = (
    "CREATE INDEX ix_audit_log_at ON city.audit_log (at)",
    "CREATE INDEX ix_audit_log_actor ON city.audit_log (actor)",
    "CREATE INDEX ix_audit_log_action ON city.audit_log (action)",
    "CREATE INDEX ix_audit_log_target_type_target_id ON city.audit_log (target_type, target_id)",
)

# Canonical text of every column but the hashes: a jsonb object (sorted keys, fixed number and
# string rendering) with the timestamp in UTC to the microsecond.
PAYLOAD_FUNCTION = """
CREATE FUNCTION city.audit_payload(r city.audit_log) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE AS $$
SELECT jsonb_build_object(
    'seq', r.seq,
    'at', to_char(r.at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
    'actor', r.actor,
    'actor_id', r.actor_id,
    'actor_kind', r.actor_kind,
    'positions', to_jsonb(r.positions),
    'ip', r.ip::text,
    'user_agent', r.user_agent,
    'action', r.action,
    'target_type', r.target_type,
    'target_id', r.target_id,
    'method', r.method,
    'path', r.path,
    'status', r.status,
    'detail', r.detail,
    'before', r.before,
    'after', r.after
)::text
$$
"""

CHAIN_FUNCTION = f"""
CREATE FUNCTION city.audit_log_chain() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, public AS $$
DECLARE
    head_seq bigint;
    head_hash bytea;
BEGIN
    PERFORM pg_advisory_xact_lock({AUDIT_LOCK_KEY});
    SELECT a.seq, a.hash INTO head_seq, head_hash
    FROM city.audit_log a ORDER BY a.seq DESC LIMIT 1;
    NEW.seq := coalesce(head_seq, 0) + 1;
    NEW.prev_hash := coalesce(head_hash, decode(repeat('00', 32), 'hex'));
    NEW.at := coalesce(NEW.at, clock_timestamp());
    NEW.hash := public.digest(
        NEW.prev_hash || convert_to(city.audit_payload(NEW), 'UTF8'), 'sm3');
    RETURN NEW;
END
$$
"""

APPEND_ONLY_FUNCTION = """
CREATE FUNCTION city.audit_log_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION USING
        MESSAGE = 'audit_log is append-only (' || TG_OP || ' refused)',
        ERRCODE = 'insufficient_privilege';
END
$$
"""

TRIGGERS = (
    "CREATE TRIGGER audit_log_chain BEFORE INSERT ON city.audit_log "
    "FOR EACH ROW EXECUTE FUNCTION city.audit_log_chain()",
    "CREATE TRIGGER audit_log_no_change BEFORE UPDATE OR DELETE ON city.audit_log "
    "FOR EACH ROW EXECUTE FUNCTION city.audit_log_append_only()",
    "CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON city.audit_log "
    "FOR EACH STATEMENT EXECUTE FUNCTION city.audit_log_append_only()",
)


def upgrade() -> None:
    op.execute("CREATE EXTENSION IF NOT EXISTS pgcrypto WITH SCHEMA public")
    op.execute(TABLE)
    for statement in (*COMMENTS, *INDEXES):
        op.execute(statement)
    op.execute(PAYLOAD_FUNCTION)
    op.execute(CHAIN_FUNCTION)
    op.execute(APPEND_ONLY_FUNCTION)
    for statement in TRIGGERS:
        op.execute(statement)
    op.execute("REVOKE UPDATE, DELETE, TRUNCATE ON city.audit_log FROM PUBLIC")


def downgrade() -> None:
    op.execute("DROP FUNCTION city.audit_payload(city.audit_log)")
    op.execute("DROP TABLE city.audit_log")
    op.execute("DROP FUNCTION city.audit_log_chain()")
    op.execute("DROP FUNCTION city.audit_log_append_only()")
    # pgcrypto stays installed: other objects may use it, and it holds no data.
