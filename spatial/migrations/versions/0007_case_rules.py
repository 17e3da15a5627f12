"""case rules: working-time SQL functions, calendar, default stage limits, dispatch rule matching

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-25 15:45:00

Working time (计时管理) is Asia/Shanghai local time: the periods of ``city.work_periods`` on
Monday–Friday, unless ``city.work_calendar`` marks the day otherwise (法定节假日, 调休上班).
Functions (all STABLE, set-based or iterating by day and period, never by minute):

- ``city.work_add(start, minutes)``: the moment ``minutes`` working minutes after ``start``;
- ``city.work_seconds(a, b)`` / ``city.work_minutes(a, b)``: working time between two moments;
- ``city.case_dispatch_rules(c)``: the supervision-manual rules matching a case, ranked;
- ``city.case_stage_limit(c, stage)``: a stage's limit (minutes, calendar) for a case;
- ``city.case_stage_deadline(c, stage, start)``: the stage's deadline (NULL when untimed);
- ``city.case_timer(c, at)``: 'green' / 'yellow' / 'red' (NULL when untimed, terminal, 挂账);
- ``city.case_overdue(c, at)``: the timer is red.

Similar-case search uses the existing GiST index ``idx_cases_geom`` (no new index needed).
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TIMED_STAGES = (
    "reported",
    "accepted",
    "verifying",
    "registered",
    "returned",
    "dispatched",
    "handled",
    "checked",
)

# Default limits in working minutes (category, major and minor NULL = every class).
# 'dispatched' has no default row: its limit comes from the dispatch rule or the catalogue.
DEFAULT_LIMITS = (
    ("reported", 30, "受理"),
    ("accepted", 30, "立案"),
    ("verifying", 120, "核实"),
    ("registered", 30, "派遣"),
    ("returned", 30, "回退后重新派遣"),
    ("handled", 120, "核查"),
    ("checked", 60, "结案"),
)

# Source: 国务院办公厅关于2026年部分节假日安排的通知 (2025-11-04, 新华社). Days not listed
# follow Monday–Friday. 2027: the State Council had not published its arrangement when this
# was written, so only the statutory days of 《全国年节及纪念日放假办法》 (2024 revision) are
# seeded (元旦 1, 春节 除夕–初三 4, 清明 1, 劳动节 2, 端午 1, 中秋 1, 国庆 3); admins add
# the 2027 调休 days through PUT /api/v1/work-calendar/{day} when it is published.
HOLIDAYS_2026 = (
    ("2026-01-01", "2026-01-03", "元旦"),
    ("2026-02-15", "2026-02-23", "春节"),
    ("2026-04-04", "2026-04-06", "清明节"),
    ("2026-05-01", "2026-05-05", "劳动节"),
    ("2026-06-19", "2026-06-21", "端午节"),
    ("2026-09-25", "2026-09-27", "中秋节"),
    ("2026-10-01", "2026-10-07", "国庆节"),
)
WORKDAYS_2026 = (
    ("2026-01-04", "元旦调休上班"),
    ("2026-02-14", "春节调休上班"),
    ("2026-02-28", "春节调休上班"),
    ("2026-05-09", "劳动节调休上班"),
    ("2026-09-20", "国庆节调休上班"),
    ("2026-10-10", "国庆节调休上班"),
)
HOLIDAYS_2027 = (
    ("2027-01-01", "2027-01-01", "元旦"),
    ("2027-02-05", "2027-02-08", "春节"),
    ("2027-04-05", "2027-04-05", "清明节"),
    ("2027-05-01", "2027-05-02", "劳动节"),
    ("2027-06-09", "2027-06-09", "端午节"),
    ("2027-09-15", "2027-09-15", "中秋节"),
    ("2027-10-01", "2027-10-03", "国庆节"),
)

FUNCTIONS = r"""
CREATE FUNCTION city.is_workday(d date) RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT coalesce(
        (SELECT w.is_workday FROM city.work_calendar w WHERE w.day = d),
        extract(isodow FROM d) < 6)
$$;
COMMENT ON FUNCTION city.is_workday(date) IS '工作日: work_calendar, else Monday–Friday';

CREATE FUNCTION city.work_add(start timestamptz, minutes integer) RETURNS timestamptz
LANGUAGE plpgsql STABLE PARALLEL SAFE AS $$
DECLARE
    tz constant text := 'Asia/Shanghai';
    d date := (start AT TIME ZONE tz)::date;
    remaining double precision := minutes * 60.0;
    starts time[];
    ends time[];
    ps timestamptz;
    pe timestamptz;
    seg double precision;
    days integer := 0;
BEGIN
    IF start IS NULL OR minutes IS NULL THEN
        RETURN NULL;
    END IF;
    IF minutes <= 0 THEN
        RETURN start;
    END IF;
    SELECT array_agg(p.start_time ORDER BY p.start_time), array_agg(p.end_time ORDER BY p.start_time)
      INTO starts, ends FROM city.work_periods p;
    IF starts IS NULL THEN  -- no working periods configured: natural time
        RETURN start + make_interval(mins => minutes);
    END IF;
    LOOP
        IF city.is_workday(d) THEN
            FOR i IN 1 .. array_length(starts, 1) LOOP
                pe := (d + ends[i]) AT TIME ZONE tz;
                IF pe > start THEN
                    ps := greatest((d + starts[i]) AT TIME ZONE tz, start);
                    seg := extract(epoch FROM pe - ps);
                    IF remaining <= seg THEN
                        RETURN ps + make_interval(secs => remaining);
                    END IF;
                    remaining := remaining - seg;
                END IF;
            END LOOP;
        END IF;
        d := d + 1;
        days := days + 1;
        IF days > 3700 THEN
            RAISE EXCEPTION 'work_add: no working time within ten years of %', start
                USING ERRCODE = 'data_exception';
        END IF;
    END LOOP;
END $$;
COMMENT ON FUNCTION city.work_add(timestamptz, integer) IS
    'start + minutes of working time (work_periods, Monday–Friday, work_calendar; Asia/Shanghai)';

CREATE FUNCTION city.work_seconds(a timestamptz, b timestamptz) RETURNS double precision
LANGUAGE plpgsql STABLE PARALLEL SAFE AS $$
DECLARE
    tz constant text := 'Asia/Shanghai';
    d date;
    last date;
    starts time[];
    ends time[];
    ps timestamptz;
    pe timestamptz;
    total double precision := 0;
BEGIN
    IF a IS NULL OR b IS NULL THEN
        RETURN NULL;
    END IF;
    IF b < a THEN
        RETURN -city.work_seconds(b, a);
    END IF;
    SELECT array_agg(p.start_time ORDER BY p.start_time), array_agg(p.end_time ORDER BY p.start_time)
      INTO starts, ends FROM city.work_periods p;
    IF starts IS NULL THEN  -- no working periods configured: natural time
        RETURN extract(epoch FROM b - a);
    END IF;
    d := (a AT TIME ZONE tz)::date;
    last := (b AT TIME ZONE tz)::date;
    WHILE d <= last LOOP
        IF city.is_workday(d) THEN
            FOR i IN 1 .. array_length(starts, 1) LOOP
                ps := greatest((d + starts[i]) AT TIME ZONE tz, a);
                pe := least((d + ends[i]) AT TIME ZONE tz, b);
                IF pe > ps THEN
                    total := total + extract(epoch FROM pe - ps);
                END IF;
            END LOOP;
        END IF;
        d := d + 1;
    END LOOP;
    RETURN total;
END $$;
COMMENT ON FUNCTION city.work_seconds(timestamptz, timestamptz) IS
    'working seconds from a to b (negative when b < a); iterates by day and period';

CREATE FUNCTION city.work_minutes(a timestamptz, b timestamptz) RETURNS integer
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT trunc(city.work_seconds(a, b) / 60)::integer
$$;
COMMENT ON FUNCTION city.work_minutes(timestamptz, timestamptz) IS
    'whole working minutes from a to b (negative when b < a)';

CREATE FUNCTION city.case_dispatch_rules(c city.cases)
RETURNS TABLE (rule_id integer, department_code text, time_limit_hours integer,
               standard text, automatic boolean, priority integer, specificity integer,
               rank bigint)
LANGUAGE plpgsql STABLE AS $$
#variable_conflict use_column
BEGIN
    RETURN QUERY
    SELECT r.id, r.department_code::text, r.time_limit_hours, r.standard, r.automatic,
           r.priority, s.specificity,
           row_number() OVER (ORDER BY r.priority, s.specificity DESC, r.id)
      FROM city.dispatch_rules r
     CROSS JOIN LATERAL (SELECT (r.minor_code IS NOT NULL)::int
                              + 2 * (r.street_code IS NOT NULL)::int
                              + 4 * (r.grid_code IS NOT NULL)::int AS specificity) s
     WHERE r.category = c.category
       AND r.major_code = c.major_code
       AND (r.minor_code IS NULL OR r.minor_code = c.minor_code)
       AND (r.street_code IS NULL OR r.street_code = c.street_code
            OR (c.street_code IS NULL AND EXISTS (
                SELECT 1 FROM city.streets st
                 WHERE st.code = r.street_code AND ST_Intersects(st.geom, c.geom))))
       AND (r.grid_code IS NULL OR r.grid_code = c.responsibility_grid_code
            OR (c.responsibility_grid_code IS NULL AND EXISTS (
                SELECT 1 FROM city.responsibility_grids g
                 WHERE g.code = r.grid_code AND ST_Intersects(g.geom, c.geom))));
END $$;
COMMENT ON FUNCTION city.case_dispatch_rules(city.cases) IS
    '监督指挥手册 rules matching a case: lowest priority first, then the most specific '
    '(grid 4 + street 2 + minor class 1), then the oldest rule';

CREATE FUNCTION city.case_stage_limit(c city.cases, stage text,
                                      OUT limit_minutes integer, OUT calendar text)
LANGUAGE plpgsql STABLE AS $$
DECLARE
    lim record;
    hours integer;
BEGIN
    IF stage IS NULL OR NOT stage = ANY (ARRAY[
        'reported', 'accepted', 'verifying', 'registered', 'returned',
        'dispatched', 'handled', 'checked']) THEN
        RETURN;
    END IF;
    SELECT l.limit_minutes, l.calendar, l.major_code IS NOT NULL AS specific INTO lim
      FROM city.stage_time_limits l
     WHERE l.stage = case_stage_limit.stage
       AND (l.category IS NULL OR l.category = c.category)
       AND (l.major_code IS NULL OR l.major_code = c.major_code)
       AND (l.minor_code IS NULL OR l.minor_code = c.minor_code)
     ORDER BY l.minor_code IS NULL, l.major_code IS NULL, l.category IS NULL, l.id
     LIMIT 1;
    IF stage = 'dispatched' THEN
        -- 处置时限: the dispatch rule (the dispatched department's first), else the catalogue.
        SELECT r.time_limit_hours INTO hours FROM city.case_dispatch_rules(c) r
         WHERE r.time_limit_hours IS NOT NULL
         ORDER BY r.department_code IS DISTINCT FROM c.department_code, r.rank
         LIMIT 1;
        IF hours IS NULL AND NOT coalesce(lim.specific, false) THEN
            IF c.category = '部件' THEN
                SELECT k.disposal_hours INTO hours FROM city.component_classes k
                 WHERE k.major_code = c.major_code AND k.minor_code = c.minor_code;
            ELSE
                SELECT k.disposal_hours INTO hours FROM city.event_classes k
                 WHERE k.major_code = c.major_code AND k.minor_code = c.minor_code;
            END IF;
        END IF;
        IF hours IS NOT NULL THEN
            limit_minutes := hours * 60;
            calendar := 'working';
            RETURN;
        END IF;
    END IF;
    IF lim IS NOT NULL THEN
        limit_minutes := lim.limit_minutes;
        calendar := lim.calendar;
    END IF;
END $$;
COMMENT ON FUNCTION city.case_stage_limit(city.cases, text) IS
    'a timed stage''s limit: stage_time_limits (most specific class first); dispatched: '
    'dispatch rule time_limit_hours, else a class-specific stage limit, else the catalogue';

CREATE FUNCTION city.case_stage_deadline(c city.cases, stage text, start timestamptz)
RETURNS timestamptz
LANGUAGE sql STABLE AS $$
    SELECT CASE WHEN l.limit_minutes IS NULL OR start IS NULL THEN NULL
                WHEN l.calendar = 'natural' THEN start + make_interval(mins => l.limit_minutes)
                ELSE city.work_add(start, l.limit_minutes) END
      FROM city.case_stage_limit(c, stage) l
$$;

CREATE FUNCTION city.workflow_rule(workflow text, rule text, fallback numeric)
RETURNS numeric
LANGUAGE sql STABLE AS $$
    SELECT coalesce((
        SELECT (w.definition -> 'rules' ->> rule)::numeric
          FROM city.workflow_definitions w
         WHERE w.code = workflow
           AND (w.definition -> 'rules' ->> rule) ~ '^[0-9]+(\.[0-9]+)?$'), fallback)
$$;
COMMENT ON FUNCTION city.workflow_rule(text, text, numeric) IS
    'a numeric rule of a workflow definition (e.g. timer_yellow_ratio), else the fallback';

CREATE FUNCTION city.case_timer(c city.cases, at timestamptz) RETURNS text
LANGUAGE plpgsql STABLE AS $$
DECLARE
    lim record;
    deadline timestamptz := c.stage_deadline;
    total double precision;
    elapsed double precision;
BEGIN
    IF c.on_hold OR at IS NULL OR NOT c.stage = ANY (ARRAY[
        'reported', 'accepted', 'verifying', 'registered', 'returned',
        'dispatched', 'handled', 'checked']) THEN
        RETURN NULL;
    END IF;
    IF at >= deadline THEN  -- the stored deadline (extensions included) has passed
        RETURN 'red';
    END IF;
    SELECT * INTO lim FROM city.case_stage_limit(c, c.stage);
    IF deadline IS NULL THEN
        IF lim.limit_minutes IS NULL THEN
            RETURN NULL;
        ELSIF lim.calendar = 'natural' THEN
            deadline := c.stage_started_at + make_interval(mins => lim.limit_minutes);
        ELSE
            deadline := city.work_add(c.stage_started_at, lim.limit_minutes);
        END IF;
        IF at >= deadline THEN
            RETURN 'red';
        END IF;
    END IF;
    IF lim.calendar = 'natural' THEN
        total := extract(epoch FROM deadline - c.stage_started_at);
        elapsed := extract(epoch FROM at - c.stage_started_at);
    ELSE
        total := city.work_seconds(c.stage_started_at, deadline);
        elapsed := city.work_seconds(c.stage_started_at, at);
    END IF;
    IF elapsed >= total * city.workflow_rule(c.workflow_code, 'timer_yellow_ratio', 0.8) THEN
        RETURN 'yellow';
    END IF;
    RETURN 'green';
END $$;
COMMENT ON FUNCTION city.case_timer(city.cases, timestamptz) IS
    '计时状态: green; yellow from the yellow ratio (default 0.8) of the stage''s time; red '
    'past the deadline; NULL when the stage is untimed or terminal, or the case is 挂账';

CREATE FUNCTION city.case_overdue(c city.cases, at timestamptz) RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT coalesce(city.case_timer(c, at) = 'red', false)
$$;
"""

DROP_FUNCTIONS = (
    "city.case_overdue(city.cases, timestamptz)",
    "city.case_timer(city.cases, timestamptz)",
    "city.workflow_rule(text, text, numeric)",
    "city.case_stage_deadline(city.cases, text, timestamptz)",
    "city.case_stage_limit(city.cases, text)",
    "city.case_dispatch_rules(city.cases)",
    "city.work_minutes(timestamptz, timestamptz)",
    "city.work_seconds(timestamptz, timestamptz)",
    "city.work_add(timestamptz, integer)",
    "city.is_workday(date)",
)


def _calendar_rows() -> list[tuple[str, str, bool, str]]:
    """(first day, last day, is_workday, note) ranges."""
    rows = [(first, last, False, note) for first, last, note in (*HOLIDAYS_2026, *HOLIDAYS_2027)]
    rows.extend((day, day, True, note) for day, note in WORKDAYS_2026)
    return rows


def seed() -> None:
    """Working periods, the 2026–2027 calendar and the default stage limits."""
    op.execute(
        "INSERT INTO city.work_periods (start_time, end_time)"
        " SELECT s, e FROM (VALUES ('08:30'::time, '12:00'::time), ('13:30', '17:30')) v(s, e)"
        " WHERE NOT EXISTS (SELECT 1 FROM city.work_periods)"
    )
    for first, last, workday, note in _calendar_rows():
        op.execute(
            f"INSERT INTO city.work_calendar (day, is_workday, note)"  # noqa: S608 - constants
            f" SELECT d::date, {str(workday).lower()}, '{note}'"
            f" FROM generate_series('{first}'::date, '{last}'::date, '1 day') d"
            " ON CONFLICT (day) DO NOTHING"
        )
    for stage, minutes, _name in DEFAULT_LIMITS:
        op.execute(
            "INSERT INTO city.stage_time_limits"  # noqa: S608 - constants
            " (category, major_code, minor_code, stage, limit_minutes, calendar,"
            " max_extensions, extendable)"
            f" SELECT NULL, NULL, NULL, '{stage}', {minutes}, 'working', 1, true"
            " WHERE NOT EXISTS (SELECT 1 FROM city.stage_time_limits WHERE category IS NULL"
            f" AND major_code IS NULL AND minor_code IS NULL AND stage = '{stage}')"
        )


def upgrade() -> None:
    op.execute(FUNCTIONS)
    seed()


def downgrade() -> None:
    for signature in DROP_FUNCTIONS:
        op.execute(f"DROP FUNCTION IF EXISTS {signature}")
    op.execute("DELETE FROM city.work_calendar WHERE day BETWEEN '2026-01-01' AND '2027-12-31'")
