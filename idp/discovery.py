"""Provider metadata (OIDC Discovery 1.0 §3, RFC 8414 §2). Pure: derived from the
issuer and the features this provider implements, so the document cannot advertise
something the routes do not serve."""

from __future__ import annotations

from typing import Any

from .claims import SCOPE_CLAIMS
from .protocol import AUTH_METHODS, SUPPORTED_SCOPES, Features

ENDPOINTS = {
    "authorization": "/authorize",
    "token": "/token",
    "userinfo": "/userinfo",
    "jwks": "/jwks.json",
    "introspection": "/introspect",
    "revocation": "/revoke",
    "end_session": "/logout",
}


def endpoint_urls(issuer: str) -> dict[str, str]:
    return {name: issuer + path for name, path in ENDPOINTS.items()}


def provider_metadata(issuer: str, acr_values: tuple[str, ...], features: Features | None = None) -> dict[str, Any]:
    features = features or Features()
    urls = endpoint_urls(issuer)
    auth_methods = list(AUTH_METHODS)
    claims = sorted({"sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "acr", "amr", "sid"}
                    | {c for cs in SCOPE_CLAIMS.values() for c in cs})
    metadata = {
        "issuer": issuer,
        "authorization_endpoint": urls["authorization"],
        "token_endpoint": urls["token"],
        "userinfo_endpoint": urls["userinfo"],
        "jwks_uri": urls["jwks"],
        "introspection_endpoint": urls["introspection"],
        "revocation_endpoint": urls["revocation"],
        "end_session_endpoint": urls["end_session"],
        "scopes_supported": list(SUPPORTED_SCOPES),
        # Profile: code flow only (RFC 9700 §2.1.2: no implicit, no hybrid).
        "response_types_supported": ["code"],
        "response_modes_supported": ["query", "form_post"],
        "grant_types_supported": list(features.grant_types()),
        "subject_types_supported": ["pairwise", "public"],
        "id_token_signing_alg_values_supported": ["ES256", "RS256"],
        "userinfo_signing_alg_values_supported": [],
        "token_endpoint_auth_methods_supported": auth_methods,
        "token_endpoint_auth_signing_alg_values_supported": ["ES256", "RS256", "PS256"],
        "introspection_endpoint_auth_methods_supported": auth_methods[:3],
        "revocation_endpoint_auth_methods_supported": auth_methods,
        "code_challenge_methods_supported": ["S256"],
        "claims_supported": claims,
        "claims_parameter_supported": True,
        "request_parameter_supported": False,
        "request_uri_parameter_supported": False,
        "acr_values_supported": list(acr_values),
        "prompt_values_supported": ["none", "login", "consent", "select_account"],
        "ui_locales_supported": ["zh-CN", "en"],
        "claims_locales_supported": ["zh-CN"],
        # RFC 9207 §3: iss is in every authorization response.
        "authorization_response_iss_parameter_supported": True,
        # OIDC Back-Channel Logout 1.0 §2.1, Front-Channel Logout 1.0 §3.
        "backchannel_logout_supported": True,
        "backchannel_logout_session_supported": True,
        "frontchannel_logout_supported": True,
        "frontchannel_logout_session_supported": True,
        "require_pushed_authorization_requests": False,
    }
    # A switched-off feature is not advertised at all (RFC 8414 §2: absent means unsupported).
    off: list[str] = []
    if not features.introspection:
        off += ["introspection_endpoint", "introspection_endpoint_auth_methods_supported"]
    if not features.revocation:
        off += ["revocation_endpoint", "revocation_endpoint_auth_methods_supported"]
    if not features.backchannel_logout:
        off += ["backchannel_logout_supported", "backchannel_logout_session_supported"]
    if not features.frontchannel_logout:
        off += ["frontchannel_logout_supported", "frontchannel_logout_session_supported"]
    for key in off:
        metadata.pop(key)
    return metadata
