"""OWS 1.1 exception reports for WFS (XML, as WFS clients expect, not problem JSON)."""

from __future__ import annotations

from xml.sax.saxutils import escape, quoteattr

from fastapi import Request
from fastapi.responses import Response

STATUS = {
    "MissingParameterValue": 400,
    "InvalidParameterValue": 400,
    "OperationNotSupported": 501,
    "OptionNotSupported": 400,
    "NotFound": 404,
    "OperationProcessingFailed": 500,
}


class WfsError(Exception):
    """An OWS exception with its code, locator (the parameter) and text."""

    def __init__(self, code: str, locator: str, text: str) -> None:
        """Keep the parts of the report."""
        super().__init__(text)
        self.code, self.locator, self.text = code, locator, text

    @property
    def status(self) -> int:
        """HTTP status for the exception code."""
        return STATUS.get(self.code, 400)

    def xml(self) -> str:
        """The ``ows:ExceptionReport`` document."""
        return (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            '<ows:ExceptionReport xmlns:ows="http://www.opengis.net/ows/1.1" version="2.0.0">'
            f"<ows:Exception exceptionCode={quoteattr(self.code)} "
            f"locator={quoteattr(self.locator)}>"
            f"<ows:ExceptionText>{escape(self.text)}</ows:ExceptionText>"
            "</ows:Exception></ows:ExceptionReport>"
        )


async def on_wfs_error(request: Request, exc: Exception) -> Response:
    """Render a ``WfsError`` as XML."""
    assert isinstance(exc, WfsError)  # noqa: S101 - registered for WfsError only
    return Response(exc.xml(), status_code=exc.status, media_type="application/xml")
