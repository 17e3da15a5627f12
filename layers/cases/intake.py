"""Case intake (问题上报 / 案件登记): one entry for every source (受理来源).

Who may report from which source:

* inspectors (监督员): ``inspector``, ``self_handled`` (自行处置, before and after media),
  ``special_check`` (专项排查) — 主动发现;
* citizens (公众): ``public`` — 被动发现;
* acceptors and shift leaders (``cases:accept``) register on someone's behalf (案件登记):
  ``hotline_12345``, ``higher_platform``, ``leader``, ``other_bureau``, ``public``, with the
  reporter's name and phone SM4-encrypted (masked copies and a phone blind index kept);
* machine clients (API keys with ``cases:report``): ``video_ai``, ``vehicle_ai``, ``sensor``,
  ``fleet_alarm`` — 智能发现; the system robot (系统机器人, e.g. a fleet alarm turned into a
  case) may use these and the desk sources.

A report is idempotent: the client's ``idempotency_key`` (or ``Idempotency-Key`` header) is
stored per caller; repeating it returns the original case (``replayed``), a different payload
under the same key is a 409. The hash of the canonical payload is kept in the ``report``
history row. The unique index on ``cases.idempotency_key`` and ``ON CONFLICT DO NOTHING``
make two concurrent POSTs produce one case.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final, Literal

import h3
import psycopg
from pydantic import BaseModel, Field, field_validator

from layers.cases import history, notify
from layers.cases.crossgrid import cross_grid
from layers.cases.dispatch import next_staff
from layers.cases.media import MEDIA_KINDS, kind_accepts
from layers.cases.similar import find_similar
from layers.cases.workflow import workflow_for
from spatial.crs import ClientCRS, out_of_china, parse_client_crs, to_storage
from spatial.errors import Conflict, FieldIssue, Forbidden, InvalidInput, UnprocessableInput
from spatial.security.principal import Principal
from spatial.security.sm4 import Keyring, mask_name, mask_phone

DEFAULT_WORKFLOW: Final = "gbt30428_8"
COUNTY: Final = "320904"
FIELD_SOURCES: Final = frozenset({"inspector", "self_handled", "special_check"})
DESK_SOURCES: Final = frozenset(
    {"hotline_12345", "higher_platform", "leader", "other_bureau", "public"}
)
MACHINE_SOURCES: Final = frozenset({"video_ai", "vehicle_ai", "sensor", "fleet_alarm"})
ALL_SOURCES: Final = FIELD_SOURCES | DESK_SOURCES | MACHINE_SOURCES
H3_RESOLUTION: Final = 9
KEY_PATTERN: Final = r"^[A-Za-z0-9._:\-]{8,64}$"
Category = Literal["事件", "部件"]
MediaKind = Literal[MEDIA_KINDS]  # type: ignore[valid-type]


class ReportLocation(BaseModel):
    """Where the problem is, in the client's coordinate system (lon/lat order)."""

    lon: float = Field(ge=-180, le=180)
    lat: float = Field(ge=-90, le=90)
    crs: str = Field(default="cgcs2000", description="CGCS2000|WGS84|GCJ02|BD09")

    @field_validator("crs")
    @classmethod
    def _known_crs(cls, value: str) -> str:
        return parse_client_crs(value).value


class MediaRef(BaseModel):
    """An uploaded file (``POST /api/v1/media``) and its role (近景/远景/参照物/处置前/…)."""

    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    kind: MediaKind
    file_name: str | None = Field(default=None, max_length=200)


class CaseReport(BaseModel):
    """A problem report from the field app, the public, the desk or a machine."""

    source: str = Field(description="city.case_sources code")
    category: Category
    class_code: str | None = Field(default=None, pattern=r"^[0-9]{10}$")
    major_code: str | None = Field(default=None, pattern=r"^[0-9]{2}$")
    minor_code: str | None = Field(default=None, pattern=r"^[0-9]{2}$")
    county_code: str = Field(default=COUNTY, pattern=r"^[0-9]{6}$")
    description: str = Field(min_length=1, max_length=2000)
    location: ReportLocation | None = None
    address: str | None = Field(default=None, max_length=200, description="geocoded when set")
    location_desc: str | None = Field(default=None, max_length=200)
    road_name: str | None = Field(default=None, max_length=60)
    part_code: str | None = Field(default=None, pattern=r"^[0-9]{16}$")
    safety_issue: bool = False
    level: Literal["一般", "较大", "重大", "紧急"] = "一般"
    media: list[MediaRef] = Field(default_factory=list, max_length=30)
    reporter_name: str | None = Field(default=None, min_length=1, max_length=40)
    reporter_phone: str | None = Field(default=None, pattern=r"^[0-9+\- ]{5,20}$")
    idempotency_key: str | None = Field(default=None, pattern=KEY_PATTERN)

    def resolved_class(self) -> str:
        """The 10-digit class code (县 6 + 大类 2 + 小类 2)."""
        if self.class_code:
            return self.class_code
        if self.major_code and self.minor_code:
            return self.county_code + self.major_code + self.minor_code
        raise InvalidInput(
            "Give class_code, or major_code and minor_code.",
            [FieldIssue("class_code", "required (or major_code + minor_code)")],
        )

    def request_hash(self) -> str:
        """SHA-256 of the canonical payload (the key itself left out)."""
        doc = self.model_dump(mode="json", exclude={"idempotency_key"})
        doc["class_code"] = self.resolved_class()
        doc.pop("major_code"), doc.pop("minor_code"), doc.pop("county_code")
        text = json.dumps(doc, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass
class ReportResult:
    """The case (as :func:`case_summary` renders it) and the prompts shown to the reporter."""

    case: dict[str, Any]
    replayed: bool
    similar: list[dict[str, Any]] = field(default_factory=list)
    cross_grid: dict[str, Any] | None = None


def allowed_sources(principal: Principal) -> frozenset[str]:
    """The sources this caller may report from (the system robot: machine and desk ones)."""
    if principal.via == "system" and principal.can("cases:report"):
        return MACHINE_SOURCES | DESK_SOURCES
    if principal.kind == "api_key":
        return MACHINE_SOURCES if principal.can("cases:report") else frozenset()
    if principal.kind != "user":
        return frozenset()
    out: set[str] = set()
    if principal.can("cases:report") and "inspector" in principal.positions:
        out |= FIELD_SOURCES
    if principal.can("cases:report") and "public" in principal.positions:
        out.add("public")
    if principal.can("cases:accept"):
        out |= DESK_SOURCES
    return frozenset(out)


def check_source(principal: Principal, source: str) -> None:
    """422 for an unknown source, 403 when the caller may not use it."""
    if source not in ALL_SOURCES:
        raise UnprocessableInput(
            f"Unknown source {source!r}.",
            [FieldIssue("source", f"one of {', '.join(sorted(ALL_SOURCES))}")],
        )
    allowed = allowed_sources(principal)
    if source not in allowed:
        hint = ", ".join(sorted(allowed)) or "none"
        raise Forbidden(
            f"{principal.name} may not report from source {source} (allowed: {hint}).",
            [FieldIssue("source", f"not allowed for this caller (allowed: {hint})")],
        )


def storage_key(principal: Principal, key: str | None) -> str | None:
    """The stored key: namespaced by caller so that two callers' keys never collide."""
    if key is None:
        return None
    if principal.via == "system":
        return f"sys:{key}"
    who = "k" if principal.kind == "api_key" else "u"
    return f"{who}{principal.id}:{key}"


# ---------------------------------------------------------------------------------- lookups


async def _one(conn: psycopg.AsyncConnection, query: str, args: Any = ()) -> dict[str, Any] | None:
    cur = await conn.execute(query, args)
    row = await cur.fetchone()
    if row is None:
        return None
    return dict(zip([c.name for c in cur.description or []], row, strict=True))


async def check_class(conn: psycopg.AsyncConnection, category: str, class_code: str) -> str:
    """The minor class name; 422 naming ``class_code`` when the catalogue lacks it."""
    table = "event_classes" if category == "事件" else "component_classes"
    row = await _one(
        conn,
        f"SELECT major_name, minor_name FROM city.{table}"  # noqa: S608 - fixed table names
        " WHERE major_code = %s AND minor_code = %s",
        (class_code[6:8], class_code[8:10]),
    )
    if row is None or class_code[:6] != COUNTY:
        raise UnprocessableInput(
            f"{class_code} is not a {category} class of the catalogue (county {COUNTY}).",
            [FieldIssue("class_code", f"unknown {category} class")],
        )
    return f"{row['major_name']}/{row['minor_name']}"


def _geocoded(geocoder: Any, address: str) -> tuple[float, float] | None:
    """The best geocoding candidate's CGCS2000 point (the index is in memory)."""
    from geocoder.forward import geocode

    result = geocode(geocoder, address, 1)
    if not result.matches:
        return None
    best = result.matches[0]
    return best.lon, best.lat


async def resolve_point(
    conn: psycopg.AsyncConnection, report: CaseReport, geocoder: Any = None
) -> tuple[float, float]:
    """CGCS2000 lon/lat from ``location``, else the part's point, else the geocoded address."""
    if report.location is not None:
        loc = report.location
        if not (math.isfinite(loc.lon) and math.isfinite(loc.lat)) or out_of_china(
            loc.lon, loc.lat
        ):
            raise UnprocessableInput(
                "The location is outside China.", [FieldIssue("location", "outside China")]
            )
        lon, lat = to_storage(loc.lon, loc.lat, ClientCRS(loc.crs))
        return float(lon), float(lat)
    if report.part_code:
        row = await _one(
            conn,
            "SELECT ST_X(geom) AS lon, ST_Y(geom) AS lat FROM city.parts WHERE code = %s",
            (report.part_code,),
        )
        if row is None:
            raise UnprocessableInput(
                f"Unknown component {report.part_code}.",
                [FieldIssue("part_code", "no such component (部件)")],
            )
        return float(row["lon"]), float(row["lat"])
    if report.address:
        if geocoder is None:
            raise UnprocessableInput(
                "Geocoding is not available here; send a location.",
                [FieldIssue("address", "cannot be geocoded now")],
            )
        point = _geocoded(await geocoder.index(), report.address)
        if point is None:
            raise UnprocessableInput(
                f"The address {report.address!r} was not found.",
                [FieldIssue("address", "no geocoding match (未匹配)")],
            )
        return point
    raise InvalidInput(
        "Give a location, a part_code or an address.",
        [FieldIssue("location", "required (or part_code / address)")],
    )


LOCATE_SQL = """
SELECT (SELECT d.code FROM city.districts d
         WHERE d.code = %(county)s AND ST_Intersects(d.geom, p.g)) AS district,
       ug.code AS grid_code, ug.street_code, ug.community_code,
       COALESCE((SELECT r.code FROM city.responsibility_grids r
                 WHERE ST_Intersects(r.geom, p.g) ORDER BY r.code LIMIT 1),
                ug.responsibility_grid_code) AS responsibility_grid_code,
       COALESCE(ug.street_code, (SELECT s.code FROM city.streets s
                 WHERE ST_Intersects(s.geom, p.g) ORDER BY s.code LIMIT 1)) AS street
FROM (SELECT ST_SetSRID(ST_MakePoint(%(lon)s, %(lat)s), 4490) AS g) p
LEFT JOIN LATERAL (SELECT u.* FROM city.unit_grids u WHERE ST_Intersects(u.geom, p.g)
                   ORDER BY u.code LIMIT 1) ug ON true
"""


async def locate(conn: psycopg.AsyncConnection, lon: float, lat: float) -> dict[str, Any]:
    """Unit grid, responsibility grid, street and community of a point inside the district."""
    row = await _one(conn, LOCATE_SQL, {"county": COUNTY, "lon": lon, "lat": lat}) or {}
    if not row.get("district"):
        raise UnprocessableInput(
            f"({lon:.6f}, {lat:.6f}) CGCS2000 is outside 大丰区.",
            [FieldIssue("location", "outside the district (不在辖区内)")],
        )
    row["street_code"] = row.pop("street")
    return row


async def workflow_code(conn: psycopg.AsyncConnection, category: str, class_code: str) -> str:
    """The workflow of this case type (H1's ``workflow_for``; default ``gbt30428_8``)."""
    return await workflow_for(conn, category, class_code)


async def next_acceptor(conn: psycopg.AsyncConnection) -> int | None:
    """The acceptor on duty next in turn (H2's round robin over ``staff_roster``)."""
    return await next_staff(conn, "accept")


async def next_case_no(conn: psycopg.AsyncConnection) -> str:
    """``YYYYMMDD`` (Beijing date) + a 6-digit daily sequence (任务号); call in a transaction."""
    day = await _one(conn, "SELECT to_char(now() AT TIME ZONE 'Asia/Shanghai', 'YYYYMMDD') AS d")
    prefix = str((day or {})["d"])
    await conn.execute("SELECT pg_advisory_xact_lock(hashtext('city.case_no.' || %s))", (prefix,))
    # A range on the unique case_no index (LIKE 'prefix%' cannot use it outside the C
    # collation and scanned every case): the day's highest number is one index probe.
    row = await _one(
        conn,
        "SELECT max(case_no) AS last FROM city.cases"
        " WHERE case_no BETWEEN %s AND %s AND case_no ~ '^[0-9]{14}$'",
        (prefix + "000000", prefix + "999999"),
    )
    last = (row or {}).get("last")
    return f"{prefix}{int(last[8:]) + 1 if last else 1:06d}"


# ------------------------------------------------------------------------------- the report


async def _check_media(
    conn: psycopg.AsyncConnection, report: CaseReport, source: str
) -> dict[str, str]:
    """Every referenced blob exists and suits its kind; self-handled needs before + after."""
    shas = [m.sha256 for m in report.media]
    cur = await conn.execute(
        "SELECT sha256, mime FROM city.media_blobs WHERE sha256 = ANY(%s)", (shas,)
    )
    mimes = {r[0]: r[1] for r in await cur.fetchall()}
    issues = []
    for i, m in enumerate(report.media):
        mime = mimes.get(m.sha256)
        if mime is None:
            issues.append(FieldIssue(f"media[{i}].sha256", "not uploaded (POST /api/v1/media)"))
        elif not kind_accepts(m.kind, mime):
            issues.append(FieldIssue(f"media[{i}].kind", f"{m.kind} cannot hold {mime}"))
    if source == "self_handled":
        kinds = {m.kind for m in report.media}
        for needed, label in (("before", "处置前"), ("after", "处置后")):
            if needed not in kinds:
                issues.append(FieldIssue("media", f"self-handled needs a '{needed}' ({label})"))
    if issues:
        raise UnprocessableInput("The report's media cannot be used.", issues)
    return mimes


def _personal(keyring: Keyring | None, report: CaseReport) -> dict[str, Any]:
    out: dict[str, Any] = dict.fromkeys(
        ("name_enc", "name_mask", "phone_enc", "phone_mask", "phone_bidx")
    )
    if report.reporter_name or report.reporter_phone:
        ring = keyring or notify.default_keyring()
        if report.reporter_name:
            out["name_enc"] = ring.encrypt(report.reporter_name)
            out["name_mask"] = mask_name(report.reporter_name)
        if report.reporter_phone:
            out["phone_enc"] = ring.encrypt(report.reporter_phone)
            out["phone_mask"] = mask_phone(report.reporter_phone)
            out["phone_bidx"] = ring.blind_index(report.reporter_phone)
    return out


INSERT_SQL = """
INSERT INTO city.cases (case_no, idempotency_key, source, category, class_code, part_code,
    description, location_desc, road_name, level, safety_issue, self_handled, workflow_code,
    stage, status, grid_code, responsibility_grid_code, street_code, assignee_user_id,
    reporter_user_id, reporter_name_enc, reporter_name_mask, reporter_phone_enc,
    reporter_phone_mask, reporter_phone_bidx, h3, geom)
VALUES (%(case_no)s, %(key)s, %(source)s, %(category)s, %(class_code)s, %(part_code)s,
    %(description)s, %(location_desc)s, %(road_name)s, %(level)s, %(safety_issue)s,
    %(self_handled)s, %(workflow)s, 'reported', '待受理', %(grid_code)s,
    %(responsibility_grid_code)s, %(street_code)s, %(assignee)s, %(reporter)s, %(name_enc)s,
    %(name_mask)s, %(phone_enc)s, %(phone_mask)s, %(phone_bidx)s, %(h3)s,
    ST_SetSRID(ST_MakePoint(%(lon)s, %(lat)s), 4490))
ON CONFLICT (idempotency_key) DO NOTHING
RETURNING id
"""


async def _deadline(conn: psycopg.AsyncConnection, case_id: int) -> None:
    """Set the reported stage's deadline (city.case_stage_deadline, migration 0007)."""
    await conn.execute(
        "UPDATE city.cases c SET stage_deadline ="
        " city.case_stage_deadline(c, 'reported', c.stage_started_at) WHERE c.id = %s",
        (case_id,),
    )


async def _history(
    conn: psycopg.AsyncConnection, principal: Principal, case_id: int, details: dict[str, Any]
) -> None:
    """The ``report`` row of the handling process (上报, version 1)."""
    await history.record(
        conn,
        principal,
        case_id=case_id,
        action="report",
        action_name="上报",
        from_stage=None,
        to_stage="reported",
        version=1,
        details=details,
    )


async def _attach(
    conn: psycopg.AsyncConnection, case_id: int, report: CaseReport, uploader: int | None
) -> None:
    for m in report.media:
        await conn.execute(
            "INSERT INTO city.case_media (case_id, sha256, kind, stage, file_name, uploaded_by)"
            " VALUES (%s, %s, %s, 'reported', %s, %s) ON CONFLICT DO NOTHING",
            (case_id, m.sha256, m.kind, m.file_name, uploader),
        )


async def _insert(
    conn: psycopg.AsyncConnection,
    principal: Principal,
    report: CaseReport,
    values: dict[str, Any],
    details: dict[str, Any],
) -> int | None:
    """Insert case, history, media and arrival notice in one transaction; None on key clash."""
    async with conn.transaction():
        values["case_no"] = await next_case_no(conn)
        values["assignee"] = await next_acceptor(conn)
        row = await _one(conn, INSERT_SQL, values)
        if row is None:  # the same key committed meanwhile: nothing of ours is kept
            return None
        case_id = int(row["id"])
        await _deadline(conn, case_id)
        await _history(conn, principal, case_id, details)
        await _attach(conn, case_id, report, values["reporter"])
        if values["assignee"] is not None:
            await notify.enqueue(
                conn,
                kind="arrival",
                case_id=case_id,
                recipient_user_id=values["assignee"],
                body=f"【城市运管】新案件{values['case_no']}待受理：{report.description[:40]}",
                dedupe_key=f"arrival:{case_id}:{values['assignee']}",
            )
    return case_id


async def _replay(
    conn: psycopg.AsyncConnection, key: str, request_hash: str
) -> dict[str, Any] | None:
    """The case already made with this key; 409 when the payload differs."""
    row = await _one(
        conn,
        "SELECT c.id, h.details->>'request_sha256' AS hash FROM city.cases c"
        " LEFT JOIN city.case_history h ON h.case_id = c.id AND h.action = 'report'"
        " WHERE c.idempotency_key = %s ORDER BY h.id LIMIT 1",
        (key,),
    )
    if row is None:
        return None
    if row["hash"] != request_hash:
        raise Conflict(
            "This idempotency key was used for a different report.",
            [FieldIssue("idempotency_key", "already used with another payload")],
        )
    return await case_summary(conn, int(row["id"]))


async def report_case(
    conn: psycopg.AsyncConnection,
    principal: Principal,
    report: CaseReport,
    *,
    keyring: Keyring | None = None,
    geocoder: Any = None,
    idempotency_key: str | None = None,
) -> ReportResult:
    """Create a case in stage ``reported`` (待受理), or return the one this key made before."""
    check_source(principal, report.source)
    client_key = report.idempotency_key or idempotency_key
    key = storage_key(principal, client_key)
    request_hash = report.request_hash()
    if key and (earlier := await _replay(conn, key, request_hash)):
        return ReportResult(earlier, replayed=True)
    class_code = report.resolved_class()
    class_name = await check_class(conn, report.category, class_code)
    await _check_media(conn, report, report.source)
    lon, lat = await resolve_point(conn, report, geocoder)
    place = await locate(conn, lon, lat)
    values = {
        "key": key,
        "source": report.source,
        "category": report.category,
        "class_code": class_code,
        "part_code": report.part_code,
        "description": report.description,
        "location_desc": report.location_desc,
        "road_name": report.road_name,
        "level": report.level,
        "safety_issue": report.safety_issue,
        "self_handled": report.source == "self_handled",
        "workflow": await workflow_code(conn, report.category, class_code),
        "grid_code": place["grid_code"],
        "responsibility_grid_code": place["responsibility_grid_code"],
        "street_code": place["street_code"],
        "reporter": principal.id if principal.kind == "user" else None,
        "h3": h3.str_to_int(h3.latlng_to_cell(lat, lon, H3_RESOLUTION)),
        "lon": lon,
        "lat": lat,
        **_personal(keyring, report),
    }
    details = {
        "request_sha256": request_hash,
        "idempotency_key": client_key,
        "source": report.source,
        "class_name": class_name,
        "caller": principal.name,
    }
    case_id = await _insert(conn, principal, report, values, details)
    if case_id is None:
        earlier = await _replay(conn, str(key), request_hash)
        if earlier is None:  # pragma: no cover - the clashing row vanished
            raise Conflict("The report clashed with another; retry.")
        return ReportResult(earlier, replayed=True)
    case = await case_summary(conn, case_id)
    case["community_code"] = place["community_code"]
    return ReportResult(
        case,
        replayed=False,
        similar=await similar_cases(conn, case, lon, lat),
        cross_grid=await cross_grid_prompt(conn, principal, report.source, lon, lat),
    )


# ------------------------------------------------------------------------------- prompts


def _plain(value: Any) -> dict[str, Any]:
    if isinstance(value, dict):
        return value
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json")
    if hasattr(value, "__dataclass_fields__"):
        from dataclasses import asdict

        return asdict(value)
    return dict(vars(value))


async def similar_cases(
    conn: psycopg.AsyncConnection, case: dict[str, Any], lon: float, lat: float
) -> list[dict[str, Any]]:
    """Similar earlier cases (相似案件提示) from H2's ``find_similar``; [] while absent."""
    found = await find_similar(
        conn,
        category=case["category"],
        class_code=case["class_code"],
        lon=lon,
        lat=lat,
        at=case["reported_at"],
        part_code=case["part_code"],
        exclude_id=case["id"],
    )
    return [_plain(s) for s in found]


async def cross_grid_prompt(
    conn: psycopg.AsyncConnection, principal: Principal, source: str, lon: float, lat: float
) -> dict[str, Any] | None:
    """The 跨网格 reminder for an inspector reporting outside own grids (H2's ``cross_grid``)."""
    if principal.kind != "user" or principal.id is None or source not in FIELD_SOURCES:
        return None
    hit = await cross_grid(conn, principal.id, lon, lat)
    return _plain(hit) if hit is not None else None


# ------------------------------------------------------------------------------- reading

SUMMARY_SQL = """
SELECT c.id, c.case_no, c.source, s.name AS source_name, s.source_class, c.category,
       c.class_code, c.major_code, c.minor_code,
       COALESCE(e.major_name || '/' || e.minor_name, k.major_name || '/' || k.minor_name)
           AS class_name,
       c.description, c.location_desc, c.road_name, c.part_code, c.level, c.safety_issue,
       c.self_handled, c.workflow_code, c.stage, c.status, c.version, c.grid_code,
       c.responsibility_grid_code, c.street_code, c.department_code, c.assignee_user_id,
       c.reporter_user_id, c.reporter_name_mask AS reporter_name,
       c.reporter_phone_mask AS reporter_phone, c.reported_at, c.stage_deadline,
       ST_X(c.geom) AS lon, ST_Y(c.geom) AS lat,
       COALESCE((SELECT json_agg(json_build_object('sha256', m.sha256, 'kind', m.kind,
                 'stage', m.stage, 'mime', b.mime, 'size', b.size_bytes,
                 'file_name', m.file_name) ORDER BY m.id)
                 FROM city.case_media m JOIN city.media_blobs b ON b.sha256 = m.sha256
                 WHERE m.case_id = c.id), '[]'::json) AS media
FROM city.cases c
JOIN city.case_sources s ON s.code = c.source
LEFT JOIN city.event_classes e ON c.category = '事件'
     AND e.major_code = c.major_code AND e.minor_code = c.minor_code
LEFT JOIN city.component_classes k ON c.category = '部件'
     AND k.major_code = c.major_code AND k.minor_code = c.minor_code
"""


def _shape(row: dict[str, Any]) -> dict[str, Any]:
    lon, lat = row.pop("lon"), row.pop("lat")
    row["location"] = {"lon": round(lon, 8), "lat": round(lat, 8), "crs": "cgcs2000"}
    return row


async def case_summary(conn: psycopg.AsyncConnection, case_id: int) -> dict[str, Any]:
    """One case as the field app shows it: personal fields masked, location in CGCS2000."""
    row = await _one(conn, SUMMARY_SQL + " WHERE c.id = %s", (case_id,))
    if row is None:  # pragma: no cover - callers pass ids they just read
        raise Conflict(f"Case {case_id} vanished.")
    return _shape(row)


async def my_reports(
    conn: psycopg.AsyncConnection,
    principal: Principal,
    *,
    since: datetime | None = None,
    stage: str | None = None,
    limit: int = 50,
    before_id: int | None = None,
) -> list[dict[str, Any]]:
    """The caller's own reports, newest first (历史记录 / 通用查询)."""
    if principal.kind != "user":
        return []
    cur = await conn.execute(
        SUMMARY_SQL + " WHERE c.reporter_user_id = %(u)s"
        " AND (%(since)s::timestamptz IS NULL OR c.reported_at >= %(since)s)"
        " AND (%(stage)s::text IS NULL OR c.stage = %(stage)s)"
        " AND (%(before)s::bigint IS NULL OR c.id < %(before)s)"
        " ORDER BY c.id DESC LIMIT %(n)s",
        {"u": principal.id, "since": since, "stage": stage, "before": before_id, "n": limit},
    )
    names = [c.name for c in cur.description or []]
    return [_shape(dict(zip(names, r, strict=True))) for r in await cur.fetchall()]
