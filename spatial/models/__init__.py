"""ORM models of the spatial core; importing this module registers every table."""

from spatial.models import fleet, geofence  # noqa: F401 (registers the fleet tables)
from spatial.models.admin import Community, District, Street
from spatial.models.audit import AuditLog
from spatial.models.base import SCHEMA, SRID, Base
from spatial.models.case_work import (
    CaseMedia,
    CaseRequest,
    CaseTask,
    CaseTypeWorkflow,
    DispatchRule,
    InspectorPosition,
    MediaBlob,
    Notification,
    SmsMessage,
    StaffRoster,
    StageTimeLimit,
    Supervision,
    WorkCalendar,
    WorkflowDefinition,
    WorkPeriod,
)
from spatial.models.cases import Case, CaseHistory, CaseSource
from spatial.models.catalogue import ComponentClass, EventClass
from spatial.models.geocoding import ADDRESS_TRGM, POI_NAME_TRGM
from spatial.models.grids import EvaluationGrid, ResponsibilityGrid, UnitGrid
from spatial.models.identity import (
    ApiKey,
    InspectorGrid,
    LoginNonce,
    Position,
    RefreshToken,
    User,
    UserPosition,
)
from spatial.models.org import Department
from spatial.models.parts import Part
from spatial.models.places import Address, Building, Compound, Poi, Road
from spatial.models.tiles import LayerVersion

__all__ = [
    "AuditLog",
    "ApiKey",
    "InspectorGrid",
    "LoginNonce",
    "Position",
    "RefreshToken",
    "User",
    "UserPosition",
    "ADDRESS_TRGM",
    "POI_NAME_TRGM",
    "SCHEMA",
    "SRID",
    "Address",
    "Base",
    "Building",
    "Case",
    "CaseMedia",
    "CaseRequest",
    "CaseTask",
    "CaseTypeWorkflow",
    "DispatchRule",
    "InspectorPosition",
    "MediaBlob",
    "Notification",
    "SmsMessage",
    "StaffRoster",
    "StageTimeLimit",
    "Supervision",
    "WorkCalendar",
    "WorkflowDefinition",
    "WorkPeriod",
    "CaseHistory",
    "CaseSource",
    "Community",
    "ComponentClass",
    "Compound",
    "Department",
    "District",
    "EvaluationGrid",
    "EventClass",
    "LayerVersion",
    "Part",
    "Poi",
    "ResponsibilityGrid",
    "Road",
    "Street",
    "UnitGrid",
]
