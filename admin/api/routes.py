"""The admin API's route table, assembled from the resource modules, and the OpenAPI 3.1
document generated from it: the blueprint registers its URL rules from the same table and
the schemas come from the same pydantic models, so they cannot drift apart."""

from __future__ import annotations

import copy
from functools import cache
from typing import Any

from pydantic import BaseModel

from . import accounts, audit, cas, clients, keys, legal, me
from .bodies import Problem, component_schemas, parameters
from .operations import PREFIX, Call, Reply, Route

__all__ = ["PREFIX", "ROUTES", "Call", "Reply", "Route", "openapi_document"]

ROUTES: tuple[Route, ...] = (*me.ROUTES, *clients.ROUTES, *keys.ROUTES, *audit.ROUTES, *cas.ROUTES,
                             *legal.ROUTES, *accounts.ROUTES)

_ERROR_TEXT = {400: "Malformed request (RFC 6750 invalid_request)",
               401: "Missing or unusable access token; see WWW-Authenticate (RFC 6750 §3, RFC 9470 §3)",
               403: "The token lacks the admin scope, or the roles lack the permission",
               404: "No such resource", 409: "Conflicts with the resource's state",
               415: "The body is not sent as application/json",
               422: "The request breaks its schema or a registration rule; errors name the fields",
               503: "A server fault the caller may retry (e.g. no signing key); see Retry-After"}


def _ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def _operation(route: Route) -> dict[str, Any]:
    problem = {"application/problem+json": {"schema": _ref(Problem)}}
    status, model, text = route.success
    responses: dict[str, Any] = {str(status): {"description": text}}
    if model:
        responses[str(status)]["content"] = {route.media_type: {"schema": _ref(model)}}
    for code in route.errors:
        responses[str(code)] = {"description": _ERROR_TEXT[code], "content": problem}
    op: dict[str, Any] = {
        "operationId": route.operation_id,
        "summary": route.summary,
        "security": [{"yiwang": ["admin"]}],
        "x-permission": route.permission.value if route.permission else None,
        "responses": responses,
    }
    if route.params:
        op["parameters"] = parameters(route.params, route.path)
    if route.request:
        op["requestBody"] = {"required": route.request_required,
                             "content": {"application/json": {"schema": _ref(route.request)}}}
        responses["415"] = {"description": _ERROR_TEXT[415], "content": problem}
    return op


@cache
def _schemas() -> dict[str, Any]:
    # Built once per process: the models do not change while it runs.
    requests = {r.request for r in ROUTES if r.request}
    responses = {r.success[1] for r in ROUTES if r.success[1]} | {Problem}
    return component_schemas(sorted(requests, key=lambda m: m.__name__),
                             sorted(responses, key=lambda m: m.__name__))


def openapi_document(issuer: str) -> dict[str, Any]:
    """The OpenAPI 3.1 description of ``ROUTES``."""
    paths: dict[str, Any] = {}
    for route in ROUTES:
        paths.setdefault(PREFIX + route.path, {})[route.method.lower()] = _operation(route)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Yiwang administration API",
            "version": "1",
            "description": "Bearer access tokens from this provider with the admin scope, for an administrator "
                           "who logged in with a second factor. Errors are RFC 9457 problem details. Lists "
                           "use keyset pagination: ?limit= and ?cursor= (next_cursor, Link rel=next). No text "
                           "may hold control characters (U+0000-U+001F, U+007F), except line breaks and tabs "
                           "in PEM text (contentMediaType application/x-pem-file).",
        },
        "servers": [{"url": issuer}],
        "paths": paths,
        "components": {
            "schemas": copy.deepcopy(_schemas()),
            "securitySchemes": {"yiwang": {"type": "oauth2", "flows": {"authorizationCode": {
                "authorizationUrl": f"{issuer}/authorize", "tokenUrl": f"{issuer}/token",
                "scopes": {"admin": "Administer Yiwang (administrators with a second factor only)"}}}}},
        },
    }
