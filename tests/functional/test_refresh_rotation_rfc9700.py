"""Refresh tokens (RFC 6749 §6, RFC 9700 §4.14): bound to the client, rotated on every
use, reuse of a rotated token revokes the whole family and the grant's access tokens,
no scope widening, idle and absolute lifetimes, and refreshed ID tokens keep the
original auth_time (OIDC Core §12.2)."""

from __future__ import annotations

from tests.helpers import verify_jwt

from ._authz import (
    assert_no_store,
    assert_token_rejected_by_userinfo,
    id_claims,
    login,
    refresh,
    register_client,
    userinfo_status,
)

DAY = 86400


def _ok(resp):
    assert resp.status_code == 200, resp.get_json()
    assert_no_store(resp)
    return resp.get_json()


def _invalid_grant(resp):
    # RFC 6749 §5.2: an invalid, expired, revoked or foreign refresh token.
    assert resp.status_code == 400, resp.get_json()
    assert resp.get_json()["error"] == "invalid_grant"
    assert "access_token" not in resp.get_json()
    assert_no_store(resp)


def test_rotation_issues_a_new_refresh_token_and_retires_the_old(http, oauth_client, user):
    first = login(http, oauth_client, user)
    second = _ok(refresh(http, oauth_client, first["refresh_token"]))
    # RFC 9700 §4.14.2: refresh token rotation — a new token on every use.
    assert second["refresh_token"] and second["refresh_token"] != first["refresh_token"]
    assert second["access_token"] != first["access_token"]
    assert userinfo_status(http, second["access_token"])[0] == 200
    third = _ok(refresh(http, oauth_client, second["refresh_token"]))
    assert third["refresh_token"] not in (first["refresh_token"], second["refresh_token"])


def test_reuse_of_a_rotated_token_revokes_the_whole_family(http, oauth_client, user):
    first = login(http, oauth_client, user)
    second = _ok(refresh(http, oauth_client, first["refresh_token"]))
    third = _ok(refresh(http, oauth_client, second["refresh_token"]))

    # RFC 9700 §4.14.2: the old token is refused ...
    _invalid_grant(refresh(http, oauth_client, first["refresh_token"]))
    # ... and its reuse invalidates the active refresh token of the family ...
    _invalid_grant(refresh(http, oauth_client, third["refresh_token"]))
    # ... and the grant's access tokens (SECURITY.md: reuse kills the family).
    for tokens in (first, second, third):
        assert_token_rejected_by_userinfo(http, tokens["access_token"])


def test_reuse_does_not_touch_another_grant_of_the_same_user(http, oauth_client, user):
    first = login(http, oauth_client, user)
    other = login(http, oauth_client, None)
    _ok(refresh(http, oauth_client, first["refresh_token"]))
    _invalid_grant(refresh(http, oauth_client, first["refresh_token"]))
    # RFC 9700 §4.14.2: only the compromised family is revoked.
    assert userinfo_status(http, other["access_token"])[0] == 200
    _ok(refresh(http, oauth_client, other["refresh_token"]))


def test_public_client_refresh_is_rotated_and_reuse_detected(http, public_client, user):
    first = login(http, public_client, user)
    second = _ok(refresh(http, public_client, first["refresh_token"]))
    # RFC 9700 §4.14.2: public clients' refresh tokens are sender-constrained or rotated.
    assert second["refresh_token"] != first["refresh_token"]
    _invalid_grant(refresh(http, public_client, first["refresh_token"]))
    _invalid_grant(refresh(http, public_client, second["refresh_token"]))


def test_refresh_by_another_client_is_invalid_grant(http, oauth_client, services, user):
    thief = register_client(services, "https://thief.example.test/cb")
    tokens = login(http, oauth_client, user)
    # RFC 6749 §6: the refresh token is bound to the client it was issued to.
    _invalid_grant(refresh(http, thief, tokens["refresh_token"]))


def test_refresh_with_wrong_client_secret_is_invalid_client(http, oauth_client, user):
    tokens = login(http, oauth_client, user)
    resp = http.post("/token", data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
                     auth=(oauth_client.client_id, "wrong"))
    # RFC 6749 §6 / §5.2: a confidential client authenticates when refreshing.
    assert resp.status_code == 401
    assert resp.get_json()["error"] == "invalid_client"
    assert "WWW-Authenticate" in resp.headers
    assert_no_store(resp)
    # A failed authentication does not consume the token.
    _ok(refresh(http, oauth_client, tokens["refresh_token"]))


def test_unknown_refresh_token_is_invalid_grant(http, oauth_client):
    _invalid_grant(refresh(http, oauth_client, "not-a-refresh-token"))


def test_scope_cannot_be_widened(http, oauth_client, user):
    tokens = login(http, oauth_client, user, scope="openid")
    resp = refresh(http, oauth_client, tokens["refresh_token"], scope="openid profile")
    # RFC 6749 §6: no scope not originally granted → invalid_scope (§5.2).
    assert resp.status_code == 400
    assert resp.get_json()["error"] == "invalid_scope"
    assert_no_store(resp)


def test_scope_can_be_narrowed(http, oauth_client, user):
    tokens = login(http, oauth_client, user, scope="openid profile")
    narrowed = _ok(refresh(http, oauth_client, tokens["refresh_token"], scope="openid"))
    # RFC 6749 §6: a narrower scope is allowed; the response names it (§5.1).
    assert narrowed["scope"] == "openid"
    _, at = verify_jwt(http, narrowed["access_token"])
    assert at["scope"] == "openid"
    info = http.get("/userinfo", headers={"Authorization": f"Bearer {narrowed['access_token']}"}).get_json()
    assert "name" not in info
    # The narrowed grant cannot be widened again by its new token.
    resp = refresh(http, oauth_client, narrowed["refresh_token"], scope="openid profile")
    assert resp.get_json()["error"] == "invalid_scope"


def test_absolute_lifetime_ends_the_family(http, oauth_client, user, clock):
    tokens = login(http, oauth_client, user)
    current = tokens["refresh_token"]
    # Used every 6 days, so the 7-day idle limit never applies; the 30-day absolute one does.
    for _ in range(4):
        clock.advance(6 * DAY)
        current = _ok(refresh(http, oauth_client, current))["refresh_token"]
    clock.advance(6 * DAY - 1)
    current = _ok(refresh(http, oauth_client, current))["refresh_token"]
    clock.advance(1)
    # RFC 9700 §4.14.2: refresh tokens expire at the latest at the family's absolute end
    # (YIWANG refresh_token_ttl, 30 days from the code exchange), however often rotated.
    _invalid_grant(refresh(http, oauth_client, current))


def test_idle_refresh_token_expires(http, oauth_client, user, clock):
    tokens = login(http, oauth_client, user)
    clock.advance(7 * DAY + 1)
    # RFC 9700 §4.14.2: an unused refresh token expires after the idle lifetime.
    _invalid_grant(refresh(http, oauth_client, tokens["refresh_token"]))


def test_refreshed_id_token_keeps_the_original_auth_time(http, oauth_client, user, clock):
    tokens = login(http, oauth_client, user, nonce="orig-nonce")
    original = id_claims(tokens)
    clock.advance(3600)
    refreshed = _ok(refresh(http, oauth_client, tokens["refresh_token"]))
    _, claims = verify_jwt(http, refreshed["id_token"])
    # OIDC Core §12.2: same iss, sub, aud; auth_time of the original authentication;
    # a new iat.
    assert claims["auth_time"] == original["auth_time"]
    assert claims["iat"] == original["iat"] + 3600
    assert (claims["iss"], claims["sub"], claims["aud"]) == (original["iss"], original["sub"], original["aud"])
    assert claims.get("acr") == original.get("acr") and claims.get("sid") == original.get("sid")
    # The access token carries the original auth_time too.
    _, at = verify_jwt(http, refreshed["access_token"])
    assert at["auth_time"] == original["auth_time"]


def test_revoking_the_refresh_token_revokes_the_grant(http, oauth_client, user):
    tokens = login(http, oauth_client, user)
    resp = http.post("/revoke", data={"token": tokens["refresh_token"], "token_type_hint": "refresh_token"},
                     auth=oauth_client.auth)
    # RFC 7009 §2.1/§2.2: 200; the refresh token and the grant's access tokens are dead.
    assert resp.status_code == 200
    _invalid_grant(refresh(http, oauth_client, tokens["refresh_token"]))
    assert_token_rejected_by_userinfo(http, tokens["access_token"])
