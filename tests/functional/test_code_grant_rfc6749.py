"""The token endpoint for the authorization code grant (RFC 6749 §4.1.3, §5, §2.3;
RFC 9700 §2.1, §4.2.4): codes single use, short-lived, bound to client and redirect
URI; client authentication; refused grants; no caching of any answer."""

from __future__ import annotations

from tests.helpers import verify_jwt

from ._authz import (
    assert_no_store,
    assert_token_rejected_by_userinfo,
    front_channel_code,
    redeem,
    refresh,
    register_client,
    token,
    userinfo_status,
)


def _code_request(client, code, verifier, **extra):
    return {"grant_type": "authorization_code", "code": code, "redirect_uri": client.redirect_uri,
            "code_verifier": verifier, **extra}


def test_code_redeems_once_with_no_store(http, oauth_client, user):
    code, verifier = front_channel_code(http, oauth_client, user)
    resp = redeem(http, oauth_client, code, verifier)
    assert resp.status_code == 200
    body = resp.get_json()
    # RFC 6749 §5.1: a successful response is not cached.
    assert_no_store(resp)
    assert resp.headers.get("Pragma") == "no-cache"
    assert body["token_type"] == "Bearer" and body["access_token"] and body["refresh_token"]
    assert resp.mimetype == "application/json"


def test_code_replay_is_refused_and_revokes_what_it_issued(http, oauth_client, user):
    code, verifier = front_channel_code(http, oauth_client, user)
    first = redeem(http, oauth_client, code, verifier)
    assert first.status_code == 200
    tokens = first.get_json()
    assert userinfo_status(http, tokens["access_token"])[0] == 200

    replay = redeem(http, oauth_client, code, verifier)
    # RFC 6749 §4.1.2: a code used twice is refused (invalid_grant, §5.2) ...
    assert replay.status_code == 400
    assert replay.get_json()["error"] == "invalid_grant"
    assert_no_store(replay)
    # ... and RFC 6749 §4.1.2 / RFC 9700 §4.2.4: the tokens it issued are revoked.
    assert_token_rejected_by_userinfo(http, tokens["access_token"])
    again = refresh(http, oauth_client, tokens["refresh_token"])
    assert again.status_code == 400
    assert again.get_json()["error"] == "invalid_grant"


def test_code_replay_does_not_revoke_other_grants(http, oauth_client, user):
    code, verifier = front_channel_code(http, oauth_client, user)
    first = redeem(http, oauth_client, code, verifier).get_json()
    other_code, other_verifier = front_channel_code(http, oauth_client, None)
    other = redeem(http, oauth_client, other_code, other_verifier).get_json()
    assert redeem(http, oauth_client, code, verifier).status_code == 400
    # RFC 9700 §4.2.4: revoke what *this* code issued, not the user's other grants.
    assert_token_rejected_by_userinfo(http, first["access_token"])
    assert userinfo_status(http, other["access_token"])[0] == 200


def test_code_redeemed_by_another_client_is_invalid_grant(http, oauth_client, services, user):
    thief = register_client(services, "https://portal.example.test/callback")
    code, verifier = front_channel_code(http, oauth_client, user)
    resp = token(http, thief, _code_request(thief, code, verifier))
    # RFC 6749 §4.1.3: the code must have been issued to the authenticated client.
    assert resp.status_code == 400
    assert resp.get_json()["error"] == "invalid_grant"
    assert_no_store(resp)


def test_confidential_client_without_authentication_is_refused(http, oauth_client, user):
    code, verifier = front_channel_code(http, oauth_client, user)
    resp = http.post("/token", data={**_code_request(oauth_client, code, verifier), "client_id": oauth_client.client_id})
    # RFC 6749 §4.1.3 / §3.2.1: a confidential client must authenticate.
    assert resp.status_code == 401
    assert resp.get_json()["error"] == "invalid_client"
    assert_no_store(resp)


def test_wrong_redirect_uri_is_invalid_grant(http, oauth_client, user):
    code, verifier = front_channel_code(http, oauth_client, user)
    resp = token(http, oauth_client, _code_request(oauth_client, code, verifier,
                                                   redirect_uri=oauth_client.redirect_uri + "/x"))
    # RFC 6749 §4.1.3: redirect_uri must be identical to the authorization request's.
    assert resp.status_code == 400
    assert resp.get_json()["error"] == "invalid_grant"
    assert_no_store(resp)


def test_missing_redirect_uri_is_refused(http, oauth_client, user):
    code, verifier = front_channel_code(http, oauth_client, user)
    data = _code_request(oauth_client, code, verifier)
    del data["redirect_uri"]
    resp = token(http, oauth_client, data)
    # RFC 6749 §4.1.3: required when it was in the authorization request.
    assert resp.status_code == 400
    assert resp.get_json()["error"] == "invalid_grant"


def test_expired_code_is_invalid_grant(http, oauth_client, user, clock):
    code, verifier = front_channel_code(http, oauth_client, user)
    clock.advance(61)
    resp = redeem(http, oauth_client, code, verifier)
    # RFC 6749 §4.1.2 / RFC 9700 §4.2.1: short-lived codes (60 s here).
    assert resp.status_code == 400
    assert resp.get_json()["error"] == "invalid_grant"
    assert_no_store(resp)


def test_code_just_inside_its_lifetime_redeems(http, oauth_client, user, clock):
    code, verifier = front_channel_code(http, oauth_client, user)
    clock.advance(59)
    # RFC 6749 §4.1.2: the lifetime bound is the configured one, not shorter.
    assert redeem(http, oauth_client, code, verifier).status_code == 200


def test_unknown_code_is_invalid_grant(http, oauth_client, user):
    _, verifier = front_channel_code(http, oauth_client, user)
    resp = redeem(http, oauth_client, "not-a-code-we-issued", verifier)
    # RFC 6749 §5.2
    assert resp.status_code == 400
    assert resp.get_json()["error"] == "invalid_grant"


# -- client authentication (RFC 6749 §2.3, §5.2) -----------------------------------------


def test_wrong_secret_with_basic_is_401_with_challenge(http, oauth_client, user):
    code, verifier = front_channel_code(http, oauth_client, user)
    resp = http.post("/token", data=_code_request(oauth_client, code, verifier),
                     auth=(oauth_client.client_id, "wrong-secret"))
    # RFC 6749 §5.2: invalid_client, 401 and WWW-Authenticate when the Authorization
    # header was used.
    assert resp.status_code == 401
    assert resp.get_json()["error"] == "invalid_client"
    assert resp.headers.get("WWW-Authenticate", "").lower().startswith("basic")
    assert_no_store(resp)
    # The code was not consumed by the failed attempt (client authentication comes first).
    assert redeem(http, oauth_client, code, verifier).status_code == 200


def test_unknown_client_with_basic_is_401(http, oauth_client, user):
    code, verifier = front_channel_code(http, oauth_client, user)
    resp = http.post("/token", data=_code_request(oauth_client, code, verifier), auth=("nobody", "secret"))
    # RFC 6749 §5.2
    assert resp.status_code == 401
    assert resp.get_json()["error"] == "invalid_client"
    assert "WWW-Authenticate" in resp.headers
    assert_no_store(resp)


def test_missing_client_authentication_is_invalid_client(http, oauth_client, user):
    code, verifier = front_channel_code(http, oauth_client, user)
    resp = http.post("/token", data=_code_request(oauth_client, code, verifier))
    # RFC 6749 §3.2.1 / §5.2
    assert resp.status_code in (400, 401)
    assert resp.get_json()["error"] == "invalid_client"
    assert_no_store(resp)


def test_client_secret_post_for_a_basic_client_is_invalid_client(http, oauth_client, user):
    code, verifier = front_channel_code(http, oauth_client, user)
    resp = token(http, oauth_client, _code_request(oauth_client, code, verifier), basic=False)
    # OIDC Core §9 / OIDC Registration §2: a client uses the method it registered.
    assert resp.status_code in (400, 401)
    assert resp.get_json()["error"] == "invalid_client"
    assert "access_token" not in resp.get_json()
    assert_no_store(resp)


def test_client_secret_post_works_for_a_post_client(http, services, user):
    client = register_client(services, "https://post.example.test/cb", token_endpoint_auth_method="client_secret_post")
    code, verifier = front_channel_code(http, client, user)
    # RFC 6749 §2.3.1: credentials in the body, for a client registered so.
    assert token(http, client, _code_request(client, code, verifier), basic=False).status_code == 200
    code, verifier = front_channel_code(http, client, None)
    resp = token(http, client, _code_request(client, code, verifier), basic=True)
    # OIDC Registration §2: and Basic is then refused.
    assert resp.status_code == 401
    assert resp.get_json()["error"] == "invalid_client"


def test_public_client_redeems_with_verifier_only(http, public_client, user):
    code, verifier = front_channel_code(http, public_client, user)
    resp = redeem(http, public_client, code, verifier)
    # RFC 6749 §2.1 / RFC 7636 §4.5: public clients authenticate by PKCE.
    assert resp.status_code == 200
    _, claims = verify_jwt(http, resp.get_json()["id_token"])
    assert claims["aud"] == public_client.client_id


def test_public_client_claiming_a_secret_is_refused(http, public_client, user):
    code, verifier = front_channel_code(http, public_client, user)
    resp = http.post("/token", data=_code_request(public_client, code, verifier),
                     auth=(public_client.client_id, "made-up"))
    # OIDC Registration §2: a client registered with "none" has no secret to present.
    assert resp.status_code == 401
    assert resp.get_json()["error"] == "invalid_client"


# -- refused grants ----------------------------------------------------------------------


def test_password_grant_is_unsupported(http, oauth_client, user):
    resp = token(http, oauth_client, {"grant_type": "password", "username": user.username,
                                      "password": user.password, "scope": "openid"})
    # RFC 9700 §2.4: the resource owner password credentials grant must not be used.
    assert resp.status_code == 400
    assert resp.get_json()["error"] == "unsupported_grant_type"
    assert "access_token" not in resp.get_json()
    assert_no_store(resp)


def test_implicit_is_impossible(http, oauth_client):
    resp = token(http, oauth_client, {"grant_type": "implicit"})
    # RFC 9700 §2.1.2: no implicit grant; there is no token-endpoint form of it either.
    assert resp.status_code == 400
    assert resp.get_json()["error"] == "unsupported_grant_type"
    meta = http.get("/.well-known/openid-configuration").get_json()
    assert "implicit" not in meta["grant_types_supported"]
    assert "password" not in meta["grant_types_supported"]
    assert meta["response_types_supported"] == ["code"]


def test_unknown_and_missing_grant_types(http, oauth_client):
    for data in ({"grant_type": "urn:ietf:params:oauth:grant-type:device_code"}, {}):
        resp = token(http, oauth_client, data)
        # RFC 6749 §5.2
        assert resp.status_code == 400
        assert resp.get_json()["error"] in ("unsupported_grant_type", "invalid_request")
        assert_no_store(resp)


def test_grant_type_not_registered_for_the_client_is_unauthorized(http, services, user):
    client = register_client(services, "https://norefresh.example.test/cb", grant_types=["authorization_code"])
    code, verifier = front_channel_code(http, client, user, scope="openid profile offline_access")
    body = redeem(http, client, code, verifier).get_json()
    # RFC 6749 §5.2 unauthorized_client: no refresh token for a client without the grant.
    assert "refresh_token" not in body
    resp = token(http, client, {"grant_type": "client_credentials"})
    assert resp.status_code in (400, 401)
    assert resp.get_json()["error"] == "unauthorized_client"
    assert_no_store(resp)


def test_token_endpoint_refuses_get(http, oauth_client):
    resp = http.get("/token", query_string={"grant_type": "client_credentials"})
    # RFC 6749 §3.2: POST only (credentials and codes must not travel in URLs).
    assert resp.status_code == 405


def test_two_client_authentication_methods_in_one_request_are_refused(http, oauth_client, user):
    # RFC 6749 §2.3: the client MUST NOT use more than one authentication method per request.
    from tests.helpers import Browser

    query, verifier = Browser(http).code_flow(oauth_client, user)
    resp = http.post(
        "/token",
        data={"grant_type": "authorization_code", "code": query["code"], "redirect_uri": oauth_client.redirect_uri,
              "code_verifier": verifier, "client_id": oauth_client.client_id, "client_secret": oauth_client.secret},
        auth=oauth_client.auth,
    )
    assert resp.status_code == 401
    assert resp.get_json()["error"] == "invalid_client"
    assert resp.headers["Cache-Control"] == "no-store"
