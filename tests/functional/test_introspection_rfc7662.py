"""Token introspection (RFC 7662) through HTTP: client authentication, the active
response, and {"active": false} for everything a caller may not learn about."""

from __future__ import annotations

import pytest

from tests.helpers import Browser, decode_unverified

from ._support import ISSUER, register_client


@pytest.fixture
def tokens(http, oauth_client, user):
    return Browser(http).tokens(oauth_client, user, scope="openid profile offline_access")


def _introspect(http, client, token, **extra):
    resp = http.post("/introspect", data={"token": token, **extra}, auth=client.auth)
    assert resp.status_code == 200, resp.get_data(as_text=True)
    # RFC 7662 §2.2 / RFC 6749 §5.1: token metadata is never cached.
    assert resp.headers["Cache-Control"] == "no-store"
    return resp.get_json()


def test_requires_client_authentication(http, tokens):
    # RFC 7662 §2.1: the endpoint requires authorization; RFC 6749 §5.2 invalid_client → 401.
    resp = http.post("/introspect", data={"token": tokens["access_token"]})
    assert resp.status_code == 401
    assert resp.get_json()["error"] == "invalid_client"
    assert "active" not in resp.get_json()


def test_wrong_client_secret_is_refused(http, tokens, oauth_client):
    resp = http.post("/introspect", data={"token": tokens["access_token"]}, auth=(oauth_client.client_id, "wrong"))
    assert resp.status_code == 401
    assert resp.get_json()["error"] == "invalid_client"
    # RFC 6749 §5.2: Basic authentication failed → WWW-Authenticate.
    assert "WWW-Authenticate" in resp.headers


def test_public_client_cannot_introspect(http, public_client, user):
    tokens = Browser(http).tokens(public_client, user)
    resp = http.post("/introspect", data={"token": tokens["access_token"], "client_id": public_client.client_id})
    # Policy: introspection is for confidential clients (RFC 7662 §2.1 requires authentication).
    assert resp.status_code == 401


def test_active_access_token(http, tokens, oauth_client):
    body = _introspect(http, oauth_client, tokens["access_token"])
    at = decode_unverified(tokens["access_token"])
    # RFC 7662 §2.2 members.
    assert body["active"] is True
    assert body["scope"] == "openid profile offline_access"
    assert body["client_id"] == oauth_client.client_id
    assert body["sub"] == decode_unverified(tokens["id_token"])["sub"]
    assert body["iss"] == ISSUER
    assert body["token_type"] == "Bearer"
    assert body["exp"] == at["exp"] and body["iat"] == at["iat"]
    assert body["exp"] > body["iat"]


def test_active_with_access_token_hint(http, tokens, oauth_client):
    assert _introspect(http, oauth_client, tokens["access_token"], token_type_hint="access_token")["active"] is True


def test_active_refresh_token(http, tokens, oauth_client):
    body = _introspect(http, oauth_client, tokens["refresh_token"], token_type_hint="refresh_token")
    assert body["active"] is True
    assert body["client_id"] == oauth_client.client_id
    assert body["sub"] == decode_unverified(tokens["id_token"])["sub"]
    assert body["iss"] == ISSUER
    assert body["exp"] > body["iat"]
    # Without a hint the refresh token is found too (RFC 7662 §2.1: the hint is optional).
    assert _introspect(http, oauth_client, tokens["refresh_token"])["active"] is True


@pytest.mark.parametrize("garbage", ["garbage", "a.b.c", "x" * 5000])
def test_garbage_is_inactive(http, oauth_client, garbage):
    # RFC 7662 §2.2: unknown tokens are {"active": false}, nothing else.
    assert _introspect(http, oauth_client, garbage) == {"active": False}


def test_expired_access_token_is_inactive(http, tokens, oauth_client, clock):
    clock.advance(301)
    assert _introspect(http, oauth_client, tokens["access_token"]) == {"active": False}


def test_expired_refresh_token_is_inactive(http, tokens, oauth_client, clock):
    clock.advance(86400 * 7 + 1)  # refresh_token_idle_ttl
    assert _introspect(http, oauth_client, tokens["refresh_token"]) == {"active": False}


def test_revoked_access_token_is_inactive(http, tokens, oauth_client):
    assert http.post("/revoke", data={"token": tokens["access_token"]}, auth=oauth_client.auth).status_code == 200
    assert _introspect(http, oauth_client, tokens["access_token"]) == {"active": False}


def test_rotated_refresh_token_is_inactive(http, tokens, oauth_client):
    resp = http.post("/token", data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
                     auth=oauth_client.auth)
    assert resp.status_code == 200
    assert _introspect(http, oauth_client, tokens["refresh_token"]) == {"active": False}
    assert _introspect(http, oauth_client, resp.get_json()["refresh_token"])["active"] is True


def test_other_clients_token_is_inactive(http, tokens, services):
    other = register_client(services)
    # RFC 7662 §2.2 / §4: a client learns nothing about tokens issued to another client.
    assert _introspect(http, other, tokens["access_token"]) == {"active": False}
    assert _introspect(http, other, tokens["refresh_token"]) == {"active": False}
