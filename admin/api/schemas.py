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
from idp import protocol

from ..audit import ALERT_KINDS

_URI = {"type": "string", "minLength": 1, "maxLength": 2000}
_URIS = {"type": "array", "items": _URI, "maxItems": 50}
_NULLABLE_URI = {"type": ["string", "null"], "maxLength": 2000}
_TIME = {"type": "string", "format": "date-time"}
_NULLABLE_TIME = {"type": ["string", "null"], "format": "date-time"}

GRANT_TYPES = list(protocol.GRANT_TYPES)
AUTH_METHODS = list(protocol.AUTH_METHODS)

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
    "first_party": {"type": "boolean", "description": "A first-party administration tool: the only kind of client "
                    "that may have the admin scope. Set and changed by superadmins only (issue 17)."},
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
    # -- audit trail (issue 6) --
    "AuditEvent": {
        "type": "object",
        "description": "One audit event: pseudonymous ids and reason codes only, with its chain position and "
                       "hashes so an exported event can be checked against the chain.",
        "properties": {
            "id": {"type": "integer"},
            "at": _TIME,
            "chain": {"type": "integer"},
            "seq": {"type": "integer"},
            "actor": {"type": "string"},
            "action": {"type": "string"},
            "target": {"type": ["string", "null"]},
            "outcome": {"type": "string", "enum": ["ok", "denied", "error"]},
            "reason": {"type": ["string", "null"]},
            "client_id": {"type": ["string", "null"]},
            "ip_hash": {"type": ["string", "null"], "description": "Keyed hash of the client IP."},
            "details": {"type": "object"},
            "prev_hash": {"type": "string"},
            "hash": {"type": "string"},
        },
        "required": ["id", "at", "chain", "seq", "actor", "action", "target", "outcome", "reason", "client_id",
                     "ip_hash", "details", "prev_hash", "hash"],
        "additionalProperties": False,
    },
    "AuditEventPage": {
        "type": "object",
        "properties": {
            "items": {"type": "array", "items": {"$ref": "#/components/schemas/AuditEvent"}},
            "next_cursor": {"type": ["string", "null"], "description": "Pass as ?cursor= for the next page."},
        },
        "required": ["items", "next_cursor"],
        "additionalProperties": False,
    },
    "AuditTrailStatus": {
        "type": "object",
        "properties": {
            "chains": {"type": "integer"},
            "events_retained": {"type": "integer"},
            "anchored_chains": {"type": "integer", "description": "Chains pruned to a signed retention anchor."},
            "last_checkpoint_id": {"type": ["integer", "null"]},
            "last_checkpoint_at": _NULLABLE_TIME,
            "last_prune_at": _NULLABLE_TIME,
            "last_verification_at": _NULLABLE_TIME,
            "last_verification_ok": {"type": ["boolean", "null"]},
            "last_verification_problem": {"type": ["string", "null"]},
        },
        "required": ["chains", "events_retained", "anchored_chains", "last_checkpoint_id", "last_checkpoint_at",
                     "last_prune_at", "last_verification_at", "last_verification_ok", "last_verification_problem"],
        "additionalProperties": False,
    },
    "AuditBrokenLink": {
        "type": "object",
        "description": "Where the chain breaks; chain -1 for a checkpoint or archive problem.",
        "properties": {
            "chain": {"type": "integer"},
            "seq": {"type": "integer"},
            "problem": {"type": "string"},
            "event_id": {"type": ["integer", "null"]},
            "checkpoint_id": {"type": ["integer", "null"]},
            "archive_line": {"type": ["integer", "null"]},
        },
        "required": ["chain", "seq", "problem", "event_id", "checkpoint_id", "archive_line"],
        "additionalProperties": False,
    },
    "AuditVerification": {
        "type": "object",
        "properties": {
            "ok": {"type": "boolean"},
            "chains": {"type": "integer"},
            "events": {"type": "integer"},
            "checkpoints": {"type": "integer"},
            "archived_checkpoints": {"type": "integer"},
            "anchored_chains": {"type": "integer"},
            "first_broken": {"anyOf": [{"$ref": "#/components/schemas/AuditBrokenLink"}, {"type": "null"}]},
            "broken": {"type": "array", "items": {"$ref": "#/components/schemas/AuditBrokenLink"}},
        },
        "required": ["ok", "chains", "events", "checkpoints", "archived_checkpoints", "anchored_chains",
                     "first_broken", "broken"],
        "additionalProperties": False,
    },
    "Alert": {
        "type": "object",
        "description": "A count at or above its threshold within the window ending now; key is pseudonymous.",
        "properties": {
            "kind": {"type": "string", "enum": list(ALERT_KINDS)},
            "key": {"type": "string"},
            "count": {"type": "integer"},
            "threshold": {"type": "integer"},
            "window_seconds": {"type": "integer"},
            "last_at": _NULLABLE_TIME,
            "reason": {"type": ["string", "null"]},
        },
        "required": ["kind", "key", "count", "threshold", "window_seconds", "last_at", "reason"],
        "additionalProperties": False,
    },
    "AlertList": {
        "type": "object",
        "properties": {"items": {"type": "array", "items": {"$ref": "#/components/schemas/Alert"}}},
        "required": ["items"],
        "additionalProperties": False,
    },
}

# -- certificate authorities and legal persons (issue 6) --
# PEM text (RFC 7468) is lines; _string_errors lets line breaks through for this media type.
PEM_MEDIA_TYPE = "application/x-pem-file"
MAX_UPLOAD = 1024 * 1024  # the application's request size limit
_PEM = {"type": "string", "minLength": 1, "maxLength": MAX_UPLOAD, "contentMediaType": PEM_MEDIA_TYPE}
_OID_TEXT = {"type": "string", "maxLength": 256, "pattern": r"^[0-2](\.(0|[1-9][0-9]{0,9})){1,20}$"}
_CA_NAME = {"type": "string", "minLength": 1, "maxLength": 200}
_PROVINCE = {"type": "string", "minLength": 1, "maxLength": 64}

MAPPING_PROFILE: dict[str, Any] = {
    "type": "object",
    "description": "Where a CA's certificates carry the legal-person identifier (DESIGN.md §6): sources are "
                   "tried in order; the first valid identifier wins.",
    "properties": {
        "sources": {"type": "array", "maxItems": 32, "items": {
            "type": "object",
            "properties": {
                "kind": {"type": "string", "enum": ["extension", "subject"]},
                "oid": _OID_TEXT,
                "yields": {"type": "array", "items": {"type": "string", "enum": ["uscc", "org_code", "reg_no"]},
                           "maxItems": 3},
                "pattern": {"type": ["string", "null"], "maxLength": 200,
                            "description": "Regular expression; its first group is the identifier."},
                "strip_prefixes": {"type": "array", "items": {"type": "string", "maxLength": 64}, "maxItems": 10},
            },
            "required": ["kind", "oid"],
            "additionalProperties": False,
        }},
        "name_oids": {"type": "array", "items": _OID_TEXT, "maxItems": 10},
        "require_digital_signature": {"type": "boolean"},
        "required_ekus": {"type": "array", "items": _OID_TEXT, "maxItems": 10},
        "revocation_unknown_allowed": {"type": "boolean"},
        "sm2_signer_id": {"type": "string", "minLength": 1, "maxLength": 128,
                          "description": "SM2 signer ID (GB/T 32918.2 §5.5 user ID) of the CA's own signatures: "
                                         "certificates, CRLs, OCSP responses. Default 1234567812345678 (GM/T 0009)."},
        "sm2_holder_signer_id": {"type": "string", "minLength": 1, "maxLength": 128,
                                 "description": "SM2 signer ID the holders' UKey middleware signs the login "
                                                "challenge with. Default 1234567812345678 (GM/T 0009)."},
    },
    "required": ["sources"],
    "additionalProperties": False,
}

_CERTIFICATE_COMPONENTS: dict[str, dict[str, Any]] = {
    "MappingProfile": MAPPING_PROFILE,
    "CaCertificate": {
        "type": "object",
        "properties": {
            "role": {"type": "string", "enum": ["root", "intermediate"]},
            "subject": {"type": "string"},
            "issuer": {"type": "string"},
            "serial": {"type": "string", "description": "Hexadecimal."},
            "not_before": _TIME,
            "not_after": _TIME,
            "sha256": {"type": "string", "description": "SHA-256 over the DER, hexadecimal."},
            "expired": {"type": "boolean"},
            "key_algorithm": {"type": "string", "description": "The certificate's key: SM2, RSA-2048, EC P-256, ..."},
            "signature_algorithm": {"type": "string",
                                    "description": "How its issuer signed it: SM2-with-SM3, sha256WithRSAEncryption, ..."},
        },
        "required": ["role", "subject", "issuer", "serial", "not_before", "not_after", "sha256", "expired",
                     "key_algorithm", "signature_algorithm"],
        "additionalProperties": False,
    },
    "Ca": {
        "type": "object",
        "properties": {
            "id": {"type": "integer"},
            "name": {"type": "string"},
            "province": {"type": "string"},
            "enabled": {"type": "boolean"},
            "anchors_sha256": {"type": "string"},
            "certificates": {"type": "array", "items": {"$ref": "#/components/schemas/CaCertificate"}},
            "revocation": {
                "type": "object",
                "properties": {
                    "crl_urls": {"type": "array", "items": {"type": "string"}},
                    "ocsp_url": {"type": ["string", "null"]},
                    "crl_status": {"type": "string", "enum": ["none", "current", "stale"],
                                   "description": "stale: the loaded CRL's nextUpdate has passed."},
                    "crl_number": {"type": ["string", "null"]},
                    "crl_this_update": _NULLABLE_TIME,
                    "crl_next_update": _NULLABLE_TIME,
                    "crl_loaded_at": _NULLABLE_TIME,
                },
                "required": ["crl_urls", "ocsp_url", "crl_status", "crl_number", "crl_this_update",
                             "crl_next_update", "crl_loaded_at"],
                "additionalProperties": False,
            },
            "profile": {"$ref": "#/components/schemas/MappingProfile"},
            "created_at": _TIME,
            "updated_at": _TIME,
        },
        "required": ["id", "name", "province", "enabled", "anchors_sha256", "certificates", "revocation", "profile",
                     "created_at", "updated_at"],
        "additionalProperties": False,
    },
    "CaList": {
        "type": "object",
        "properties": {"items": {"type": "array", "items": {"$ref": "#/components/schemas/Ca"}}},
        "required": ["items"],
        "additionalProperties": False,
    },
    "CaCreate": {
        "type": "object",
        "properties": {
            "name": _CA_NAME,
            "province": _PROVINCE,
            "pem_bundle": {**_PEM, "description": "PEM root certificate(s) and intermediate CA certificates."},
            "profile": {"$ref": "#/components/schemas/MappingProfile",
                        "description": "Omitted: the default GM/T 0015 placements."},
            "crl_urls": {"type": "array", "items": _URI, "maxItems": 8},
            "ocsp_url": _NULLABLE_URI,
        },
        "required": ["name", "province", "pem_bundle"],
        "additionalProperties": False,
    },
    "CaUpdate": {
        "type": "object",
        "description": "Only the fields to change. With sample_pem, the new profile must find an identifier in "
                       "that certificate or nothing changes.",
        "properties": {
            "name": _CA_NAME,
            "province": _PROVINCE,
            "profile": {"$ref": "#/components/schemas/MappingProfile"},
            "sample_pem": {**_PEM, "maxLength": 65536},
        },
        "minProperties": 1,
        "additionalProperties": False,
    },
    "CrlUpload": {
        "type": "object",
        "description": "One of: the CRL as PEM text, or its DER as base64.",
        "properties": {
            "pem": _PEM,
            "der_base64": {"type": "string", "minLength": 1, "maxLength": MAX_UPLOAD, "contentEncoding": "base64",
                           "pattern": "^[A-Za-z0-9+/]*={0,2}$"},
        },
        "minProperties": 1,
        "maxProperties": 1,
        "additionalProperties": False,
    },
    "CrlState": {
        "type": "object",
        "properties": {
            "ca_id": {"type": "integer"},
            "issuer": {"type": "string"},
            "crl_number": {"type": ["string", "null"]},
            "this_update": _TIME,
            "next_update": _NULLABLE_TIME,
            "entries": {"type": "integer"},
        },
        "required": ["ca_id", "issuer", "crl_number", "this_update", "next_update", "entries"],
        "additionalProperties": False,
    },
    "MappingPreviewRequest": {
        "type": "object",
        "description": "A sample certificate and the profile to try: profile, else CA ca_id's saved profile, "
                       "else the default profile. Nothing is saved.",
        "properties": {
            "certificate_pem": {**_PEM, "maxLength": 65536},
            "profile": {"$ref": "#/components/schemas/MappingProfile"},
            "ca_id": {"type": "integer", "minimum": 1, "maximum": 999999999999999999},
        },
        "required": ["certificate_pem"],
        "additionalProperties": False,
    },
    "MappingPreview": {
        "type": "object",
        "properties": {
            "identifier": {"anyOf": [{"type": "null"}, {
                "type": "object",
                "properties": {"kind": {"type": "string", "enum": ["uscc", "org_code", "reg_no"]},
                               "value": {"type": "string"}},
                "required": ["kind", "value"],
                "additionalProperties": False,
            }]},
            "uscc": {"type": ["string", "null"], "description": "The identifier when it is a USCC."},
            "name": {"type": ["string", "null"]},
            "reason": {"type": ["string", "null"], "enum": ["no_identifier", "malformed_identifier", None]},
            "trail": {"type": "array", "items": {"type": "string"}},
            "profile_source": {"type": "string", "enum": ["given", "ca", "default"]},
            "ca_id": {"type": ["integer", "null"]},
            "issuer_match": {"type": ["boolean", "null"],
                             "description": "With a CA's profile: the sample names one of its certificates as "
                                            "issuer (a name match, not a validation)."},
            "key_algorithm": {"type": "string", "description": "The sample's key: SM2, RSA-2048, EC P-256, ..."},
            "signature_algorithm": {"type": "string", "description": "How the sample was signed: SM2-with-SM3, ..."},
        },
        "required": ["identifier", "uscc", "name", "reason", "trail", "profile_source", "ca_id", "issuer_match",
                     "key_algorithm", "signature_algorithm"],
        "additionalProperties": False,
    },
    "LegalPerson": {
        "type": "object",
        "properties": {
            "id": {"type": "integer"},
            "uscc": {"type": "string"},
            "name": {"type": "string"},
            "org_code": {"type": "string"},
            "reg_no": {"type": ["string", "null"]},
            "status": {"type": "string"},
            "account_id": {"type": "integer"},
            "created_at": _TIME,
            "updated_at": _TIME,
        },
        "required": ["id", "uscc", "name", "org_code", "reg_no", "status", "account_id", "created_at", "updated_at"],
        "additionalProperties": False,
    },
    "LegalPersonPage": {
        "type": "object",
        "properties": {
            "items": {"type": "array", "items": {"$ref": "#/components/schemas/LegalPerson"}},
            "next_cursor": {"type": ["string", "null"], "description": "Pass as ?cursor= for the next page."},
        },
        "required": ["items", "next_cursor"],
        "additionalProperties": False,
    },
    "Credential": {
        "type": "object",
        "description": "A certificate bound to a legal person. flagged: the certificate or its key was seen "
                       "mapping to another legal person (status_detail says which).",
        "properties": {
            "id": {"type": "integer"},
            "ca_id": {"type": "integer"},
            "ca_name": {"type": "string"},
            "issuer": {"type": "string"},
            "serial": {"type": "string", "description": "Hexadecimal."},
            "spki_sha256": {"type": "string", "description": "base64url SHA-256 of the SubjectPublicKeyInfo."},
            "algorithm": {"type": ["string", "null"],
                          "description": "Key / signature algorithm, e.g. \"SM2 / SM2-with-SM3\"; null for "
                                         "certificates bound before this was recorded and not used since."},
            "not_before": _TIME,
            "not_after": _TIME,
            "expired": {"type": "boolean"},
            "status": {"type": "string", "enum": ["active", "revoked", "flagged"]},
            "status_detail": {"type": ["string", "null"]},
            "created_at": _TIME,
            "last_used_at": _NULLABLE_TIME,
        },
        "required": ["id", "ca_id", "ca_name", "issuer", "serial", "spki_sha256", "algorithm", "not_before",
                     "not_after", "expired", "status", "status_detail", "created_at", "last_used_at"],
        "additionalProperties": False,
    },
    "Mandate": {
        "type": "object",
        "properties": {
            "id": {"type": "integer"},
            "agent_account_id": {"type": "integer"},
            "agent_username": {"type": ["string", "null"]},
            "scope": {"type": "array", "items": {"type": "string"}},
            "state": {"type": "string", "enum": ["active", "pending", "expired", "revoked"]},
            "valid_from": _TIME,
            "valid_until": _TIME,
            "granted_by": {"type": "string"},
            "granted_at": _TIME,
            "revoked_at": _NULLABLE_TIME,
            "revoked_by": {"type": ["string", "null"]},
        },
        "required": ["id", "agent_account_id", "agent_username", "scope", "state", "valid_from", "valid_until",
                     "granted_by", "granted_at", "revoked_at", "revoked_by"],
        "additionalProperties": False,
    },
    "LegalPersonDetail": {
        "type": "object",
        "properties": {
            "legal_person": {"$ref": "#/components/schemas/LegalPerson"},
            "credentials": {"type": "array", "items": {"$ref": "#/components/schemas/Credential"}},
            "mandates": {"type": "array", "items": {"$ref": "#/components/schemas/Mandate"}},
        },
        "required": ["legal_person", "credentials", "mandates"],
        "additionalProperties": False,
    },
}
COMPONENTS.update(_CERTIFICATE_COMPONENTS)


# -- accounts and sessions (issue 6) ---------------------------------------------------

_NULLABLE_TEXT = {"type": ["string", "null"]}
_REASON = {"type": "string", "minLength": 10, "maxLength": 500,
           "description": "Why (PIPL Art. 6 purpose); audited as a keyed hash and length, never as text."}
_SUMMARY_FIELDS: dict[str, Any] = {
    "account_id": {"type": "integer"},
    "kind": {"type": "string", "enum": ["person", "organization"]},
    "username": _NULLABLE_TEXT,
    "status": {"type": "string", "enum": ["active", "locked", "disabled"]},
    "id_number_masked": {**_NULLABLE_TEXT, "description": "Region and last four only (110105********002X)."},
    "created_at": _TIME,
}
_SUMMARY_REQUIRED = ["account_id", "kind", "username", "status", "id_number_masked", "created_at"]
_ACCOUNT_SUMMARY = {"type": "object", "properties": _SUMMARY_FIELDS, "required": _SUMMARY_REQUIRED,
                    "additionalProperties": False}
_ACCOUNT_COMPONENTS: dict[str, dict[str, Any]] = {
    "AccountSummary": _ACCOUNT_SUMMARY,
    "AccountSearch": {
        "type": "object",
        "description": "In the body, so phone and ID numbers stay out of URLs.",
        "properties": {
            "q": {"type": "string", "maxLength": 200,
                  "description": "A mainland mobile number, a full resident ID number, #account_id, or part of a "
                                 "username"},
            "limit": {"type": "integer", "minimum": 1, "maximum": 200},
            "cursor": {"type": "string", "pattern": "^[0-9]{1,18}$"},
        },
        "additionalProperties": False,
    },
    "AccountPage": {
        "type": "object",
        "properties": {
            "items": {"type": "array", "items": {"$ref": "#/components/schemas/AccountSummary"}},
            "next_cursor": {"type": ["string", "null"], "description": "Pass as ?cursor= for the next page."},
            "matched_by": {"type": "string", "enum": ["all", "account_id", "phone", "id_number", "username"],
                           "description": "How the search term was read."},
        },
        "required": ["items", "next_cursor", "matched_by"],
        "additionalProperties": False,
    },
    "AccountDetail": {
        "type": "object",
        "description": "Masked personal data only; the full ID number needs revealIdNumber.",
        "properties": {
            **_SUMMARY_FIELDS,
            "level": {**_NULLABLE_TEXT, "description": "Assurance level (cn-l0 .. cn-l4); null for organisations."},
            "updated_at": _TIME,
            "last_login_at": {**_NULLABLE_TIME, "description": "From the audit trail; null if unknown."},
            "masked_name": _NULLABLE_TEXT,
            "masked_phone": _NULLABLE_TEXT,
            "phone_verified": {"type": "boolean"},
            "identity_verified_at": _NULLABLE_TIME,
            "totp_enrolled": {"type": "boolean"},
            "recovery_codes_left": {"type": "integer"},
            "active_sessions": {"type": "integer"},
            "administrator": {"type": "boolean", "description": "Holds an administrator role."},
            "consents": {"type": "array", "items": {
                "type": "object",
                "properties": {
                    "client_id": {"type": "string"},
                    "client_name": _NULLABLE_TEXT,
                    "claims": {"type": "array", "items": {"type": "string"}},
                    "granted_at": _TIME,
                    "expires_at": _TIME,
                    "state": {"type": "string", "enum": ["active", "withdrawn", "expired"]},
                },
                "required": ["client_id", "client_name", "claims", "granted_at", "expires_at", "state"],
                "additionalProperties": False,
            }},
        },
        "required": [*_SUMMARY_REQUIRED, "level", "updated_at", "last_login_at",
                     "masked_name", "masked_phone", "phone_verified", "identity_verified_at", "totp_enrolled",
                     "recovery_codes_left", "active_sessions", "administrator", "consents"],
        "additionalProperties": False,
    },
    "AccountStatusChange": {
        "type": "object",
        "properties": {
            "account_id": {"type": "integer"},
            "status": {"type": "string", "enum": ["active", "locked"]},
            "changed": {"type": "boolean", "description": "False: it was in this state already."},
            "sessions_ended": {"type": "integer"},
            "deliveries_scheduled": {"type": "integer", "description": "Back-channel logout deliveries."},
        },
        "required": ["account_id", "status", "changed", "sessions_ended", "deliveries_scheduled"],
        "additionalProperties": False,
    },
    "SecondFactorReset": {
        "type": "object",
        "properties": {"account_id": {"type": "integer"},
                       "changed": {"type": "boolean", "description": "False: nothing was enrolled."}},
        "required": ["account_id", "changed"],
        "additionalProperties": False,
    },
    "RevealRequest": {
        "type": "object",
        "properties": {"reason": _REASON},
        "required": ["reason"],
        "additionalProperties": False,
    },
    "IdNumberReveal": {
        "type": "object",
        "properties": {"account_id": {"type": "integer"}, "id_number": {"type": "string"}},
        "required": ["account_id", "id_number"],
        "additionalProperties": False,
    },
    "ReidentifyRequest": {
        "type": "object",
        "properties": {
            "client_id": {"type": "string", "minLength": 1, "maxLength": 64},
            "sub": {"type": "string", "pattern": "^[A-Za-z0-9_-]{43}$"},
            "reason": _REASON,
            "requested_by": {"type": "string", "minLength": 3, "maxLength": 120,
                             "description": "The requesting authority and case reference."},
        },
        "required": ["client_id", "sub", "reason", "requested_by"],
        "additionalProperties": False,
    },
    "ResolvedSubject": {
        "type": "object",
        "properties": {
            "account_id": {"type": "integer"},
            "kind": {"type": "string", "enum": ["person", "organization"]},
            "username": _NULLABLE_TEXT,
            "status": {"type": "string"},
            "realname_level": _NULLABLE_TEXT,
            "disclosed_to": {"type": "array", "items": {"type": "string"}},
            "first_disclosed_at": _TIME,
            "last_disclosed_at": _TIME,
        },
        "required": ["account_id", "kind", "username", "status", "realname_level", "disclosed_to",
                     "first_disclosed_at", "last_disclosed_at"],
        "additionalProperties": False,
    },
    "Reidentification": {
        "type": "object",
        "properties": {"matched": {"type": "boolean"},
                       "account": {"anyOf": [{"$ref": "#/components/schemas/ResolvedSubject"}, {"type": "null"}]}},
        "required": ["matched", "account"],
        "additionalProperties": False,
    },
    "SsoSession": {
        "type": "object",
        "properties": {
            "sid": {"type": "string", "description": "The session id in ID and logout tokens (not the cookie)."},
            "account_id": {"type": "integer"},
            "created_at": _TIME,
            "auth_time": _TIME,
            "last_seen": _TIME,
            "amr": {"type": "array", "items": {"type": "string"}},
            "acr": {"type": "string"},
            "clients": {"type": "array", "items": {"type": "string"},
                        "description": "Clients that received tokens in this session."},
        },
        "required": ["sid", "account_id", "created_at", "auth_time", "last_seen", "amr", "acr", "clients"],
        "additionalProperties": False,
    },
    "SsoSessionList": {
        "type": "object",
        "properties": {"account_id": {"type": "integer"},
                       "items": {"type": "array", "items": {"$ref": "#/components/schemas/SsoSession"}}},
        "required": ["account_id", "items"],
        "additionalProperties": False,
    },
    "SessionsEnded": {
        "type": "object",
        "properties": {
            "account_id": {"type": "integer"},
            "ended": {"type": "array", "items": {"type": "string"}, "description": "sids ended."},
            "deliveries_scheduled": {"type": "integer", "description": "Back-channel logout deliveries."},
        },
        "required": ["account_id", "ended", "deliveries_scheduled"],
        "additionalProperties": False,
    },
}
COMPONENTS.update(_ACCOUNT_COMPONENTS)


_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,), "integer": (int,), "boolean": (bool,), "array": (list,), "object": (dict,),
    "null": (type(None),), "number": (int, float),
}
KNOWN_KEYWORDS = {"type", "enum", "minLength", "maxLength", "pattern", "minimum", "maximum", "items", "maxItems",
                  "properties", "required", "additionalProperties", "minProperties", "maxProperties", "$ref",
                  "anyOf", "description", "format", "contentMediaType", "contentEncoding"}


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
    # have no business in names and URIs). PEM text is lines (RFC 7468 §2): line breaks
    # and tabs are allowed there.
    lines = "\r\n\t" if schema.get("contentMediaType") == PEM_MEDIA_TYPE else ""
    if any((ord(c) < 32 and c not in lines) or ord(c) == 127 for c in value):
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
