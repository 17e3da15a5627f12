"""OWS 1.1 ``ExceptionReport`` XML for the classic services (WMTS, WFS), and a route class.

Every failure on a ``/wmts`` or ``/wfs`` route, ours or the platform's (``CityError``), answers an
``ExceptionReport`` rather than problem JSON: OWS clients (QGIS, GDAL, OWSLib) read those.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute
from lxml import etree

from spatial.errors import CityError

OWS = "http://www.opengis.net/ows/1.1"
XML_MEDIA_TYPE = "application/xml"
log = logging.getLogger("cityops.ows")


@dataclass
class OwsError(Exception):
    """One OWS exception: ``exceptionCode``, the offending parameter and the HTTP status."""

    code: str
    text: str
    locator: str | None = None
    status: int = 400

    def __str__(self) -> str:
        """The exception text."""
        return self.text


def invalid(locator: str, text: str, status: int = 400) -> OwsError:
    """``InvalidParameterValue`` for ``locator``."""
    return OwsError("InvalidParameterValue", text, locator, status)


def missing(locator: str) -> OwsError:
    """``MissingParameterValue`` for ``locator``."""
    return OwsError("MissingParameterValue", f"Parameter {locator} is required.", locator)


def exception_report(error: OwsError) -> Response:
    """Render ``error`` as an OWS 1.1 ``ExceptionReport`` document."""
    root = etree.Element(
        f"{{{OWS}}}ExceptionReport",
        {"version": "1.1.0", "{http://www.w3.org/XML/1998/namespace}lang": "en"},
        nsmap={None: OWS},
    )
    attrs = {"exceptionCode": error.code}
    if error.locator:
        attrs["locator"] = error.locator
    exc = etree.SubElement(root, f"{{{OWS}}}Exception", attrs)
    etree.SubElement(exc, f"{{{OWS}}}ExceptionText").text = error.text
    body = etree.tostring(root, encoding="UTF-8", xml_declaration=True)
    return Response(body, status_code=error.status, media_type=XML_MEDIA_TYPE)


class OwsRoute(APIRoute):
    """An ``APIRoute`` whose errors become ``ExceptionReport`` XML, never tracebacks."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        """Wrap the handler so that every exception is reported the OWS way."""
        handler = super().get_route_handler()

        async def report_errors(request: Request) -> Response:
            try:
                return await handler(request)
            except OwsError as exc:
                return exception_report(exc)
            except CityError as exc:
                if exc.status >= 500:
                    log.error("%s %s: %s", request.method, request.url.path, exc)
                code = "InvalidParameterValue" if exc.status < 500 else "NoApplicableCode"
                return exception_report(OwsError(code, exc.detail or exc.title, None, exc.status))
            except Exception:
                log.exception("unhandled error on %s %s", request.method, request.url.path)
                text = "An unexpected error occurred; it has been logged."
                return exception_report(OwsError("NoApplicableCode", text, None, 500))

        return report_errors
