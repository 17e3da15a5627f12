"""WFS exception codes mapped to HTTP statuses, reported through the shared OWS errors."""

from __future__ import annotations

from api.ows_errors import OwsError

STATUS = {
    "MissingParameterValue": 400,
    "InvalidParameterValue": 400,
    "OperationNotSupported": 501,
    "OptionNotSupported": 400,
    "NotFound": 404,
    "OperationProcessingFailed": 500,
}


def wfs_error(code: str, locator: str, text: str) -> OwsError:
    """An OWS exception for the WFS parameter ``locator``, with the status for ``code``."""
    return OwsError(code, text, locator, STATUS.get(code, 400))
