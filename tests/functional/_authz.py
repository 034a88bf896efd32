"""Helpers for the authorization and token endpoint tests: request builders, the shapes
of a redirected error and of an error page, token calls and client assertions."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from typing import Any

from flask.testing import FlaskClient
from joserfc import jwt
from joserfc.jwk import ECKey

from common.db import db
from tests.helpers import (
    Browser,
    RegisteredTestClient,
    TestUser,
    assert_security_headers,
    decode_unverified,
    pkce_pair,
    query_of,
)

ISSUER = "http://127.0.0.1:5000"
TOKEN_ENDPOINT = ISSUER + "/token"
SSO_COOKIE = "yiwang_sso"


def authorize_params(client: RegisteredTestClient, **overrides: str | None) -> dict[str, str]:
    """A valid code-flow request (PKCE S256); ``None`` in ``overrides`` drops a parameter."""
    _, challenge = pkce_pair()
    params: dict[str, str | None] = {
        "response_type": "code",
        "client_id": client.client_id,
        "redirect_uri": client.redirect_uri,
        "scope": "openid profile",
        "state": "st-42",
        "nonce": "n-42",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    params.update(overrides)
    return {k: v for k, v in params.items() if v is not None}


def assert_no_store(resp: Any) -> None:
    # RFC 6749 §5.1 / §5.2: token responses and errors are not cached.
    assert resp.headers.get("Cache-Control") == "no-store", resp.headers.get("Cache-Control")


def assert_error_page(resp: Any, error: str | None = None) -> None:
    """An HTML page, never a redirect: nothing goes to an unverified redirect URI."""
    # RFC 6749 §4.1.2.1: the user agent must not be redirected to an invalid redirect URI.
    assert resp.status_code in (200, 400), resp.status_code
    assert "Location" not in resp.headers
    assert resp.mimetype == "text/html"
    assert_security_headers(resp)
    assert resp.headers.get("Cache-Control") == "no-store"
    if error is not None:
        assert error in resp.get_data(as_text=True)


def assert_redirect_error(resp: Any, client: RegisteredTestClient, error: str, state: str | None = "st-42") -> dict[str, str]:
    """A redirect to the client's registered URI carrying ``error``, ``iss`` and ``state``."""
    assert resp.status_code in (302, 303), (resp.status_code, resp.get_data(as_text=True)[:300])
    location = resp.headers["Location"]
    assert location.split("?")[0] == client.redirect_uri.split("?")[0], location
    query = query_of(location)
    # RFC 6749 §4.1.2.1: error, optional error_description, state echoed.
    assert query.get("error") == error, query
    assert "code" not in query
    # RFC 9207 §2: iss in every authorization response, errors included.
    assert query["iss"] == ISSUER
    if state is None:
        assert "state" not in query
    else:
        assert query.get("state") == state
    assert resp.headers.get("Cache-Control") == "no-store"
    return query


def login(http: FlaskClient, client: RegisteredTestClient, user: TestUser, **kw: Any) -> dict[str, Any]:
    """Log ``user`` in (and consent) through the pages; returns the token response."""
    return Browser(http).tokens(client, user, **kw)


def token(http: FlaskClient, client: RegisteredTestClient | None, data: dict[str, str], *, basic: bool = True) -> Any:
    """POST /token, authenticating ``client`` with Basic (or post / public client_id)."""
    if client is None:
        return http.post("/token", data=data)
    if client.secret is None:
        return http.post("/token", data={**data, "client_id": client.client_id})
    if basic:
        return http.post("/token", data=data, auth=client.auth)
    return http.post("/token", data={**data, "client_id": client.client_id, "client_secret": client.secret})


def redeem(http: FlaskClient, client: RegisteredTestClient, code: str, verifier: str, **extra: str) -> Any:
    data = {"grant_type": "authorization_code", "code": code, "redirect_uri": client.redirect_uri,
            "code_verifier": verifier, **extra}
    return token(http, client, data)


def refresh(http: FlaskClient, client: RegisteredTestClient, refresh_token: str, **extra: str) -> Any:
    return token(http, client, {"grant_type": "refresh_token", "refresh_token": refresh_token, **extra})


def userinfo_status(http: FlaskClient, access_token: str) -> tuple[int, str]:
    resp = http.get("/userinfo", headers={"Authorization": f"Bearer {access_token}"})
    return resp.status_code, resp.headers.get("WWW-Authenticate", "")


def assert_token_rejected_by_userinfo(http: FlaskClient, access_token: str) -> None:
    status, challenge = userinfo_status(http, access_token)
    # RFC 6750 §3.1: a revoked token is invalid_token, 401.
    assert status == 401
    assert 'error="invalid_token"' in challenge


def id_claims(tokens: dict[str, Any]) -> dict[str, Any]:
    return decode_unverified(tokens["id_token"])


def register_client(services: Any, redirect_uri: str = "https://rp.example.test/cb", **kw: Any) -> RegisteredTestClient:
    """Register a client through the real service and commit, as tests/conftest.py does."""
    kw.setdefault("name", "Another Portal")
    kw.setdefault("scopes", ["openid", "profile", "offline_access"])
    row, secret = services.clients.create(redirect_uris=[redirect_uri], **kw)
    db.session.commit()
    return RegisteredTestClient(row.client_id, secret, redirect_uri)


def front_channel_code(http: FlaskClient, client: RegisteredTestClient, user: TestUser | None,
                       **kw: Any) -> tuple[str, str]:
    """The code and PKCE verifier of a completed front channel."""
    query, verifier = Browser(http).code_flow(client, user, **kw)
    assert query["iss"] == ISSUER
    return query["code"], verifier


# -- private_key_jwt (RFC 7523 §3) ----------------------------------------------------


def new_ec_key(kid: str = "rp-key-1") -> ECKey:
    return ECKey.generate_key("P-256", parameters={"kid": kid, "use": "sig", "alg": "ES256"}, private=True)


def public_jwks(key: ECKey) -> dict[str, Any]:
    return {"keys": [key.as_dict(private=False)]}


def assertion_claims(client_id: str, now: int, **overrides: Any) -> dict[str, Any]:
    claims: dict[str, Any] = {
        "iss": client_id,
        "sub": client_id,
        "aud": TOKEN_ENDPOINT,
        "iat": now,
        "exp": now + 60,
        "jti": secrets.token_urlsafe(16),
    }
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


def sign_assertion(key: ECKey, claims: dict[str, Any], **header: Any) -> str:
    return jwt.encode({"alg": "ES256", "kid": key.kid, **header}, claims, key, algorithms=["ES256"])


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unsigned_assertion(claims: dict[str, Any]) -> str:
    """An ``alg: none`` JWT, built by hand since JOSE libraries refuse to make one."""
    return f"{_b64(json.dumps({'alg': 'none', 'typ': 'JWT'}).encode())}.{_b64(json.dumps(claims).encode())}."


def hmac_assertion(secret: bytes, claims: dict[str, Any], kid: str) -> str:
    """An HS256 JWT keyed with ``secret`` (the key-confusion attack uses the public key)."""
    signing_input = f"{_b64(json.dumps({'alg': 'HS256', 'kid': kid}).encode())}.{_b64(json.dumps(claims).encode())}"
    sig = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(sig)}"


def client_assertion_request(http: FlaskClient, client_id: str, assertion: str, **data: str) -> Any:
    body = {
        "grant_type": "client_credentials",
        "client_id": client_id,
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "client_assertion": assertion,
        **data,
    }
    return http.post("/token", data=body)
