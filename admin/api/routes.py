"""The admin API's route table: each entry names its method, path, permission, request
and response schemas and handler. The blueprint registers its URL rules from this table
and the OpenAPI 3.1 document is generated from it, so they cannot drift apart."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from idp.models import Client, SigningKey

from ..actor import Actor
from ..roles import Permission
from ..service import AdminServices
from .schemas import COMPONENTS

PREFIX = "/admin/api/v1"


@dataclass(frozen=True)
class Param:
    name: str
    location: str  # "path" | "query"
    schema: dict[str, Any]
    description: str = ""

    @property
    def required(self) -> bool:
        return self.location == "path"


@dataclass(frozen=True)
class Call:
    """One parsed request: who, the operations, the validated body and parameters."""

    actor: Actor
    admin: AdminServices
    body: dict[str, Any]
    query: dict[str, Any]
    path: dict[str, str]


@dataclass(frozen=True)
class Reply:
    status: int
    body: dict[str, Any] | None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Route:
    method: str
    path: str  # OpenAPI template, relative to PREFIX
    operation_id: str
    summary: str
    # None: any administrator (the caller's own profile).
    permission: Permission | None
    handler: Callable[[Call], Reply]
    success: tuple[int, str | None, str]  # status, response schema, description
    request: str | None = None
    request_required: bool = True
    params: tuple[Param, ...] = ()
    errors: tuple[int, ...] = (400, 401, 403, 422)

    @property
    def flask_rule(self) -> str:
        return PREFIX + self.path.replace("{", "<").replace("}", ">")


# -- representations ------------------------------------------------------------------


def _time(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def client_json(row: Client) -> dict[str, Any]:
    return {
        "client_id": row.client_id,
        "name": row.name,
        "redirect_uris": list(row.redirect_uris or ()),
        "post_logout_redirect_uris": list(row.post_logout_redirect_uris or ()),
        "backchannel_logout_uri": row.backchannel_logout_uri,
        "frontchannel_logout_uri": row.frontchannel_logout_uri,
        "grant_types": list(row.grant_types or ()),
        "scopes": list(row.scopes or ()),
        "token_endpoint_auth_method": row.token_endpoint_auth_method,
        "subject_type": row.subject_type,
        "sector_identifier": row.sector_identifier,
        "jwks": row.jwks,
        "claim_policy": dict(row.claim_policy or {}),
        "sensitive_claims_allowed": bool(row.sensitive_claims_allowed),
        "enabled": bool(row.enabled),
        "created_at": row.created_at.isoformat(),
        "updated_at": row.updated_at.isoformat(),
    }


def key_json(row: SigningKey, published: set[str]) -> dict[str, Any]:
    return {
        "kid": row.kid,
        "alg": row.alg,
        "state": row.state,
        "published": row.kid in published,
        "created_at": row.created_at.isoformat(),
        "activated_at": _time(row.activated_at),
        "retired_at": _time(row.retired_at),
        "unpublish_after": _time(row.unpublish_after),
    }


def _published(call: Call) -> set[str]:
    return {k.kid for k in call.admin.services.keys.published()}


# -- handlers -------------------------------------------------------------------------


def me(call: Call) -> Reply:
    return Reply(200, {"account_id": call.actor.account_id, "roles": sorted(call.actor.roles),
                       "permissions": sorted(p.value for p in call.actor.permissions)})


def list_clients(call: Call) -> Reply:
    limit = int(call.query.get("limit", 50))
    page = call.admin.clients.search(call.actor, query=call.query.get("q"), limit=limit,
                                     cursor=call.query.get("cursor"))
    headers = {}
    if page.next_cursor:
        from urllib.parse import urlencode

        args = {k: v for k, v in {"q": call.query.get("q"), "limit": limit, "cursor": page.next_cursor}.items() if v}
        # RFC 8288: the next page as a Link too, for generic clients.
        headers["Link"] = f'<{PREFIX}/clients?{urlencode(args)}>; rel="next"'
    return Reply(200, {"items": [client_json(c) for c in page.items], "next_cursor": page.next_cursor}, headers)


def create_client(call: Call) -> Reply:
    row, secret = call.admin.clients.create(call.actor, **call.body)
    return Reply(201, {"client": client_json(row), "client_secret": secret},
                 {"Location": f"{PREFIX}/clients/{row.client_id}"})


def get_client(call: Call) -> Reply:
    return Reply(200, client_json(call.admin.clients.get(call.actor, call.path["client_id"])))


def update_client(call: Call) -> Reply:
    row, secret = call.admin.clients.update(call.actor, call.path["client_id"], **call.body)
    return Reply(200, {"client": client_json(row), "client_secret": secret})


def delete_client(call: Call) -> Reply:
    call.admin.clients.delete(call.actor, call.path["client_id"])
    return Reply(204, None)


def rotate_client_secret(call: Call) -> Reply:
    secret = call.admin.clients.rotate_secret(call.actor, call.path["client_id"])
    return Reply(200, {"client_id": call.path["client_id"], "client_secret": secret})


def disable_client(call: Call) -> Reply:
    return Reply(200, client_json(call.admin.clients.set_enabled(call.actor, call.path["client_id"], False)))


def enable_client(call: Call) -> Reply:
    return Reply(200, client_json(call.admin.clients.set_enabled(call.actor, call.path["client_id"], True)))


def client_usage(call: Call) -> Reply:
    usage = call.admin.clients.usage(call.actor, call.path["client_id"])
    return Reply(200, {
        "client_id": call.path["client_id"],
        "consents": {"active": usage.consents_active, "withdrawn": usage.consents_withdrawn,
                     "expired": usage.consents_expired},
        "disclosures": {"total": usage.disclosures_total, "by_basis": usage.disclosures_by_basis,
                        "last_at": _time(usage.last_disclosure_at)},
    })


def list_keys(call: Call) -> Reply:
    rows = call.admin.keys.all(call.actor)
    published = _published(call)
    return Reply(200, {"items": [key_json(k, published) for k in rows]})


def rotate_keys(call: Call) -> Reply:
    rows = call.admin.keys.rotate(call.actor, call.body.get("alg"))
    published = _published(call)
    return Reply(200, {"items": [key_json(k, published) for k in rows]})


def retire_key(call: Call) -> Reply:
    row = call.admin.keys.retire(call.actor, call.path["kid"], unpublish=bool(call.body.get("unpublish")))
    return Reply(200, key_json(row, _published(call)))


# -- the table ------------------------------------------------------------------------

_CLIENT_ID = Param("client_id", "path", {"type": "string", "minLength": 1, "maxLength": 64})
_KID = Param("kid", "path", {"type": "string", "minLength": 1, "maxLength": 64})
_NOT_FOUND = (400, 401, 403, 404, 422)

ROUTES: tuple[Route, ...] = (
    Route("GET", "/me", "getMe", "The calling administrator's roles and permissions", None, me,
          (200, "Me", "The caller")),
    Route("GET", "/clients", "listClients", "Search clients (keyset pagination)", Permission.CLIENTS_READ,
          list_clients, (200, "ClientPage", "One page of clients; next_cursor and a Link rel=next when more"),
          params=(
              Param("q", "query", {"type": "string", "maxLength": 200},
                    "Part of the name (any case), or an exact client_id"),
              Param("limit", "query", {"type": "integer", "minimum": 1, "maximum": 200}, "Page size (default 50)"),
              Param("cursor", "query", {"type": "string", "pattern": "^[0-9]{1,18}$"},
                    "next_cursor of the previous page"),
          )),
    Route("POST", "/clients", "createClient", "Register a client; its secret is returned once",
          Permission.CLIENTS_WRITE, create_client, (201, "ClientWithSecret", "Created"), request="ClientCreate"),
    Route("GET", "/clients/{client_id}", "getClient", "One client", Permission.CLIENTS_READ, get_client,
          (200, "Client", "The client"), params=(_CLIENT_ID,), errors=_NOT_FOUND),
    Route("PATCH", "/clients/{client_id}", "updateClient",
          "Change fields of a client; a new secret is returned when the change needs one",
          Permission.CLIENTS_WRITE, update_client, (200, "ClientWithSecret", "Updated"), request="ClientUpdate",
          params=(_CLIENT_ID,), errors=_NOT_FOUND),
    Route("DELETE", "/clients/{client_id}", "deleteClient", "Delete a client", Permission.CLIENTS_WRITE,
          delete_client, (204, None, "Deleted"), params=(_CLIENT_ID,), errors=_NOT_FOUND),
    Route("POST", "/clients/{client_id}/secret", "rotateClientSecret",
          "New client secret, returned once; the old one stops working", Permission.CLIENTS_WRITE,
          rotate_client_secret, (200, "ClientSecret", "The new secret"), params=(_CLIENT_ID,), errors=_NOT_FOUND),
    Route("POST", "/clients/{client_id}/disable", "disableClient", "Disable a client (no logins, no tokens)",
          Permission.CLIENTS_WRITE, disable_client, (200, "Client", "Disabled"), params=(_CLIENT_ID,),
          errors=_NOT_FOUND),
    Route("POST", "/clients/{client_id}/enable", "enableClient", "Enable a disabled client",
          Permission.CLIENTS_WRITE, enable_client, (200, "Client", "Enabled"), params=(_CLIENT_ID,),
          errors=_NOT_FOUND),
    Route("GET", "/clients/{client_id}/usage", "getClientUsage", "Consent and disclosure counts of a client",
          Permission.CLIENTS_READ, client_usage, (200, "ClientUsage", "Counts"), params=(_CLIENT_ID,),
          errors=_NOT_FOUND),
    Route("GET", "/keys", "listKeys", "Signing keys with their state", Permission.KEYS_READ, list_keys,
          (200, "KeyList", "Every key")),
    Route("POST", "/keys/rotate", "rotateKeys", "Promote the next key(s); returns the newly active keys",
          Permission.KEYS_WRITE, rotate_keys, (200, "KeyList", "Newly active keys"), request="KeyRotate",
          request_required=False, errors=_NOT_FOUND),
    Route("POST", "/keys/{kid}/retire", "retireKey", "Retire one key ahead of schedule", Permission.KEYS_WRITE,
          retire_key, (200, "Key", "The retired key"), request="KeyRetire", request_required=False,
          params=(_KID,), errors=(*_NOT_FOUND, 409)),
)


# -- OpenAPI 3.1 ----------------------------------------------------------------------

_ERROR_TEXT = {400: "Malformed request (RFC 6750 invalid_request)",
               401: "Missing or unusable access token; see WWW-Authenticate (RFC 6750 §3, RFC 9470 §3)",
               403: "The token lacks the admin scope, or the roles lack the permission",
               404: "No such resource", 409: "Conflicts with the resource's state",
               422: "The request breaks its schema or a registration rule; errors name the fields"}


def _operation(route: Route) -> dict[str, Any]:
    problem = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
    status, schema, text = route.success
    responses: dict[str, Any] = {str(status): {"description": text}}
    if schema:
        responses[str(status)]["content"] = {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}}}
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
        op["parameters"] = [{"name": p.name, "in": p.location, "required": p.required, "schema": p.schema,
                             **({"description": p.description} if p.description else {})} for p in route.params]
    if route.request:
        op["requestBody"] = {"required": route.request_required, "content": {
            "application/json": {"schema": {"$ref": f"#/components/schemas/{route.request}"}}}}
    return op


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
                           "use keyset pagination: ?limit= and ?cursor= (next_cursor, Link rel=next).",
        },
        "servers": [{"url": issuer}],
        "paths": paths,
        "components": {
            "schemas": COMPONENTS,
            "securitySchemes": {"yiwang": {"type": "oauth2", "flows": {"authorizationCode": {
                "authorizationUrl": f"{issuer}/authorize", "tokenUrl": f"{issuer}/token",
                "scopes": {"admin": "Administer Yiwang (administrators with a second factor only)"}}}}},
        },
    }
