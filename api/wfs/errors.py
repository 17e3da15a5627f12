"""WFS exception codes mapped to HTTP statuses, reported through the shared OWS errors.

``layer_refusal`` is shared with WMTS: a layer the caller may not read answers an
``ExceptionReport`` with 401 and a Basic challenge (QGIS and GDAL then ask for credentials)
for anonymous callers, 403 for authenticated ones.
"""

from __future__ import annotations

from fastapi import Response

from api.ows_errors import OwsError, exception_report
from layers.registry import LayerSpec
from spatial.security.principal import Principal

STATUS = {
    "MissingParameterValue": 400,
    "InvalidParameterValue": 400,
    "OperationNotSupported": 501,
    "OptionNotSupported": 400,
    "NotFound": 404,
    "OperationProcessingFailed": 500,
}
OWS_CHALLENGE = 'Basic realm="cityops"'


def wfs_error(code: str, locator: str, text: str) -> OwsError:
    """An OWS exception for the WFS parameter ``locator``, with the status for ``code``."""
    return OwsError(code, text, locator, STATUS.get(code, 400))


def readable(spec: LayerSpec, principal: Principal) -> bool:
    """True when ``principal`` may read ``spec`` (public layers: anyone)."""
    return spec.read_permission is None or principal.can(spec.read_permission)


def layer_refusal(spec: LayerSpec, principal: Principal, locator: str) -> Response:
    """The ``ExceptionReport`` refusing ``spec`` to ``principal`` (401 + challenge, or 403)."""
    if not principal.authenticated:
        text = f"Layer {spec.id} needs authentication: log in or present an API key."
        response = exception_report(OwsError("NoApplicableCode", text, locator, 401))
        response.headers["WWW-Authenticate"] = OWS_CHALLENGE
        return response
    text = f"{principal.name} may not read layer {spec.id} (needs {spec.read_permission})."
    return exception_report(OwsError("NoApplicableCode", text, locator, 403))
