"""Route policies: every route declares exactly one, as a FastAPI dependency.

``public`` (anyone), ``authenticated`` (any user or API key), ``require("perm")`` (a
permission), ``layer_access(param)`` (the layer named by a path/query parameter must be
readable: public layers by anyone, others by their permission). ``create_app`` refuses to
start when a route has no policy, and the test suite walks the OpenAPI document against them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from fastapi import Request
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from starlette.routing import BaseRoute

from spatial.errors import Forbidden, Unauthorized
from spatial.security.principal import ANONYMOUS, Principal

PolicyKind = Literal["public", "authenticated", "permission", "layer"]

# Documents whose content depends on who asks (capabilities, collection lists) are never
# cached: a client adding credentials after an anonymous visit must see the full list.
PER_CALLER_HEADERS = {"Cache-Control": "no-store", "Vary": "Authorization, X-API-Key"}


def principal_of(request: Request) -> Principal:
    """The principal the authentication middleware attached to the request."""
    return getattr(request.state, "principal", ANONYMOUS)


def deny(principal: Principal, what: str) -> None:
    """Raise 401 for anonymous callers, 403 for authenticated ones."""
    if not principal.authenticated:
        raise Unauthorized(f"Log in or present an API key to {what}.")
    raise Forbidden(f"{principal.name} may not {what}.")


@dataclass(frozen=True)
class Policy:
    """A callable dependency that checks the request's principal and returns it."""

    kind: PolicyKind
    permission: str | None = None
    param: str | None = None  # layer_access: the path or query parameter naming the layer

    def __call__(self, request: Request) -> Principal:
        """Check, then hand the principal to the route."""
        principal = principal_of(request)
        if self.kind == "authenticated" and not principal.authenticated:
            deny(principal, "use this endpoint")
        elif self.kind == "permission" and not principal.can(str(self.permission)):
            deny(principal, f"use this endpoint (needs {self.permission})")
        elif self.kind == "layer":
            layer_id = request.path_params.get(str(self.param)) or request.query_params.get(
                str(self.param)
            )
            if layer_id:
                check_layer(request, principal, layer_id)
        return principal

    def describe(self) -> dict[str, Any]:
        """The ``x-cityops-policy`` OpenAPI extension."""
        out: dict[str, Any] = {"kind": self.kind}
        if self.permission:
            out["permission"] = self.permission
        if self.param:
            out["layerParameter"] = self.param
        return out


def check_layer(request: Request, principal: Principal, layer_id: str) -> None:
    """Raise unless ``principal`` may read layer ``layer_id`` (unknown ids: left to the route)."""
    registry = request.app.state.registry
    spec = registry.find(layer_id)
    if spec is not None and spec.read_permission and not principal.can(spec.read_permission):
        deny(principal, f"read layer {layer_id} (needs {spec.read_permission})")


public = Policy("public")
authenticated = Policy("authenticated")


def require(permission: str) -> Policy:
    """A policy requiring one permission."""
    return Policy("permission", permission=permission)


def layer_access(param: str) -> Policy:
    """A policy requiring read access to the layer named by ``param``."""
    return Policy("layer", param=param)


@dataclass(frozen=True)
class Operation:
    """One routed FastAPI operation as the app serves it (included routers flattened)."""

    path: str
    methods: frozenset[str]
    dependant: Dependant
    route: APIRoute


def api_operations(routes: list[BaseRoute]) -> list[Operation]:
    """Every FastAPI route, with the dependencies that apply to it where it is included."""
    out: list[Operation] = []
    for route in routes:
        if isinstance(route, APIRoute):
            out.append(Operation(route.path, frozenset(route.methods), route.dependant, route))
        elif hasattr(route, "effective_route_contexts"):  # FastAPI >= 0.165: _IncludedRouter
            for ctx in route.effective_route_contexts():
                original = ctx.original_route
                if isinstance(original, APIRoute):
                    dependant = ctx.dependant or original.dependant
                    path = ctx.path_format or original.path
                    methods = frozenset(ctx.methods or original.methods)
                    out.append(Operation(path, methods, dependant, original))
    return out


def dependant_policies(dependant: Dependant) -> list[Policy]:
    """Every policy among a dependant's dependencies (router-level ones included)."""
    found: list[Policy] = []
    stack = list(dependant.dependencies)
    while stack:
        dep = stack.pop()
        if isinstance(dep.call, Policy):
            found.append(dep.call)
        stack.extend(dep.dependencies)
    return found


def unguarded_routes(routes: list[BaseRoute], exempt: frozenset[str] = frozenset()) -> list[str]:
    """Routes with no policy or more than one (``METHOD path``); ``exempt``: public doc pages."""
    bad = []
    for op in api_operations(routes):
        if op.path not in exempt and len(dependant_policies(op.dependant)) != 1:
            bad.extend(f"{m} {op.path}" for m in sorted(op.methods))
    return bad


def policy_of(op: Operation) -> Policy:
    """The single policy of a guarded operation."""
    return dependant_policies(op.dependant)[0]


def doc_paths(app: Any) -> frozenset[str]:
    """The interactive documentation pages FastAPI (or FastAPIOffline) adds itself: public."""
    paths = (app.docs_url, app.redoc_url, app.swagger_ui_oauth2_redirect_url, app.openapi_url)
    paths += ("/docs", "/redoc")  # FastAPIOffline's own, registered as plain app.get routes
    return frozenset(p for p in paths if p)


PolicyDep = Callable[[Request], Principal]
