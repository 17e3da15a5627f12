"""ORM models of the spatial core; importing this module registers every table."""

from spatial.models.admin import Community, District, Street
from spatial.models.base import SCHEMA, SRID, Base
from spatial.models.cases import Case
from spatial.models.catalogue import ComponentClass, EventClass
from spatial.models.grids import EvaluationGrid, ResponsibilityGrid, UnitGrid
from spatial.models.org import Department
from spatial.models.parts import Part
from spatial.models.places import Address, Building, Compound, Poi, Road

__all__ = [
    "SCHEMA",
    "SRID",
    "Address",
    "Base",
    "Building",
    "Case",
    "Community",
    "ComponentClass",
    "Compound",
    "Department",
    "District",
    "EvaluationGrid",
    "EventClass",
    "Part",
    "Poi",
    "ResponsibilityGrid",
    "Road",
    "Street",
    "UnitGrid",
]
