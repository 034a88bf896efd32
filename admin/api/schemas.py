"""JSON Schemas of the admin API's bodies and parameters (OpenAPI 3.1 uses JSON Schema
2020-12), and the validator that applies them to requests. The OpenAPI document
publishes these same objects, so what is documented is what is enforced.

The validator covers the keywords used here (type, enum, const-free subset: minLength,
maxLength, pattern, minimum, maximum, items, maxItems, properties, required,
additionalProperties, minProperties, $ref); a schema using another keyword fails the
unit test that walks every schema. Pure: no Flask."""

from __future__ import annotations

import re
from typing import Any

from common.errors import ValidationError

_URI = {"type": "string", "minLength": 1, "maxLength": 2000}
_URIS = {"type": "array", "items": _URI, "maxItems": 50}
_NULLABLE_URI = {"type": ["string", "null"], "maxLength": 2000}
_TIME = {"type": "string", "format": "date-time"}
_NULLABLE_TIME = {"type": ["string", "null"], "format": "date-time"}

GRANT_TYPES = ["authorization_code", "refresh_token", "client_credentials"]
AUTH_METHODS = ["client_secret_basic", "client_secret_post", "private_key_jwt", "none"]

CLAIM_RULE = {
    "type": "object",
    "description": "Why the portal receives the claim (shown to the citizen) and the legal basis (PIPL Art. 13).",
    "properties": {
        "purpose": {"type": "string", "minLength": 1, "maxLength": 200},
        "basis": {"type": "string", "enum": ["consent", "statutory"]},
        "required": {"type": "boolean"},
    },
    "required": ["purpose"],
    "additionalProperties": False,
}

JWKS = {
    "type": "object",
    "description": "The client's public JWK set (RFC 7517 §5), for private_key_jwt.",
    "properties": {"keys": {"type": "array", "items": {"type": "object"}, "maxItems": 20}},
    "required": ["keys"],
}

_CLIENT_FIELDS: dict[str, Any] = {
    "name": {"type": "string", "minLength": 1, "maxLength": 200},
    "redirect_uris": _URIS,
    "post_logout_redirect_uris": _URIS,
    "backchannel_logout_uri": _NULLABLE_URI,
    "frontchannel_logout_uri": _NULLABLE_URI,
    "grant_types": {"type": "array", "items": {"type": "string", "enum": GRANT_TYPES}, "maxItems": 3},
    "scopes": {"type": "array", "items": {"type": "string", "minLength": 1, "maxLength": 64}, "maxItems": 20},
    "token_endpoint_auth_method": {"type": "string", "enum": AUTH_METHODS},
    "subject_type": {"type": "string", "enum": ["pairwise", "public"]},
    "sector_identifier_uri": _NULLABLE_URI,
    "jwks": {"anyOf": [JWKS, {"type": "null"}]},
    "claim_policy": {"type": "object", "additionalProperties": CLAIM_RULE, "maxProperties": 50},
    "sensitive_claims_allowed": {"type": "boolean"},
}

COMPONENTS: dict[str, dict[str, Any]] = {
    "Problem": {
        "type": "object",
        "description": "RFC 9457 problem details.",
        "properties": {
            "type": {"type": "string"},
            "title": {"type": "string"},
            "status": {"type": "integer"},
            "detail": {"type": "string"},
            "code": {"type": "string", "description": "Stable machine-readable code."},
            "errors": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {"field": {"type": "string"}, "detail": {"type": "string"}},
                    "required": ["field", "detail"],
                },
            },
        },
        "required": ["type", "title", "status", "code"],
    },
    "Me": {
        "type": "object",
        "properties": {
            "account_id": {"type": "integer"},
            "roles": {"type": "array", "items": {"type": "string"}},
            "permissions": {"type": "array", "items": {"type": "string"}},
        },
        "required": ["account_id", "roles", "permissions"],
        "additionalProperties": False,
    },
    "ClientCreate": {
        "type": "object",
        "properties": {**_CLIENT_FIELDS, "public": {"type": "boolean"}},
        "required": ["name"],
        "additionalProperties": False,
    },
    "ClientUpdate": {
        "type": "object",
        "description": "Only the fields to change; the whole registration is validated again.",
        "properties": _CLIENT_FIELDS,
        "minProperties": 1,
        "additionalProperties": False,
    },
    "Client": {
        "type": "object",
        "properties": {
            "client_id": {"type": "string"},
            **{k: v for k, v in _CLIENT_FIELDS.items() if k != "sector_identifier_uri"},
            "sector_identifier": {"type": "string"},
            "claim_policy": {"type": "object", "additionalProperties": CLAIM_RULE},
            "enabled": {"type": "boolean"},
            "created_at": _TIME,
            "updated_at": _TIME,
        },
        "required": ["client_id", "name", "redirect_uris", "grant_types", "scopes", "token_endpoint_auth_method",
                     "subject_type", "sector_identifier", "claim_policy", "enabled", "created_at", "updated_at"],
        "additionalProperties": False,
    },
    "ClientWithSecret": {
        "type": "object",
        "description": "client_secret is shown once, when created or changed; null when there is none.",
        "properties": {"client": {"$ref": "#/components/schemas/Client"},
                       "client_secret": {"type": ["string", "null"]}},
        "required": ["client", "client_secret"],
        "additionalProperties": False,
    },
    "ClientPage": {
        "type": "object",
        "properties": {
            "items": {"type": "array", "items": {"$ref": "#/components/schemas/Client"}},
            "next_cursor": {"type": ["string", "null"], "description": "Pass as ?cursor= for the next page."},
        },
        "required": ["items", "next_cursor"],
        "additionalProperties": False,
    },
    "ClientSecret": {
        "type": "object",
        "properties": {"client_id": {"type": "string"}, "client_secret": {"type": "string"}},
        "required": ["client_id", "client_secret"],
        "additionalProperties": False,
    },
    "ClientUsage": {
        "type": "object",
        "properties": {
            "client_id": {"type": "string"},
            "consents": {
                "type": "object",
                "properties": {k: {"type": "integer"} for k in ("active", "withdrawn", "expired")},
                "required": ["active", "withdrawn", "expired"],
            },
            "disclosures": {
                "type": "object",
                "properties": {
                    "total": {"type": "integer"},
                    "by_basis": {"type": "object", "additionalProperties": {"type": "integer"}},
                    "last_at": _NULLABLE_TIME,
                },
                "required": ["total", "by_basis", "last_at"],
            },
        },
        "required": ["client_id", "consents", "disclosures"],
        "additionalProperties": False,
    },
    "Key": {
        "type": "object",
        "properties": {
            "kid": {"type": "string"},
            "alg": {"type": "string", "enum": ["ES256", "RS256"]},
            "state": {"type": "string", "enum": ["next", "active", "retired"]},
            "published": {"type": "boolean", "description": "In the JWKS now."},
            "created_at": _TIME,
            "activated_at": _NULLABLE_TIME,
            "retired_at": _NULLABLE_TIME,
            "unpublish_after": _NULLABLE_TIME,
        },
        "required": ["kid", "alg", "state", "published", "created_at", "activated_at", "retired_at",
                     "unpublish_after"],
        "additionalProperties": False,
    },
    "KeyList": {
        "type": "object",
        "properties": {"items": {"type": "array", "items": {"$ref": "#/components/schemas/Key"}}},
        "required": ["items"],
        "additionalProperties": False,
    },
    "KeyRotate": {
        "type": "object",
        "properties": {"alg": {"type": "string", "enum": ["ES256", "RS256"],
                               "description": "Only this algorithm; default every algorithm."}},
        "additionalProperties": False,
    },
    "KeyRetire": {
        "type": "object",
        "properties": {"unpublish": {"type": "boolean",
                                     "description": "Also remove it from the JWKS now (compromise)."}},
        "additionalProperties": False,
    },
}

_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,), "integer": (int,), "boolean": (bool,), "array": (list,), "object": (dict,),
    "null": (type(None),), "number": (int, float),
}
KNOWN_KEYWORDS = {"type", "enum", "minLength", "maxLength", "pattern", "minimum", "maximum", "items", "maxItems",
                  "properties", "required", "additionalProperties", "minProperties", "maxProperties", "$ref",
                  "anyOf", "description", "format"}


def _is(value: Any, name: str) -> bool:
    if name in ("integer", "number") and isinstance(value, bool):
        return False
    return isinstance(value, _TYPES[name])


def _resolve(schema: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    if ref:
        return COMPONENTS[ref.rsplit("/", 1)[1]]
    return schema


def errors_of(value: Any, schema: dict[str, Any], path: str = "") -> list[tuple[str, str]]:
    """(field, message) pairs for every rule ``value`` breaks; empty when valid."""
    schema = _resolve(schema)
    where = path or "body"
    if "anyOf" in schema:
        if any(not errors_of(value, option, path) for option in schema["anyOf"]):
            return []
        return [(where, "does not match any allowed form")]
    types = schema.get("type")
    if types is not None:
        names = [types] if isinstance(types, str) else list(types)
        if not any(_is(value, n) for n in names):
            return [(where, f"must be {' or '.join(names)}")]
    if "enum" in schema and value not in schema["enum"]:
        return [(where, "must be one of " + ", ".join(map(str, schema["enum"])))]
    if isinstance(value, str):
        return _string_errors(value, schema, where)
    if isinstance(value, int) and not isinstance(value, bool):
        if "minimum" in schema and value < schema["minimum"] or "maximum" in schema and value > schema["maximum"]:
            return [(where, f"must be between {schema.get('minimum')} and {schema.get('maximum')}")]
    if isinstance(value, list):
        if len(value) > schema.get("maxItems", len(value)):
            return [(where, f"at most {schema['maxItems']} items")]
        out: list[tuple[str, str]] = []
        for i, item in enumerate(value):
            out += errors_of(item, schema.get("items", {}), f"{path}/{i}" if path else str(i))
        return out
    if isinstance(value, dict):
        return _object_errors(value, schema, path)
    return []


def _string_errors(value: str, schema: dict[str, Any], where: str) -> list[tuple[str, str]]:
    # Policy: no control characters in any text (PostgreSQL refuses NUL; the others
    # have no business in names and URIs).
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        return [(where, "must not contain control characters")]
    if len(value) < schema.get("minLength", 0) or len(value) > schema.get("maxLength", len(value)):
        return [(where, f"length must be {schema.get('minLength', 0)}-{schema.get('maxLength', 'any')}")]
    if "pattern" in schema and not re.search(schema["pattern"], value):
        return [(where, "has the wrong format")]
    return []


def _object_errors(value: dict[str, Any], schema: dict[str, Any], path: str) -> list[tuple[str, str]]:
    where = path or "body"
    props: dict[str, Any] = schema.get("properties", {})
    if len(value) < schema.get("minProperties", 0):
        return [(where, "must name at least one field")]
    if len(value) > schema.get("maxProperties", len(value)):
        return [(where, f"at most {schema['maxProperties']} entries")]
    out = [(f"{path}/{k}" if path else k, "is required") for k in schema.get("required", []) if k not in value]
    extra = schema.get("additionalProperties", True)
    for key, item in value.items():
        field = f"{path}/{key}" if path else key
        if key in props:
            out += errors_of(item, props[key], field)
        elif extra is False:
            out.append((field, "is not a known field"))
        elif isinstance(extra, dict):
            if len(key) > 64 or any(ord(c) < 32 for c in key):
                out.append((field, "is not a valid name"))
            else:
                out += errors_of(item, extra, field)
    return out


class FieldValidationError(ValidationError):
    """A request breaks its published schema; ``errors`` name each field."""

    code = "invalid_input"
    public_message = "The request does not match its schema."
    status_code = 422

    def __init__(self, errors: list[tuple[str, str]]) -> None:
        super().__init__("; ".join(f"{f}: {m}" for f, m in errors))
        self.errors = errors


def validate(value: Any, schema: dict[str, Any], path: str = "") -> None:
    """Raise ``FieldValidationError`` unless ``value`` matches ``schema``."""
    errors = errors_of(value, schema, path)
    if errors:
        raise FieldValidationError(errors[:20])
