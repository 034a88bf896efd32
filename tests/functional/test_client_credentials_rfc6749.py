"""The client credentials grant (RFC 6749 §4.4) as profiled here: confidential clients
only, an RFC 9068 JWT access token whose subject is the client, no refresh token, no ID
token, no ``openid`` scope; introspection (RFC 7662) by the same client only."""

from __future__ import annotations

import pytest

from tests.helpers import verify_jwt

from ._authz import ISSUER, assert_no_store, register_client, token, userinfo_status


def _cc(http, client, scope=None, **kw):
    data = {"grant_type": "client_credentials"}
    if scope is not None:
        data["scope"] = scope
    return token(http, client, data, **kw)


def test_access_token_is_an_rfc9068_jwt_for_the_client(http, oauth_client, clock):
    resp = _cc(http, oauth_client, "profile")
    assert resp.status_code == 200
    # RFC 6749 §5.1: never cached.
    assert_no_store(resp)
    body = resp.get_json()
    assert body["token_type"] == "Bearer" and body["expires_in"] > 0
    header, claims = verify_jwt(http, body["access_token"])
    # RFC 9068 §2.1: typ at+jwt, signed, kid set.
    assert header["typ"] == "at+jwt" and header["kid"] and header["alg"] in ("ES256", "RS256")
    # RFC 9068 §2.2: required claims; with no resource owner, sub is the client.
    assert claims["sub"] == oauth_client.client_id
    assert claims["client_id"] == oauth_client.client_id
    assert claims["iss"] == ISSUER
    assert claims["aud"] and claims["jti"]
    assert claims["iat"] == clock.timestamp() and claims["exp"] == claims["iat"] + body["expires_in"]
    assert "aid" not in claims and "auth_time" not in claims


def test_no_refresh_token_and_no_id_token(http, oauth_client):
    body = _cc(http, oauth_client, "openid profile offline_access").get_json()
    # RFC 6749 §4.4.3: a refresh token should not be included.
    assert "refresh_token" not in body
    # OIDC Core §3.1.3.3: ID tokens describe an end-user authentication; there is none.
    assert "id_token" not in body


def test_openid_scope_is_stripped(http, oauth_client):
    body = _cc(http, oauth_client, "openid profile").get_json()
    # RFC 6749 §3.3 / §5.1: the server may narrow the scope and says so; openid has no
    # meaning without a user.
    assert body["scope"].split() == ["profile"]
    _, claims = verify_jwt(http, body["access_token"])
    assert "openid" not in claims["scope"].split()

    only_openid = _cc(http, oauth_client, "openid").get_json()
    _, claims = verify_jwt(http, only_openid["access_token"])
    assert "openid" not in claims["scope"].split()
    assert "openid" not in only_openid.get("scope", "").split()


def test_scope_never_exceeds_the_registration(http, services):
    client = register_client(services, "https://cc.example.test/cb", scopes=["openid", "profile"],
                             grant_types=["authorization_code", "client_credentials"])
    body = _cc(http, client, "profile phone admin").get_json()
    # RFC 6749 §3.3: only scopes the client is registered for.
    assert body["scope"].split() == ["profile"]


def test_token_is_not_usable_at_userinfo(http, oauth_client):
    access = _cc(http, oauth_client, "openid profile").get_json()["access_token"]
    status, challenge = userinfo_status(http, access)
    # OIDC Core §5.3: userinfo needs a token for an end-user with the openid scope.
    assert status in (401, 403)
    assert "error=" in challenge


def test_introspection_by_the_same_client_is_active(http, oauth_client):
    access = _cc(http, oauth_client, "profile").get_json()["access_token"]
    resp = http.post("/introspect", data={"token": access}, auth=oauth_client.auth)
    assert resp.status_code == 200
    body = resp.get_json()
    # RFC 7662 §2.2
    assert body["active"] is True
    assert body["client_id"] == oauth_client.client_id and body["sub"] == oauth_client.client_id
    assert body["scope"] == "profile" and body["iss"] == ISSUER
    assert resp.headers.get("Cache-Control") == "no-store"


def test_introspection_by_another_client_is_inactive(http, oauth_client, services):
    other = register_client(services, "https://other.example.test/cb",
                            grant_types=["authorization_code", "client_credentials"])
    access = _cc(http, oauth_client, "profile").get_json()["access_token"]
    resp = http.post("/introspect", data={"token": access}, auth=other.auth)
    # RFC 7662 §2.2 (policy: only the token's own client learns about it).
    assert resp.status_code == 200
    assert resp.get_json() == {"active": False}


def test_expired_token_is_inactive(http, oauth_client, clock):
    body = _cc(http, oauth_client, "profile").get_json()
    clock.advance(body["expires_in"] + 1)
    resp = http.post("/introspect", data={"token": body["access_token"]}, auth=oauth_client.auth)
    # RFC 7662 §2.2: an expired token is not active.
    assert resp.get_json() == {"active": False}


def test_revoked_token_is_inactive(http, oauth_client):
    access = _cc(http, oauth_client, "profile").get_json()["access_token"]
    assert http.post("/revoke", data={"token": access}, auth=oauth_client.auth).status_code == 200
    resp = http.post("/introspect", data={"token": access}, auth=oauth_client.auth)
    # RFC 7009 §2.2 / RFC 7662 §2.2
    assert resp.get_json() == {"active": False}


def test_client_post_authentication_works_for_a_post_client(http, services):
    client = register_client(services, "https://post.example.test/cb", token_endpoint_auth_method="client_secret_post",
                             grant_types=["authorization_code", "client_credentials"])
    # RFC 6749 §2.3.1
    assert _cc(http, client, "profile", basic=False).status_code == 200


def test_wrong_secret_is_401_invalid_client(http, oauth_client):
    resp = http.post("/token", data={"grant_type": "client_credentials"}, auth=(oauth_client.client_id, "nope"))
    # RFC 6749 §5.2: 401 with WWW-Authenticate for Basic.
    assert resp.status_code == 401
    assert resp.get_json()["error"] == "invalid_client"
    assert resp.headers.get("WWW-Authenticate", "").lower().startswith("basic")
    assert_no_store(resp)


def test_public_client_cannot_use_client_credentials(http, public_client):
    resp = _cc(http, public_client, "profile")
    # RFC 6749 §4.4: confidential clients only.
    assert resp.status_code in (400, 401)
    assert resp.get_json()["error"] in ("invalid_client", "unauthorized_client")
    assert "access_token" not in resp.get_json()
    assert_no_store(resp)


@pytest.mark.parametrize("grant_types", [["authorization_code"], ["authorization_code", "refresh_token"]])
def test_client_without_the_grant_is_unauthorized(http, services, grant_types):
    client = register_client(services, "https://nocc.example.test/cb", grant_types=grant_types)
    resp = _cc(http, client, "profile")
    # RFC 6749 §5.2 unauthorized_client.
    assert resp.status_code == 400
    assert resp.get_json()["error"] == "unauthorized_client"
    assert_no_store(resp)
