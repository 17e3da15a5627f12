"""Public URLs of the OGC service, derived from each request unless configured.

pygeoapi writes absolute links from ``server.url`` fixed at start-up. Unless
``CITY_OGC_PUBLIC_URL`` is set we configure a placeholder origin and replace it in each
response with the origin the client used, so links work on any host/port (uvicorn on a test
port, a LAN address, ``PORT=9000 make run``).
"""

from __future__ import annotations

from typing import Final

from starlette.requests import HTTPConnection

from spatial.settings import OgcSettings

PREFIX: Final = "/ogc"
PLACEHOLDER: Final = "http://cityops-ogc.invalid"


def configured_url(ogc: OgcSettings) -> str:
    """``server.url`` for pygeoapi: the public URL, or the placeholder to rewrite."""
    return (ogc.public_url or PLACEHOLDER + PREFIX).rstrip("/")


def request_origin(conn: HTTPConnection) -> str:
    """``scheme://host[:port]`` as the client addressed us (outside any mount)."""
    return f"{conn.url.scheme}://{conn.url.netloc}"


def service_url(conn: HTTPConnection, ogc: OgcSettings) -> str:
    """The OGC landing page URL for this request."""
    if ogc.public_url:
        return ogc.public_url.rstrip("/")
    return request_origin(conn) + PREFIX


def rewrite(body: bytes, conn: HTTPConnection, ogc: OgcSettings) -> bytes:
    """Replace the placeholder origin with this request's."""
    if ogc.public_url:
        return body
    return body.replace(PLACEHOLDER.encode(), request_origin(conn).encode())
