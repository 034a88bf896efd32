"""Token revocation (RFC 7009) through HTTP: revoked tokens stop working at userinfo,
introspection and the token endpoint; other clients' and unknown tokens get 200 and
nothing changes."""

from __future__ import annotations

import pytest

from tests.helpers import Browser

from ._support import bearer, register_client


@pytest.fixture
def tokens(http, oauth_client, user):
    return Browser(http).tokens(oauth_client, user, scope="openid profile offline_access")


def _active(http, client, token) -> bool:
    return bool(http.post("/introspect", data={"token": token}, auth=client.auth).get_json()["active"])


def _revoke(http, client, token, **extra):
    resp = http.post("/revoke", data={"token": token, **extra}, auth=client.auth)
    # RFC 7009 §2.2: 200 whether or not the token was valid.
    assert resp.status_code == 200, resp.get_data(as_text=True)
    assert resp.headers["Cache-Control"] == "no-store"
    return resp


def _refresh(http, client, refresh_token):
    return http.post("/token", data={"grant_type": "refresh_token", "refresh_token": refresh_token},
                     auth=client.auth)


def test_revoking_access_token(http, tokens, oauth_client):
    assert http.get("/userinfo", headers=bearer(tokens["access_token"])).status_code == 200
    _revoke(http, oauth_client, tokens["access_token"], token_type_hint="access_token")
    # RFC 7009 §2: the token cannot be used any more.
    assert http.get("/userinfo", headers=bearer(tokens["access_token"])).status_code == 401
    assert not _active(http, oauth_client, tokens["access_token"])
    # Revoking one access token leaves the refresh token alone (§2.1 "MAY").
    assert _active(http, oauth_client, tokens["refresh_token"])


def test_revoking_refresh_token_revokes_the_grant(http, tokens, oauth_client):
    refreshed = _refresh(http, oauth_client, tokens["refresh_token"])
    assert refreshed.status_code == 200
    newer = refreshed.get_json()
    _revoke(http, oauth_client, newer["refresh_token"], token_type_hint="refresh_token")
    # RFC 7009 §2.1: revoking a refresh token invalidates the access tokens of the same grant.
    for access in (tokens["access_token"], newer["access_token"]):
        assert http.get("/userinfo", headers=bearer(access)).status_code == 401
        assert not _active(http, oauth_client, access)
    assert not _active(http, oauth_client, newer["refresh_token"])
    resp = _refresh(http, oauth_client, newer["refresh_token"])
    assert resp.status_code == 400 and resp.get_json()["error"] == "invalid_grant"


def test_revoking_refresh_token_without_hint(http, tokens, oauth_client):
    _revoke(http, oauth_client, tokens["refresh_token"])
    assert http.get("/userinfo", headers=bearer(tokens["access_token"])).status_code == 401
    assert _refresh(http, oauth_client, tokens["refresh_token"]).status_code == 400


def test_other_grants_are_untouched(http, oauth_client, user, tokens):
    second = Browser(http).tokens(oauth_client, user, scope="openid profile offline_access")
    _revoke(http, oauth_client, tokens["refresh_token"])
    assert http.get("/userinfo", headers=bearer(second["access_token"])).status_code == 200
    assert _active(http, oauth_client, second["refresh_token"])


@pytest.mark.parametrize("token", ["unknown-token", "a.b.c"])
def test_unknown_token_is_200(http, oauth_client, token):
    # RFC 7009 §2.2: invalid tokens do not cause an error response.
    resp = _revoke(http, oauth_client, token)
    assert "error" not in (resp.get_json() or {})


def test_other_clients_token_is_200_and_not_revoked(http, tokens, oauth_client, services):
    other = register_client(services)
    _revoke(http, other, tokens["access_token"])
    _revoke(http, other, tokens["refresh_token"])
    # RFC 7009 §2.1: the server verifies the token was issued to the requesting client;
    # another client's request revokes nothing.
    assert http.get("/userinfo", headers=bearer(tokens["access_token"])).status_code == 200
    assert _active(http, oauth_client, tokens["access_token"])
    assert _active(http, oauth_client, tokens["refresh_token"])
    assert _refresh(http, oauth_client, tokens["refresh_token"]).status_code == 200


def test_revocation_requires_client_authentication(http, tokens, oauth_client):
    resp = http.post("/revoke", data={"token": tokens["access_token"]})
    # RFC 7009 §2.1: confidential clients authenticate; RFC 6749 §5.2 invalid_client.
    assert resp.status_code == 401
    assert resp.get_json()["error"] == "invalid_client"
    assert http.get("/userinfo", headers=bearer(tokens["access_token"])).status_code == 200
    resp = http.post("/revoke", data={"token": tokens["access_token"]}, auth=(oauth_client.client_id, "wrong"))
    assert resp.status_code == 401
    assert http.get("/userinfo", headers=bearer(tokens["access_token"])).status_code == 200


def test_public_client_revokes_its_own_token(http, public_client, user):
    tokens = Browser(http).tokens(public_client, user)
    assert "refresh_token" in tokens
    # RFC 7009 §2.1: a public client identifies itself with client_id.
    resp = http.post("/revoke", data={"token": tokens["refresh_token"], "client_id": public_client.client_id})
    assert resp.status_code == 200
    assert http.get("/userinfo", headers=bearer(tokens["access_token"])).status_code == 401
    resp = http.post("/token", data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"],
                                     "client_id": public_client.client_id})
    assert resp.status_code == 400 and resp.get_json()["error"] == "invalid_grant"


def test_public_client_cannot_revoke_another_clients_token(http, public_client, oauth_client, user, tokens):
    resp = http.post("/revoke", data={"token": tokens["access_token"], "client_id": public_client.client_id})
    assert resp.status_code == 200
    assert http.get("/userinfo", headers=bearer(tokens["access_token"])).status_code == 200
